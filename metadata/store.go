package metadata

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlog-io/tlog/metadata/clock"
	"github.com/tlog-io/tlog/tier"
)

// Config configures a Store.
type Config struct {
	Bucket        tier.Bucket
	AgentID       int32
	LeaseTTL      time.Duration // default 10s
	SnapshotEvery int           // journal entries between snapshots; default 1000
	PollInterval  time.Duration // journal polling when not controller; default 1s
	Logger        *slog.Logger
	// Clock times the lease: its deadline, renewals, and how long a
	// challenger has seen it unchanged (nil: clock.Real). The renewal
	// loop's pacing stays on real time.
	Clock clock.Clock
	// OnControllerChange, if set, is called (in order, from one goroutine)
	// each time this Store gains or loses the controller role.
	OnControllerChange func(isController bool, epoch int64)
	// OnAppend, if set, is called after each entry this Store journals as
	// controller, in sequence order, with the entry's bytes exactly as
	// stored, so they can be pushed to other agents (see Deliver). It runs
	// under the Store's lock: it must not block or call back into the Store.
	OnAppend func(seq uint64, body []byte)
	// NoGroupCommit writes each proposal as an entry of its own (only to
	// measure what group commit saves; see ProposeEntry).
	NoGroupCommit bool
}

const (
	defaultLeaseTTL      = 10 * time.Second
	defaultSnapshotEvery = 1000
	defaultPollInterval  = time.Second
	// probeEvery: background polls list snapshots (to notice that the next
	// entry was deleted) only every this many polls, since LIST costs more
	// than the GET that finds nothing.
	probeEvery = 10
	// deleteParallelism bounds concurrent deletes when pruning.
	deleteParallelism = 16
	// checkParallelism bounds the concurrent HEADs checking a group's
	// objects: a group of a thousand agents' commits waits for
	// ceil(n/256) round trips.
	checkParallelism = 256
)

// Store is an agent's view of cluster metadata, and the controller's means
// to change it.
type Store struct {
	cfg    Config
	bucket tier.Bucket
	log    *slog.Logger

	state atomic.Pointer[State]

	// mu serialises everything that reads or writes the journal and
	// publishes states: Propose, catch-up, snapshot loads.
	mu sync.Mutex
	// queue holds proposals waiting for a group commit (see ProposeEntry).
	queueMu        sync.Mutex
	queue          []*proposal
	groupEntries   atomic.Int64
	groupProposals atomic.Int64
	needSync       bool  // the journal may hold entries we have not applied
	wroteEpoch     int64 // the lease epoch of the last entry written here
	// doomed: objects garbage collection is deleting (see Doom).
	doomed          map[string]struct{}
	lastSnapshotSeq uint64
	snapshotting    bool

	campaignMu sync.Mutex // one Campaign/Resign at a time
	leaseMu    sync.Mutex
	lease      leaseState

	subMu sync.Mutex
	subs  map[chan struct{}]struct{}

	evMu   sync.Mutex
	events []controllerEvent
	evCh   chan struct{}

	pokeCh chan struct{}

	lifeMu  sync.Mutex // guards closed and wg.Add
	closed  bool
	running bool
	done    chan struct{}
	ctx     context.Context // cancelled by Close; for background work
	cancel  context.CancelFunc
	wg      sync.WaitGroup // every goroutine the Store starts
	snapWG  sync.WaitGroup // background snapshots (tests wait on it)
}

type controllerEvent struct {
	controller bool
	epoch      int64
}

