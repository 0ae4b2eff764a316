package group

// Consumer-protocol groups (KIP-848: ConsumerGroupHeartbeat, and
// ConsumerGroupDescribe): the coordinator, not a client leader, assigns
// partitions. A member heartbeats with its member epoch and the
// partitions it owns; the answer carries its epoch and, when it changed
// or was asked for, the partitions it should own now.
//
// The group epoch counts membership, subscription and topic-metadata
// changes; each bump recomputes the target assignment at once, so the
// assignment epoch always catches up with the group epoch here. A member
// moves toward its target one safe step at a time, as Kafka's
// CurrentAssignmentBuilder does:
//   - partitions it must give up are revoked first, at its current epoch
//     (UNREVOKED_PARTITIONS), until a heartbeat shows it no longer owns
//     them (or its rebalance timeout passes and it is removed);
//   - then it takes the new epoch and every target partition that no
//     other member still holds; any still held elsewhere follow on later
//     heartbeats (UNRELEASED_PARTITIONS).
//
// So no partition is ever held by two members: consumerGroup.owners names
// the one member holding each (assigned or being revoked).
//
// Every change is persisted (tlog's own record kinds in
// __consumer_offsets, see records.go) before the heartbeat is answered,
// so a new coordinator continues with the same epochs and ownership.

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/tier/batch"
)

// TopicMeta is what the assignors need of a topic.
type TopicMeta struct {
	ID         [16]byte
	Partitions int32
}

type memberState int8

const (
	memberStable     memberState = iota // owns its target (at the assignment epoch)
	memberUnrevoked                     // must give up partitions first
	memberUnreleased                    // waits for partitions other members still hold
)

func (s memberState) String() string {
	return [...]string{"stable", "unrevoked_partitions", "unreleased_partitions"}[s]
}

// cmember is a member of a consumer-protocol group.
type cmember struct {
	id, clientID, clientHost string
	instanceID, rackID       *string
	topics                   []string // SubscribedTopicNames, sorted
	regex                    string   // SubscribedTopicRegex ("" for none)
	re                       *regexp.Regexp
	assignor                 string // ServerAssignor ("" for the group's choice)
	rebalanceTimeout         time.Duration

	epoch, prevEpoch int32
	state            memberState
	assigned         assignment // what it owns now
	revoking         assignment // what it was told to give up and still holds
	target           assignment // what the assignor wants it to own

	deadline time.Time // session expiry
	revokeBy time.Time // rebalance timeout while revoking
	left     bool      // a static member gone with epoch -2, holding its place until the session ends
}

// consumerGroup is the consumer-protocol state of a Group.
type consumerGroup struct {
	epoch, assignmentEpoch int32
	assignor               string // of the last target computation
	members                map[string]*cmember
	static                 map[string]string // instance id → member id
	owners                 map[tpid]string   // partition → the member holding it
	metaVersion            uint64            // Config.Topics version at the last check
	fingerprint            uint64            // of the subscriptions' topics at the last computation
	dirty                  bool              // a write failed: persist every member next time
}

func newConsumerGroup() *consumerGroup {
	return &consumerGroup{members: map[string]*cmember{}, static: map[string]string{}, owners: map[tpid]string{}}
}

// claim records m as the holder of every partition in a.
func (cg *consumerGroup) claim(m *cmember, a assignment) {
	a.each(func(tp tpid) { cg.owners[tp] = m.id })
}

// release frees the partitions in a that m holds.
func (cg *consumerGroup) release(m *cmember, a assignment) {
	a.each(func(tp tpid) {
		if cg.owners[tp] == m.id {
			delete(cg.owners, tp)
		}
	})
}

// stateOf is the group state Kafka reports for consumer groups.
func (cg *consumerGroup) stateOf() State {
	if len(cg.members) == 0 {
		return Empty
	}
	if cg.epoch != cg.assignmentEpoch {
		return Assigning
	}
	for _, m := range cg.members {
		if !m.left && (m.epoch != cg.assignmentEpoch || m.state != memberStable) {
			return Reconciling
		}
	}
	return Stable
}

func (c *Coordinator) setConsumerState(g *Group, now time.Time) {
	if s := g.cons.stateOf(); s != g.state {
		g.setState(s, now)
	}
}

