package group

// The classic group protocol: JoinGroup, SyncGroup, Heartbeat and
// LeaveGroup, the rebalance they drive, and the protocol the members share.

import (
	"crypto/rand"
	"encoding/hex"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/tier/batch"
)

func newMemberID(clientID string) string {
	var b [16]byte
	rand.Read(b[:])
	if clientID == "" {
		clientID = "member"
	}
	return clientID + "-" + hex.EncodeToString(b[:4]) + "-" + hex.EncodeToString(b[4:6]) + "-" + hex.EncodeToString(b[6:8]) + "-" + hex.EncodeToString(b[8:10]) + "-" + hex.EncodeToString(b[10:])
}

func joinErr(code int16, memberID string) *kmsg.JoinGroupResponse {
	r := kmsg.NewPtrJoinGroupResponse()
	r.ErrorCode, r.Generation, r.MemberID = code, -1, memberID
	return r
}

// Join handles a JoinGroup; done is called once with the answer (at once,
// or when the rebalance completes).
func (c *Coordinator) Join(req *kmsg.JoinGroupRequest, clientID, clientHost string, done func(*kmsg.JoinGroupResponse)) {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if code := c.unavailableLocked(); code != 0 {
		done(joinErr(code, req.MemberID))
		return
	}
	session := time.Duration(req.SessionTimeoutMillis) * time.Millisecond
	rebalance := session
	if req.Version >= 1 {
		rebalance = time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond
	}
	switch {
	case req.Group == "":
		done(joinErr(kerr.InvalidGroupID.Code, req.MemberID))
		return
	case session < c.cfg.MinSessionTimeout || session > c.cfg.MaxSessionTimeout:
		done(joinErr(kerr.InvalidSessionTimeout.Code, req.MemberID))
		return
	case req.ProtocolType == "" || len(req.Protocols) == 0:
		done(joinErr(kerr.InconsistentGroupProtocol.Code, req.MemberID))
		return
	}
	g := c.groups[req.Group]
	if g == nil && req.MemberID != "" {
		done(joinErr(kerr.UnknownMemberID.Code, req.MemberID))
		return
	}
	g = c.groupLocked(req.Group, now)
	if g.state == Dead {
		done(joinErr(kerr.CoordinatorNotAvailable.Code, req.MemberID))
		return
	}
	if g.cons != nil {
		if len(g.cons.members) > 0 {
			done(joinErr(kerr.InconsistentGroupProtocol.Code, req.MemberID))
			return
		}
		// An empty consumer-protocol group goes back to classic; its
		// offsets stay.
		g.cons = nil
		g.protocolType = ""
		g.setState(Empty, now)
		c.writeLocked([]batch.KV{{Key: consumerGroupKey(g.id)}}, nil)
	}
	protos := make([]protocol, len(req.Protocols))
	for i, p := range req.Protocols {
		protos[i] = protocol{name: p.Name, metadata: p.Metadata}
	}
	if len(g.members) > 0 && (g.protocolType != req.ProtocolType || !compatible(g, protos)) {
		done(joinErr(kerr.InconsistentGroupProtocol.Code, req.MemberID))
		return
	}

	memberID := req.MemberID
	var m *member
	if req.InstanceID != nil {
		if cur, ok := g.static[*req.InstanceID]; ok {
			if memberID != "" && memberID != cur {
				done(joinErr(kerr.FencedInstanceID.Code, memberID))
				return
			}
			m = g.members[cur]
			if memberID == "" && m != nil {
				// A static member restarted: it takes over its old
				// member's place under a new id, without a rebalance
				// if nothing it asks for changed (KIP-345).
				oldID := m.id
				m.id = newMemberID(clientID)
				delete(g.members, oldID)
				g.members[m.id] = m
				g.static[*req.InstanceID] = m.id
				if g.leader == oldID {
					g.leader = m.id
				}
				if old := m.join; old != nil {
					// The old process's join is fenced by the new one.
					m.join = nil
					old(joinErr(kerr.FencedInstanceID.Code, oldID))
				}
				if g.state == Stable && sameProtocols(m.protocols, protos) {
					m.deadline = now.Add(session)
					m.sessionTimeout, m.rebalanceTimeout = session, rebalance
					done(c.joinResponse(g, m, req.Version, true))
					c.writeGroupLocked(g, nil)
					return
				}
			}
		}
	}
	switch {
	case m != nil:
	case memberID == "" && req.Version >= 4 && req.InstanceID == nil:
		// KIP-394: hand out an id; the member rejoins with it.
		id := newMemberID(clientID)
		g.pending[id] = now.Add(session)
		done(joinErr(kerr.MemberIDRequired.Code, id))
		return
	case memberID == "":
		m = &member{id: newMemberID(clientID)}
	default:
		m = g.members[memberID]
		if m == nil {
			if _, ok := g.pending[memberID]; !ok {
				done(joinErr(kerr.UnknownMemberID.Code, memberID))
				return
			}
			delete(g.pending, memberID)
			m = &member{id: memberID}
		}
	}
	fresh := g.members[m.id] == nil
	changed := fresh || !sameProtocols(m.protocols, protos)
	if fresh {
		g.joins++
		m.order = g.joins
		g.members[m.id] = m
		if req.InstanceID != nil {
			id := *req.InstanceID
			m.instanceID = &id
			g.static[id] = m.id
		}
	}
	m.clientID, m.clientHost = clientID, clientHost
	m.protocolType, m.protocols = req.ProtocolType, protos
	m.sessionTimeout, m.rebalanceTimeout = session, rebalance
	m.joinVersion = req.Version
	m.deadline = now.Add(session)
	if old := m.join; old != nil {
		old(joinErr(kerr.RebalanceInProgress.Code, m.id)) // superseded by this join
	}
	m.join = done
	g.protocolType = req.ProtocolType

	switch g.state {
	case Empty, Dead:
		c.prepareRebalanceLocked(g, now, true)
	case Stable, CompletingRebalance:
		if changed || m.id == g.leader || g.state == CompletingRebalance {
			c.prepareRebalanceLocked(g, now, false)
		} else {
			// Nothing changed for a follower: it gets the current
			// generation back, as Kafka answers.
			m.join = nil
			done(c.joinResponse(g, m, req.Version, false))
			return
		}
	case PreparingRebalance:
		if fresh && now.Before(g.delayUntil) {
			// More members are arriving: hold the first rebalance
			// open a little longer, within the rebalance timeout.
			g.delayUntil = minTime(now.Add(c.cfg.InitialRebalanceDelay), g.rebalanceEnd)
		}
	}
	c.maybeCompleteJoinLocked(g, now)
}

