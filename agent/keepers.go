package agent

// Coordinators whose state lives in an internal topic (the group
// coordinators in __consumer_offsets, the transaction coordinators in
// __transaction_state): one runs per partition this agent leads. This file
// is what they share: on election the partition is replayed into the
// coordinator; its writes go to the partition in order, acknowledged once
// the in-sync replicas have them; the coordinator closes when leadership
// moves. The topics are compacted (cleanup.policy=compact): every record
// is keyed by what it sets and a delete is a tombstone, so the key
// compactor keeps what a load needs and drops the history.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tlog-io/tlog/agent/controller"
	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/topic"
	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier/batch"
)

// keeper is a coordinator kept in an internal topic partition.
type keeper interface {
	// Apply replays one record (before Loaded).
	Apply(key, value []byte, now time.Time) error
	// Loaded ends the replay: the coordinator serves from now on.
	Loaded()
	Close()
}

// txnReplayer is a keeper whose partition holds transactional records
// (the group coordinators: TxnOffsetCommit): they are replayed pending
// until their producer's marker.
type txnReplayer interface {
	ApplyTxn(pid int64, key, value []byte) error
	CompleteTxn(pid int64, commit bool)
}

// keeperRun is a coordinator with the partition it writes to.
type keeperRun[K keeper] struct {
	c    K
	p    *partition.Partition
	idx  int32
	w    *stateWriter
	stop chan struct{}
	what string // for logs: "consumer groups", "transactions"
}

// ensureInternalTopic creates a coordinators' internal topic, if missing,
// with the given partitions, replicated to up to three agents and
// compacted. One made before the coordinators relied on compaction (it
// was kept whole and rewritten by them) is switched to compact.
func (a *Agent) ensureInternalTopic(ctx context.Context, name string, partitions int32) error {
	if t := a.topicByName(name); t != nil {
		mt := a.meta.State().Topics[t.ID]
		if mt == nil || mt.CleanupPolicyHas("compact") {
			return nil
		}
		_, err := a.propose(ctx, metadata.AlterTopicConfigs{TopicID: t.ID, Set: internalTopicConfigs()})
		return err
	}
	st := a.meta.State()
	spec, err := controller.PlanTopic(st, controller.NewTopic{
		Name:              name,
		Partitions:        partitions,
		ReplicationFactor: int16(min(3, len(controller.PlacementOrder(st)))),
		Configs:           internalTopicConfigs(),
	}, a.cfg.DefaultPartitions)
	if err == nil {
		_, err = a.propose(ctx, spec)
	}
	if err != nil && !errors.Is(err, metadata.ErrTopicExists) {
		return err
	}
	return nil
}

// internalTopicConfigs: Kafka's for __consumer_offsets and
// __transaction_state.
func internalTopicConfigs() map[string]string {
	return map[string]string{"cleanup.policy": "compact"}
}

// reconcileKeepers starts a coordinator (made by newK) for every partition
// of the internal topic t (nil: none) this agent now leads, and closes
// those it no longer leads. The caller holds the lock guarding coords.
func reconcileKeepers[K keeper](a *Agent, t *topic.Topic, coords map[int32]*keeperRun[K], what string, newK func(*keeperRun[K]) K) {
	for idx, kr := range coords {
		if t == nil || int(idx) >= len(t.Parts) || t.Parts[idx] != kr.p || !kr.p.IsLeader() {
			delete(coords, idx)
			close(kr.stop)
			a.wg.Add(1) // from a sync, itself on the agent's wait group
			go func() {
				defer a.wg.Done()
				kr.c.Close()
				kr.w.waitLate()
			}()
		}
	}
	if t == nil || a.ctx.Err() != nil {
		return
	}
	for i, p := range t.Parts {
		idx := int32(i)
		if !p.IsLeader() || coords[idx] != nil {
			continue
		}
		kr := &keeperRun[K]{p: p, idx: idx, stop: make(chan struct{}), what: what}
		kr.w = newStateWriter(a, p, kr.stop)
		kr.c = newK(kr)
		coords[idx] = kr
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			runKeeper(a, t, kr)
		}()
	}
}