func heartbeatErr(resp *kmsg.ConsumerGroupHeartbeatResponse, code int16, msg string) *kmsg.ConsumerGroupHeartbeatResponse {
	resp.ErrorCode = code
	if msg != "" {
		resp.ErrorMessage = &msg
	}
	return resp
}

// validateHeartbeat checks a request on its own, as Kafka does before
// looking at the group.
func validateHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) (int16, string, *regexp.Regexp) {
	invalid := kerr.InvalidRequest.Code
	switch {
	case req.Group == "":
		return invalid, "GroupId can't be empty.", nil
	case req.InstanceID != nil && *req.InstanceID == "":
		return invalid, "InstanceId can't be empty.", nil
	case req.RackID != nil && *req.RackID == "":
		return invalid, "RackId can't be empty.", nil
	case req.MemberEpoch < -2:
		return invalid, fmt.Sprintf("MemberEpoch %d is invalid.", req.MemberEpoch), nil
	case req.MemberID == "" && (req.Version >= 1 || req.MemberEpoch != 0):
		return invalid, "MemberId can't be empty.", nil
	case req.MemberEpoch == -2 && req.InstanceID == nil:
		return invalid, "InstanceId can't be null.", nil
	case req.MemberEpoch == 0 && req.RebalanceTimeoutMillis <= 0:
		return invalid, "RebalanceTimeoutMs must be provided in first request.", nil
	case req.MemberEpoch == 0 && len(req.Topics) > 0:
		return invalid, "TopicPartitions must be empty when (re-)joining.", nil
	case req.MemberEpoch == 0 && req.SubscribedTopicNames == nil && req.SubscribedTopicRegex == nil:
		return invalid, "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.", nil
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != "" {
		if _, ok := assignors[*req.ServerAssignor]; !ok {
			return kerr.UnsupportedAssignor.Code, fmt.Sprintf("ServerAssignor %s is not supported; use uniform or range.", *req.ServerAssignor), nil
		}
	}
	var re *regexp.Regexp
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != "" {
		var err error
		// Kafka matches the whole topic name (RE2/J's matches()).
		if re, err = regexp.Compile("^(?:" + *req.SubscribedTopicRegex + ")$"); err != nil {
			return kerr.InvalidRegularExpression.Code, fmt.Sprintf("SubscribedTopicRegex %q is invalid: %v", *req.SubscribedTopicRegex, err), nil
		}
	}
	return 0, "", re
}

// ConsumerHeartbeat handles a ConsumerGroupHeartbeat: join (epoch 0),
// heartbeat, or leave (-1, or -2 for a static member that will return).
// done gets the answer once any change it carries is committed.
func (c *Coordinator) ConsumerHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest, clientID, clientHost string, done func(*kmsg.ConsumerGroupHeartbeatResponse)) {
	now := c.cfg.Now()
	resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
	resp.HeartbeatIntervalMillis = int32(c.cfg.ConsumerHeartbeatInterval / time.Millisecond)
	c.mu.Lock()
	defer c.mu.Unlock()
	if code := c.unavailableLocked(); code != 0 {
		done(heartbeatErr(resp, code, ""))
		return
	}
	code, msg, re := validateHeartbeat(req)
	if code != 0 {
		done(heartbeatErr(resp, code, msg))
		return
	}
	g := c.groups[req.Group]
	switch {
	case g != nil && g.state == Dead:
		done(heartbeatErr(resp, kerr.CoordinatorNotAvailable.Code, "the group is being deleted"))
		return
	case g != nil && g.cons == nil && len(g.members) > 0:
		done(heartbeatErr(resp, kerr.GroupIDNotFound.Code, fmt.Sprintf("Group %s is a classic group with members; they must leave before it can use the consumer protocol.", req.Group)))
		return
	case (g == nil || g.cons == nil) && req.MemberEpoch != 0:
		done(heartbeatErr(resp, kerr.UnknownMemberID.Code, ""))
		return
	}
	g = c.groupLocked(req.Group, now)
	var recs []batch.KV
	if g.cons == nil {
		// A new group, or an empty classic one taking up the consumer
		// protocol: its offsets stay.
		g.cons = newConsumerGroup()
		g.protocolType, g.protocol, g.leader, g.generation = "consumer", "", "", 0
		g.setState(Empty, now)
	}
	cg := g.cons
	if req.MemberEpoch < 0 {
		c.consumerLeaveLocked(g, req, resp, now, done)
		return
	}

	groupChanged := false
	touched := map[string]bool{}
	var gone []string // member records to delete
	var m *cmember
	if req.MemberEpoch == 0 {
		memberID := req.MemberID
		if memberID == "" { // v0: the coordinator names the member
			memberID = newMemberID(clientID)
		}
		if req.InstanceID != nil {
			if cur, ok := cg.static[*req.InstanceID]; ok && cur != memberID {
				old := cg.members[cur]
				if old != nil && !old.left {
					done(heartbeatErr(resp, kerr.UnreleasedInstanceID.Code, fmt.Sprintf("Static member %s with instance id %s is still in the group.", cur, *req.InstanceID)))
					return
				}
				if old != nil {
					// The instance is back under a new member id: it
					// takes its place, and its assignment, without a
					// rebalance.
					m = &cmember{id: memberID, instanceID: old.instanceID, topics: old.topics, regex: old.regex, re: old.re,
						assignor: old.assignor, rackID: old.rackID, target: old.target, assigned: old.assigned, revoking: assignment{}}
					cg.release(old, old.assigned)
					cg.release(old, old.revoking)
					delete(cg.members, old.id)
					gone = append(gone, old.id)
					cg.members[m.id] = m
					cg.claim(m, m.assigned)
					touched[m.id] = true
				}
			}
		}
		if m == nil {
			m = cg.members[memberID]
		}
		switch {
		case m != nil && touched[m.id]: // replaced a departed static member
		case m != nil:
			// A known member rejoining (it was fenced, or lost a
			// response): it owns nothing now.
			cg.release(m, m.assigned)
			cg.release(m, m.revoking)
			m.assigned, m.revoking = assignment{}, assignment{}
			m.epoch, m.prevEpoch, m.state, m.left = 0, 0, memberStable, false
			touched[m.id] = true
		default:
			m = &cmember{id: memberID, assigned: assignment{}, revoking: assignment{}, target: assignment{}}
			cg.members[m.id] = m
			groupChanged = true
			touched[m.id] = true
		}
		if req.InstanceID != nil {
			id := *req.InstanceID
			m.instanceID = &id
			cg.static[id] = m.id
		}
		m.clientID, m.clientHost = clientID, clientHost
	} else {
		m = cg.members[req.MemberID]
		if m == nil || m.left {
			done(heartbeatErr(resp, kerr.UnknownMemberID.Code, ""))
			return
		}
		if req.InstanceID != nil && cg.static[*req.InstanceID] != m.id {
			done(heartbeatErr(resp, kerr.FencedInstanceID.Code, ""))
			return
		}
		if req.MemberEpoch > m.epoch ||
			(req.MemberEpoch < m.epoch && (req.MemberEpoch != m.prevEpoch || req.Topics == nil || !ownedSubset(req.Topics, m.assigned))) {
			// Kafka's rule: only the previous epoch is accepted, and
			// only from a member owning no more than it was given
			// (its last answer was lost).
			done(heartbeatErr(resp, kerr.FencedMemberEpoch.Code, fmt.Sprintf("The member epoch %d does not match the expected %d.", req.MemberEpoch, m.epoch)))
			return
		}
	}
	m.deadline = now.Add(c.cfg.ConsumerSessionTimeout)

	// The subscription: nil fields are unchanged since the last request.
	if req.SubscribedTopicNames != nil {
		names := slices.Clone(req.SubscribedTopicNames)
		slices.Sort(names)
		names = slices.Compact(names)
		if !slices.Equal(names, m.topics) {
			m.topics = names
			groupChanged = true
		}
	}
	if req.SubscribedTopicRegex != nil && *req.SubscribedTopicRegex != m.regex {
		m.regex, m.re = *req.SubscribedTopicRegex, re
		groupChanged = true
	}
	if req.ServerAssignor != nil && *req.ServerAssignor != m.assignor {
		m.assignor = *req.ServerAssignor
		groupChanged = true
	}
	if req.RackID != nil && (m.rackID == nil || *m.rackID != *req.RackID) {
		rack := *req.RackID
		m.rackID = &rack
		touched[m.id] = true
	}
	if req.RebalanceTimeoutMillis > 0 {
		if t := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond; t != m.rebalanceTimeout {
			m.rebalanceTimeout = t
			touched[m.id] = true
		}
	}

	// A revocation is acknowledged by a heartbeat whose owned partitions
	// no longer include any being revoked.
	if m.state == memberUnrevoked && req.Topics != nil && !ownsAny(req.Topics, m.revoking) {
		cg.release(m, m.revoking)
		m.revoking = assignment{}
		touched[m.id] = true
	}

	if groupChanged || c.topicsChangedLocked(g) {
		cg.epoch++
		for _, id := range c.computeTargetLocked(g) {
			touched[id] = true
		}
		groupChanged = true
	}
	before := m.assigned.clone()
	if c.reconcileLocked(cg, m, now) {
		touched[m.id] = true
	}
	full := req.RebalanceTimeoutMillis != -1 && (req.SubscribedTopicNames != nil || req.SubscribedTopicRegex != nil) && req.Topics != nil
	if req.MemberEpoch == 0 || full || !before.equal(m.assigned) {
		resp.Assignment = c.heartbeatAssignment(m.assigned)
	}
	id := m.id
	resp.MemberID = &id
	resp.MemberEpoch = m.epoch
	c.setConsumerState(g, now)

	if groupChanged {
		recs = append(recs, batch.KV{Key: consumerGroupKey(g.id), Value: consumerGroupValue(cg)})
	}
	recs = append(recs, c.memberRecordsLocked(g, touched, gone)...)
	if len(recs) == 0 {
		done(resp)
		return
	}
	c.writeLocked(recs, func(err error) {
		if err != nil {
			cg.dirty = true
			done(heartbeatErr(resp, writeErrCode(err), ""))
			return
		}
		done(resp)
	})
}