func compatible(g *Group, protos []protocol) bool {
	if g.state == Empty || len(g.members) == 0 {
		return true
	}
	// Some protocol every current member supports must be offered.
	for _, p := range protos {
		all := true
		for _, m := range g.members {
			if m.metadataFor(p.name) == nil && !hasProtocol(m, p.name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func hasProtocol(m *member, name string) bool {
	for _, p := range m.protocols {
		if p.name == name {
			return true
		}
	}
	return false
}

func sameProtocols(a, b []protocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].name != b[i].name || string(a[i].metadata) != string(b[i].metadata) {
			return false
		}
	}
	return true
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// prepareRebalanceLocked starts a rebalance: members have until the
// largest rebalance timeout to rejoin.
func (c *Coordinator) prepareRebalanceLocked(g *Group, now time.Time, initial bool) {
	if g.state == CompletingRebalance {
		for _, m := range g.members {
			if m.sync != nil {
				r := kmsg.NewPtrSyncGroupResponse()
				r.ErrorCode = kerr.RebalanceInProgress.Code
				m.sync(r)
				m.sync = nil
			}
		}
	}
	var timeout time.Duration
	for _, m := range g.members {
		timeout = max(timeout, m.rebalanceTimeout)
	}
	g.setState(PreparingRebalance, now)
	g.rebalanceEnd = now.Add(timeout)
	g.delayUntil = time.Time{}
	if initial && c.cfg.InitialRebalanceDelay > 0 {
		g.delayUntil = minTime(now.Add(c.cfg.InitialRebalanceDelay), g.rebalanceEnd)
	}
}

// maybeCompleteJoinLocked ends PreparingRebalance once every member has
// rejoined (after any initial delay) or the rebalance timeout passed.
func (c *Coordinator) maybeCompleteJoinLocked(g *Group, now time.Time) {
	if g.state != PreparingRebalance || now.Before(g.delayUntil) {
		return
	}
	all := true
	for _, m := range g.members {
		if m.join == nil {
			all = false
			break
		}
	}
	if !all && now.Before(g.rebalanceEnd) {
		return
	}
	for id, m := range g.members {
		if m.join == nil { // did not rejoin in time
			c.removeMemberLocked(g, id)
		}
	}
	if len(g.members) == 0 {
		g.generation++
		g.protocol, g.leader = "", ""
		g.setState(Empty, now)
		c.writeGroupLocked(g, nil)
		return
	}
	g.generation++
	g.protocol = chooseProtocol(g)
	if _, ok := g.members[g.leader]; !ok {
		g.leader = g.memberOrder()[0]
	}
	g.setState(CompletingRebalance, now)
	var timeout time.Duration
	for _, m := range g.members {
		timeout = max(timeout, m.rebalanceTimeout)
	}
	g.rebalanceEnd = now.Add(timeout)
	for _, m := range g.members {
		m.assignment = nil
		done := m.join
		m.join = nil
		m.deadline = now.Add(m.sessionTimeout)
		done(c.joinResponse(g, m, m.joinVersion, false))
	}
}

// chooseProtocol picks the protocol every member supports that most
// members prefer, ties to the one listed first, as Kafka votes.
func chooseProtocol(g *Group) string {
	var candidates []string
	first := g.members[g.memberOrder()[0]]
	for _, p := range first.protocols {
		all := true
		for _, m := range g.members {
			if !hasProtocol(m, p.name) {
				all = false
				break
			}
		}
		if all {
			candidates = append(candidates, p.name)
		}
	}
	if len(candidates) == 0 {
		return ""
	}
	votes := map[string]int{}
	for _, m := range g.members {
		for _, p := range m.protocols {
			if slices.Contains(candidates, p.name) {
				votes[p.name]++
				break
			}
		}
	}
	best := candidates[0]
	for _, cand := range candidates {
		if votes[cand] > votes[best] {
			best = cand
		}
	}
	return best
}

func (c *Coordinator) joinResponse(g *Group, m *member, version int16, skipAssignment bool) *kmsg.JoinGroupResponse {
	r := kmsg.NewPtrJoinGroupResponse()
	r.Generation = g.generation
	pt, p := g.protocolType, g.protocol
	r.ProtocolType, r.Protocol = &pt, &p
	r.LeaderID, r.MemberID = g.leader, m.id
	if m.id == g.leader {
		// A static leader that rejoined without a rebalance must not
		// reassign (KIP-814); older clients need the members anyway.
		r.SkipAssignment = skipAssignment && version >= 9
		for _, id := range g.memberOrder() {
			o := g.members[id]
			rm := kmsg.NewJoinGroupResponseMember()
			rm.MemberID, rm.InstanceID = o.id, o.instanceID
			rm.ProtocolMetadata = o.metadataFor(g.protocol)
			r.Members = append(r.Members, rm)
		}
	}
	return r
}

func (c *Coordinator) removeMemberLocked(g *Group, id string) {
	m := g.members[id]
	if m == nil {
		return
	}
	delete(g.members, id)
	if m.instanceID != nil && g.static[*m.instanceID] == id {
		delete(g.static, *m.instanceID)
	}
	if m.join != nil {
		m.join(joinErr(kerr.UnknownMemberID.Code, id))
		m.join = nil
	}
	if m.sync != nil {
		r := kmsg.NewPtrSyncGroupResponse()
		r.ErrorCode = kerr.UnknownMemberID.Code
		m.sync(r)
		m.sync = nil
	}
	if g.leader == id {
		g.leader = ""
	}
}

// memberCheck validates a request's member, instance and generation.
func memberCheck(g *Group, memberID string, instanceID *string, generation int32) (*member, int16) {
	if g == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	m := g.members[memberID]
	if instanceID != nil {
		if cur, ok := g.static[*instanceID]; ok && cur != memberID {
			return nil, kerr.FencedInstanceID.Code
		}
	}
	if m == nil {
		return nil, kerr.UnknownMemberID.Code
	}
	if generation != g.generation {
		return m, kerr.IllegalGeneration.Code
	}
	return m, 0
}

// Sync handles a SyncGroup.
func (c *Coordinator) Sync(req *kmsg.SyncGroupRequest, done func(*kmsg.SyncGroupResponse)) {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	fail := func(code int16) {
		r := kmsg.NewPtrSyncGroupResponse()
		r.ErrorCode = code
		done(r)
	}
	if code := c.unavailableLocked(); code != 0 {
		fail(code)
		return
	}
	g := c.groups[req.Group]
	m, code := memberCheck(g, req.MemberID, req.InstanceID, req.Generation)
	if code != 0 {
		fail(code)
		return
	}
	if (req.ProtocolType != nil && *req.ProtocolType != g.protocolType) || (req.Protocol != nil && *req.Protocol != g.protocol) {
		fail(kerr.InconsistentGroupProtocol.Code)
		return
	}
	m.deadline = now.Add(m.sessionTimeout)
	switch g.state {
	case PreparingRebalance:
		fail(kerr.RebalanceInProgress.Code)
	case Stable:
		done(c.syncResponse(g, m))
	case CompletingRebalance:
		if m.sync != nil {
			old := m.sync
			m.sync = nil
			r := kmsg.NewPtrSyncGroupResponse()
			r.ErrorCode = kerr.RebalanceInProgress.Code
			old(r)
		}
		m.sync = done
		if m.id != g.leader {
			return
		}
		for _, id := range g.memberOrder() {
			g.members[id].assignment = []byte{}
		}
		for _, ga := range req.GroupAssignment {
			if o := g.members[ga.MemberID]; o != nil {
				o.assignment = ga.MemberAssignment
			}
		}
		gen := g.generation
		c.writeGroupLocked(g, func(err error) {
			// Under c.mu (writeGroupLocked's callback runs locked).
			if g.state != CompletingRebalance || g.generation != gen {
				return
			}
			if err != nil {
				c.log.Warn("persist group assignment", "group", g.id, "err", err)
				for _, o := range g.members {
					if o.sync != nil {
						r := kmsg.NewPtrSyncGroupResponse()
						r.ErrorCode = writeErrCode(err)
						o.sync(r)
						o.sync = nil
					}
				}
				c.prepareRebalanceLocked(g, c.cfg.Now(), false)
				return
			}
			g.setState(Stable, c.cfg.Now())
			for _, o := range g.members {
				if o.sync != nil {
					o.sync(c.syncResponse(g, o))
					o.sync = nil
				}
			}
		})
	default:
		fail(kerr.UnknownMemberID.Code)
	}
}

func (c *Coordinator) syncResponse(g *Group, m *member) *kmsg.SyncGroupResponse {
	r := kmsg.NewPtrSyncGroupResponse()
	pt, p := g.protocolType, g.protocol
	r.ProtocolType, r.Protocol = &pt, &p
	r.MemberAssignment = m.assignment
	if r.MemberAssignment == nil {
		r.MemberAssignment = []byte{}
	}
	return r
}

// Heartbeat handles a Heartbeat and returns its error code.
func (c *Coordinator) Heartbeat(req *kmsg.HeartbeatRequest) int16 {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if code := c.unavailableLocked(); code != 0 {
		return code
	}
	g := c.groups[req.Group]
	if g == nil || g.state == Empty || g.state == Dead {
		return kerr.UnknownMemberID.Code
	}
	m, code := memberCheck(g, req.MemberID, req.InstanceID, req.Generation)
	if m != nil && (code == 0 || code == kerr.IllegalGeneration.Code) {
		m.deadline = now.Add(m.sessionTimeout)
	}
	if code != 0 {
		return code
	}
	if g.state == PreparingRebalance {
		return kerr.RebalanceInProgress.Code
	}
	return 0
}

// LeaveMember is one member leaving.
type LeaveMember struct {
	MemberID   string
	InstanceID *string
}

// Leave handles a LeaveGroup: the error of the whole request and one per
// member.
func (c *Coordinator) Leave(group string, members []LeaveMember) (int16, []int16) {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if code := c.unavailableLocked(); code != 0 {
		return code, nil
	}
	g := c.groups[group]
	codes := make([]int16, len(members))
	if g == nil {
		for i := range codes {
			codes[i] = kerr.UnknownMemberID.Code
		}
		return 0, codes
	}
	left := false
	for i, lm := range members {
		id := lm.MemberID
		if lm.InstanceID != nil {
			cur, ok := g.static[*lm.InstanceID]
			switch {
			case !ok:
				codes[i] = kerr.UnknownMemberID.Code
				continue
			case id != "" && id != cur:
				codes[i] = kerr.FencedInstanceID.Code
				continue
			}
			id = cur
		}
		if _, ok := g.pending[id]; ok {
			delete(g.pending, id)
			continue
		}
		if g.members[id] == nil {
			codes[i] = kerr.UnknownMemberID.Code
			continue
		}
		c.removeMemberLocked(g, id)
		left = true
	}
	if left {
		c.membersChangedLocked(g, now)
	}
	return 0, codes
}

// membersChangedLocked reacts to members leaving or expiring.
func (c *Coordinator) membersChangedLocked(g *Group, now time.Time) {
	switch {
	case len(g.members) == 0 && g.state != PreparingRebalance:
		g.generation++
		g.protocol, g.leader = "", ""
		g.setState(Empty, now)
		c.writeGroupLocked(g, nil)
	case g.state == Stable || g.state == CompletingRebalance:
		c.prepareRebalanceLocked(g, now, false)
	case g.state == PreparingRebalance:
		c.maybeCompleteJoinLocked(g, now)
	}
}
