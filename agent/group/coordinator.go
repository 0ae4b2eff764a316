// Package group is the consumer-group coordinator of one __consumer_offsets
// partition: the classic group protocol (JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup) with its state machine, committed offsets, and the group
// administration requests. The assignors run in the clients, as in Kafka.
//
// A Coordinator owns the groups whose id hashes to its partition, while
// this agent leads that partition. Every change it must not lose (an
// offset commit, the outcome of a rebalance, a deletion) is written as a
// record to the partition through Config.Write and acknowledged only once
// it is committed there (acks=all), so it is replicated, flushed and
// recovered like any data; a new coordinator rebuilds the groups by
// replaying the partition (Apply).
//
// States follow Kafka's: Empty, PreparingRebalance (members rejoin, up to
// the rebalance timeout), CompletingRebalance (the leader's SyncGroup with
// the assignment is awaited), Stable, Dead (deleted). Consumer-protocol
// groups (KIP-848, consumer.go) are Empty, Reconciling (members are
// moving to a new assignment) or Stable.
package group

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"log/slog"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/batch"
)

// State is a group's state.
type State int

const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
	Assigning   // consumer protocol: a new target is being computed
	Reconciling // consumer protocol: members are moving to their targets
)

func (s State) String() string {
	return [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead", "Assigning", "Reconciling"}[s]
}

// TP is a topic partition.
type TP struct {
	Topic     string
	Partition int32
}

// Offset is a committed offset.
type Offset struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitTime  time.Time
}

// Config configures a Coordinator.
type Config struct {
	// Write appends records to the partition and calls done once they
	// are committed (or failed). It must not block; writes complete in
	// the order they were issued.
	Write func(recs []batch.KV, done func(error))
	// InitialRebalanceDelay: group.initial.rebalance.delay.ms (default 3s).
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout, MaxSessionTimeout: the session timeouts a
	// member may ask for (defaults 6s and 30m, as Kafka).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// OffsetsRetention: how long an Empty group keeps its offsets
	// (offsets.retention.minutes; default 7 days).
	OffsetsRetention time.Duration
	// MaxMetadataBytes: offset.metadata.max.bytes (default 4096).
	MaxMetadataBytes int
	// Topics lists the topics consumer-protocol groups are assigned
	// from, with a version that changes whenever they do (nil: none).
	Topics func() (map[string]TopicMeta, uint64)
	// ConsumerHeartbeatInterval and ConsumerSessionTimeout:
	// group.consumer.heartbeat.interval.ms and
	// group.consumer.session.timeout.ms (defaults 5s and 45s, as Kafka).
	ConsumerHeartbeatInterval time.Duration
	ConsumerSessionTimeout    time.Duration
	Logger                    *slog.Logger
	Now                       func() time.Time
}

func (c *Config) setDefaults() {
	if c.InitialRebalanceDelay < 0 {
		c.InitialRebalanceDelay = 0
	}
	if c.MinSessionTimeout <= 0 {
		c.MinSessionTimeout = 6 * time.Second
	}
	if c.MaxSessionTimeout <= 0 {
		c.MaxSessionTimeout = 30 * time.Minute
	}
	if c.OffsetsRetention <= 0 {
		c.OffsetsRetention = 7 * 24 * time.Hour
	}
	if c.MaxMetadataBytes <= 0 {
		c.MaxMetadataBytes = 4096
	}
	if c.Topics == nil {
		c.Topics = func() (map[string]TopicMeta, uint64) { return nil, 0 }
	}
	if c.ConsumerHeartbeatInterval <= 0 {
		c.ConsumerHeartbeatInterval = 5 * time.Second
	}
	if c.ConsumerSessionTimeout <= 0 {
		c.ConsumerSessionTimeout = 45 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

type protocol struct {
	name     string
	metadata []byte
}

type member struct {
	id, clientID, clientHost string
	instanceID               *string
	protocolType             string
	protocols                []protocol
	sessionTimeout           time.Duration
	rebalanceTimeout         time.Duration
	assignment               []byte
	deadline                 time.Time // session expiry (not enforced while a join is pending)
	order                    uint64    // join order; the first joiner leads a new generation
	joinVersion              int16
	join                     func(*kmsg.JoinGroupResponse) // a JoinGroup awaiting the rebalance
	sync                     func(*kmsg.SyncGroupResponse) // a SyncGroup awaiting the leader
}

func (m *member) metadataFor(proto string) []byte {
	for _, p := range m.protocols {
		if p.name == proto {
			return p.metadata
		}
	}
	return nil
}

// Group is one consumer group.
type Group struct {
	id           string
	state        State
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	static       map[string]string    // instance id → member id
	pending      map[string]time.Time // member ids handed out by MEMBER_ID_REQUIRED, until they join
	offsets      map[TP]Offset
	since        time.Time // when the state last changed
	// rebalanceEnd bounds PreparingRebalance (and CompletingRebalance);
	// delayUntil holds a new group's first rebalance open for more members.
	rebalanceEnd time.Time
	delayUntil   time.Time
	joins        uint64
	// cons is the state of a consumer-protocol group; nil for classic.
	cons *consumerGroup
}

func (g *Group) memberOrder() []string {
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return g.members[ids[i]].order < g.members[ids[j]].order })
	return ids
}