// consumerLeaveLocked handles epochs -1 (leave) and -2 (a static member
// leaving for now: its place and assignment wait for it until its
// session would have ended).
func (c *Coordinator) consumerLeaveLocked(g *Group, req *kmsg.ConsumerGroupHeartbeatRequest, resp *kmsg.ConsumerGroupHeartbeatResponse, now time.Time, done func(*kmsg.ConsumerGroupHeartbeatResponse)) {
	cg := g.cons
	id := req.MemberID
	if req.InstanceID != nil {
		cur, ok := cg.static[*req.InstanceID]
		switch {
		case !ok:
			done(heartbeatErr(resp, kerr.UnknownMemberID.Code, ""))
			return
		case cur != id:
			done(heartbeatErr(resp, kerr.FencedInstanceID.Code, ""))
			return
		}
	}
	m := cg.members[id]
	if m == nil {
		done(heartbeatErr(resp, kerr.UnknownMemberID.Code, ""))
		return
	}
	resp.MemberID, resp.MemberEpoch = &id, req.MemberEpoch
	var recs []batch.KV
	if req.MemberEpoch == -2 {
		// It gave up everything it was revoking on the way out; it
		// keeps the rest for its next incarnation.
		cg.release(m, m.revoking)
		m.revoking = assignment{}
		m.left, m.state = true, memberStable
		m.deadline = now.Add(c.cfg.ConsumerSessionTimeout)
		recs = c.memberRecordsLocked(g, map[string]bool{m.id: true}, nil)
	} else {
		recs = c.removeConsumerMemberLocked(g, m)
	}
	c.setConsumerState(g, now)
	c.writeLocked(recs, func(err error) {
		if err != nil {
			g.cons.dirty = true
			done(heartbeatErr(resp, writeErrCode(err), ""))
			return
		}
		done(resp)
	})
}

