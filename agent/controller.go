package agent

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
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/google/uuid"

	"github.com/tlog-io/tlog/agent/peer"
	"github.com/tlog-io/tlog/metadata"
)

type controller struct {
	a *Agent

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

func newController(a *Agent) *controller {
	return &controller{
		a:       a,
		live:    map[int32]*liveness{},
		pending: map[int32]peer.Heartbeat{},
		kick:    make(chan struct{}, 1),
		pushTo:  map[int32]*peerPush{},
	}
}

func (ct *controller) poke() {
	select {
	case ct.kick <- struct{}{}:
	default:
	}
}

// onChange runs when this agent gains or loses the lease.
func (ct *controller) onChange(isController bool, epoch int64) {
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
	now := time.Now()
	prev := ct.a.meta.PreviousController()
	ct.live = map[int32]*liveness{}
	for id := range ct.a.meta.State().Agents {
		l := &liveness{last: now}
		if id == prev && id != ct.a.cfg.ID {
			l.last = time.Time{}
		}
		ct.live[id] = l
	}
	ct.balanceAt = now.Add(ct.a.cfg.BalanceInterval)
	ct.quorumLost = time.Time{}
	ct.poke()
}

// onHeartbeat records a heartbeat (c is nil for this agent's own).
func (ct *controller) onHeartbeat(c *peer.Conn, hb peer.Heartbeat) peer.HeartbeatResp {
	a := ct.a
	if !a.meta.IsController() {
		return peer.HeartbeatResp{Code: peer.Retry, Msg: "not the controller"}
	}
	if c != nil && c.Remote != hb.ID {
		return peer.HeartbeatResp{Code: peer.Invalid, Msg: fmt.Sprintf("heartbeat for agent %d on a connection from %d", hb.ID, c.Remote)}
	}
	st := a.meta.State()
	now := time.Now()
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
		info.Zone != hb.Zone || info.Incarnation != hb.Incarnation || info.Fenced {
		if _, queued := ct.pending[hb.ID]; !queued {
			ct.pending[hb.ID] = hb
			ct.poke()
		}
	}
	ct.mu.Unlock()
	return peer.HeartbeatResp{Code: peer.OK, ControllerEpoch: a.meta.ControllerEpoch(), Seq: st.Seq}
}

// watchLocked starts pushing journal entries to the agent on c, and
// notes when c drops.
func (ct *controller) watchLocked(id int32, c *peer.Conn) {
	if old := ct.pushTo[id]; old != nil {
		close(old.ch)
	}
	pp := &peerPush{conn: c, ch: make(chan peer.Push, 1024)}
	ct.pushTo[id] = pp
	go func() {
		for m := range pp.ch {
			if err := c.Send(peer.TypePush, &m); err != nil {
				break
			}
		}
	}()
	go func() {
		<-c.Done()
		ct.mu.Lock()
		if l := ct.live[id]; l != nil && l.conn == c {
			l.conn, l.lostConn = nil, time.Now()
		}
		if cur := ct.pushTo[id]; cur == pp {
			close(pp.ch)
			delete(ct.pushTo, id)
		}
		ct.mu.Unlock()
		ct.poke()
	}()
}

// onAppend is the metadata Store's hook: push every new entry to every
// agent heartbeating here. It must not block.
func (ct *controller) onAppend(seq uint64, body []byte) {
	ct.mu.Lock()
	defer ct.mu.Unlock()
	for _, pp := range ct.pushTo {
		select {
		case pp.ch <- peer.Push{Seq: seq, Body: body}:
		default: // the agent catches up from the journal
		}
	}
}

// onPropose journals commands another agent sent and answers with the
// entry.
func (ct *controller) onPropose(c *peer.Conn, f peer.Frame, m peer.Propose) {
	a := ct.a
	resp := peer.ProposeResp{Code: peer.OK}
	cmds, err := metadata.DecodeCommands(m.Cmds)
	if err == nil {
		ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
		var st *metadata.State
		var body []byte
		st, body, err = a.meta.ProposeEntry(ctx, cmds...)
		if errors.Is(err, metadata.ErrConflict) && a.meta.IsController() {
			st, body, err = a.meta.ProposeEntry(ctx, cmds...)
		}
		cancel()
		if err == nil {
			resp.Seq, resp.Body = st.Seq, body
			a.syncTopics()
		}
	}
	if err != nil {
		resp = peer.ProposeResp{Code: peer.Failed, Kind: metadata.ErrorKind(err), Msg: err.Error()}
	}
	c.Reply(f, &resp)
}

// run is the controller's loop; it idles while this agent is not the
// controller.
func (ct *controller) run() {
	ct.a.controllerLoop(100*time.Millisecond, ct.kick, "controller", func(context.Context) error { return ct.tick() })
}

// maxCmdsPerEntry keeps journal entries small enough to write and push
// quickly; the rest waits for the next tick.
const maxCmdsPerEntry = 1000

func (ct *controller) tick() error {
	a := ct.a
	st := a.meta.State()
	now := time.Now()
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
		}
		if !known {
			next.Registered = now.UTC()
		}
		if known && info.Incarnation != hb.Incarnation {
			restarted[hb.ID] = true
		}
		if next != info {
			cmds = append(cmds, metadata.RegisterAgent{Agent: next})
		}
	}

	ct.mu.Lock()
	var fence []metadata.Command
	var whys []string
	heard := 0
	for id, info := range st.Agents {
		if id == a.cfg.ID || info.Fenced {
			continue
		}
		if _, reg := ct.pending[id]; reg {
			heard++
			continue // heard just now
		}
		l := ct.live[id]
		if l == nil {
			ct.live[id] = &liveness{last: now}
			continue
		}
		silent := now.Sub(l.last) > a.cfg.SessionTimeout
		// A dropped connection (a killed process) is noticed sooner than
		// silence; a heartbeat on a new connection clears it.
		dropped := !l.lostConn.IsZero() && now.Sub(l.lostConn) > a.cfg.DisconnectGrace
		if silent || dropped {
			why := fmt.Sprintf("no heartbeat for %v", now.Sub(l.last).Round(time.Millisecond))
			if l.last.IsZero() {
				why = "it held the controller lease and let it lapse"
			} else if dropped && !silent {
				why = fmt.Sprintf("heartbeat connection down for %v", now.Sub(l.lostConn).Round(time.Millisecond))
			}
			fence = append(fence, metadata.SetAgentFenced{ID: id, Fenced: true})
			whys = append(whys, why)
		} else {
			heard++
		}
	}
	// A controller that hears fewer than half of the other agents may be
	// the one cut off: fencing them would move every leader onto itself,
	// away from a majority that could still serve. It holds off for two
	// sessions, in which agents that are alive but cannot reach it say so
	// in the bucket (voteUnreachable); then, if any did, it gives the lease
	// up for the majority's side to take; if none did, they are gone and
	// it fences them. Two agents cannot tell, so the rule needs three.
	decide := false
	if n := len(st.Agents); n >= 3 && (heard+1)*2 <= n && len(fence) > 0 {
		if ct.quorumLost.IsZero() {
			ct.quorumLost = now
			a.log.Warn("controller hears fewer than half the agents; fencing nobody until it knows whether they are down", "heard", heard, "agents", n)
		}
		if now.Sub(ct.quorumLost) < 2*a.cfg.SessionTimeout {
			fence = nil
		} else {
			decide = true
		}
	} else {
		ct.quorumLost = time.Time{}
	}
	balance := now.After(ct.balanceAt)
	if balance {
		ct.balanceAt = now.Add(a.cfg.BalanceInterval)
	}
	ct.mu.Unlock()
	if decide {
		votes, err := ct.unreachableVotes()
		switch {
		case err != nil:
			return fmt.Errorf("read unreachable-controller votes: %w", err)
		case votes > 0:
			a.log.Warn("agents alive but unable to reach this controller", "votes", votes)
			ct.stepDown()
			return nil
		}
		a.log.Warn("no agent reports this controller unreachable: the silent ones are down")
	}
	for i, f := range fence {
		a.log.Warn("fencing agent", "id", f.(metadata.SetAgentFenced).ID, "why", whys[i])
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
	cmds = append(cmds, electionCmds(proj, restarted)...)
	if proj2, err := st.Next(cmds...); err == nil {
		cmds = append(cmds, reassignmentCmds(proj2)...)
		if balance && !a.cfg.NoAutoBalance {
			if proj3, err := st.Next(cmds...); err == nil {
				cmds = append(cmds, balanceCmds(proj3)...)
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
	ctx, cancel := context.WithTimeout(a.ctx, 10*time.Second)
	defer cancel()
	if _, err := a.propose(ctx, cmds...); err != nil {
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
		if soon := time.Now().Add(a.cfg.BalanceInterval / 5); soon.Before(ct.balanceAt) {
			ct.balanceAt = soon
		}
		ct.mu.Unlock()
	}
	return nil
}

// stepDown gives up the lease (so a successor need not wait a TTL) and
// campaigns again only after two TTLs: if the other agents are alive and
// it was the one cut off, one of them takes it first; if they are dead,
// it takes it back and fences them.
func (ct *controller) stepDown() {
	a := ct.a
	a.log.Warn("controller cannot hear a majority of agents; resigning the lease")
	ctx, cancel := context.WithTimeout(a.ctx, 2*time.Second)
	if err := a.meta.Resign(ctx); err != nil {
		a.log.Warn("resign", "err", err)
	}
	cancel()
	ct.mu.Lock()
	ct.quorumLost = time.Time{}
	ct.mu.Unlock()
	time.AfterFunc(2*a.cfg.LeaseTTL, func() {
		if a.ctx.Err() == nil {
			if _, err := a.meta.Campaign(a.ctx); err != nil {
				a.log.Debug("campaign after stepping down", "err", err)
			}
		}
	})
}

// unreachablePrefix holds one vote object per agent that could not reach
// the controller of some epoch.
const unreachablePrefix = "meta/unreachable/"

type unreachableVote struct {
	Agent      int32 `json:"agent"`
	Controller int32 `json:"controller"`
	Epoch      int64 `json:"epoch"`
}

// unreachableVotes counts agents that say they cannot reach this
// controller at its current epoch.
func (ct *controller) unreachableVotes() (int, error) {
	a := ct.a
	ctx, cancel := context.WithTimeout(a.ctx, 5*time.Second)
	defer cancel()
	objs, err := a.cfg.Bucket.List(ctx, unreachablePrefix)
	if err != nil {
		return 0, err
	}
	epoch := a.meta.ControllerEpoch()
	n := 0
	for _, o := range objs {
		body, _, err := a.cfg.Bucket.Get(ctx, o.Key)
		if err != nil {
			continue
		}
		var v unreachableVote
		if json.Unmarshal(body, &v) == nil && v.Controller == a.cfg.ID && v.Epoch == epoch && v.Agent != a.cfg.ID {
			n++
		}
	}
	return n, nil
}

func (ct *controller) dropPending(regs []peer.Heartbeat) {
	ct.mu.Lock()
	for _, hb := range regs {
		if cur, ok := ct.pending[hb.ID]; ok && cur == hb {
			delete(ct.pending, hb.ID)
		}
	}
	ct.mu.Unlock()
}

// live reports an agent registered and not fenced.
func live(st *metadata.State, id int32) bool {
	ag, ok := st.Agents[id]
	return ok && !ag.Fenced
}

func filter(ids []int32, keep func(int32) bool) []int32 {
	var out []int32
	for _, id := range ids {
		if keep(id) {
			out = append(out, id)
		}
	}
	return out
}

// forEachPartition visits partitions in a stable order.
func forEachPartition(st *metadata.State, fn func(t *metadata.Topic, p *metadata.Partition)) {
	ids := make([]uuid.UUID, 0, len(st.Topics))
	for id := range st.Topics {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return st.Topics[ids[i]].Name < st.Topics[ids[j]].Name })
	for _, id := range ids {
		t := st.Topics[id]
		for i := range t.Partitions {
			fn(t, &t.Partitions[i])
		}
	}
}

// electionCmds moves leadership off fenced (and restarted) agents and
// takes fenced followers out of ISRs.
func electionCmds(st *metadata.State, restarted map[int32]bool) []metadata.Command {
	var cmds []metadata.Command
	forEachPartition(st, func(t *metadata.Topic, p *metadata.Partition) {
		isLive := func(id int32) bool { return live(st, id) }
		isr := filter(p.ISR, isLive)
		// The leader restarted since it was given this epoch: seen in
		// this tick's registrations, or (durably, so a restart whose
		// elections take several entries, or a new controller, still
		// finishes them) from the incarnation the epoch was given to.
		leaderRestarted := p.Leader >= 0 && (restarted[p.Leader] ||
			(p.LeaderIncarnation != 0 && st.Agents[p.Leader].Incarnation != p.LeaderIncarnation))
		restarted := func(id int32) bool { return leaderRestarted && id == p.Leader }
		if p.Leader >= 0 && isLive(p.Leader) && !leaderRestarted {
			if len(isr) < len(p.ISR) {
				cmds = append(cmds, metadata.SetISR{TopicID: t.ID, Partition: p.Index, LeaderEpoch: p.LeaderEpoch, ISRVersion: p.ISRVersion, ISR: isr})
			}
			return
		}
		// A new leader: a live in-sync replica, preferring one that is
		// not draining and not the restarted agent itself.
		var pick int32 = -1
		for _, pass := range []func(int32) bool{
			func(id int32) bool { return !restarted(id) && !st.Agents[id].Draining },
			func(id int32) bool { return !restarted(id) },
			func(int32) bool { return true },
		} {
			for _, id := range p.Replicas {
				if slices.Contains(isr, id) && pass(id) {
					pick = id
					break
				}
			}
			if pick >= 0 {
				break
			}
		}
		if pick < 0 {
			if p.Leader != -1 {
				// Offline until an in-sync replica returns; the ISR is
				// kept so the controller knows who may lead then.
				cmds = append(cmds, metadata.SetLeader{TopicID: t.ID, Partition: p.Index, Leader: -1, LeaderEpoch: p.LeaderEpoch + 1, ISR: p.ISR})
			}
			return
		}
		cmds = append(cmds, metadata.SetLeader{TopicID: t.ID, Partition: p.Index, Leader: pick, LeaderEpoch: p.LeaderEpoch + 1, ISR: isr})
	})
	return cmds
}

// reassignmentCmds ends moves whose target replicas are all in sync.
func reassignmentCmds(st *metadata.State) []metadata.Command {
	var cmds []metadata.Command
	forEachPartition(st, func(t *metadata.Topic, p *metadata.Partition) {
		if len(p.Target) == 0 || p.Leader < 0 {
			return
		}
		for _, id := range p.Target {
			if !slices.Contains(p.ISR, id) || !live(st, id) {
				return
			}
		}
		leader := p.Target[0]
		isr := filter(p.Target, func(id int32) bool { return slices.Contains(p.ISR, id) })
		cmds = append(cmds, metadata.SetLeader{TopicID: t.ID, Partition: p.Index, Leader: leader, LeaderEpoch: p.LeaderEpoch + 1, ISR: isr, Replicas: slices.Clone(p.Target)})
	})
	return cmds
}

// maxMoves bounds reassignments in flight, so a join or drain copies a
// bounded amount of tail at a time.
const maxMoves = 64

// balanceCmds drains, evens out replicas and preferred leaders over live
// agents, and hands leadership to preferred replicas that are in sync.
func balanceCmds(st *metadata.State) []metadata.Command {
	var eligible []int32
	for _, id := range sortedAgentIDs(st) {
		if ag := st.Agents[id]; !ag.Fenced && !ag.Draining {
			eligible = append(eligible, id)
		}
	}
	if len(eligible) == 0 {
		return nil
	}
	type part struct {
		t *metadata.Topic
		p *metadata.Partition
	}
	var parts []part
	replicas := map[int32]int{}
	leaders := map[int32]int{}
	inFlight := 0
	forEachPartition(st, func(t *metadata.Topic, p *metadata.Partition) {
		set := p.Replicas
		if len(p.Target) > 0 {
			set = p.Target
			inFlight++
		}
		for _, id := range set {
			replicas[id]++
		}
		if len(set) > 0 {
			leaders[set[0]]++
		}
		parts = append(parts, part{t, p})
	})
	var cmds []metadata.Command
	moved := map[*metadata.Partition]bool{}
	zoneOf := func(id int32) string { return st.Agents[id].Zone }
	// pickFor chooses an eligible agent outside set with the fewest
	// replicas, preferring a zone the rest of the set does not use.
	pickFor := func(set []int32, replacing int32) int32 {
		var best int32 = -1
		bestScore := 0
		for _, id := range eligible {
			if slices.Contains(set, id) {
				continue
			}
			score := replicas[id] * 2
			for _, other := range set {
				if other != replacing && zoneOf(other) == zoneOf(id) && zoneOf(id) != "" {
					score++ // a zone already holding a copy
				}
			}
			if best < 0 || score < bestScore {
				best, bestScore = id, score
			}
		}
		return best
	}
	move := func(pt part, from, to int32) {
		target := slices.Clone(pt.p.Replicas)
		i := slices.Index(target, from)
		target[i] = to
		cmds = append(cmds, metadata.Reassign{TopicID: pt.t.ID, Partition: pt.p.Index, Target: target})
		replicas[from]--
		replicas[to]++
		if i == 0 {
			leaders[from]--
			leaders[to]++
		}
		moved[pt.p] = true
		inFlight++
	}

	// Replicas on draining agents move first.
	for _, pt := range parts {
		if inFlight >= maxMoves {
			break
		}
		if len(pt.p.Target) > 0 {
			continue
		}
		for _, id := range pt.p.Replicas {
			if st.Agents[id].Draining {
				if to := pickFor(pt.p.Replicas, id); to >= 0 {
					move(pt, id, to)
				}
				break
			}
		}
	}
	// Then even out the replica counts.
	for inFlight < maxMoves {
		hi, lo := eligible[0], eligible[0]
		for _, id := range eligible {
			if replicas[id] > replicas[hi] {
				hi = id
			}
			if replicas[id] < replicas[lo] {
				lo = id
			}
		}
		if replicas[hi]-replicas[lo] <= 1 {
			break
		}
		done := false
		for _, pt := range parts {
			if moved[pt.p] || len(pt.p.Target) > 0 || !slices.Contains(pt.p.Replicas, hi) || slices.Contains(pt.p.Replicas, lo) {
				continue
			}
			move(pt, hi, lo)
			done = true
			break
		}
		if !done {
			break
		}
	}
	// Then the preferred-leader counts, by reordering replicas (no data
	// moves).
	for range len(parts) {
		hi, lo := eligible[0], eligible[0]
		for _, id := range eligible {
			if leaders[id] > leaders[hi] {
				hi = id
			}
			if leaders[id] < leaders[lo] {
				lo = id
			}
		}
		if leaders[hi]-leaders[lo] <= 1 {
			break
		}
		done := false
		for _, pt := range parts {
			p := pt.p
			if moved[p] || len(p.Target) > 0 || len(p.Replicas) < 2 || p.Replicas[0] != hi || !slices.Contains(p.Replicas, lo) {
				continue
			}
			target := slices.Clone(p.Replicas)
			j := slices.Index(target, lo)
			target[0], target[j] = target[j], target[0]
			cmds = append(cmds, metadata.Reassign{TopicID: pt.t.ID, Partition: p.Index, Target: target})
			leaders[hi]--
			leaders[lo]++
			moved[p] = true
			done = true
			break
		}
		if !done {
			break
		}
	}
	// Last, leadership follows preference where the preferred replica
	// is in sync (and not draining); a draining leader hands over to any
	// in-sync replica that is not.
	for _, pt := range parts {
		p := pt.p
		if moved[p] || len(p.Target) > 0 || p.Leader < 0 || len(p.Replicas) == 0 {
			continue
		}
		want := int32(-1)
		for _, id := range p.Replicas {
			if slices.Contains(p.ISR, id) && live(st, id) && !st.Agents[id].Draining {
				want = id
				break
			}
		}
		if want < 0 || want == p.Leader {
			continue
		}
		if want != p.Replicas[0] && !st.Agents[p.Leader].Draining {
			continue // the preferred replica is not ready; keep the leader
		}
		cmds = append(cmds, metadata.SetLeader{TopicID: pt.t.ID, Partition: p.Index, Leader: want, LeaderEpoch: p.LeaderEpoch + 1, ISR: p.ISR})
	}
	return cmds
}

// SetDraining marks agent id to be emptied of replicas and leaders (or
// no longer), through the controller.
func (a *Agent) SetDraining(ctx context.Context, id int32, draining bool) error {
	st := a.meta.State()
	if _, ok := st.Agents[id]; !ok {
		return fmt.Errorf("%w: agent %d", metadata.ErrUnknownAgent, id)
	}
	if draining {
		if err := drainBlocker(st, id); err != nil {
			return err
		}
	}
	_, err := a.propose(ctx, metadata.SetAgentDraining{ID: id, Draining: draining})
	return err
}

// drainBlocker says why agent id cannot be drained, if it cannot: some
// partition it holds a replica of has no other live, undrained agent
// outside its replica set to move to (three agents, replication factor
// three), so the drain could never finish.
func drainBlocker(st *metadata.State, id int32) error {
	var candidates []int32
	for aid, ag := range st.Agents {
		if aid != id && !ag.Fenced && !ag.Draining {
			candidates = append(candidates, aid)
		}
	}
	for _, t := range st.Topics {
		for i, p := range t.Partitions {
			if !slices.Contains(p.Replicas, id) {
				continue
			}
			if !slices.ContainsFunc(candidates, func(c int32) bool { return !slices.Contains(p.Replicas, c) }) {
				return fmt.Errorf("%w: agent %d cannot be drained: partition %s/%d has replicas on agents %v and no other live agent that is not draining can take one; add an agent or lower the topic's replication factor first",
					errInvalidRequest, id, t.Name, i, p.Replicas)
			}
		}
	}
	return nil
}