// Coordinator runs the groups of one __consumer_offsets partition.
type Coordinator struct {
	cfg    Config
	log    *slog.Logger
	mu     sync.Mutex
	groups map[string]*Group
	ready  bool // loaded
	closed bool
	writes int64 // records written since the last snapshot
	stop   chan struct{}
	wg     sync.WaitGroup
}

// New returns a coordinator that answers COORDINATOR_LOAD_IN_PROGRESS
// until Loaded is called.
func New(cfg Config) *Coordinator {
	cfg.setDefaults()
	c := &Coordinator{cfg: cfg, log: cfg.Logger, groups: map[string]*Group{}, stop: make(chan struct{})}
	c.wg.Add(1)
	go c.run()
	return c
}

// Loaded marks the replay done: requests are served from now on.
func (c *Coordinator) Loaded() {
	c.mu.Lock()
	c.ready = true
	c.mu.Unlock()
}

// Close stops the coordinator (this agent no longer leads its partition):
// every waiting request is answered NOT_COORDINATOR.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	var joins []func(*kmsg.JoinGroupResponse)
	var syncs []func(*kmsg.SyncGroupResponse)
	for _, g := range c.groups {
		for _, m := range g.members {
			if m.join != nil {
				joins = append(joins, m.join)
				m.join = nil
			}
			if m.sync != nil {
				syncs = append(syncs, m.sync)
				m.sync = nil
			}
		}
	}
	c.mu.Unlock()
	close(c.stop)
	c.wg.Wait()
	for _, f := range joins {
		r := kmsg.NewPtrJoinGroupResponse()
		r.ErrorCode, r.Generation = kerr.NotCoordinator.Code, -1
		f(r)
	}
	for _, f := range syncs {
		r := kmsg.NewPtrSyncGroupResponse()
		r.ErrorCode = kerr.NotCoordinator.Code
		f(r)
	}
}

// WritesSinceSnapshot counts records written since the last Snapshotted.
func (c *Coordinator) WritesSinceSnapshot() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// Snapshotted resets WritesSinceSnapshot.
func (c *Coordinator) Snapshotted() {
	c.mu.Lock()
	c.writes = 0
	c.mu.Unlock()
}

// unavailable is the error for a coordinator that cannot serve now.
func (c *Coordinator) unavailableLocked() int16 {
	switch {
	case c.closed:
		return kerr.NotCoordinator.Code
	case !c.ready:
		return kerr.CoordinatorLoadInProgress.Code
	}
	return 0
}

func (c *Coordinator) groupLocked(id string, now time.Time) *Group {
	g := c.groups[id]
	if g == nil {
		g = &Group{id: id, members: map[string]*member{}, static: map[string]string{}, pending: map[string]time.Time{}, offsets: map[TP]Offset{}, since: now}
		c.groups[id] = g
	}
	if g.pending == nil {
		g.pending = map[string]time.Time{}
	}
	return g
}

func (g *Group) setState(s State, now time.Time) {
	g.state, g.since = s, now
}

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