// removeConsumerMemberLocked drops a member, bumps the group epoch and
// recomputes the targets; it returns the records to persist.
func (c *Coordinator) removeConsumerMemberLocked(g *Group, m *cmember) []batch.KV {
	cg := g.cons
	cg.release(m, m.assigned)
	cg.release(m, m.revoking)
	delete(cg.members, m.id)
	if m.instanceID != nil && cg.static[*m.instanceID] == m.id {
		delete(cg.static, *m.instanceID)
	}
	cg.epoch++
	touched := map[string]bool{}
	for _, id := range c.computeTargetLocked(g) {
		touched[id] = true
	}
	recs := []batch.KV{{Key: consumerGroupKey(g.id), Value: consumerGroupValue(cg)}}
	return append(recs, c.memberRecordsLocked(g, touched, []string{m.id})...)
}

// memberRecordsLocked renders the records of touched members (every
// member after a failed write) and tombstones for gone ones.
func (c *Coordinator) memberRecordsLocked(g *Group, touched map[string]bool, gone []string) []batch.KV {
	cg := g.cons
	if cg.dirty {
		cg.dirty = false
		touched = map[string]bool{}
		for id := range cg.members {
			touched[id] = true
		}
		if len(gone) == 0 {
			// The group record may be what failed.
			return append([]batch.KV{{Key: consumerGroupKey(g.id), Value: consumerGroupValue(cg)}}, c.memberRecordsLocked(g, touched, nil)...)
		}
	}
	var recs []batch.KV
	for _, id := range sortedKeys(touched) {
		if m := cg.members[id]; m != nil {
			recs = append(recs, batch.KV{Key: consumerMemberKey(g.id, id), Value: consumerMemberValue(m)})
		}
	}
	for _, id := range gone {
		recs = append(recs, batch.KV{Key: consumerMemberKey(g.id, id)})
	}
	return recs
}

