package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/tlog-io/tlog/tier"
)

// leaseState is this Store's view of the controller lease. All times are
// from the Store's Clock (this process's monotonic clock, unless a test
// gives it a fake).
type leaseState struct {
	held       bool
	epoch      int64
	etag       string
	etagUnsure bool      // a renewal failed ambiguously: it may have landed
	deadline   time.Time // stop acting as controller at this instant
	gen        uint64    // bumped on every promote/renew/demote; stales watchdogs
	watchdog   *time.Timer

	// Challenger side: the lease version we are timing.
	seenETag string
	seenAt   time.Time
	seenTTL  time.Duration

	holder      int32 // agent named by the last lease read, -1 if none
	holderEpoch int64
	prevHolder  int32 // holder before this Store last took the lease
	resigned    bool  // Resign was called: the Run loop stops campaigning
}

// margin is how much earlier than its TTL the holder gives up, to absorb
// clock-rate differences and in-flight writes.
func (s *Store) margin() time.Duration { return s.cfg.LeaseTTL / 10 }

// IsController reports whether this Store holds a live lease. It turns
// false by itself when no renewal has succeeded for TTL minus a margin.
func (s *Store) IsController() bool {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	return s.liveLocked()
}

func (s *Store) liveLocked() bool {
	if !s.lease.held {
		return false
	}
	if !s.cfg.Clock.Now().Before(s.lease.deadline) {
		s.demoteLocked("lease not renewed in time")
		return false
	}
	return true
}

// controllerLease returns the held epoch and the instant it lapses.
func (s *Store) controllerLease() (epoch int64, deadline time.Time, ok bool) {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if !s.liveLocked() {
		return 0, time.Time{}, false
	}
	return s.lease.epoch, s.lease.deadline, true
}

// ControllerDeadline reports whether this Store holds a live lease, and
// the instant (on this process's monotonic clock) it lapses unless renewed.
func (s *Store) ControllerDeadline() (time.Time, bool) {
	_, deadline, ok := s.controllerLease()
	return deadline, ok
}

// ControllerEpoch is the highest controller epoch this Store knows: its own
// while controller, else the larger of the journal's and the last lease read.
func (s *Store) ControllerEpoch() int64 {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if s.liveLocked() {
		return s.lease.epoch
	}
	return max(s.State().ControllerEpoch, s.lease.holderEpoch)
}

// ControllerID is this agent's id while it is controller, else the newest
// controller it has seen, in the lease or as a journal writer (possibly no
// longer live), or -1 if none.
func (s *Store) ControllerID() int32 {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if s.liveLocked() {
		return s.cfg.AgentID
	}
	return s.lease.holder
}

// PreviousController is the agent that held the lease before this Store
// last took it (-1 if none was seen): a controller that took over from a
// silent holder knows that agent stopped renewing.
func (s *Store) PreviousController() int32 {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	return s.lease.prevHolder
}

func (s *Store) demoteLocked(reason string) {
	if !s.lease.held {
		return
	}
	s.lease.held = false
	s.lease.gen++
	if s.lease.watchdog != nil {
		s.lease.watchdog.Stop()
	}
	s.log.Warn("no longer controller", "epoch", s.lease.epoch, "reason", reason)
	s.notify(controllerEvent{controller: false, epoch: s.lease.epoch})
}

// extendLocked records a successful take or renewal sent at start, and arms
// the watchdog that demotes us if the next one is late.
func (s *Store) extendLocked(etag string, start time.Time) {
	s.lease.etag, s.lease.etagUnsure = etag, false
	// From the send time, not the reply: the write may have landed at once,
	// and challengers start timing from when they see it.
	s.lease.deadline = start.Add(s.cfg.LeaseTTL - s.margin())
	s.lease.gen++
	gen := s.lease.gen
	if s.lease.watchdog != nil {
		s.lease.watchdog.Stop()
	}
	// A real timer, so the demotion is announced (OnControllerChange) even
	// if nobody asks; it decides by the Clock, as every check does. With a
	// fake clock it fires after the fake interval in real time, finds the
	// lease still live on the fake clock, and leaves it to the next check.
	s.lease.watchdog = time.AfterFunc(s.lease.deadline.Sub(s.cfg.Clock.Now()), func() {
		s.leaseMu.Lock()
		defer s.leaseMu.Unlock()
		if s.lease.gen == gen {
			s.liveLocked()
		}
	})
}