// writeGroupLocked persists the group's metadata; done (may be nil) runs
// under c.mu once it is committed.
func (c *Coordinator) writeGroupLocked(g *Group, done func(error)) {
	c.writeLocked([]batch.KV{{Key: groupKey(g.id), Value: groupValue(g)}}, done)
}

// writeLocked hands records to Config.Write; done runs under c.mu.
func (c *Coordinator) writeLocked(recs []batch.KV, done func(error)) {
	c.writes += int64(len(recs))
	c.cfg.Write(recs, func(err error) {
		if done == nil {
			if err != nil {
				c.log.Warn("persist group state", "err", err)
			}
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		done(err)
	})
}

// writeErrCode maps a failed write to the error a group client expects,
// as Kafka's coordinator does: a timeout (or anything else transient) is
// COORDINATOR_NOT_AVAILABLE, which SyncGroup, heartbeats, commits and
// admin requests all retry after finding the coordinator again.
func writeErrCode(err error) int16 {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		switch ke.Code {
		case kerr.NotLeaderForPartition.Code, kerr.UnknownTopicOrPartition.Code:
			return kerr.NotCoordinator.Code
		case kerr.MessageTooLarge.Code, kerr.RecordListTooLarge.Code:
			return kerr.InvalidCommitOffsetSize.Code
		}
	}
	return kerr.CoordinatorNotAvailable.Code
}

// run expires sessions and pending member ids, completes rebalances whose
// time is up, and expires the offsets of long-empty groups.
func (c *Coordinator) run() {
	defer c.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.tick(c.cfg.Now())
	}
}

func (c *Coordinator) tick(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready || c.closed {
		return
	}
	for _, id := range sortedKeys(c.groups) {
		g := c.groups[id]
		for mid, exp := range g.pending {
			if now.After(exp) {
				delete(g.pending, mid)
			}
		}
		if g.cons != nil {
			c.tickConsumerLocked(g, now)
			if g.state == Empty && len(g.offsets) > 0 && now.Sub(g.since) > c.cfg.OffsetsRetention {
				c.expireLocked(g)
			}
			continue
		}
		switch g.state {
		case Stable, CompletingRebalance:
			expired := false
			for mid, m := range g.members {
				late := now.After(m.deadline)
				// In CompletingRebalance a member that has not synced
				// by the rebalance timeout is gone as well.
				if g.state == CompletingRebalance && now.After(g.rebalanceEnd) && m.sync == nil {
					late = true
				}
				if late {
					c.log.Info("group member expired", "group", g.id, "member", mid, "state", g.state)
					c.removeMemberLocked(g, mid)
					expired = true
				}
			}
			if expired {
				c.membersChangedLocked(g, now)
			}
		case PreparingRebalance:
			// A member that neither rejoined nor heartbeated within
			// its session is gone, as in Kafka: waiting for it until
			// the rebalance timeout (max.poll.interval.ms, often
			// minutes) would hold the whole group.
			for mid, m := range g.members {
				if m.join == nil && now.After(m.deadline) {
					c.log.Info("group member expired while the group rebalances", "group", g.id, "member", mid)
					c.removeMemberLocked(g, mid)
				}
			}
			c.maybeCompleteJoinLocked(g, now)
		case Empty:
			if len(g.offsets) > 0 && now.Sub(g.since) > c.cfg.OffsetsRetention {
				c.expireLocked(g)
			} else if len(g.offsets) == 0 && g.generation == 0 && len(g.pending) == 0 {
				delete(c.groups, id) // never held anything worth keeping
			}
		}
	}
}

// expireLocked drops an empty group's offsets past retention, and the
// group with them.
func (c *Coordinator) expireLocked(g *Group) {
	var recs []batch.KV
	for tp := range g.offsets {
		recs = append(recs, batch.KV{Key: offsetKey(g.id, tp.Topic, tp.Partition)})
	}
	if g.cons != nil {
		recs = append(recs, batch.KV{Key: consumerGroupKey(g.id)})
	} else {
		recs = append(recs, batch.KV{Key: groupKey(g.id)})
	}
	c.log.Info("expiring offsets of an empty group", "group", g.id, "offsets", len(g.offsets))
	delete(c.groups, g.id)
	c.writeLocked(recs, nil)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