// reconcileLocked moves m one safe step toward its target (see the file
// comment) and reports whether anything changed.
func (c *Coordinator) reconcileLocked(cg *consumerGroup, m *cmember, now time.Time) bool {
	if m.left {
		return false
	}
	switch {
	case m.state == memberUnrevoked && m.revoking.size() > 0:
		return false // until it acknowledges
	case m.state == memberStable && m.epoch == cg.assignmentEpoch:
		return false
	}
	revoke := assignment{}
	m.assigned.each(func(tp tpid) {
		if !m.target.has(tp) {
			revoke.add(tp)
		}
	})
	if revoke.size() > 0 {
		revoke.each(func(tp tpid) { m.assigned.remove(tp) })
		m.revoking = revoke
		m.state = memberUnrevoked
		m.revokeBy = now.Add(max(m.rebalanceTimeout, time.Second))
		return true
	}
	changed := false
	unreleased := false
	m.target.each(func(tp tpid) {
		if m.assigned.has(tp) {
			return
		}
		if owner, held := cg.owners[tp]; held && owner != m.id {
			unreleased = true
			return
		}
		m.assigned.add(tp)
		cg.owners[tp] = m.id
		changed = true
	})
	if m.epoch != cg.assignmentEpoch {
		m.prevEpoch, m.epoch = m.epoch, cg.assignmentEpoch
		changed = true
	}
	state := memberStable
	if unreleased {
		state = memberUnreleased
	}
	if state != m.state {
		m.state = state
		changed = true
	}
	return changed
}

// resolvedTopics is what a member subscribes to that exists now.
func resolvedTopics(m *cmember, topics map[string]TopicMeta) []string {
	var out []string
	for _, t := range m.topics {
		if _, ok := topics[t]; ok {
			out = append(out, t)
		}
	}
	if m.re != nil {
		for t := range topics {
			if m.re.MatchString(t) && !slices.Contains(m.topics, t) {
				out = append(out, t)
			}
		}
	}
	slices.Sort(out)
	return out
}

// fingerprint hashes what the target depends on besides the
// member list: each member's resolved topics and their ids and sizes.
func fingerprint(cg *consumerGroup, topics map[string]TopicMeta) uint64 {
	h := fnv.New64a()
	for _, id := range sortedKeys(cg.members) {
		fmt.Fprintf(h, "%s:", id)
		for _, t := range resolvedTopics(cg.members[id], topics) {
			tm := topics[t]
			fmt.Fprintf(h, "%s/%x/%d,", t, tm.ID, tm.Partitions)
		}
		h.Write([]byte{0})
	}
	return h.Sum64()
}

// topicsChangedLocked reports whether topics the group subscribes to
// appeared, vanished or grew since the target was computed.
func (c *Coordinator) topicsChangedLocked(g *Group) bool {
	cg := g.cons
	topics, version := c.cfg.Topics()
	if version == cg.metaVersion {
		return false
	}
	cg.metaVersion = version
	return fingerprint(cg, topics) != cg.fingerprint
}