// Open loads the newest snapshot and the journal after it.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Bucket == nil {
		return nil, errors.New("metadata: open: no bucket")
	}
	if cfg.AgentID < 0 {
		return nil, fmt.Errorf("metadata: open: negative agent id %d", cfg.AgentID)
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = defaultLeaseTTL
	}
	if cfg.SnapshotEvery <= 0 {
		cfg.SnapshotEvery = defaultSnapshotEvery
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = defaultPollInterval
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Clock = clock.Or(cfg.Clock)
	s := &Store{
		cfg:    cfg,
		bucket: cfg.Bucket,
		log:    cfg.Logger.With("component", "metadata", "agent", cfg.AgentID),
		subs:   map[chan struct{}]struct{}{},
		evCh:   make(chan struct{}, 1),
		pokeCh: make(chan struct{}, 1),
		done:   make(chan struct{}),
	}
	s.lease.holder, s.lease.prevHolder = -1, -1
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.state.Store(NewState())

	s.mu.Lock()
	_, err := s.loadSnapshotLocked(ctx, 0)
	if err == nil {
		err = s.catchUpLocked(ctx, true)
	}
	s.mu.Unlock()
	if err != nil {
		s.cancel()
		return nil, fmt.Errorf("metadata: open: %w", err)
	}
	st := s.State()
	s.log.Info("metadata loaded", "seq", st.Seq, "controller_epoch", st.ControllerEpoch,
		"topics", len(st.Topics), "agents", len(st.Agents))

	if cfg.OnControllerChange != nil {
		s.wg.Add(1)
		go s.notifyLoop()
	}
	return s, nil
}

// State returns the current state. It is shared and immutable: do not
// modify it (Clone it first).
func (s *Store) State() *State { return s.state.Load() }

// Subscribe returns a channel that receives a signal after changes are
// applied. Signals coalesce: one pending signal stands for any number of
// changes, so read State after each.
func (s *Store) Subscribe() <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.subMu.Lock()
	s.subs[ch] = struct{}{}
	s.subMu.Unlock()
	return ch
}

// Unsubscribe stops signals to a channel returned by Subscribe.
func (s *Store) Unsubscribe(ch <-chan struct{}) {
	s.subMu.Lock()
	defer s.subMu.Unlock()
	for c := range s.subs {
		if c == ch {
			delete(s.subs, c)
		}
	}
}

// Poke asks the background loop to read the journal now, e.g. when the
// controller announces a new entry.
func (s *Store) Poke() {
	select {
	case s.pokeCh <- struct{}{}:
	default:
	}
}

func (s *Store) publishLocked(st *State) {
	s.state.Store(st)
	s.subMu.Lock()
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	s.subMu.Unlock()
}

// goBackground starts f unless the Store is closed.
func (s *Store) goBackground(f func()) bool {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

func (s *Store) isClosed() bool {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	return s.closed
}

// Close stops the background loops and waits for them. The Store stops
// acting as controller (without a callback) but writes nothing: a held
// lease expires after its TTL (see Resign).
func (s *Store) Close() error {
	s.lifeMu.Lock()
	if s.closed {
		s.lifeMu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	s.lifeMu.Unlock()
	s.cancel()

	s.leaseMu.Lock()
	if s.lease.held {
		s.lease.held = false
		s.lease.gen++
	}
	if s.lease.watchdog != nil {
		s.lease.watchdog.Stop()
	}
	s.leaseMu.Unlock()
	s.wg.Wait()
	return nil
}

// Run keeps campaigning for (or renewing) the controller lease and, while
// not controller, polls the journal every PollInterval and on Poke. It
// blocks until ctx is done (returning its error) or Close (returning nil).
func (s *Store) Run(ctx context.Context) error {
	s.lifeMu.Lock()
	switch {
	case s.closed:
		s.lifeMu.Unlock()
		return ErrClosed
	case s.running:
		s.lifeMu.Unlock()
		return errors.New("metadata: Run called twice")
	}
	s.running = true
	s.wg.Add(2)
	s.lifeMu.Unlock()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()

	go func() {
		defer s.wg.Done()
		s.leaseLoop(ctx)
	}()
	go func() {
		defer s.wg.Done()
		s.pollLoop(ctx)
	}()
	<-ctx.Done()
	if s.isClosed() {
		return nil
	}
	return ctx.Err()
}

func (s *Store) pollLoop(ctx context.Context) {
	t := time.NewTicker(s.cfg.PollInterval)
	defer t.Stop()
	polls := 0
	for {
		poked := false
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.pokeCh:
			poked = true
		}
		if s.IsController() {
			continue // the controller writes the journal; it has every entry
		}
		polls++
		s.mu.Lock()
		before := s.state.Load().Seq
		err := s.catchUpLocked(ctx, polls%probeEvery == 0)
		if err == nil && poked && s.state.Load().Seq == before {
			// Poked, so an entry should exist: none means it was deleted
			// under us. Look for a snapshot now rather than in ten polls.
			err = s.catchUpLocked(ctx, true)
		}
		s.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			s.log.Warn("journal poll failed", "err", err)
		}
	}
}

