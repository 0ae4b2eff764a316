package consumer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	// ErrClosed is returned by Run and Seek once Close was called.
	ErrClosed = errors.New("consumer closed")
	// ErrRunning is returned by Run while another Run is in progress.
	ErrRunning = errors.New("consumer is already running")
	// ErrNotAssigned is returned by Seek for a partition the consumer does
	// not read.
	ErrNotAssigned = errors.New("partition not assigned to this consumer")
)

// Handler processes one record. Returning an error stops Run; the record is
// not marked processed, so it is delivered again by the next Run (and, in
// assignment mode, to a consumer started from the same OffsetStore).
// Handlers run one at a time on Run's goroutine.
type Handler func(ctx context.Context, r *Record) error

// finalSaveTimeout bounds the save or commit Run does on its way out, when
// its own context is already done.
const finalSaveTimeout = 10 * time.Second

// Consumer reads records in group mode or assignment mode (see the package
// documentation). Run, Seek, SeekAll, Commit, Assignment, Positions and
// Close may be called from any goroutine.
type Consumer struct {
	cl    *kgo.Client
	cfg   config
	store OffsetStore
	group bool

	closeCtx    context.Context
	closeCancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	runDone  chan struct{} // non-nil while Run runs
	resolved bool          // assignment mode: partitions and starts resolved
	assigned map[TopicPartition]bool
	pos      map[TopicPartition]int64 // next offset to process
	dirty    map[TopicPartition]int64 // processed but not yet saved
	seeks    map[TopicPartition]Offset
	seekAll  *Offset
	wake     context.CancelFunc // ends Run's poll so it applies a seek
}

// New creates a Consumer for the given seed brokers ("host:port"). It does
// not connect: Run does.
func New(brokers []string, opts ...Option) (*Consumer, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.validate(brokers); err != nil {
		return nil, err
	}
	if cfg.maxPoll == 0 {
		cfg.maxPoll = 500
	}
	c := &Consumer{
		cfg:      cfg,
		group:    cfg.group != "",
		store:    cfg.store,
		assigned: map[TopicPartition]bool{},
		pos:      map[TopicPartition]int64{},
		dirty:    map[TopicPartition]int64{},
	}
	if c.store == nil && !c.group {
		c.store = NewMemoryStore()
	}
	c.closeCtx, c.closeCancel = context.WithCancel(context.Background())
	cl, err := kgo.NewClient(cfg.kgo(brokers, &groupHooks{c})...)
	if err != nil {
		return nil, fmt.Errorf("consumer: new client: %w", err)
	}
	c.cl = cl
	return c, nil
}

// Client returns the underlying kgo client, for what this package does not
// cover. Closing it closes the Consumer.
func (c *Consumer) Client() *kgo.Client { return c.cl }

// Run polls records and calls h for each, in offset order within a
// partition, until ctx ends (it returns ctx's error), Close is called
// (ErrClosed), h returns an error or panics (the error, wrapped with the
// record's position; a panic as *PanicError), or saving positions fails.
//
// After each batch the positions processed are saved (assignment mode) or
// committed (group mode); on its way out Run saves what was processed and
// rewinds the partitions to the first record not processed, so a later Run
// delivers it again. Only one Run may be in progress at a time.
func (c *Consumer) Run(ctx context.Context, h Handler) (err error) {
	if h == nil {
		return errors.New("consumer: nil handler")
	}
	c.mu.Lock()
	switch {
	case c.closed:
		c.mu.Unlock()
		return ErrClosed
	case c.runDone != nil:
		c.mu.Unlock()
		return ErrRunning
	}
	done := make(chan struct{})
	c.runDone = done
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.runDone = nil
		c.mu.Unlock()
		close(done)
	}()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.closeCtx, cancel)()

	defer func() {
		fctx, fcancel := context.WithTimeout(context.WithoutCancel(ctx), finalSaveTimeout)
		defer fcancel()
		if serr := c.commit(fctx); serr != nil {
			err = errors.Join(err, serr)
		}
		if c.closeCtx.Err() != nil && errors.Is(err, context.Canceled) {
			err = ErrClosed
		}
	}()

	if err := c.resolve(ctx); err != nil {
		return err
	}
	for {
		if err := c.applySeeks(ctx); err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		pollCtx, wake := context.WithCancel(ctx)
		c.mu.Lock()
		c.wake = wake
		pending := len(c.seeks) > 0 || c.seekAll != nil
		c.mu.Unlock()
		if pending { // a seek raced in before wake was set
			wake()
		}
		fs := c.cl.PollRecords(pollCtx, c.cfg.maxPoll)
		c.mu.Lock()
		c.wake = nil
		c.mu.Unlock()
		wake()
		if fs.IsClientClosed() {
			c.allowRebalance()
			return ErrClosed
		}
		fs.EachError(func(topic string, p int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return // our own wake-up or shutdown
			}
			c.report(fmt.Errorf("fetch %s/%d: %w", topic, p, err))
		})
		err := c.process(ctx, fs, h)
		if err == nil {
			// Before allowing a rebalance, so group seeks hit partitions
			// we still own.
			err = c.applySeeks(ctx)
		}
		c.allowRebalance()
		if err != nil {
			return err
		}
	}
}