// closeKeepers closes every coordinator in coords (shutdown); the caller
// has taken them out of the map.
func closeKeepers[K keeper](coords map[int32]*keeperRun[K]) {
	for _, kr := range coords {
		close(kr.stop)
		kr.c.Close()
		kr.w.waitLate()
	}
}

// runKeeper loads the partition into the coordinator.
func runKeeper[K keeper](a *Agent, t *topic.Topic, gc *keeperRun[K]) {
	start := time.Now()
	// Until it loads, the groups answer COORDINATOR_LOAD_IN_PROGRESS; keep
	// trying while the bucket is down. A retry replays from the log start:
	// records set state by key, so applying a prefix twice changes nothing.
	var n int
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		var err error
		if n, err = loadKeeper(a, t, gc); err == nil {
			break
		}
		if a.ctx.Err() != nil {
			return
		}
		a.log.Warn("load "+gc.what, "topic", t.Name, "partition", gc.idx, "err", err, "retry_in", backoff)
		select {
		case <-a.ctx.Done():
			return
		case <-gc.stop:
			return
		case <-time.After(backoff):
		}
	}
	gc.c.Loaded()
	lvl := slog.LevelDebug
	if n > 0 {
		lvl = slog.LevelInfo
	}
	a.log.Log(a.ctx, lvl, gc.what+" loaded", "topic", t.Name, "partition", gc.idx, "records", n, "took", time.Since(start).Round(time.Millisecond))
}