func (s *Store) encodeLease(epoch int64, ttl time.Duration) []byte {
	b, _ := json.Marshal(leaseRecord{
		Agent:         s.cfg.AgentID,
		Epoch:         epoch,
		RenewedUnixMs: time.Now().UnixMilli(), // for people: nobody trusts the holder's wall clock
		TTLMs:         ttl.Milliseconds(),
	})
	return b
}

// Campaign tries once to take the controller lease, or renews it if held.
// It reports whether this Store is controller afterwards.
func (s *Store) Campaign(ctx context.Context) (bool, error) {
	if s.isClosed() {
		return false, ErrClosed
	}
	s.campaignMu.Lock()
	defer s.campaignMu.Unlock()
	s.leaseMu.Lock()
	s.lease.resigned = false
	held := s.liveLocked()
	s.leaseMu.Unlock()
	var err error
	if held {
		err = s.renew(ctx)
	} else {
		err = s.challenge(ctx)
	}
	return s.IsController(), err
}

func (s *Store) renew(ctx context.Context) error {
	s.leaseMu.Lock()
	epoch, etag, unsure, gen := s.lease.epoch, s.lease.etag, s.lease.etagUnsure, s.lease.gen
	s.leaseMu.Unlock()
	start := s.cfg.Clock.Now()
	if unsure {
		// The last renewal may have landed: if the lease still carries our
		// epoch, only we can have written it.
		body, info, err := s.bucket.Get(ctx, ControllerKey)
		if err != nil {
			return fmt.Errorf("metadata: renew lease: %w", err)
		}
		l, err := decodeLease(body)
		s.leaseMu.Lock()
		if err != nil || l.Agent != s.cfg.AgentID || l.Epoch != epoch {
			if s.lease.gen == gen {
				s.demoteLocked(fmt.Sprintf("lease now names agent %d epoch %d", l.Agent, l.Epoch))
			}
			s.leaseMu.Unlock()
			return nil
		}
		s.lease.etagUnsure = false
		s.lease.etag = info.ETag
		etag = info.ETag
		s.leaseMu.Unlock()
	}
	newETag, err := s.bucket.PutIfMatch(ctx, ControllerKey, s.encodeLease(epoch, s.cfg.LeaseTTL), etag)
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	if !s.lease.held || s.lease.epoch != epoch {
		return nil // demoted meanwhile; a later Campaign starts over
	}
	switch {
	case err == nil:
		s.extendLocked(newETag, start)
		s.log.Debug("renewed controller lease", "epoch", epoch)
		return nil
	case errors.Is(err, tier.ErrPreconditionFailed):
		s.demoteLocked("lease renewal lost: another agent replaced the lease")
		return nil
	default:
		s.lease.etagUnsure = true
		return fmt.Errorf("metadata: renew lease (epoch %d): %w", epoch, err)
	}
}

// challenge takes the lease if it is absent, names this agent, was
// released, or has kept the same ETag for a full TTL on our clock.
func (s *Store) challenge(ctx context.Context) error {
	body, info, err := s.bucket.Get(ctx, ControllerKey)
	now := s.cfg.Clock.Now()
	if errors.Is(err, tier.ErrNotFound) {
		return s.take(ctx, 0, "", "lease absent")
	}
	if err != nil {
		return fmt.Errorf("metadata: read lease: %w", err)
	}
	l, derr := decodeLease(body)
	ttl := time.Duration(l.TTLMs) * time.Millisecond
	if derr != nil {
		// Time a damaged lease with our own TTL rather than never take it.
		s.log.Error("corrupt controller lease", "err", derr)
		l, ttl = leaseRecord{Agent: -1}, s.cfg.LeaseTTL
	}
	s.leaseMu.Lock()
	if l.Epoch >= s.lease.holderEpoch {
		s.lease.holder, s.lease.holderEpoch = l.Agent, l.Epoch
	}
	if info.ETag != s.lease.seenETag {
		s.lease.seenETag, s.lease.seenAt, s.lease.seenTTL = info.ETag, now, ttl
	}
	waited := now.Sub(s.lease.seenAt)
	s.leaseMu.Unlock()

	var why string
	switch {
	case derr == nil && l.Agent == s.cfg.AgentID:
		why = "lease names this agent (restarted)"
	case derr == nil && l.TTLMs == 0:
		why = "lease released"
	case waited >= ttl:
		why = fmt.Sprintf("lease of agent %d unchanged for %s", l.Agent, waited.Round(time.Millisecond))
	default:
		return nil
	}
	return s.take(ctx, l.Epoch, info.ETag, why)
}