// computeTargetLocked runs the group's assignor and returns the members
// whose target changed. The assignment epoch becomes the group epoch.
func (c *Coordinator) computeTargetLocked(g *Group) []string {
	cg := g.cons
	topics, version := c.cfg.Topics()
	votes := map[string]int{}
	in := assignInput{subs: map[string][]string{}, topics: topics, prev: map[string]assignment{}}
	for _, id := range sortedKeys(cg.members) {
		m := cg.members[id]
		in.members = append(in.members, id)
		in.subs[id] = resolvedTopics(m, topics)
		in.prev[id] = m.target
		if m.assignor != "" {
			votes[m.assignor]++
		}
	}
	// The assignor most members ask for (ties by name), as Kafka picks.
	name := defaultAssignor
	for _, a := range sortedKeys(votes) {
		if votes[a] > votes[name] {
			name = a
		}
	}
	out := assignors[name](in)
	var changed []string
	for _, id := range in.members {
		m := cg.members[id]
		next := out[id]
		if next == nil {
			next = assignment{}
		}
		if !next.equal(m.target) {
			m.target = next
			changed = append(changed, id)
		}
	}
	cg.assignor, cg.assignmentEpoch = name, cg.epoch
	cg.metaVersion, cg.fingerprint = version, fingerprint(cg, topics)
	return changed
}

func (c *Coordinator) heartbeatAssignment(a assignment) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	out := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
	for _, id := range sortedTopicIDs(a) {
		t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		t.TopicID, t.Partitions = id, slices.Clone(a[id])
		out.Topics = append(out.Topics, t)
	}
	if out.Topics == nil {
		out.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	}
	return &out
}

