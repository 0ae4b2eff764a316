package metadata

// Group commit and garbage collection's settled journal: how proposals
// become journal entries (see Store.ProposeEntry) and how the controller
// decides what no partition references (Store.Doom).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/tlog-io/tlog/tier"
)

// proposal is one caller's commands waiting for a group commit.
type proposal struct {
	cmds  []Command
	flush bool // only flush commits: may wait for company (FlushCommitInterval)
	done  bool
	st    *State
	body  []byte
	err   error
}

// isFlushCommit reports whether cmds are flush commits only.
func isFlushCommit(cmds []Command) bool {
	for _, c := range cmds {
		if _, ok := c.(CommitSegments); !ok {
			return false
		}
	}
	return true
}

// holdFlushCommitsLocked waits, holding mu so that proposals arriving
// meanwhile join the next entry, until FlushCommitInterval has passed since
// the last group began, while every proposal waiting is a flush commit.
// A flush commit can wait: its batches stay in the WAL and are served from
// there until it lands. Anything else (an ISR change, an election, a new
// topic) ends the wait at once.
func (s *Store) holdFlushCommitsLocked(ctx context.Context) {
	wait := s.cfg.FlushCommitInterval - time.Since(s.lastWrite)
	if wait <= 0 || s.cfg.NoGroupCommit {
		return
	}
	s.queueMu.Lock()
	flushOnly := true
	for _, q := range s.queue {
		flushOnly = flushOnly && q.flush
	}
	s.queueMu.Unlock()
	if !flushOnly {
		return
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.urgent:
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
}

// groupStartedLocked notes when a group's write begins, for the next hold,
// and clears the signal of proposals it is about to take (one left out
// of the group is still seen in the queue).
func (s *Store) groupStartedLocked() {
	s.lastWrite = time.Now()
	select {
	case <-s.urgent:
	default:
	}
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
	// One caller's context ending must not fail the others' catch-up,
	// checks or write: they are bounded by the lease and the Store's life.
	if len(group) > 1 {
		ctx = s.ctx
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