func (c *Consumer) allowRebalance() {
	if c.group {
		c.cl.AllowRebalance()
	}
}

type partBatch struct {
	tp   TopicPartition
	recs []*kgo.Record
}

// process runs h over one polled batch.
func (c *Consumer) process(ctx context.Context, fs kgo.Fetches, h Handler) error {
	var parts []partBatch
	fs.EachPartition(func(p kgo.FetchTopicPartition) {
		if len(p.Records) > 0 {
			parts = append(parts, partBatch{TopicPartition{p.Topic, p.Partition}, p.Records})
		}
	})
	if len(parts) == 0 {
		return nil
	}
	if c.cfg.atMostOnce {
		for _, pb := range parts {
			c.markProcessed(pb.recs[len(pb.recs)-1])
		}
		if err := c.commit(ctx); err != nil {
			// Nothing was processed and nothing is stored past it:
			// deliver the batch again.
			c.rewind(ctx, parts, 0, 0)
			return fmt.Errorf("at-most-once: save positions before processing: %w", err)
		}
	}
	for i, pb := range parts {
		for j, kr := range pb.recs {
			if err := ctx.Err(); err != nil {
				c.rewind(ctx, parts, i, j)
				return err
			}
			if c.seekPending(pb.tp) {
				break // the seek replaces what is left of this partition
			}
			if err := callHandler(ctx, h, fromKgo(kr)); err != nil {
				c.rewind(ctx, parts, i, j)
				return fmt.Errorf("handle %s/%d@%d: %w", kr.Topic, kr.Partition, kr.Offset, err)
			}
			if !c.cfg.atMostOnce {
				c.markProcessed(kr)
			}
		}
	}
	if c.cfg.atMostOnce {
		return nil
	}
	if err := c.commit(ctx); err != nil {
		if c.group {
			// The marks stay; the next commit (Run's last one, or the
			// revoke) retries.
			if ctx.Err() == nil {
				c.report(err)
			}
			return nil
		}
		return err
	}
	return nil
}

// markProcessed records that everything up to kr is processed.
func (c *Consumer) markProcessed(kr *kgo.Record) {
	tp := TopicPartition{kr.Topic, kr.Partition}
	c.mu.Lock()
	c.pos[tp] = kr.Offset + 1
	if !c.group {
		c.dirty[tp] = kr.Offset + 1
	}
	c.mu.Unlock()
	if c.group {
		c.cl.MarkCommitRecords(kr)
	}
}

// rewind moves partitions back to the first record of the batch not
// processed: record j of parts[i], and the first record of every later
// partition. At most once never rewinds: the positions are already saved
// past the batch.
func (c *Consumer) rewind(ctx context.Context, parts []partBatch, i, j int) {
	if c.cfg.atMostOnce {
		return
	}
	if c.group {
		// kgo's SetOffsets also records the new offsets as committed, so
		// marks not yet committed would never be: commit them first.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finalSaveTimeout)
		err := c.commit(cctx)
		cancel()
		if err != nil {
			c.report(fmt.Errorf("commit before rewind: %w", err))
		}
	}
	set := map[string]map[int32]kgo.EpochOffset{}
	for k := i; k < len(parts); k++ {
		if c.seekPending(parts[k].tp) {
			continue
		}
		first := 0
		if k == i {
			first = j
		}
		kr := parts[k].recs[first]
		if set[kr.Topic] == nil {
			set[kr.Topic] = map[int32]kgo.EpochOffset{}
		}
		set[kr.Topic][kr.Partition] = kgo.EpochOffset{Epoch: -1, Offset: kr.Offset}
	}
	// These partitions returned records, so kgo has cursors for them and
	// SetOffsets applies (it also drops what was buffered past them).
	c.cl.SetOffsets(set)
}

// Commit saves (assignment mode) or commits (group mode) the positions
// processed so far. Run does this after every batch; call Commit to do it
// sooner, for example from a handler after an expensive record.
func (c *Consumer) Commit(ctx context.Context) error { return c.commit(ctx) }

func (c *Consumer) commit(ctx context.Context) error {
	if c.group {
		if err := c.cl.CommitMarkedOffsets(ctx); err != nil {
			return fmt.Errorf("commit offsets of group %s: %w", c.cfg.group, err)
		}
		return nil
	}
	c.mu.Lock()
	dirty := maps.Clone(c.dirty)
	c.mu.Unlock()
	if len(dirty) == 0 {
		return nil
	}
	if err := c.store.Save(ctx, dirty); err != nil {
		return fmt.Errorf("save positions: %w", err)
	}
	c.mu.Lock()
	for tp, off := range dirty {
		if c.dirty[tp] == off {
			delete(c.dirty, tp)
		}
	}
	c.mu.Unlock()
	return nil
}

