package controller

// The controller is whichever agent holds the lease. Besides journaling
// what other agents propose, it keeps the cluster's shape, every tick:
//
//   - registration: an agent's heartbeat with a new address or
//     incarnation is journaled; a new incarnation is a restart, so every
//     partition the agent led gets a new leader epoch (another in-sync
//     replica if one is live), since what the old process had in flight is
//     unknown;
//   - liveness: an agent not heard from for SessionTimeout, or whose
//     heartbeat connection dropped and stayed down for DisconnectGrace, is
//     fenced; a fenced agent heard again is unfenced;
//   - elections: a partition whose leader is fenced (or gone) gets the
//     first live in-sync replica in replica order, with the epoch bumped;
//     none live leaves it offline (leader -1) until one returns, since a
//     replica outside the ISR may lack acknowledged records; fenced
//     followers leave the ISR;
//   - reassignments: once every agent of a target is in sync, the move
//     ends (SetLeader with the new replica set);
//   - balance, every BalanceInterval: replicas leave draining agents, the
//     replica and preferred-leader counts are evened out across live
//     agents (zones spread), and each partition is led by its preferred
//     replica when that one is in sync.
//
// Heartbeats are not journaled; membership changes are.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/tlog-io/tlog/agent/peer"
	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/metadata/clock"
	"github.com/tlog-io/tlog/tier"
)

// Config is what a Controller needs from the agent it runs in.
type Config struct {
	ID int32
	// SessionTimeout, DisconnectGrace, BalanceInterval, NoAutoBalance and
	// LeaseTTL are the agent's (agent.Config documents them).
	SessionTimeout  time.Duration
	DisconnectGrace time.Duration
	BalanceInterval time.Duration
	NoAutoBalance   bool
	// ReplaceFencedAfter: replicas on an agent fenced this long move to
	// live agents at the next balancing round (0: never).
	ReplaceFencedAfter time.Duration
	LeaseTTL           time.Duration
	// Bucket holds the unreachable-controller votes.
	Bucket tier.Bucket
	Logger *slog.Logger
	// Clock times liveness: when each agent was last heard, when its
	// heartbeat connection dropped, and since when quorum is lost (nil:
	// clock.Real). The tick and the balancing rounds are paced in real
	// time.
	Clock clock.Clock
	// Propose journals commands (this agent holds the lease when the
	// controller proposes).
	Propose func(ctx context.Context, cmds ...metadata.Command) (*metadata.State, error)
	// Journaled runs after commands another agent proposed are journaled
	// here, so the agent applies them to its partitions.
	Journaled func()
}

// Controller runs the controller's duties while its agent holds the lease.
type Controller struct {
	cfg Config
	log *slog.Logger
	ctx context.Context
	// store is the agent's metadata store (the lease, the journal, the
	// state the controller plans from), set once by SetStore: the store's
	// hooks are this controller's, so it exists first. ready closes then.
	store *metadata.Store
	ready chan struct{}
	// wg owns every goroutine the controller starts (push feeds, watches,
	// the campaign after stepping down); Wait waits for them.
	wg sync.WaitGroup

	mu      sync.Mutex
	active  bool
	epoch   int64
	live    map[int32]*liveness
	pending map[int32]peer.Heartbeat // registrations to journal
	kick    chan struct{}
	// pushTo are the heartbeat connections journal entries are pushed on.
	pushTo map[int32]*peerPush
	// balanceAt: the next balancing round; moved up when agents join.
	balanceAt time.Time
	// quorumLost: since when this controller hears fewer than half the
	// agents (zero while it hears enough).
	quorumLost time.Time
}

type liveness struct {
	last     time.Time  // last heartbeat
	conn     *peer.Conn // its heartbeat connection
	lostConn time.Time  // when conn dropped (zero while up)
}

// peerPush feeds one agent's pushes from a queue, so the journal writer
// never waits for a slow peer.
type peerPush struct {
	conn *peer.Conn
	ch   chan peer.Push
}

// New makes a controller that acts until ctx ends.
func New(ctx context.Context, cfg Config) *Controller {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Clock = clock.Or(cfg.Clock)
	return &Controller{
		cfg:     cfg,
		ready:   make(chan struct{}),
		log:     cfg.Logger,
		ctx:     ctx,
		live:    map[int32]*liveness{},
		pending: map[int32]peer.Heartbeat{},
		kick:    make(chan struct{}, 1),
		pushTo:  map[int32]*peerPush{},
	}
}

