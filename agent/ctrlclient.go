package agent

// Every agent heartbeats to the controller every HeartbeatInterval over the
// peer port: that is how it registers (address, zone, incarnation), how the
// controller knows it is alive, and the connection the controller pushes
// journal entries back on. Proposals from agents that are not the
// controller travel the same connection. The controller is whoever holds
// the lease, as this agent last saw it (lease reads and journal writers);
// while none answers, the agent reads the journal more often to find the
// next one.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlog-io/tlog/agent/controller"
	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/peer"
	"github.com/tlog-io/tlog/metadata"
)

type ctrlClient struct {
	a    *Agent
	mu   sync.Mutex
	conn *peer.Conn
	// dialing serialises connection attempts.
	dialing sync.Mutex
	// unreachableSince: heartbeats to a known controller have failed
	// since then; votedEpoch: the controller epoch last voted unreachable.
	unreachableSince time.Time
	unreachableEpoch int64 // the controller epoch unreachableSince counts for
	votedEpoch       int64
	answered         atomic.Int64 // unix nanos of the last answered heartbeat

	// The session: until when no controller can have fenced this agent,
	// on the agent's Clock (this process's monotonic clock unless a test
	// gives it a fake; see sessionLive). unreachableSince and answered
	// are read from the Clock too.
	sessMu     sync.Mutex
	sessUntil  time.Time
	sessNeed   uint64 // journal position to apply before acting again after a lapse
	sessLapsed atomic.Bool

	// beatMu is held through each heartbeat; stopped ends them for good
	// (a controlled shutdown, see handOff).
	beatMu  sync.Mutex
	stopped bool
}

// stopHeartbeats ends heartbeats, waiting out one in flight.
func (cc *ctrlClient) stopHeartbeats() {
	cc.beatMu.Lock()
	cc.stopped = true
	cc.beatMu.Unlock()
}

// extendSession records a heartbeat sent at sent that the controller
// answered: journal position seq. A controller fences an agent it has
// not heard from for SessionTimeout after the last heartbeat it received,
// which is no earlier than when this agent sent it; a new controller
// gives every agent a whole session after it takes over. So until sent +
// SessionTimeout (less a margin for clock rates) nobody can have fenced
// this agent. After a lapse, the agent acts again only once it has
// applied the journal up to what the controller had written when it
// answered, so it knows every leader change made meanwhile. deadline,
// if not zero, caps the session (the controller lease when this agent
// answers itself).
func (cc *ctrlClient) extendSession(sent time.Time, seq uint64, deadline time.Time) {
	a := cc.a
	until := sent.Add(a.cfg.SessionTimeout - a.cfg.SessionTimeout/10)
	if !deadline.IsZero() && deadline.Before(until) {
		until = deadline
	}
	cc.sessMu.Lock()
	if !sent.Before(cc.sessUntil) {
		// The session had lapsed (or never began) when this heartbeat
		// went out.
		cc.sessNeed = max(cc.sessNeed, seq)
	}
	if until.After(cc.sessUntil) {
		cc.sessUntil = until
	}
	cc.sessMu.Unlock()
}

// sessionLive reports whether this agent may act as the leader its
// metadata says it is: its session cannot have ended, and it has caught
// up after a lapse. A standalone agent has no controller but itself.
func (a *Agent) sessionLive() bool {
	if a.standalone() {
		return true
	}
	cc := a.client
	cc.sessMu.Lock()
	live := a.cfg.Clock.Now().Before(cc.sessUntil)
	need := cc.sessNeed
	cc.sessMu.Unlock()
	if live && need > 0 {
		if a.meta.State().Seq < need {
			return false
		}
		cc.sessMu.Lock()
		if cc.sessNeed == need {
			cc.sessNeed = 0
		}
		cc.sessMu.Unlock()
	}
	return live
}

// checkSession applies the session to the partitions: on a lapse each
// leader stops taking what its followers do not guard (see
// partition.SetSessionLapsed), and starts again when it is live. Called
// by the heartbeat loop and by produce, so a process that wakes from a
// pause acts on the lapse before anything else.
func (a *Agent) checkSession() bool {
	live := a.sessionLive()
	wasLapsed := a.client.sessLapsed.Swap(!live)
	if live && !wasLapsed {
		return true
	}
	switch {
	case live:
		a.log.Info("session with the controller live", "session_timeout", a.cfg.SessionTimeout)
	case !wasLapsed:
		a.log.Warn("session with the controller may have ended; leaders take only writes their in-sync followers guard", "session_timeout", a.cfg.SessionTimeout)
	}
	// While lapsed, every pass: partitions may have been added meanwhile.
	a.mu.RLock()
	var parts []*partition.Partition
	for _, t := range a.byID {
		parts = append(parts, t.Parts...)
	}
	a.mu.RUnlock()
	for _, p := range parts {
		p.SetSessionLapsed(!live)
	}
	return live
}