// loadKeeper waits until every record the previous coordinator may have
// acknowledged is committed here (the HW reaches the log end as of the
// election), then replays the partition from its start.
func loadKeeper[K keeper](a *Agent, t *topic.Topic, gc *keeperRun[K]) (int, error) {
	end := gc.p.Offsets().LEO
	for gc.p.Offsets().HW < end {
		select {
		case <-a.ctx.Done():
			return 0, a.ctx.Err()
		case <-gc.stop:
			return 0, errors.New("no longer the leader")
		case <-time.After(10 * time.Millisecond):
		}
	}
	ctx, cancel := context.WithCancel(a.ctx)
	var watch sync.WaitGroup
	defer watch.Wait()
	defer cancel()
	watch.Add(1)
	go func() {
		defer watch.Done()
		select {
		case <-gc.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	now := time.Now()
	n := 0
	off := gc.p.Offsets().LogStart
	for off < end {
		data, _, err := gc.p.Read(ctx, off, 1<<20, true)
		if err != nil {
			return n, fmt.Errorf("read %s/%d at %d: %w", t.Name, gc.idx, off, err)
		}
		if len(data) == 0 {
			return n, fmt.Errorf("read %s/%d at %d: nothing below %d", t.Name, gc.idx, off, end)
		}
		for rest := data; len(rest) > 0; {
			h, size, err := batch.Next(rest)
			if err != nil {
				return n, fmt.Errorf("%s/%d at %d: %w", t.Name, gc.idx, off, err)
			}
			replayer, txnAware := any(gc.c).(txnReplayer)
			if h.Control() {
				// A transaction's marker: its pending records now count
				// (commit) or never will.
				if txnAware && h.LastOffset() >= off {
					typ, err := batch.ControlType(rest[:size])
					if err != nil {
						return n, fmt.Errorf("%s/%d at %d: %w", t.Name, gc.idx, off, err)
					}
					replayer.CompleteTxn(h.ProducerID, typ == batch.ControlCommit)
				}
				off = max(off, h.LastOffset()+1)
				rest = rest[size:]
				continue
			}
			recs, err := batch.Records(rest[:size], 64<<20)
			if err != nil {
				return n, fmt.Errorf("%s/%d at %d: %w", t.Name, gc.idx, off, err)
			}
			for _, r := range recs {
				if r.Offset < off {
					continue // below the log start, inside the first batch
				}
				var err error
				if h.Transactional() && txnAware {
					err = replayer.ApplyTxn(h.ProducerID, r.Key, r.Value)
				} else {
					err = gc.c.Apply(r.Key, r.Value, now)
				}
				if err != nil {
					a.log.Warn("skipping an unreadable record", "topic", t.Name, "partition", gc.idx, "offset", r.Offset, "err", err)
				}
				n++
			}
			// Past the whole batch: compaction may have emptied it.
			off = max(off, h.LastOffset()+1)
			rest = rest[size:]
		}
	}
	return n, nil
}

// stateWriter appends a coordinator's records to its partition in the
// order they are issued, with a bounded wait for the in-sync replicas.
type stateWriter struct {
	a    *Agent
	p    *partition.Partition
	stop <-chan struct{}

	mu    sync.Mutex
	cond  *sync.Cond
	queue []stateWrite
	// completed holds the appends' completions (or timeouts), which run
	// on the writer's goroutine rather than the partition's that reports
	// them; nil once the writer has stopped.
	completed []func()
	stopped   bool
	// inOrder holds the appends issued and not yet reported, oldest
	// first: the coordinator hears of them in the order they were issued
	// (two commits of one group's offsets must apply oldest first).
	inOrder []*stateResult
	// late answers writes that arrive once the writer has stopped. Not
	// on the caller's goroutine: the coordinator calls write holding its
	// lock, and the answer takes that lock. Whoever closes the
	// coordinator waits for it (waitLate).
	late sync.WaitGroup
}

// waitLate waits for the answers to writes that came after the stop; the
// caller has closed the coordinator, so no more come.
func (w *stateWriter) waitLate() { w.late.Wait() }

// stateResult is one append's outcome, waiting for its turn.
type stateResult struct {
	gw    stateWrite
	ready bool
	err   error
}

// deliver reports completed appends from the oldest, stopping at the
// first still running. Only the writer's goroutine calls it.
func (w *stateWriter) deliver() {
	w.mu.Lock()
	for len(w.inOrder) > 0 && w.inOrder[0].ready {
		r := w.inOrder[0]
		w.mu.Unlock()
		r.gw.done(r.err)
		w.mu.Lock()
		w.inOrder = w.inOrder[1:]
	}
	w.mu.Unlock()
}

type stateWrite struct {
	recs []batch.KV
	done func(err error)
	// txn, if set, writes the records inside producer pid's transaction
	// at epoch (TxnOffsetCommit).
	txn *txnProducer
}

type txnProducer struct {
	pid   int64
	epoch int16
}

func newStateWriter(a *Agent, p *partition.Partition, stop <-chan struct{}) *stateWriter {
	w := &stateWriter{a: a, p: p, stop: stop}
	w.cond = sync.NewCond(&w.mu)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		w.run()
	}()
	return w
}

// write is the coordinator's Config.Write. It never blocks.
func (w *stateWriter) write(recs []batch.KV, done func(error)) {
	w.enqueue(stateWrite{recs: recs, done: done})
}

// writeTxn is group.Config.WriteTxn: the records in one transactional
// batch of producer pid at epoch. It never blocks.
func (w *stateWriter) writeTxn(pid int64, epoch int16, recs []batch.KV, done func(error)) {
	w.enqueue(stateWrite{recs: recs, txn: &txnProducer{pid, epoch}, done: done})
}

func (w *stateWriter) enqueue(gw stateWrite) {
	w.mu.Lock()
	if w.stopped {
		w.late.Add(1)
		w.mu.Unlock()
		go func() {
			defer w.late.Done()
			gw.done(kerr.NotLeaderForPartition)
		}()
		return
	}
	w.queue = append(w.queue, gw)
	w.cond.Broadcast()
	w.mu.Unlock()
}

func (w *stateWriter) run() {
	stopped := make(chan struct{})
	var watch sync.WaitGroup
	defer watch.Wait()
	watch.Add(1)
	go func() {
		defer watch.Done()
		select {
		case <-w.stop:
		case <-w.a.ctx.Done():
		}
		w.mu.Lock()
		close(stopped)
		w.cond.Broadcast()
		w.mu.Unlock()
	}()
	isStopped := func() bool {
		select {
		case <-stopped:
			return true
		default:
			return false
		}
	}
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && len(w.completed) == 0 && !isStopped() {
			w.cond.Wait()
		}
		if isStopped() {
			// What is queued or still in flight is answered now: the
			// coordinator is leaving, and a late completion is dropped.
			q := w.queue
			w.queue, w.completed, w.stopped = nil, nil, true
			for _, r := range w.inOrder {
				if !r.ready {
					r.ready, r.err = true, kerr.NotLeaderForPartition
				}
			}
			w.mu.Unlock()
			w.deliver()
			for _, gw := range q {
				gw.done(kerr.NotLeaderForPartition)
			}
			return
		}
		if c := w.completed; len(c) > 0 {
			w.completed = nil
			w.mu.Unlock()
			for _, fn := range c {
				fn()
			}
			continue
		}
		gw := w.queue[0]
		w.queue = w.queue[1:]
		w.mu.Unlock()
		w.append(gw)
	}
}