// resolve, on the first Run, joins the group (group mode) or works out
// which partitions to read and where each starts (assignment mode).
func (c *Consumer) resolve(ctx context.Context) error {
	c.mu.Lock()
	done := c.resolved
	c.mu.Unlock()
	if done {
		return nil
	}
	if c.group {
		c.cl.AddConsumeTopics(c.cfg.topics...)
		c.mu.Lock()
		c.resolved = true
		c.mu.Unlock()
		return nil
	}
	start := map[TopicPartition]Offset{}
	var tps []TopicPartition
	for _, a := range c.cfg.assignments {
		ps := a.partitions
		if len(ps) == 0 {
			var err error
			if ps, err = partitionsOf(ctx, c.cl, a.topic); err != nil {
				return fmt.Errorf("assign %s: %w", a.topic, err)
			}
		}
		for _, p := range ps {
			tp := TopicPartition{a.topic, p}
			if _, dup := start[tp]; !dup {
				tps = append(tps, tp)
			}
			start[tp] = a.start
		}
	}
	stored, err := c.store.Load(ctx, tps)
	if err != nil {
		return fmt.Errorf("load positions: %w", err)
	}
	for tp, off := range stored {
		start[tp] = At(off)
	}
	// Concrete offsets now, not kgo's lazy AtStart/AtEnd: Latest then means
	// the end when Run started, and Positions is known from the start.
	offs, err := listOffsets(ctx, c.cl, start)
	if err != nil {
		return fmt.Errorf("assign: resolve start offsets: %w", err)
	}
	add := map[string]map[int32]kgo.Offset{}
	for tp, off := range offs {
		if add[tp.Topic] == nil {
			add[tp.Topic] = map[int32]kgo.Offset{}
		}
		add[tp.Topic][tp.Partition] = kgo.NewOffset().At(off)
	}
	c.mu.Lock()
	maps.Copy(c.pos, offs)
	for _, tp := range tps {
		c.assigned[tp] = true
	}
	c.resolved = true
	c.mu.Unlock()
	c.cl.AddConsumePartitions(add)
	if c.cfg.onAssigned != nil {
		c.cfg.onAssigned(ctx, sortTPs(tps))
	}
	return nil
}

// Seek makes the next record Run delivers from tp the one at to. Run applies
// it before its next record (a handler may call Seek; what was already
// fetched of tp past that point is dropped). Seeking does not save a
// position: the next processed record does. In group mode tp must be
// assigned to this member; in assignment mode, part of the assignment.
func (c *Consumer) Seek(tp TopicPartition, to Offset) error {
	if err := to.validate(); err != nil {
		return fmt.Errorf("seek %s: %w", tp, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if !c.mayOwn(tp) {
		return fmt.Errorf("seek %s: %w", tp, ErrNotAssigned)
	}
	if c.seeks == nil {
		c.seeks = map[TopicPartition]Offset{}
	}
	c.seeks[tp] = to
	if c.wake != nil {
		c.wake()
	}
	return nil
}

// SeekAll seeks every partition the consumer reads when Run applies it (a
// replay of everything, with Earliest).
func (c *Consumer) SeekAll(to Offset) error {
	if err := to.validate(); err != nil {
		return fmt.Errorf("seek all: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return ErrClosed
	}
	c.seekAll = &to
	if c.wake != nil {
		c.wake()
	}
	return nil
}

// mayOwn reports whether tp is or (before the assignment is resolved) may
// be read by this consumer. c.mu is held.
func (c *Consumer) mayOwn(tp TopicPartition) bool {
	if c.group || c.resolved {
		return c.assigned[tp]
	}
	for _, a := range c.cfg.assignments {
		if a.topic == tp.Topic && (len(a.partitions) == 0 || slices.Contains(a.partitions, tp.Partition)) {
			return true
		}
	}
	return false
}

func (c *Consumer) seekPending(tp TopicPartition) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.seeks[tp]
	return ok || c.seekAll != nil && c.assigned[tp]
}

// applySeeks hands queued seeks to kgo.
func (c *Consumer) applySeeks(ctx context.Context) error {
	c.mu.Lock()
	seeks, all := c.seeks, c.seekAll
	c.seeks, c.seekAll = nil, nil
	if all != nil {
		if seeks == nil {
			seeks = map[TopicPartition]Offset{}
		}
		for tp := range c.assigned {
			if _, ok := seeks[tp]; !ok {
				seeks[tp] = *all
			}
		}
	}
	for tp := range seeks {
		if !c.assigned[tp] {
			delete(seeks, tp) // revoked meanwhile
		}
	}
	c.mu.Unlock()
	if len(seeks) == 0 {
		return nil
	}
	// Concrete offsets: the group consumer can only be moved to those, and
	// they make Positions exact.
	offs, err := listOffsets(ctx, c.cl, seeks)
	if err != nil {
		return fmt.Errorf("seek: %w", err)
	}
	c.mu.Lock()
	for tp, off := range offs {
		if c.assigned[tp] {
			c.pos[tp] = off
		}
	}
	c.mu.Unlock()
	if c.group {
		set := map[string]map[int32]kgo.EpochOffset{}
		for tp, off := range offs {
			if set[tp.Topic] == nil {
				set[tp.Topic] = map[int32]kgo.EpochOffset{}
			}
			set[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: off}
		}
		c.cl.SetOffsets(set)
		return nil
	}
	// Remove and re-add rather than SetOffsets: SetOffsets skips a
	// partition whose start is still being resolved.
	remove := map[string][]int32{}
	add := map[string]map[int32]kgo.Offset{}
	for tp, off := range offs {
		remove[tp.Topic] = append(remove[tp.Topic], tp.Partition)
		if add[tp.Topic] == nil {
			add[tp.Topic] = map[int32]kgo.Offset{}
		}
		add[tp.Topic][tp.Partition] = kgo.NewOffset().At(off)
	}
	c.cl.RemoveConsumePartitions(remove)
	c.cl.AddConsumePartitions(add)
	return nil
}

// Assignment returns the partitions the consumer reads now: in group mode
// those the group assigned to this member, in assignment mode those
// resolved by Run (none before the first Run).
func (c *Consumer) Assignment() []TopicPartition {
	c.mu.Lock()
	defer c.mu.Unlock()
	return sortTPs(slices.Collect(maps.Keys(c.assigned)))
}

// Positions returns, per partition, the offset of the next record to
// process, as far as this consumer knows (processed here, or loaded from
// the OffsetStore).
func (c *Consumer) Positions() map[TopicPartition]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.pos)
}