// lastAnswered is when the controller last answered a heartbeat (this
// agent's own, while it is the controller).
func (cc *ctrlClient) lastAnswered() time.Time { return time.Unix(0, cc.answered.Load()) }

func (a *Agent) heartbeat() peer.Heartbeat {
	return peer.Heartbeat{
		ID: a.cfg.ID, Addr: a.cfg.Advertise, PeerAddr: a.cfg.PeerAdvertise, AdminAddr: a.AdminAddr(),
		Zone: a.cfg.Zone, Incarnation: a.incarnation, Seq: a.meta.State().Seq,
		Listeners: a.listenersAdvertised,
	}
}

// awaitWatch warns when this agent cannot serve partitions metadata says
// it leads because their epochs predate its restart and the controller
// has not replaced them for a while (readiness says so too).
type awaitWatch struct {
	next, since time.Time
	warned      time.Time
}

func (w *awaitWatch) check(a *Agent) {
	now := time.Now() // paces a warning, decides nothing: real time
	if now.Before(w.next) {
		return
	}
	w.next = now.Add(5 * time.Second) // a scan of every partition
	n := a.partitionsAwaitingEpoch()
	switch {
	case n == 0:
		w.since = time.Time{}
	case w.since.IsZero():
		w.since = now
	case now.Sub(w.since) > 10*time.Second && now.Sub(w.warned) > 30*time.Second:
		w.warned = now
		a.log.Warn("cannot serve partitions this agent leads: still waiting for new leader epochs after its restart",
			"partitions", n, "waiting", now.Sub(w.since).Round(time.Second), "controller", a.meta.ControllerID())
	}
}

// run heartbeats until the agent stops.
func (cc *ctrlClient) run() {
	a := cc.a
	// Heartbeats are paced in real time; their send and answer times,
	// which the session is counted from, are read from the Clock.
	t := time.NewTicker(a.cfg.HeartbeatInterval)
	defer t.Stop()
	var awaiting awaitWatch
	for {
		a.checkSession()
		cc.beat()
		a.checkSession()
		awaiting.check(a)
		select {
		case <-a.ctx.Done():
			cc.closeConn()
			return
		case <-t.C:
		}
	}
}

func (cc *ctrlClient) beat() {
	cc.beatMu.Lock()
	defer cc.beatMu.Unlock()
	if cc.stopped {
		return
	}
	a := cc.a
	hb := a.heartbeat()
	sent, sentEpoch := a.cfg.Clock.Now(), a.meta.ControllerEpoch()
	if deadline, ok := a.meta.ControllerDeadline(); ok {
		cc.closeConn()
		if resp := a.ctrl.OnHeartbeat(nil, hb); resp.Code == peer.OK {
			cc.answered.Store(a.cfg.Clock.Now().UnixNano())
			// Its own controller: no one else can fence it before its
			// lease lapses, and its metadata is the journal's.
			cc.extendSession(sent, 0, deadline)
		}
		return
	}
	if a.standalone() {
		return
	}
	// Half a session: on a slow link (hundreds of ms each way, a lost
	// packet retransmitted) a heartbeat may take more than a second and
	// still count, from when it was sent.
	ctx, cancel := context.WithTimeout(a.ctx, max(a.cfg.HeartbeatInterval*4, a.cfg.SessionTimeout/2, time.Second))
	defer cancel()
	c, err := cc.connect(ctx)
	if err != nil {
		cc.unreachable(sent, sentEpoch)
		a.log.Debug("no controller to heartbeat to", "err", err)
		// Look for a new controller in the journal (its entries name it),
		// on a deadline of its own: a dial into a dropping link spent
		// the heartbeat's.
		sctx, scancel := context.WithTimeout(a.ctx, 10*time.Second)
		defer scancel()
		if err := a.meta.Sync(sctx); err != nil && a.ctx.Err() == nil {
			a.log.Debug("journal sync while looking for the controller", "err", err)
		}
		return
	}
	var resp peer.HeartbeatResp
	if err := c.Call(ctx, peer.TypeHeartbeat, &hb, &resp); err != nil {
		a.log.Debug("heartbeat failed", "controller", c.Remote, "err", err)
		cc.unreachable(sent, sentEpoch)
		// A call that only ran out of time leaves the connection be: the
		// controller fences an agent whose heartbeat connection closes
		// (DisconnectGrace, for killed processes), and closing it over a
		// slow answer would turn a slow link into a dead agent. One that
		// has carried no answer for a whole session is replaced.
		if ctx.Err() == nil || a.cfg.Clock.Now().Sub(cc.unreachableSince) >= a.cfg.SessionTimeout {
			cc.dropConn(c)
		}
		return
	}
	cc.unreachableSince = time.Time{}
	if resp.Code == peer.OK {
		cc.answered.Store(a.cfg.Clock.Now().UnixNano())
		cc.extendSession(sent, resp.Seq, time.Time{})
	}
	if resp.Code != peer.OK {
		a.log.Debug("heartbeat refused", "controller", c.Remote, "msg", resp.Msg)
		cc.dropConn(c)
		a.meta.Poke()
		return
	}
	if resp.Seq > a.meta.State().Seq {
		a.meta.Poke() // missed a push: read the journal
	}
}