// append writes gw's records as batches of at most maxBytes and calls
// done once all are committed.
func (w *stateWriter) append(gw stateWrite) {
	const maxBytes = 512 << 10
	var chunks [][]batch.KV
	size := 0
	for i, r := range gw.recs {
		if i == 0 || size+len(r.Key)+len(r.Value) > maxBytes {
			chunks = append(chunks, nil)
			size = 0
		}
		chunks[len(chunks)-1] = append(chunks[len(chunks)-1], r)
		size += len(r.Key) + len(r.Value) + 16
	}
	res := &stateResult{gw: gw}
	var (
		left    = len(chunks)
		failure error
	)
	// finish runs on the writer's goroutine, once per chunk.
	finish := func(err error) {
		if err != nil && failure == nil {
			failure = err
		}
		if left--; left == 0 {
			w.mu.Lock()
			res.ready, res.err = true, failure
			w.mu.Unlock()
			w.deliver()
		}
	}
	w.mu.Lock()
	w.inOrder = append(w.inOrder, res)
	if len(chunks) == 0 {
		res.ready = true // nothing to write
	}
	w.mu.Unlock()
	if len(chunks) == 0 {
		w.deliver()
	}
	now := time.Now().UnixMilli()
	for _, chunk := range chunks {
		var b []byte
		if gw.txn != nil {
			b = batch.EncodeTxn(chunk, now, gw.txn.pid, gw.txn.epoch)
		} else {
			b = batch.Encode(chunk, now)
		}
		h, err := batch.ParseHeader(b)
		if err != nil {
			finish(kerr.CorruptMessage)
			continue
		}
		// Whichever of the append's completion and the timeout comes
		// first counts, on the writer's goroutine (not the partition's).
		var once sync.Once
		complete := func(err error) {
			w.mu.Lock()
			if !w.stopped {
				w.completed = append(w.completed, func() { once.Do(func() { finish(err) }) })
				w.cond.Broadcast()
			}
			w.mu.Unlock()
		}
		timer := time.AfterFunc(w.a.cfg.GroupWriteTimeout, func() { complete(kerr.RequestTimedOut) })
		if _, err := w.p.Append(b, h, -1, func(err error) {
			timer.Stop()
			complete(stateWriteErr(err))
		}); err != nil {
			timer.Stop()
			complete(stateWriteErr(err))
		}
	}
}

// stateWriteErr turns a partition append error into the Kafka error the
// coordinator maps for its clients.
func stateWriteErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, partition.ErrNotLeader), errors.Is(err, partition.ErrClosed):
		return kerr.NotLeaderForPartition
	case errors.Is(err, partition.ErrNotEnoughReplicas):
		return kerr.NotEnoughReplicas
	}
	return fmt.Errorf("%w: %v", kerr.KafkaStorageError, err)
}