// SetStore gives the controller the metadata store it serves; call it once,
// after metadata.Open.
func (ct *Controller) SetStore(s *metadata.Store) {
	ct.store = s
	close(ct.ready)
}

// waitReady holds a hook that runs before SetStore (the store's goroutines
// start inside metadata.Open) until the store is known.
func (ct *Controller) waitReady() bool {
	select {
	case <-ct.ready:
		return true
	case <-ct.ctx.Done():
		return false
	}
}

func (ct *Controller) poke() {
	select {
	case ct.kick <- struct{}{}:
	default:
	}
}

// OnChange runs when this agent gains or loses the lease.
func (ct *Controller) OnChange(isController bool, epoch int64) {
	if !ct.waitReady() {
		return
	}
	ct.mu.Lock()
	defer ct.mu.Unlock()
	ct.active, ct.epoch = isController, epoch
	if !isController {
		for id, pp := range ct.pushTo {
			close(pp.ch)
			delete(ct.pushTo, id)
		}
		return
	}
	// Every registered agent gets one session to show up; the agent whose
	// lease we took has already been silent for a lease TTL.
	now := ct.cfg.Clock.Now()
	prev := ct.store.PreviousController()
	ct.live = map[int32]*liveness{}
	for id := range ct.store.State().Agents {
		l := &liveness{last: now}
		if id == prev && id != ct.cfg.ID {
			l.last = time.Time{}
		}
		ct.live[id] = l
	}
	ct.balanceAt = time.Now().Add(ct.cfg.BalanceInterval) // pacing: real time (see tick)
	ct.quorumLost = time.Time{}
	ct.poke()
}

// OnHeartbeat records a heartbeat (c is nil for this agent's own).
func (ct *Controller) OnHeartbeat(c *peer.Conn, hb peer.Heartbeat) peer.HeartbeatResp {
	if !ct.waitReady() {
		return peer.HeartbeatResp{Code: peer.Retry, Msg: "agent stopping"}
	}
	if !ct.store.IsController() {
		return peer.HeartbeatResp{Code: peer.Retry, Msg: "not the controller"}
	}
	if c != nil && c.Remote != hb.ID {
		return peer.HeartbeatResp{Code: peer.Invalid, Msg: fmt.Sprintf("heartbeat for agent %d on a connection from %d", hb.ID, c.Remote)}
	}
	st := ct.store.State()
	now := ct.cfg.Clock.Now()
	ct.mu.Lock()
	l := ct.live[hb.ID]
	if l == nil {
		l = &liveness{}
		ct.live[hb.ID] = l
	}
	l.last = now
	if c != nil && l.conn != c {
		l.conn, l.lostConn = c, time.Time{}
		ct.watchLocked(hb.ID, c)
	}
	info, ok := st.Agents[hb.ID]
	if !ok || info.Addr != hb.Addr || info.PeerAddr != hb.PeerAddr || info.AdminAddr != hb.AdminAddr ||
		info.Zone != hb.Zone || info.Incarnation != hb.Incarnation || info.Fenced ||
		metadata.EncodeListeners(info.Listeners) != hb.Listeners {
		if _, queued := ct.pending[hb.ID]; !queued {
			ct.pending[hb.ID] = hb
			ct.poke()
		}
	}
	ct.mu.Unlock()
	return peer.HeartbeatResp{Code: peer.OK, ControllerEpoch: ct.store.ControllerEpoch(), Seq: st.Seq}
}

// watchLocked starts pushing journal entries to the agent on c, and
// notes when c drops.
func (ct *Controller) watchLocked(id int32, c *peer.Conn) {
	if old := ct.pushTo[id]; old != nil {
		close(old.ch)
	}
	pp := &peerPush{conn: c, ch: make(chan peer.Push, 1024)}
	ct.pushTo[id] = pp
	ct.wg.Add(2)
	go func() {
		defer ct.wg.Done()
		for m := range pp.ch {
			if err := c.Send(peer.TypePush, &m); err != nil {
				break
			}
		}
	}()
	go func() {
		defer ct.wg.Done()
		<-c.Done()
		ct.mu.Lock()
		if l := ct.live[id]; l != nil && l.conn == c {
			l.conn, l.lostConn = nil, ct.cfg.Clock.Now()
		}
		if cur := ct.pushTo[id]; cur == pp {
			close(pp.ch)
			delete(ct.pushTo, id)
		}
		ct.mu.Unlock()
		ct.poke()
	}()
}