// Sync reads the journal up to its end now, reloading from a snapshot if
// the next entry was deleted.
func (s *Store) Sync(ctx context.Context) error {
	if s.isClosed() {
		return ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.catchUpLocked(ctx, true); err != nil {
		return fmt.Errorf("metadata: sync: %w", err)
	}
	return nil
}

// catchUpLocked applies journal entries after the current state until one
// is missing. A missing or corrupt entry may have been passed by a
// snapshot; probe (or a corrupt entry) makes it look for one. A read the
// bucket fails is ErrUnavailable.
func (s *Store) catchUpLocked(ctx context.Context, probe bool) error {
	err := s.applyJournalLocked(ctx, probe)
	if err != nil && !errors.Is(err, ErrCorrupt) && ctx.Err() == nil {
		err = fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

func (s *Store) applyJournalLocked(ctx context.Context, probe bool) error {
	probed := false
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		cur := s.state.Load()
		seq := cur.Seq + 1
		key := JournalKey(seq)
		body, _, err := s.bucket.Get(ctx, key)
		var e *Entry
		if err == nil {
			e, err = decodeEntry(seq, body)
			if err != nil {
				s.log.Error("corrupt journal entry", "key", key, "err", err)
			}
		}
		switch {
		case err == nil:
			s.applyEntryLocked(e)
			continue
		case errors.Is(err, tier.ErrNotFound) && (!probe || probed):
			s.needSync = false
			return nil
		case errors.Is(err, tier.ErrNotFound), errors.Is(err, ErrCorrupt):
			if probed {
				return err
			}
			probed = true
			loaded, lerr := s.loadSnapshotLocked(ctx, cur.Seq)
			if lerr != nil {
				return lerr
			}
			if loaded {
				continue
			}
			if errors.Is(err, ErrCorrupt) {
				return err
			}
			s.needSync = false
			return nil
		default:
			return fmt.Errorf("read %s: %w", key, err)
		}
	}
}

// applyEntryLocked applies an entry read from the journal.
func (s *Store) applyEntryLocked(e *Entry) {
	cur := s.state.Load()
	next, skipped := cur.applyEntry(e)
	if skipped != nil {
		s.log.Warn("journal entry skipped", "seq", e.Seq, "epoch", e.Epoch, "writer", e.Agent, "reason", skipped)
	} else {
		s.log.Debug("journal entry applied", "seq", e.Seq, "epoch", e.Epoch, "writer", e.Agent, "cmds", len(e.Cmds))
	}
	s.publishLocked(next)
	// A newer controller wrote to the journal: we are not the controller,
	// whatever our lease says.
	s.leaseMu.Lock()
	if skipped == nil && e.Epoch >= s.lease.holderEpoch {
		s.lease.holder, s.lease.holderEpoch = e.Agent, e.Epoch
	}
	if s.lease.held && (e.Epoch > s.lease.epoch || e.Epoch == s.lease.epoch && e.Agent != s.cfg.AgentID) {
		s.demoteLocked(fmt.Sprintf("journal entry %d has controller epoch %d from agent %d", e.Seq, e.Epoch, e.Agent))
	}
	s.leaseMu.Unlock()
}

// loadSnapshotLocked installs the newest readable snapshot whose seq is
// above after. It reports whether it loaded one.
func (s *Store) loadSnapshotLocked(ctx context.Context, after uint64) (bool, error) {
	seqs, err := s.listSeqs(ctx, SnapshotPrefix)
	if err != nil {
		return false, err
	}
	var firstErr error
	for i := len(seqs) - 1; i >= 0 && seqs[i] > after; i-- {
		seq := seqs[i]
		body, _, err := s.bucket.Get(ctx, SnapshotKey(seq))
		if err == nil {
			var st *State
			if st, err = decodeSnapshot(seq, body); err == nil {
				s.publishLocked(st)
				s.lastSnapshotSeq = max(s.lastSnapshotSeq, seq)
				s.log.Info("loaded snapshot", "seq", seq, "previous_seq", after)
				s.leaseMu.Lock()
				if s.lease.held && st.ControllerEpoch > s.lease.epoch {
					s.demoteLocked(fmt.Sprintf("snapshot %d has controller epoch %d", seq, st.ControllerEpoch))
				}
				s.leaseMu.Unlock()
				return true, nil
			}
			s.log.Error("corrupt snapshot", "key", SnapshotKey(seq), "err", err)
		} else if !errors.Is(err, tier.ErrNotFound) { // not found: pruned since the list
			err = fmt.Errorf("read %s: %w", SnapshotKey(seq), err)
		}
		if firstErr == nil && !errors.Is(err, tier.ErrNotFound) {
			firstErr = err
		}
	}
	return false, firstErr
}

// listSeqs lists the sequence numbers under a prefix, ascending.
func (s *Store) listSeqs(ctx context.Context, prefix string) ([]uint64, error) {
	objs, err := s.bucket.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", prefix, err)
	}
	seqs := make([]uint64, 0, len(objs))
	for _, o := range objs {
		seq, ok := parseSeqKey(prefix, o.Key)
		if !ok {
			s.log.Warn("ignoring unexpected metadata key", "key", o.Key)
			continue
		}
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	return seqs, nil
}

// Propose appends one journal entry holding cmds and returns the state
// after it. Only the controller may propose (ErrNotController). The
// commands are validated first against the current state; validation
// errors are returned as is. If another writer took the sequence number,
// Propose re-reads the journal and returns ErrConflict: the caller may
// validate against the new state and retry once.
func (s *Store) Propose(ctx context.Context, cmds ...Command) (*State, error) {
	st, _, err := s.ProposeEntry(ctx, cmds...)
	return st, err
}

// ProposeEntry is Propose that also returns the entry's bytes as stored.
//
// Proposals are committed in groups: those that arrive while a journal
// write is in flight wait for it, and the next of them to run writes all
// that are waiting as one entry, each validated in turn on the state the
// ones before it leave (a refused one is answered alone and left out).
// So the journal takes one PUT per write's round trip, however many
// agents propose (flush commits, ISR changes), instead of one each.
func (s *Store) ProposeEntry(ctx context.Context, cmds ...Command) (*State, []byte, error) {
	if len(cmds) == 0 {
		return nil, nil, fmt.Errorf("metadata: propose: %w: no commands", ErrInvalidCommand)
	}
	p := &proposal{cmds: cmds}
	s.queueMu.Lock()
	s.queue = append(s.queue, p)
	s.queueMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if !p.done { // else a writer before us took it (p's fields are written under mu)
		s.commitGroupLocked(ctx, s.takeGroup(p))
	}
	return p.st, p.body, p.err
}

// proposal is one caller's commands waiting for a group commit.
type proposal struct {
	cmds []Command
	done bool
	st   *State
	body []byte
	err  error
}

// maxGroupCommands bounds one entry's size when many proposals wait.
const maxGroupCommands = 4000

// takeGroup takes the waiting proposals, oldest first, up to
// maxGroupCommands commands, always including own.
func (s *Store) takeGroup(own *proposal) []*proposal {
	s.queueMu.Lock()
	defer s.queueMu.Unlock()
	if s.cfg.NoGroupCommit {
		s.queue = slices.DeleteFunc(s.queue, func(q *proposal) bool { return q == own })
		return []*proposal{own}
	}
	var group []*proposal
	n, hasOwn := 0, false
	rest := s.queue[:0]
	for _, q := range s.queue {
		if q == own || len(group) == 0 || n+len(q.cmds) <= maxGroupCommands {
			group = append(group, q)
			n += len(q.cmds)
			hasOwn = hasOwn || q == own
			continue
		}
		rest = append(rest, q)
	}
	if !hasOwn { // cannot happen: own is queued until taken
		group = append(group, own)
	}
	clear(s.queue[len(rest):])
	s.queue = rest
	return group
}

// commitGroupLocked writes group's proposals as one journal entry and
// answers each.
func (s *Store) commitGroupLocked(ctx context.Context, group []*proposal) {
	answer := func(qs []*proposal, err error) {
		for _, q := range qs {
			q.done, q.err = true, err
		}
	}
	if s.isClosed() {
		answer(group, ErrClosed)
		return
	}
	epoch, deadline, ok := s.controllerLease()
	if !ok {
		answer(group, fmt.Errorf("metadata: propose: %w", ErrNotController))
		return
	}
	if s.needSync {
		if err := s.catchUpLocked(ctx, true); err != nil {
			answer(group, fmt.Errorf("metadata: propose: catch up: %w", err))
			return
		}
		if epoch, deadline, ok = s.controllerLease(); !ok {
			answer(group, fmt.Errorf("metadata: propose: %w", ErrNotController))
			return
		}
	}
	cur := s.state.Load()
	if cur.ControllerEpoch > epoch {
		s.leaseMu.Lock()
		s.demoteLocked(fmt.Sprintf("journal is at controller epoch %d, lease at %d", cur.ControllerEpoch, epoch))
		s.leaseMu.Unlock()
		answer(group, fmt.Errorf("metadata: propose: %w", ErrNotController))
		return
	}

	// A proposal may be old by the time it is journaled (a commit held up
	// in a cut-off link); garbage collection, which runs under mu too (see
	// Doom), may have removed an object it names since. So objects are
	// checked here, before the write: a commit of a missing object is
	// refused, and its flusher writes the range again from its WAL.
	group = s.checkObjectsLocked(ctx, group, answer)

	// Wall time recorded in the entry (creation times), not a decision:
	// not the Clock.
	now := time.Now().UTC().Truncate(time.Millisecond)
	var (
		members []*proposal
		all     []Command
		proj    = cur
	)
	stamped := make([][]Command, len(group))
	for j, q := range group {
		stamped[j] = make([]Command, len(q.cmds))
		for i, c := range q.cmds {
			if st, ok := c.(stamper); ok && !isNil(c) {
				c = st.stamp(now)
			}
			stamped[j][i] = c
		}
		all = append(all, stamped[j]...)
	}
	members = group
	// The entry's own apply below checks the whole group at once; only if
	// it would fail are the proposals checked one by one, each on the
	// state the ones before it leave, to answer the bad ones alone.
	if len(group) > 1 { // alone, the entry's apply below answers it
		if _, err := cur.Next(all...); err != nil {
			members, all = nil, nil
			for j, q := range group {
				next, err := proj.Next(stamped[j]...)
				if err != nil {
					answer([]*proposal{q}, err)
					continue
				}
				proj = next
				members = append(members, q)
				all = append(all, stamped[j]...)
			}
		}
	}

	if len(members) == 0 {
		return
	}
	// One caller's context ending must not fail the others' write: the
	// write is bounded by the lease (below) and the Store's life.
	if len(members) > 1 {
		ctx = s.ctx
	}
	seq := cur.Seq + 1
	body, err := json.Marshal(Entry{Seq: seq, Epoch: epoch, Agent: s.cfg.AgentID, Cmds: all})
	if err != nil {
		answer(members, fmt.Errorf("metadata: propose: %w", err))
		return
	}
	// Apply what readers will decode, not the callers' values, so the
	// controller cannot diverge through anything JSON does not round-trip.
	e, err := decodeEntry(seq, body)
	if err != nil {
		answer(members, fmt.Errorf("metadata: propose: re-decode entry: %w", err))
		return
	}
	next, err := cur.Next(e.Cmds...)
	if err != nil {
		answer(members, err)
		return
	}
	next.Seq, next.ControllerEpoch = seq, epoch

	if _, _, ok := s.controllerLease(); !ok {
		answer(members, fmt.Errorf("metadata: propose: %w", ErrNotController))
		return
	}
	key := JournalKey(seq)
	// A write landing after the lease deadline could race a successor.
	wctx, cancel := context.WithDeadline(ctx, deadline)
	_, err = s.bucket.PutIfAbsent(wctx, key, body)
	cancel()
	if err != nil {
		if errors.Is(err, tier.ErrPreconditionFailed) {
			answer(members, s.lostSeqLocked(ctx, seq, epoch))
			return
		}
		if !s.landed(key, body) {
			s.needSync = true // the outcome is unknown until we re-read
			answer(members, fmt.Errorf("metadata: propose: write %s: %w: %w", key, ErrUnavailable, err))
			return
		}
		s.log.Warn("journal write reported an error but landed", "key", key, "err", err)
	}
	s.publishLocked(next)
	if s.cfg.OnAppend != nil {
		s.cfg.OnAppend(seq, body)
	}
	s.maybeSnapshotLocked(next)
	s.wroteEpoch = epoch
	s.groupEntries.Add(1)
	s.groupProposals.Add(int64(len(members)))
	for _, q := range members {
		q.done, q.st, q.body = true, next, body
	}
}

// checkObjectsLocked answers the proposals naming a segment object that
// is not in the bucket, and returns the rest.
func (s *Store) checkObjectsLocked(ctx context.Context, group []*proposal, answer func([]*proposal, error)) []*proposal {
	type check struct {
		q   *proposal
		key string
		err error
	}
	var checks []*check
	for _, q := range group {
		for _, key := range newObjects(q.cmds) {
			c := &check{q: q, key: key}
			if _, doomed := s.doomed[key]; doomed {
				c.err = fmt.Errorf("metadata: propose: %w: object %s is being deleted as an orphan", ErrInvalidSegment, key)
			}
			checks = append(checks, c)
		}
	}
	if len(checks) == 0 {
		return group
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, checkParallelism)
	for _, c := range checks {
		if c.err != nil {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			if _, err := s.bucket.Stat(ctx, c.key); err != nil {
				if errors.Is(err, tier.ErrNotFound) {
					c.err = fmt.Errorf("metadata: propose: %w: object %s is not in the bucket (collected as an orphan?)", ErrInvalidSegment, c.key)
				} else {
					c.err = fmt.Errorf("metadata: propose: check object %s: %w: %w", c.key, ErrUnavailable, err)
				}
			}
		}()
	}
	wg.Wait()
	refused := map[*proposal]bool{}
	for _, c := range checks {
		if c.err != nil && !refused[c.q] {
			refused[c.q] = true
			answer([]*proposal{c.q}, c.err)
		}
	}
	if len(refused) == 0 {
		return group
	}
	return slices.DeleteFunc(group, func(q *proposal) bool { return refused[q] })
}

// newObjects lists the segment objects cmds would reference.
func newObjects(cmds []Command) []string {
	var keys []string
	for _, c := range cmds {
		switch c := c.(type) {
		case CommitSegment:
			keys = append(keys, c.Ref.Object)
		case CommitSegments:
			for _, cs := range c.Commits {
				keys = append(keys, cs.Ref.Object)
			}
		case ReplaceSegments:
			keys = append(keys, c.New.Object)
		}
	}
	slices.Sort(keys)
	return slices.Compact(keys)
}

// Doom is garbage collection's half under the journal's lock: decide
// runs on a settled state (every journal entry that exists or can still
// land is in it) and returns the objects to delete; from then on no
// proposal naming one of them is journaled, so the caller may delete them
// at leisure, then Forget them. Only the controller settles: it reads the
// journal to its end, and first, if it has written nothing in its epoch
// yet, writes an entry, so that a write a former controller left in
// flight (a PUT held up in a cut-off link lands when the link heals) has
// either landed and been read, or lost its sequence number for good.
func (s *Store) Doom(ctx context.Context, decide func(*State) []string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed() {
		return nil, ErrClosed
	}
	epoch, _, ok := s.controllerLease()
	if !ok {
		return nil, fmt.Errorf("metadata: settle: %w", ErrNotController)
	}
	if err := s.catchUpLocked(ctx, true); err != nil {
		return nil, fmt.Errorf("metadata: settle: catch up: %w", err)
	}
	if s.wroteEpoch != epoch {
		cmd, ok := s.state.Load().unchangingCommand()
		if !ok {
			return nil, nil // nothing registered: nothing to collect either
		}
		p := &proposal{cmds: []Command{cmd}}
		s.commitGroupLocked(ctx, []*proposal{p})
		if p.err != nil {
			return nil, fmt.Errorf("metadata: settle: write in epoch %d: %w", epoch, p.err)
		}
	}
	if _, _, ok := s.controllerLease(); !ok {
		return nil, fmt.Errorf("metadata: settle: %w", ErrNotController)
	}
	keys := decide(s.state.Load())
	if s.doomed == nil {
		s.doomed = map[string]struct{}{}
	}
	for _, k := range keys {
		s.doomed[k] = struct{}{}
	}
	return keys, nil
}

// Forget drops deleted objects from the doomed set (a proposal naming one
// is then refused by the bucket's answer instead).
func (s *Store) Forget(keys []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.doomed, k)
	}
}

