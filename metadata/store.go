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
	// FlushCommitInterval is the least time between journal writes while
	// everything waiting is a flush commit (CommitSegments): flush commits
	// wait up to this long to share an entry, so the journal takes at
	// most 1/FlushCommitInterval such writes a second however many agents
	// flush. Any other proposal ends the wait. Default 100ms; negative:
	// no wait.
	FlushCommitInterval time.Duration
}

const (
	defaultFlushCommitInterval = 100 * time.Millisecond
	defaultLeaseTTL            = 10 * time.Second
	defaultSnapshotEvery       = 1000
	defaultPollInterval        = time.Second
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
	urgent         chan struct{} // a proposal that is not a flush commit is queued
	lastWrite      time.Time     // when the last group commit began (under mu)
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
	if cfg.FlushCommitInterval == 0 {
		cfg.FlushCommitInterval = defaultFlushCommitInterval
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
		urgent: make(chan struct{}, 1),
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
	p := &proposal{cmds: cmds, flush: isFlushCommit(cmds)}
	s.queueMu.Lock()
	s.queue = append(s.queue, p)
	s.queueMu.Unlock()
	if !p.flush {
		select {
		case s.urgent <- struct{}{}:
		default:
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !p.done { // else a writer before us took it (p's fields are written under mu)
		s.holdFlushCommitsLocked(ctx)
		s.groupStartedLocked()
		s.commitGroupLocked(ctx, s.takeGroup(p))
	}
	return p.st, p.body, p.err
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