// take writes a lease naming us with an epoch above every epoch seen, with
// PutIfAbsent (etag "") or PutIfMatch.
func (s *Store) take(ctx context.Context, leaseEpoch int64, etag, why string) error {
	// Read the journal first: the new epoch must exceed every epoch in it,
	// or readers would ignore our entries.
	s.mu.Lock()
	err := s.catchUpLocked(ctx, true)
	journalEpoch := s.state.Load().ControllerEpoch
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("metadata: campaign: catch up: %w", err)
	}
	epoch := max(leaseEpoch, journalEpoch) + 1
	body := s.encodeLease(epoch, s.cfg.LeaseTTL)
	start := s.cfg.Clock.Now()
	var newETag string
	if etag == "" {
		newETag, err = s.bucket.PutIfAbsent(ctx, ControllerKey, body)
	} else {
		newETag, err = s.bucket.PutIfMatch(ctx, ControllerKey, body, etag)
	}
	if errors.Is(err, tier.ErrPreconditionFailed) {
		s.log.Debug("lost the race for the controller lease", "epoch", epoch)
		return nil
	}
	if err != nil {
		// If it landed, the next Campaign sees our agent id and retakes it.
		return fmt.Errorf("metadata: take lease (epoch %d): %w", epoch, err)
	}
	s.leaseMu.Lock()
	if s.isClosed() {
		s.leaseMu.Unlock()
		return ErrClosed // the lease lapses by its TTL
	}
	s.lease.held, s.lease.epoch = true, epoch
	s.lease.prevHolder = s.lease.holder
	s.lease.holder, s.lease.holderEpoch = s.cfg.AgentID, epoch
	s.lease.seenETag = ""
	s.extendLocked(newETag, start)
	s.notify(controllerEvent{controller: true, epoch: epoch})
	s.leaseMu.Unlock()
	s.log.Info("became controller", "epoch", epoch, "why", why)

	// Entries the previous controller wrote after our catch-up: read them
	// before the first proposal rather than failing it with ErrConflict.
	s.mu.Lock()
	s.needSync = true
	s.mu.Unlock()
	return nil
}

// Resign releases a held lease at once (ttl 0) so a successor need not
// wait a TTL. This Store stops acting as controller first, and its Run loop
// stops campaigning; call it before Close on shutdown.
func (s *Store) Resign(ctx context.Context) error {
	s.campaignMu.Lock()
	defer s.campaignMu.Unlock()
	s.leaseMu.Lock()
	s.lease.resigned = true
	held, epoch, etag := s.liveLocked(), s.lease.epoch, s.lease.etag
	if held {
		s.demoteLocked("resigned")
	}
	s.leaseMu.Unlock()
	if !held {
		return nil
	}
	_, err := s.bucket.PutIfMatch(ctx, ControllerKey, s.encodeLease(epoch, 0), etag)
	if err != nil && !errors.Is(err, tier.ErrPreconditionFailed) {
		return fmt.Errorf("metadata: resign: %w", err)
	}
	return nil
}

// leaseLoop campaigns or renews every TTL/3. The pacing is real time (a
// fake Clock does not stop renewals); what a renewal decides reads the
// Clock.
func (s *Store) leaseLoop(ctx context.Context) {
	interval := s.cfg.LeaseTTL / 3
	for {
		start := time.Now()
		s.leaseMu.Lock()
		resigned := s.lease.resigned
		s.leaseMu.Unlock()
		if !resigned {
			cctx, cancel := context.WithTimeout(ctx, s.cfg.LeaseTTL)
			_, err := s.Campaign(cctx)
			cancel()
			if err != nil && ctx.Err() == nil && !errors.Is(err, ErrClosed) {
				s.log.Warn("controller campaign failed", "err", err)
			}
		}
		t := time.NewTimer(time.Until(start.Add(interval)))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}