// Close stops Run (which saves or commits what was processed), waits for it
// until ctx ends, leaves the group in group mode, and closes the
// connections. Calling Close again returns nil. A handler must not call
// Close (it would wait for itself); it can cancel Run's context instead.
func (c *Consumer) Close(ctx context.Context) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	done := c.runDone
	c.mu.Unlock()
	c.closeCancel()
	var err error
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			err = fmt.Errorf("close: waiting for Run: %w", ctx.Err())
		}
	}
	if err == nil {
		err = c.commit(ctx)
	}
	// Leaving the group revokes our partitions, whose hook commits again;
	// nothing is marked past what was just committed.
	c.cl.CloseAllowingRebalance()
	return err
}

func (c *Consumer) report(err error) {
	if c.cfg.onError != nil {
		c.cfg.onError(err)
	}
}

func sortTPs(tps []TopicPartition) []TopicPartition {
	slices.SortFunc(tps, func(a, b TopicPartition) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return tps
}

func toTPs(m map[string][]int32) []TopicPartition {
	var tps []TopicPartition
	for t, ps := range m {
		for _, p := range ps {
			tps = append(tps, TopicPartition{t, p})
		}
	}
	return sortTPs(tps)
}

// groupHooks are the kgo group callbacks; they run on kgo's goroutines.
type groupHooks struct{ c *Consumer }

func (g *groupHooks) assigned(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
	tps := toTPs(m)
	g.c.mu.Lock()
	for _, tp := range tps {
		g.c.assigned[tp] = true
	}
	g.c.mu.Unlock()
	if g.c.cfg.onAssigned != nil {
		g.c.cfg.onAssigned(ctx, tps)
	}
}

// revoked commits what was processed on the partitions before they go. With
// BlockRebalanceOnPoll this runs only between batches, so every record
// handed to the handler is either processed and marked, or rewound.
func (g *groupHooks) revoked(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	if err := cl.CommitMarkedOffsets(ctx); err != nil {
		g.c.report(fmt.Errorf("commit before revoke of %v: %w", m, err))
	}
	g.drop(ctx, m)
}

// lost partitions may already belong to someone else: no commit.
func (g *groupHooks) lost(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
	g.drop(ctx, m)
}

func (g *groupHooks) drop(ctx context.Context, m map[string][]int32) {
	tps := toTPs(m)
	g.c.mu.Lock()
	for _, tp := range tps {
		delete(g.c.assigned, tp)
		delete(g.c.seeks, tp)
		delete(g.c.pos, tp)
	}
	g.c.mu.Unlock()
	if g.c.cfg.onRevoked != nil {
		g.c.cfg.onRevoked(ctx, tps)
	}
}