// unreachable notes a failed heartbeat, sent at sent to the controller of
// sentEpoch (a call into a link that drops packets fails only at its
// deadline: the failure is counted from when it was tried); after a
// session of them it tells
// the controller, through the bucket, that this agent is alive but cannot
// reach it (see controller.Controller): a controller cut off from the majority
// then steps down instead of fencing them.
//
// The vote has its own deadline: the heartbeat's is often spent already,
// by a dial or call into a link that drops packets rather than refusing.
func (cc *ctrlClient) unreachable(sent time.Time, sentEpoch int64) {
	a := cc.a
	now := a.cfg.Clock.Now()
	ctl, epoch := a.meta.ControllerID(), a.meta.ControllerEpoch()
	if cc.unreachableSince.IsZero() || cc.unreachableEpoch != epoch {
		// Counted per controller: a new one gets a whole session from
		// the first heartbeat meant for it.
		if sentEpoch != epoch {
			sent = now
		}
		cc.unreachableSince, cc.unreachableEpoch = sent, epoch
	}
	if now.Sub(cc.unreachableSince) < a.cfg.SessionTimeout || ctl < 0 || ctl == a.cfg.ID || epoch == cc.votedEpoch {
		return
	}
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
	defer cancel()
	if err := controller.VoteUnreachable(ctx, a.cfg.Bucket, a.cfg.ID, ctl, epoch); err != nil {
		a.log.Warn("cannot reach the controller, nor tell it through the bucket", "controller", ctl, "err", err)
		return
	}
	cc.votedEpoch = epoch
	a.log.Warn("cannot reach the controller; told it through the bucket", "controller", ctl, "epoch", epoch)
}

// connect returns a connection to the current controller, dialing one if
// needed (and replacing one to a former controller).
func (cc *ctrlClient) connect(ctx context.Context) (*peer.Conn, error) {
	a := cc.a
	id := a.meta.ControllerID()
	if id < 0 || id == a.cfg.ID {
		return nil, fmt.Errorf("%w: no live controller known", metadata.ErrNotController)
	}
	cc.mu.Lock()
	c := cc.conn
	cc.mu.Unlock()
	if c != nil && c.Remote == id && c.Err() == nil {
		return c, nil
	}
	cc.dialing.Lock()
	defer cc.dialing.Unlock()
	cc.mu.Lock()
	if cc.conn != nil && cc.conn.Remote == id && cc.conn.Err() == nil {
		c = cc.conn
		cc.mu.Unlock()
		return c, nil
	}
	old := cc.conn
	cc.conn = nil
	cc.mu.Unlock()
	if old != nil {
		old.Close()
	}
	c, err := a.dialPeer(ctx, id)
	if err != nil {
		return nil, err
	}
	cc.mu.Lock()
	cc.conn = c
	cc.mu.Unlock()
	return c, nil
}

func (cc *ctrlClient) dropConn(c *peer.Conn) {
	cc.mu.Lock()
	if cc.conn == c {
		cc.conn = nil
	}
	cc.mu.Unlock()
	c.Close()
}

func (cc *ctrlClient) closeConn() {
	cc.mu.Lock()
	c := cc.conn
	cc.conn = nil
	cc.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

// propose sends commands to the controller and returns the journal
// sequence they were written at.
func (cc *ctrlClient) propose(ctx context.Context, cmds []metadata.Command) (uint64, error) {
	body, err := metadata.EncodeCommands(cmds)
	if err != nil {
		return 0, err
	}
	c, err := cc.connect(ctx)
	if err != nil {
		// No controller reachable (it died with its lease still running,
		// or is cut off): the client retries, as after Kafka's NOT_CONTROLLER.
		return 0, fmt.Errorf("%w: %w", metadata.ErrNotController, err)
	}
	var resp peer.ProposeResp
	if err := c.Call(ctx, peer.TypePropose, &peer.Propose{Cmds: body}, &resp); err != nil {
		if ctx.Err() != nil {
			// The request gave up; the connection is fine.
			return 0, fmt.Errorf("propose to agent %d: %w", c.Remote, ctx.Err())
		}
		cc.dropConn(c)
		return 0, fmt.Errorf("%w: propose to agent %d: %v", metadata.ErrNotController, c.Remote, err)
	}
	if resp.Code != peer.OK {
		return 0, metadata.ErrorFromKind(resp.Kind, resp.Msg)
	}
	// The entry's bytes ride along: apply them now if they are next.
	if err := cc.a.meta.Deliver(ctx, resp.Seq, resp.Body); err != nil {
		cc.a.log.Debug("apply proposed entry", "seq", resp.Seq, "err", err)
	}
	return resp.Seq, nil
}