// OnAppend is the metadata Store's hook: push every new entry to every
// agent heartbeating here. It must not block.
func (ct *Controller) OnAppend(seq uint64, body []byte) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	for _, pp := range ct.pushTo {
		select {
		case pp.ch <- peer.Push{Seq: seq, Body: body}:
		default: // the agent catches up from the journal
		}
	}
}

// OnPropose journals commands another agent sent and answers with the
// entry, on a goroutine of its own (the peer connection's reader must not
// wait for the journal).
func (ct *Controller) OnPropose(c *peer.Conn, f peer.Frame, m peer.Propose) {
	ct.wg.Add(1)
	go func() {
		defer ct.wg.Done()
		ct.propose(c, f, m)
	}()
}

func (ct *Controller) propose(c *peer.Conn, f peer.Frame, m peer.Propose) {
	if !ct.waitReady() {
		c.Reply(f, &peer.ProposeResp{Code: peer.Retry, Msg: "agent stopping"})
		return
	}
	resp := peer.ProposeResp{Code: peer.OK}
	cmds, err := metadata.DecodeCommands(m.Cmds)
	if err == nil {
		ctx, cancel := context.WithTimeout(ct.ctx, 30*time.Second)
		var st *metadata.State
		var body []byte
		st, body, err = ct.store.ProposeEntry(ctx, cmds...)
		if errors.Is(err, metadata.ErrConflict) && ct.store.IsController() {
			st, body, err = ct.store.ProposeEntry(ctx, cmds...)
		}
		cancel()
		if err == nil {
			resp.Seq, resp.Body = st.Seq, body
			ct.cfg.Journaled()
		}
	}
	if err != nil {
		resp = peer.ProposeResp{Code: peer.Failed, Kind: metadata.ErrorKind(err), Msg: err.Error()}
	}
	c.Reply(f, &resp)
}

// Run is the controller's loop, until the context New was given ends; it
// idles while this agent is not the controller.
func (ct *Controller) Run() {
	if !ct.waitReady() {
		return
	}
	// The tick is paced in real time; what it decides reads the Clock.
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ct.ctx.Done():
			return
		case <-t.C:
		case <-ct.kick:
		}
		if !ct.store.IsController() {
			continue
		}
		if err := ct.tick(); err != nil && ct.ctx.Err() == nil {
			ct.log.Warn("controller", "err", err)
		}
	}
}

// Wait waits for the goroutines the controller started; call it once the
// context New was given has ended and the peer connections are closed.
func (ct *Controller) Wait() { ct.wg.Wait() }

// maxCmdsPerEntry keeps journal entries small enough to write and push
// quickly; the rest waits for the next tick.
const maxCmdsPerEntry = 1000