func sortedTopicIDs(a assignment) [][16]byte {
	ids := make([][16]byte, 0, len(a))
	for id, ps := range a {
		if len(ps) > 0 {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(x, y [16]byte) int { return strings.Compare(string(x[:]), string(y[:])) })
	return ids
}

// ownedSubset reports whether every reported partition is in a.
func ownedSubset(owned []kmsg.ConsumerGroupHeartbeatRequestTopic, a assignment) bool {
	for _, t := range owned {
		for _, p := range t.Partitions {
			if !a.has(tpid{t.TopicID, p}) {
				return false
			}
		}
	}
	return true
}

// ownsAny reports whether any reported partition is in a.
func ownsAny(owned []kmsg.ConsumerGroupHeartbeatRequestTopic, a assignment) bool {
	for _, t := range owned {
		for _, p := range t.Partitions {
			if a.has(tpid{t.TopicID, p}) {
				return true
			}
		}
	}
	return false
}

// tickConsumerLocked expires members whose session ended and fences those
// that did not revoke within their rebalance timeout; a topic change the
// group subscribes to starts a new epoch.
func (c *Coordinator) tickConsumerLocked(g *Group, now time.Time) {
	cg := g.cons
	var recs []batch.KV
	for _, id := range sortedKeys(cg.members) {
		m := cg.members[id]
		switch {
		case now.After(m.deadline):
			c.log.Info("group member expired", "group", g.id, "member", id)
		case m.state == memberUnrevoked && m.revoking.size() > 0 && now.After(m.revokeBy):
			c.log.Info("group member fenced: it did not revoke within its rebalance timeout", "group", g.id, "member", id)
		default:
			continue
		}
		recs = append(recs, c.removeConsumerMemberLocked(g, m)...)
	}
	if len(recs) == 0 && len(cg.members) > 0 && c.topicsChangedLocked(g) {
		cg.epoch++
		touched := map[string]bool{}
		for _, id := range c.computeTargetLocked(g) {
			touched[id] = true
		}
		recs = append([]batch.KV{{Key: consumerGroupKey(g.id), Value: consumerGroupValue(cg)}}, c.memberRecordsLocked(g, touched, nil)...)
	}
	if len(recs) > 0 {
		c.setConsumerState(g, now)
		c.writeLocked(recs, func(err error) {
			if err != nil {
				cg.dirty = true
			}
		})
	}
}

// DescribeConsumer answers ConsumerGroupDescribe for one group; names
// maps topic ids to names for the answer.
func (c *Coordinator) DescribeConsumer(group string, names map[[16]byte]string) kmsg.ConsumerGroupDescribeResponseGroup {
	d := kmsg.NewConsumerGroupDescribeResponseGroup()
	d.Group = group
	c.mu.Lock()
	defer c.mu.Unlock()
	if code := c.unavailableLocked(); code != 0 {
		d.ErrorCode = code
		return d
	}
	g := c.groups[group]
	switch {
	case g == nil || g.state == Dead:
		d.ErrorCode = kerr.GroupIDNotFound.Code
		msg := fmt.Sprintf("Group %s not found.", group)
		d.ErrorMessage = &msg
		return d
	case g.cons == nil:
		d.ErrorCode = kerr.GroupIDNotFound.Code
		msg := fmt.Sprintf("Group %s is not a consumer group.", group)
		d.ErrorMessage = &msg
		return d
	}
	cg := g.cons
	d.State, d.Epoch, d.AssignmentEpoch, d.AssignorName = g.state.String(), cg.epoch, cg.assignmentEpoch, cg.assignor
	if d.AssignorName == "" {
		d.AssignorName = defaultAssignor
	}
	toKmsg := func(a assignment) kmsg.Assignment {
		var out kmsg.Assignment
		for _, id := range sortedTopicIDs(a) {
			tp := kmsg.NewAssignmentTopicPartition()
			tp.TopicID, tp.Topic, tp.Partitions = id, names[id], slices.Clone(a[id])
			out.TopicPartitions = append(out.TopicPartitions, tp)
		}
		return out
	}
	for _, id := range sortedKeys(cg.members) {
		m := cg.members[id]
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.RackID = m.id, m.instanceID, m.rackID
		dm.MemberEpoch = m.epoch
		if m.left {
			dm.MemberEpoch = -2
		}
		dm.ClientID, dm.ClientHost = m.clientID, m.clientHost
		dm.SubscribedTopics = slices.Clone(m.topics)
		if dm.SubscribedTopics == nil {
			dm.SubscribedTopics = []string{}
		}
		if m.regex != "" {
			re := m.regex
			dm.SubscribedTopicRegex = &re
		}
		dm.Assignment, dm.TargetAssignment = toKmsg(m.assigned), toKmsg(m.target)
		dm.MemberType = 1 // the consumer protocol
		d.Members = append(d.Members, dm)
	}
	return d
}

// describeConsumerAsClassic renders a consumer-protocol group for
// DescribeGroups, as a classic "consumer" group would look: members with
// their subscriptions and current assignments in the consumer embedded
// protocol's encoding, so tools that compute lag from DescribeGroups work.
func describeConsumerAsClassic(g *Group, names map[[16]byte]string, d *kmsg.DescribeGroupsResponseGroup) {
	cg := g.cons
	d.ProtocolType = "consumer"
	d.Protocol = cg.assignor
	for _, id := range sortedKeys(cg.members) {
		m := cg.members[id]
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		md := kmsg.NewConsumerMemberMetadata()
		md.Version = 0
		md.Topics = slices.Clone(m.topics)
		dm.ProtocolMetadata = md.AppendTo(nil)
		ma := kmsg.NewConsumerMemberAssignment()
		ma.Version = 0
		for _, tid := range sortedTopicIDs(m.assigned) {
			if name, ok := names[tid]; ok {
				t := kmsg.NewConsumerMemberAssignmentTopic()
				t.Topic, t.Partitions = name, slices.Clone(m.assigned[tid])
				ma.Topics = append(ma.Topics, t)
			}
		}
		dm.MemberAssignment = ma.AppendTo(nil)
		d.Members = append(d.Members, dm)
	}
}

// consumerSubscribedTopics is every topic a consumer group's members
// subscribe to or are assigned.
func (g *Group) consumerSubscribedTopics(c *Coordinator) map[string]bool {
	topics, _ := c.cfg.Topics()
	byID := map[[16]byte]string{}
	for name, tm := range topics {
		byID[tm.ID] = name
	}
	out := map[string]bool{}
	for _, m := range g.cons.members {
		for _, t := range m.topics {
			out[t] = true
		}
		for _, t := range resolvedTopics(m, topics) {
			out[t] = true
		}
		for _, a := range []assignment{m.assigned, m.revoking} {
			for id := range a {
				if name, ok := byID[id]; ok {
					out[name] = true
				}
			}
		}
	}
	return out
}

// checkConsumerMember validates an OffsetCommit's or OffsetFetch's member
// of a consumer group: it must be there at the epoch it names.
func checkConsumerMember(cg *consumerGroup, memberID string, epoch int32) int16 {
	m := cg.members[memberID]
	if m == nil || m.left {
		return kerr.UnknownMemberID.Code
	}
	if epoch != m.epoch {
		return kerr.StaleMemberEpoch.Code
	}
	return 0
}