// GroupStats reports journal entries written and the proposals they
// carried (more proposals than entries: group commits at work).
func (s *Store) GroupStats() (entries, proposals int64) {
	return s.groupEntries.Load(), s.groupProposals.Load()
}

// Deliver applies a journal entry pushed by the controller: the bytes it
// stored at JournalKey(seq). The next entry in order is applied at once;
// one already applied is ignored; after a gap the journal is read from the
// bucket up to its end, which includes seq.
func (s *Store) Deliver(ctx context.Context, seq uint64, body []byte) error {
	if s.isClosed() {
		return ErrClosed
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur := s.state.Load()
	switch {
	case seq <= cur.Seq:
		return nil
	case seq == cur.Seq+1 && !s.needSync:
		e, err := decodeEntry(seq, body)
		if err != nil {
			return fmt.Errorf("metadata: deliver: %w", err)
		}
		s.applyEntryLocked(e)
		return nil
	}
	if err := s.catchUpLocked(ctx, true); err != nil {
		return fmt.Errorf("metadata: deliver %d: catch up: %w", seq, err)
	}
	return nil
}

// lostSeqLocked handles a lost race for seq: catch up before deciding
// anything else.
func (s *Store) lostSeqLocked(ctx context.Context, seq uint64, epoch int64) error {
	s.log.Warn("lost journal sequence to another writer; catching up", "seq", seq, "epoch", epoch)
	s.needSync = true
	if err := s.catchUpLocked(ctx, true); err != nil {
		s.log.Warn("catch-up after conflict failed", "err", err)
	}
	err := fmt.Errorf("metadata: propose: seq %d: %w", seq, ErrConflict)
	if _, _, ok := s.controllerLease(); !ok {
		err = fmt.Errorf("%w (%w)", err, ErrNotController)
	}
	return err
}

// landed checks whether a journal write that returned an error was stored.
func (s *Store) landed(key string, body []byte) bool {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.LeaseTTL)
	defer cancel()
	got, _, err := s.bucket.Get(ctx, key)
	return err == nil && bytes.Equal(got, body)
}