func (ct *Controller) tick() error {
	st := ct.store.State()
	now := ct.cfg.Clock.Now()
	var cmds []metadata.Command
	restarted := map[int32]bool{}

	ct.mu.Lock()
	regs := make([]peer.Heartbeat, 0, len(ct.pending))
	for _, hb := range ct.pending {
		regs = append(regs, hb)
	}
	ct.mu.Unlock()
	sort.Slice(regs, func(i, j int) bool { return regs[i].ID < regs[j].ID })
	for _, hb := range regs {
		info, known := st.Agents[hb.ID]
		next := metadata.AgentInfo{
			ID: hb.ID, Addr: hb.Addr, PeerAddr: hb.PeerAddr, AdminAddr: hb.AdminAddr, Zone: hb.Zone,
			Registered: info.Registered, Incarnation: hb.Incarnation, Draining: info.Draining,
			Listeners: metadata.ParseListeners(hb.Listeners),
		}
		if !known {
			// Wall time for people, not a decision: not the Clock.
			next.Registered = time.Now().UTC()
		}
		if known && info.Incarnation != hb.Incarnation {
			restarted[hb.ID] = true
		}
		if !reflect.DeepEqual(next, info) {
			cmds = append(cmds, metadata.RegisterAgent{Agent: next})
		}
	}

	ct.mu.Lock()
	var fence []metadata.Command
	var whys []string
	heard := 0
	for id, info := range st.Agents {
		if id == ct.cfg.ID || info.Fenced {
			continue
		}
		if _, reg := ct.pending[id]; reg {
			heard++
			continue // heard just now
		}
		l := ct.live[id]
		if l == nil {
			// New to this controller: a whole session to be heard.
			ct.live[id] = &liveness{last: now}
			heard++
			continue
		}
		silent := now.Sub(l.last) > ct.cfg.SessionTimeout
		// A dropped connection (a killed process) is noticed sooner than
		// silence; a heartbeat on a new connection clears it.
		dropped := !l.lostConn.IsZero() && now.Sub(l.lostConn) > ct.cfg.DisconnectGrace
		if silent || dropped {
			why := fmt.Sprintf("no heartbeat for %v", now.Sub(l.last).Round(time.Millisecond))
			if l.last.IsZero() {
				why = "it held the controller lease and let it lapse"
			} else if dropped && !silent {
				why = fmt.Sprintf("heartbeat connection down for %v", now.Sub(l.lostConn).Round(time.Millisecond))
			}
			fence = append(fence, metadata.SetAgentFenced{ID: id, Fenced: true, At: now.UTC()})
			whys = append(whys, why)
		} else if now.Sub(l.last) <= ct.cfg.SessionTimeout/2 {
			// Heard lately. One late but not yet silent is not counted:
			// when a cut isolates this controller, the others' sessions
			// lapse one after another, and fencing the first while the
			// next is merely late would move leaders onto the cut side.
			heard++
		}
	}
	// A controller that hears fewer than half of the other agents may be
	// the one cut off: fencing them would move every leader onto itself,
	// away from a majority that could still serve. Agents that are alive
	// but cannot reach it say so in the bucket (VoteUnreachable): the
	// first such vote makes it give the lease up for the majority's side
	// to take. It holds off fencing for two sessions; if no vote came by
	// then, the silent agents are gone and it fences them. Two agents
	// cannot tell, so the rule needs three.
	decide := false
	if n := len(st.Agents); n >= 3 && (heard+1)*2 <= n && len(fence) > 0 {
		if ct.quorumLost.IsZero() {
			ct.quorumLost = now
			ct.log.Warn("controller hears fewer than half the agents; fencing nobody until it knows whether they are down", "heard", heard, "agents", n)
		}
		// Votes are read every round: the first from an agent that is
		// alive but cannot reach this controller decides it.
		decide = true
		if now.Sub(ct.quorumLost) < 2*ct.cfg.SessionTimeout {
			fence = nil
		}
	} else {
		ct.quorumLost = time.Time{}
	}
	// Balancing is a periodic duty, not a liveness decision: its rounds
	// are paced in real time, so a fake Clock does not stop them.
	realNow := time.Now()
	balance := realNow.After(ct.balanceAt)
	if balance {
		ct.balanceAt = realNow.Add(ct.cfg.BalanceInterval)
	}
	ct.mu.Unlock()
	if decide {
		votes, err := ct.unreachableVotes()
		switch {
		case err != nil:
			return fmt.Errorf("read unreachable-controller votes: %w", err)
		case votes > 0:
			ct.log.Warn("agents alive but unable to reach this controller", "votes", votes)
			ct.stepDown()
			return nil
		}
		if len(fence) > 0 {
			ct.log.Warn("no agent reports this controller unreachable: the silent ones are down")
		}
	}
	for i, f := range fence {
		ct.log.Warn("fencing agent", "id", f.(metadata.SetAgentFenced).ID, "why", whys[i])
	}
	cmds = append(cmds, fence...)

	proj := st
	if len(cmds) > 0 {
		var err error
		if proj, err = st.Next(cmds...); err != nil {
			ct.dropPending(regs)
			return fmt.Errorf("membership changes refused: %w", err)
		}
	}
	cmds = append(cmds, Elections(proj, restarted)...)
	if proj2, err := st.Next(cmds...); err == nil {
		cmds = append(cmds, Reassignments(proj2)...)
		if balance {
			if proj3, err := st.Next(cmds...); err == nil {
				if ct.cfg.NoAutoBalance {
					cmds = append(cmds, Evacuate(proj3, ct.goneFor(now))...)
				} else {
					cmds = append(cmds, BalanceEvacuating(proj3, ct.goneFor(now))...)
				}
			}
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	if len(cmds) > maxCmdsPerEntry {
		cmds = cmds[:maxCmdsPerEntry]
		ct.poke()
	}
	ctx, cancel := context.WithTimeout(ct.ctx, 10*time.Second)
	defer cancel()
	if _, err := ct.cfg.Propose(ctx, cmds...); err != nil {
		if len(regs) > 0 && len(cmds) > 1 {
			// One bad command must not hold back registrations: try
			// them alone next tick.
			ct.poke()
		}
		return fmt.Errorf("journal %d controller commands: %w", len(cmds), err)
	}
	ct.dropPending(regs)
	if len(regs) > 0 {
		// New agents: rebalance soon rather than at the next round.
		ct.mu.Lock()
		if soon := time.Now().Add(ct.cfg.BalanceInterval / 5); soon.Before(ct.balanceAt) { // pacing: real time
			ct.balanceAt = soon
		}
		ct.mu.Unlock()
	}
	return nil
}

// goneFor says which fenced agents have been fenced for
// ReplaceFencedAfter by now: their replicas move to live agents, so a
// partition does not stay short of replicas (or unwritable at acks=all)
// for as long as an agent stays away. 0 keeps replicas where they are.
func (ct *Controller) goneFor(now time.Time) func(metadata.AgentInfo) bool {
	after := ct.cfg.ReplaceFencedAfter
	if after <= 0 {
		return nil
	}
	return func(ag metadata.AgentInfo) bool {
		return ag.Fenced && !ag.FencedAt.IsZero() && now.Sub(ag.FencedAt) >= after
	}
}

// stepDown gives up the lease (so a successor need not wait a TTL) and
// campaigns again only after two TTLs: if the other agents are alive and
// it was the one cut off, one of them takes it first; if they are dead,
// it takes it back and fences them.
func (ct *Controller) stepDown() {
	ct.log.Warn("controller cannot hear a majority of agents; resigning the lease")
	ctx, cancel := context.WithTimeout(ct.ctx, 2*time.Second)
	if err := ct.store.Resign(ctx); err != nil {
		ct.log.Warn("resign", "err", err)
	}
	cancel()
	ct.mu.Lock()
	ct.quorumLost = time.Time{}
	ct.mu.Unlock()
	ct.wg.Add(1)
	go func() {
		defer ct.wg.Done()
		// A real timer: it only delays the next campaign, and the lease
		// it campaigns for is timed by the store's Clock.
		select {
		case <-ct.ctx.Done():
			return
		case <-time.After(2 * ct.cfg.LeaseTTL):
		}
		if _, err := ct.store.Campaign(ct.ctx); err != nil {
			ct.log.Debug("campaign after stepping down", "err", err)
		}
	}()
}

// unreachablePrefix holds one vote object per agent that could not reach
// the controller of some epoch.
const unreachablePrefix = "meta/unreachable/"

type unreachableVote struct {
	Agent      int32 `json:"agent"`
	Controller int32 `json:"controller"`
	Epoch      int64 `json:"epoch"`
}

// VoteUnreachable tells the controller of epoch, through the bucket, that
// agent is alive but cannot reach it.
func VoteUnreachable(ctx context.Context, b tier.Bucket, agent, controller int32, epoch int64) error {
	body, err := json.Marshal(unreachableVote{Agent: agent, Controller: controller, Epoch: epoch})
	if err != nil {
		return err
	}
	_, err = b.Put(ctx, fmt.Sprintf("%s%d", unreachablePrefix, agent), body)
	return err
}

// unreachableVotes counts agents that say they cannot reach this
// controller at its current epoch.
func (ct *Controller) unreachableVotes() (int, error) {
	ctx, cancel := context.WithTimeout(ct.ctx, 5*time.Second)
	defer cancel()
	objs, err := ct.cfg.Bucket.List(ctx, unreachablePrefix)
	if err != nil {
		return 0, err
	}
	epoch := ct.store.ControllerEpoch()
	n := 0
	for _, o := range objs {
		body, _, err := ct.cfg.Bucket.Get(ctx, o.Key)
		if err != nil {
			continue
		}
		var v unreachableVote
		if json.Unmarshal(body, &v) == nil && v.Controller == ct.cfg.ID && v.Epoch == epoch && v.Agent != ct.cfg.ID {
			n++
		}
	}
	return n, nil
}

func (ct *Controller) dropPending(regs []peer.Heartbeat) {
	ct.mu.Lock()
	for _, hb := range regs {
		if cur, ok := ct.pending[hb.ID]; ok && cur == hb {
			delete(ct.pending, hb.ID)
		}
	}
	ct.mu.Unlock()
}