// maybeSnapshotLocked starts a background snapshot every SnapshotEvery
// entries; writing it and deleting old entries must not delay proposals.
func (s *Store) maybeSnapshotLocked(st *State) {
	if s.snapshotting || st.Seq < s.lastSnapshotSeq+uint64(s.cfg.SnapshotEvery) {
		return
	}
	s.snapshotting = true
	s.snapWG.Add(1)
	ok := s.goBackground(func() {
		defer s.snapWG.Done()
		err := s.writeSnapshot(s.ctx, st)
		s.mu.Lock()
		s.snapshotting = false
		s.mu.Unlock()
		if err != nil && s.ctx.Err() == nil {
			s.log.Warn("snapshot failed", "seq", st.Seq, "err", err)
		}
	})
	if !ok {
		s.snapshotting = false
		s.snapWG.Done()
	}
}

// Snapshot writes a snapshot of the current state now and prunes the
// journal and old snapshots. Controller only.
func (s *Store) Snapshot(ctx context.Context) error {
	if s.isClosed() {
		return ErrClosed
	}
	if err := s.writeSnapshot(ctx, s.State()); err != nil {
		return fmt.Errorf("metadata: snapshot: %w", err)
	}
	return nil
}

// writeSnapshot stores st as a snapshot, then deletes journal entries at
// or below it and all but the newest two snapshots.
func (s *Store) writeSnapshot(ctx context.Context, st *State) error {
	if !s.IsController() {
		return ErrNotController // only the controller prunes the journal
	}
	body, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode snapshot %d: %w", st.Seq, err)
	}
	key := SnapshotKey(st.Seq)
	// PutIfAbsent: a state at a given seq is the same everywhere, so an
	// existing snapshot is as good as ours, and it must never be replaced.
	if _, err := s.bucket.PutIfAbsent(ctx, key, body); err != nil && !errors.Is(err, tier.ErrPreconditionFailed) {
		return fmt.Errorf("write %s: %w", key, err)
	}
	s.mu.Lock()
	s.lastSnapshotSeq = max(s.lastSnapshotSeq, st.Seq)
	s.mu.Unlock()
	s.log.Info("wrote snapshot", "seq", st.Seq, "bytes", len(body))

	var doomed []string
	snaps, err := s.listSeqs(ctx, SnapshotPrefix)
	if err != nil {
		return err
	}
	if len(snaps) > 2 {
		for _, seq := range snaps[:len(snaps)-2] {
			doomed = append(doomed, SnapshotKey(seq))
		}
	}
	entries, err := s.listSeqs(ctx, JournalPrefix)
	if err != nil {
		return err
	}
	for _, seq := range entries {
		if seq > st.Seq {
			break
		}
		doomed = append(doomed, JournalKey(seq))
	}
	return s.deleteAll(ctx, doomed)
}

func (s *Store) deleteAll(ctx context.Context, keys []string) error {
	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
		sem      = make(chan struct{}, deleteParallelism)
	)
	for _, k := range keys {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := s.bucket.Delete(ctx, k); err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = fmt.Errorf("delete %s: %w", k, err)
				}
				errMu.Unlock()
			}
		}()
	}
	wg.Wait()
	return firstErr
}

func (s *Store) notifyLoop() {
	defer s.wg.Done()
	for {
		select {
		case <-s.done:
			return
		case <-s.evCh:
		}
		s.evMu.Lock()
		evs := s.events
		s.events = nil
		s.evMu.Unlock()
		for _, ev := range evs {
			s.cfg.OnControllerChange(ev.controller, ev.epoch)
		}
	}
}

func (s *Store) notify(ev controllerEvent) {
	if s.cfg.OnControllerChange == nil {
		return
	}
	s.evMu.Lock()
	s.events = append(s.events, ev)
	s.evMu.Unlock()
	select {
	case s.evCh <- struct{}{}:
	default:
	}
}
