package group

import (
	"crypto/md5"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// fakeTopics is Config.Topics over a map that tests change.
type fakeTopics struct {
	mu sync.Mutex
	m  map[string]TopicMeta
	v  uint64
}

func fakeTopicID(name string) [16]byte { return md5.Sum([]byte(name)) }

func (ft *fakeTopics) get() (map[string]TopicMeta, uint64) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	return ft.m, ft.v
}

// set creates or resizes a topic (a fresh map: the old one stays as it was).
func (ft *fakeTopics) set(name string, partitions int32) {
	ft.mu.Lock()
	defer ft.mu.Unlock()
	m := make(map[string]TopicMeta, len(ft.m)+1)
	for k, v := range ft.m {
		m[k] = v
	}
	m[name] = TopicMeta{ID: fakeTopicID(name), Partitions: partitions}
	ft.m = m
	ft.v++
}

func newConsumerFixture(t *testing.T) (*fixture, *fakeTopics) {
	ft := &fakeTopics{}
	ft.set("orders", 6)
	f := newFixtureWith(t, func(c *Config) {
		c.Topics = ft.get
		c.ConsumerSessionTimeout = 10 * time.Second
		c.ConsumerHeartbeatInterval = time.Second
	})
	return f, ft
}

func (f *fixture) consumerHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest) *kmsg.ConsumerGroupHeartbeatResponse {
	f.t.Helper()
	ch := make(chan *kmsg.ConsumerGroupHeartbeatResponse, 1)
	f.c.ConsumerHeartbeat(req, "client", "/127.0.0.1", func(r *kmsg.ConsumerGroupHeartbeatResponse) { ch <- r })
	return recv(f.t, ch)
}

// sim848 is a client following the consumer protocol: it owns what its
// last assignment said, gives up the rest at once, and reports what it
// owns in full heartbeats.
type sim848 struct {
	id       string
	instance *string
	epoch    int32
	owned    assignment
	topics   []string
	regex    string
	assignor string
	lastOK   time.Time // of the last answered heartbeat
	needAck  bool      // it gave partitions up and must say so
	autoAck  bool      // says so in its next heartbeat, as real clients do
	// releasing: revoked partitions a client still works on (committing)
	// for a few keepalive heartbeats before it lets go, as franz-go does;
	// it must be done within the rebalance timeout (5s) of releaseFrom.
	releasing    assignment
	releaseBeats int
	releaseFrom  time.Time
	slowRelease  bool      // keep revoked partitions for a few heartbeats
	revokeFrom   time.Time // when it was told to revoke (needAck)
}

var simIDs int

func newSim(topics ...string) *sim848 {
	simIDs++
	return &sim848{id: fmt.Sprintf("m%03d", simIDs), owned: assignment{}, topics: topics}
}

func (s *sim848) req(full bool) *kmsg.ConsumerGroupHeartbeatRequest {
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version = 1
	r.Group, r.MemberID, r.MemberEpoch, r.InstanceID = "g", s.id, s.epoch, s.instance
	r.RebalanceTimeoutMillis = -1
	if full || s.epoch == 0 {
		r.RebalanceTimeoutMillis = 5000
		r.SubscribedTopicNames = append([]string{}, s.topics...)
		if s.regex != "" {
			re := s.regex
			r.SubscribedTopicRegex = &re
		}
		if s.assignor != "" {
			a := s.assignor
			r.ServerAssignor = &a
		}
		r.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		if s.epoch != 0 {
			for _, id := range sortedTopicIDs(s.owned) {
				r.Topics = append(r.Topics, kmsg.ConsumerGroupHeartbeatRequestTopic{TopicID: id, Partitions: slices.Clone(s.owned[id])})
			}
		}
	}
	return r
}

// beat sends one heartbeat and applies the answer as a client would.
func (s *sim848) beat(f *fixture, full bool) *kmsg.ConsumerGroupHeartbeatResponse {
	f.t.Helper()
	if s.releasing.size() > 0 {
		if s.releaseBeats > 0 {
			s.releaseBeats--
			full = false // keepalives while it finishes with them
		} else {
			s.releasing = assignment{}
		}
	}
	resp := f.consumerHeartbeat(s.req(full || (s.autoAck && s.needAck && s.releasing.size() == 0)))
	switch resp.ErrorCode {
	case 0:
		if s.releasing.size() == 0 {
			s.needAck = false // this heartbeat said what it owns
		}
		s.epoch, s.lastOK = resp.MemberEpoch, f.clock()
		if resp.Assignment != nil {
			next := assignment{}
			for _, t := range resp.Assignment.Topics {
				for _, p := range t.Partitions {
					next.add(tpid{t.TopicID, p})
				}
			}
			s.owned.each(func(tp tpid) {
				if !next.has(tp) {
					if !s.needAck {
						s.revokeFrom = f.clock()
					}
					s.needAck = true
					if s.slowRelease {
						if s.releasing == nil || s.releasing.size() == 0 {
							s.releasing, s.releaseFrom, s.releaseBeats = assignment{}, f.clock(), 1+int(f.clock().UnixNano()%3)
						}
						s.releasing.add(tp)
					}
				}
			})
			s.owned = next
		}
	case kerr.FencedMemberEpoch.Code:
		s.owned, s.releasing, s.epoch = assignment{}, assignment{}, 0
	case kerr.UnknownMemberID.Code:
		simIDs++
		s.owned, s.releasing, s.epoch, s.id = assignment{}, assignment{}, 0, fmt.Sprintf("m%03d", simIDs)
	}
	return resp
}

func (s *sim848) mustBeat(f *fixture, full bool) *kmsg.ConsumerGroupHeartbeatResponse {
	f.t.Helper()
	resp := s.beat(f, full)
	if resp.ErrorCode != 0 {
		f.t.Fatalf("member %s heartbeat: %v", s.id, kerr.ErrorForCode(resp.ErrorCode))
	}
	return resp
}

func (s *sim848) leave(f *fixture, static bool) *kmsg.ConsumerGroupHeartbeatResponse {
	f.t.Helper()
	r := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	r.Version = 1
	r.Group, r.MemberID, r.MemberEpoch, r.InstanceID = "g", s.id, -1, s.instance
	if static {
		r.MemberEpoch = -2
	}
	resp := f.consumerHeartbeat(r)
	s.owned = assignment{}
	return resp
}

func owned(a assignment, topic string) []int32 { return a[fakeTopicID(topic)] }

// checkDisjoint fails if two clients believe they own one partition. A
// client whose session may have ended (no answer for a session timeout)
// stops consuming first, as the protocol expects of it.
func checkDisjoint(t *testing.T, step string, sims []*sim848, now time.Time) {
	t.Helper()
	seen := map[tpid]string{}
	for _, s := range sims {
		if !now.IsZero() && now.Sub(s.lastOK) >= 10*time.Second {
			s.owned, s.releasing = assignment{}, assignment{}
		}
		if !now.IsZero() && s.needAck && now.Sub(s.revokeFrom) >= 5*time.Second {
			// Not done revoking within the rebalance timeout: it
			// will be fenced, so it stops.
			s.owned, s.releasing = assignment{}, assignment{}
		}
		for _, a := range []assignment{s.owned, s.releasing} {
			a.each(func(tp tpid) {
				if o, ok := seen[tp]; ok {
					t.Fatalf("%s: partition %d owned by %s and %s", step, tp.partition, o, s.id)
				}
				seen[tp] = s.id
			})
		}
	}
}

// checkOwners checks the coordinator's own bookkeeping: every partition a
// member holds is recorded as held by it, and by no one else.
func checkOwners(t *testing.T, c *Coordinator) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, g := range c.groups {
		if g.cons == nil {
			continue
		}
		holders := map[tpid]string{}
		for id, m := range g.cons.members {
			for _, a := range []assignment{m.assigned, m.revoking} {
				a.each(func(tp tpid) {
					if o, ok := holders[tp]; ok {
						t.Fatalf("partition %v held by %s and %s", tp, o, id)
					}
					holders[tp] = id
				})
			}
		}
		for tp, id := range holders {
			if g.cons.owners[tp] != id {
				t.Fatalf("partition %v held by %s but recorded for %q", tp, id, g.cons.owners[tp])
			}
		}
		for tp, id := range g.cons.owners {
			if holders[tp] != id {
				t.Fatalf("partition %v recorded for %s, who does not hold it", tp, id)
			}
		}
	}
}

func TestConsumerGroupJoinRevokeAssign(t *testing.T) {
	f, _ := newConsumerFixture(t)
	a, b := newSim("orders"), newSim("orders")
	r := a.mustBeat(f, true)
	if r.MemberEpoch != 1 || len(owned(a.owned, "orders")) != 6 || r.HeartbeatIntervalMillis != 1000 {
		t.Fatalf("first member: epoch %d, owns %v, interval %d", r.MemberEpoch, a.owned, r.HeartbeatIntervalMillis)
	}
	// B joins: epoch 2, but every partition it is to get is A's still.
	r = b.mustBeat(f, true)
	if r.MemberEpoch != 2 || b.owned.size() != 0 || r.Assignment == nil {
		t.Fatalf("second member: epoch %d, owns %v", r.MemberEpoch, b.owned)
	}
	// A is told to give up three, and stays at epoch 1 until it has.
	r = a.mustBeat(f, false)
	if r.MemberEpoch != 1 || len(owned(a.owned, "orders")) != 3 {
		t.Fatalf("revocation: epoch %d, owns %v", r.MemberEpoch, a.owned)
	}
	checkDisjoint(t, "revoking", []*sim848{a, b}, time.Time{})
	// A keepalive (no owned partitions) acknowledges nothing.
	if r = b.mustBeat(f, false); b.owned.size() != 0 {
		t.Fatalf("B got %v before A released them", b.owned)
	}
	a.mustBeat(f, false)
	if a.epoch != 1 {
		t.Fatalf("a keepalive moved A to epoch %d", a.epoch)
	}
	// A full heartbeat without them is the acknowledgement.
	if r = a.mustBeat(f, true); r.MemberEpoch != 2 || len(owned(a.owned, "orders")) != 3 {
		t.Fatalf("after revoking: epoch %d, owns %v", r.MemberEpoch, a.owned)
	}
	if r = b.mustBeat(f, false); r.MemberEpoch != 2 || len(owned(b.owned, "orders")) != 3 || r.Assignment == nil {
		t.Fatalf("B after release: epoch %d, owns %v", r.MemberEpoch, b.owned)
	}
	checkDisjoint(t, "stable", []*sim848{a, b}, time.Time{})
	checkOwners(t, f.c)
	// Nothing changed: a keepalive carries no assignment.
	if r = b.mustBeat(f, false); r.Assignment != nil {
		t.Fatalf("keepalive answered with %+v", r.Assignment)
	}

	d := f.c.DescribeConsumer("g", map[[16]byte]string{fakeTopicID("orders"): "orders"})
	if d.ErrorCode != 0 || d.State != "Stable" || d.Epoch != 2 || d.AssignmentEpoch != 2 || d.AssignorName != "uniform" || len(d.Members) != 2 {
		t.Fatalf("describe: %+v", d)
	}
	for _, m := range d.Members {
		if m.MemberEpoch != 2 || len(m.Assignment.TopicPartitions) != 1 || m.Assignment.TopicPartitions[0].Topic != "orders" ||
			len(m.Assignment.TopicPartitions[0].Partitions) != 3 || m.MemberType != 1 {
			t.Fatalf("described member %+v", m)
		}
	}
	if infos, _ := f.c.List(); len(infos) != 1 || infos[0].Type != "consumer" || infos[0].State != Stable || infos[0].ProtocolType != "consumer" {
		t.Fatalf("list: %+v", infos)
	}
	dg := f.c.Describe("g", map[[16]byte]string{fakeTopicID("orders"): "orders"})
	if dg.State != "Stable" || dg.ProtocolType != "consumer" || len(dg.Members) != 2 {
		t.Fatalf("DescribeGroups of a consumer group: %+v", dg)
	}
	var ma kmsg.ConsumerMemberAssignment
	if err := ma.ReadFrom(dg.Members[0].MemberAssignment); err != nil || len(ma.Topics) != 1 || len(ma.Topics[0].Partitions) != 3 {
		t.Fatalf("DescribeGroups member assignment: %+v %v", ma, err)
	}

	// A leaves: B gets everything.
	if r = a.leave(f, false); r.ErrorCode != 0 || r.MemberEpoch != -1 {
		t.Fatalf("leave: %+v", r)
	}
	if r = b.mustBeat(f, false); r.MemberEpoch != 3 || len(owned(b.owned, "orders")) != 6 {
		t.Fatalf("after A left: epoch %d, owns %v", r.MemberEpoch, b.owned)
	}
	checkOwners(t, f.c)
}

func TestConsumerGroupValidationAndFencing(t *testing.T) {
	f, _ := newConsumerFixture(t)
	a := newSim("orders")
	a.mustBeat(f, true)
	b := newSim("orders")
	b.mustBeat(f, true) // epoch 2
	a.mustBeat(f, false)
	a.mustBeat(f, true) // A: epoch 2
	if a.epoch != 2 {
		t.Fatalf("A at epoch %d", a.epoch)
	}

	code := func(mod func(*kmsg.ConsumerGroupHeartbeatRequest)) int16 {
		t.Helper()
		r := a.req(true)
		mod(r)
		return f.consumerHeartbeat(r).ErrorCode
	}
	for name, tc := range map[string]struct {
		mod  func(*kmsg.ConsumerGroupHeartbeatRequest)
		want *kerr.Error
	}{
		"future epoch":         {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = 3 }, kerr.FencedMemberEpoch},
		"old epoch":            {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = 0 + 1; r.Topics = nil }, kerr.FencedMemberEpoch},
		"unknown member":       {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "nobody" }, kerr.UnknownMemberID},
		"empty member id":      {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID = "" }, kerr.InvalidRequest},
		"empty group":          {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Group = "" }, kerr.InvalidRequest},
		"epoch -3":             {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -3 }, kerr.InvalidRequest},
		"static leave no inst": {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberEpoch = -2 }, kerr.InvalidRequest},
		"join owning":          {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.MemberID, r.MemberEpoch = "new", 0 }, kerr.InvalidRequest},
		"join no subscription": {func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.MemberID, r.MemberEpoch, r.Topics, r.SubscribedTopicNames = "new", 0, nil, nil
		}, kerr.InvalidRequest},
		"join no timeout": {func(r *kmsg.ConsumerGroupHeartbeatRequest) {
			r.MemberID, r.MemberEpoch, r.Topics, r.RebalanceTimeoutMillis = "new", 0, nil, -1
		}, kerr.InvalidRequest},
		"bad assignor":  {func(r *kmsg.ConsumerGroupHeartbeatRequest) { s := "sticky"; r.ServerAssignor = &s }, kerr.UnsupportedAssignor},
		"bad regex":     {func(r *kmsg.ConsumerGroupHeartbeatRequest) { s := "orders("; r.SubscribedTopicRegex = &s }, kerr.InvalidRegularExpression},
		"unknown group": {func(r *kmsg.ConsumerGroupHeartbeatRequest) { r.Group = "other" }, kerr.UnknownMemberID},
	} {
		if got := code(tc.mod); got != tc.want.Code {
			t.Errorf("%s: %v, want %v", name, kerr.ErrorForCode(got), tc.want)
		}
	}
	// The previous epoch is accepted from a member owning no more than it
	// was given (it lost the answer that moved it on).
	r := a.req(true)
	r.MemberEpoch = 1
	if resp := f.consumerHeartbeat(r); resp.ErrorCode != 0 || resp.MemberEpoch != 2 || resp.Assignment == nil {
		t.Fatalf("previous epoch with a subset: %+v", resp)
	}
	// A fenced member rejoins at epoch 0 under its id and gets its
	// assignment back.
	a.owned, a.epoch = assignment{}, 0
	if resp := a.mustBeat(f, true); resp.MemberEpoch != 2 || len(owned(a.owned, "orders")) != 3 {
		t.Fatalf("rejoin: epoch %d, owns %v", resp.MemberEpoch, a.owned)
	}
	checkOwners(t, f.c)

	// The classic protocol and the consumer protocol do not mix in one
	// live group.
	if r := recv(t, f.join(joinReq("g", "", nil))); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("JoinGroup on a consumer group: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	_, jc := f.joinNew("classic")
	f.advance(200 * time.Millisecond)
	recv(t, jc)
	r = newSim("orders").req(true)
	r.Group = "classic"
	if resp := f.consumerHeartbeat(r); resp.ErrorCode != kerr.GroupIDNotFound.Code {
		t.Fatalf("ConsumerGroupHeartbeat on a live classic group: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
}

func TestConsumerGroupExpiryAndRebalanceTimeout(t *testing.T) {
	f, _ := newConsumerFixture(t)
	a, b := newSim("orders"), newSim("orders")
	a.mustBeat(f, true)
	b.mustBeat(f, true)
	a.mustBeat(f, false)
	a.mustBeat(f, true)
	b.mustBeat(f, false)
	// B goes silent; A keeps heartbeating; B's session ends after 10s.
	for i := 0; i < 6; i++ {
		f.advance(2 * time.Second)
		a.mustBeat(f, false)
	}
	if len(owned(a.owned, "orders")) != 6 {
		t.Fatalf("after B expired A owns %v", a.owned)
	}

	// C joins; A never acknowledges the revocation: after its rebalance
	// timeout (5s) it is fenced and C gets everything.
	c := newSim("orders")
	c.mustBeat(f, true)
	a.mustBeat(f, false) // told to revoke
	if len(owned(a.owned, "orders")) != 3 {
		t.Fatalf("A not told to revoke: %v", a.owned)
	}
	for i := 0; i < 3; i++ {
		f.advance(2 * time.Second)
		r := a.req(false) // keepalives only: it never says it gave them up
		f.consumerHeartbeat(r)
		c.mustBeat(f, false)
	}
	if resp := a.beat(f, false); resp.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("A after its rebalance timeout: %v", kerr.ErrorForCode(resp.ErrorCode))
	}
	c.mustBeat(f, false)
	if len(owned(c.owned, "orders")) != 6 {
		t.Fatalf("C owns %v after A was fenced", c.owned)
	}
	checkOwners(t, f.c)
}

func TestConsumerGroupStaticMembers(t *testing.T) {
	f, _ := newConsumerFixture(t)
	inst := "instance-1"
	a, b := newSim("orders"), newSim("orders")
	a.instance = &inst
	a.mustBeat(f, true)
	b.mustBeat(f, true)
	a.mustBeat(f, false)
	a.mustBeat(f, true)
	b.mustBeat(f, false)
	mine := slices.Clone(owned(a.owned, "orders"))
	epoch := a.epoch

	// A second process with the same instance id cannot join while A is in.
	dup := newSim("orders")
	dup.instance = &inst
	if r := dup.beat(f, true); r.ErrorCode != kerr.UnreleasedInstanceID.Code {
		t.Fatalf("duplicate instance: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	// A leaves for a restart: its partitions wait for it.
	if r := a.leave(f, true); r.ErrorCode != 0 || r.MemberEpoch != -2 {
		t.Fatalf("static leave: %+v", r)
	}
	b.mustBeat(f, true)
	if len(owned(b.owned, "orders")) != 3 {
		t.Fatalf("B took a departed static member's partitions: %v", b.owned)
	}
	// It comes back under a new member id: same partitions, no new epoch.
	a2 := newSim("orders")
	a2.instance = &inst
	r := a2.mustBeat(f, true)
	if r.MemberEpoch != epoch || !slices.Equal(owned(a2.owned, "orders"), mine) {
		t.Fatalf("static rejoin: epoch %d (was %d), owns %v (had %v)", r.MemberEpoch, epoch, a2.owned, mine)
	}
	if r := a.beat(f, false); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("the old member id after replacement: %v", kerr.ErrorForCode(r.ErrorCode))
	}
	checkOwners(t, f.c)
	// Gone for good: after the session timeout B takes over.
	a2.leave(f, true)
	for i := 0; i < 6; i++ {
		f.advance(2 * time.Second)
		b.mustBeat(f, true)
	}
	if len(owned(b.owned, "orders")) != 6 {
		t.Fatalf("B owns %v after the static member's session ended", b.owned)
	}
}

func TestConsumerGroupTopicChanges(t *testing.T) {
	f, ft := newConsumerFixture(t)
	a := newSim("orders")
	a.regex = "audit-.*"
	a.mustBeat(f, true)
	if a.owned.size() != 6 {
		t.Fatalf("owns %v", a.owned)
	}
	ft.set("orders", 8)
	ft.set("audit-1", 2)
	ft.set("unrelated", 4)
	f.advance(100 * time.Millisecond)
	r := a.mustBeat(f, false)
	if r.MemberEpoch != 2 || len(owned(a.owned, "orders")) != 8 || len(owned(a.owned, "audit-1")) != 2 || len(owned(a.owned, "unrelated")) != 0 {
		t.Fatalf("after topic changes: epoch %d, owns %v", r.MemberEpoch, a.owned)
	}
	// The range assignor, once every member asks for it.
	b := newSim("orders")
	b.assignor, a.assignor = "range", "range"
	b.mustBeat(f, true)
	a.mustBeat(f, true)
	a.mustBeat(f, true)
	b.mustBeat(f, true)
	if got := owned(b.owned, "orders"); !slices.Equal(got, []int32{0, 1, 2, 3}) && !slices.Equal(got, []int32{4, 5, 6, 7}) {
		t.Fatalf("range: B owns %v of orders", got)
	}
	checkDisjoint(t, "range", []*sim848{a, b}, time.Time{})
}

func TestConsumerGroupOffsetsAndAdmin(t *testing.T) {
	f, _ := newConsumerFixture(t)
	a := newSim("orders")
	a.mustBeat(f, true)
	commit := func(version int16, member string, epoch int32) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Version = version
		req.Group, req.MemberID, req.Generation = "g", member, epoch
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "orders"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, 42
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		ch := make(chan *kmsg.OffsetCommitResponse, 1)
		f.c.Commit(req, func(r *kmsg.OffsetCommitResponse) { ch <- r })
		return recv(t, ch).Topics[0].Partitions[0].ErrorCode
	}
	if c := commit(9, a.id, a.epoch); c != 0 {
		t.Fatalf("member commit: %v", kerr.ErrorForCode(c))
	}
	for name, tc := range map[string]struct {
		version int16
		member  string
		epoch   int32
		want    *kerr.Error
	}{
		"stale epoch":        {9, a.id, a.epoch - 1, kerr.StaleMemberEpoch},
		"unknown member":     {9, "nobody", 1, kerr.UnknownMemberID},
		"outside, non-empty": {9, "", -1, kerr.UnknownMemberID},
		"old version":        {8, a.id, a.epoch, kerr.UnsupportedVersion},
	} {
		if c := commit(tc.version, tc.member, tc.epoch); c != tc.want.Code {
			t.Errorf("%s: %v, want %v", name, kerr.ErrorForCode(c), tc.want)
		}
	}
	if _, c := f.c.FetchOffsetsAs("g", a.id, a.epoch+1, nil); c != kerr.StaleMemberEpoch.Code {
		t.Fatalf("fetch at a wrong epoch: %v", kerr.ErrorForCode(c))
	}
	if offs, c := f.c.FetchOffsetsAs("g", a.id, a.epoch, map[string][]int32{"orders": {0}}); c != 0 || offs[TP{"orders", 0}].Offset != 42 {
		t.Fatalf("fetch: %v %v", offs, kerr.ErrorForCode(c))
	}
	del := make(chan int16, 1)
	f.c.Delete("g", func(c int16) { del <- c })
	if c := recv(t, del); c != kerr.NonEmptyGroup.Code {
		t.Fatalf("delete with a member: %v", kerr.ErrorForCode(c))
	}
	a.leave(f, false)
	if c := commit(9, "", -1); c != 0 {
		t.Fatalf("commit from outside an empty group: %v", kerr.ErrorForCode(c))
	}
	// Replayed, the group keeps its offsets and type.
	c2 := f.replay()
	if offs, _ := c2.FetchOffsets("g", map[string][]int32{"orders": {0}}); offs[TP{"orders", 0}].Offset != 42 {
		t.Fatalf("replayed offsets: %v", offs)
	}
	if infos, _ := c2.List(); len(infos) != 1 || infos[0].Type != "consumer" || infos[0].State != Empty {
		t.Fatalf("replayed list: %+v", infos)
	}
	f.c.Delete("g", func(c int16) { del <- c })
	if c := recv(t, del); c != 0 {
		t.Fatalf("delete empty: %v", kerr.ErrorForCode(c))
	}
	if infos, _ := f.replay().List(); len(infos) != 0 {
		t.Fatalf("deleted group replayed: %+v", infos)
	}
}

// TestConsumerGroupReplayMidRevocation moves the coordinator while a
// revocation is under way: the new one continues it with the same epochs.
func TestConsumerGroupReplayMidRevocation(t *testing.T) {
	f, _ := newConsumerFixture(t)
	a, b := newSim("orders"), newSim("orders")
	a.mustBeat(f, true)
	b.mustBeat(f, true)
	a.mustBeat(f, false) // revoking three
	old := f.c
	f.c = f.replay()
	old.Close()
	checkOwners(t, f.c)
	if b.mustBeat(f, false); b.owned.size() != 0 {
		t.Fatalf("B got %v before A released them (after replay)", b.owned)
	}
	a.mustBeat(f, true)
	b.mustBeat(f, false)
	if a.epoch != 2 || b.epoch != 2 || a.owned.size() != 3 || b.owned.size() != 3 {
		t.Fatalf("after replay: A epoch %d owns %v, B epoch %d owns %v", a.epoch, a.owned, b.epoch, b.owned)
	}
	checkDisjoint(t, "after replay", []*sim848{a, b}, time.Time{})
	d := f.c.DescribeConsumer("g", nil)
	if d.State != "Stable" || d.Epoch != 2 {
		t.Fatalf("describe after replay: %+v", d)
	}
}

// TestConsumerGroupRandomHistory drives the coordinator with random
// joins, heartbeats, leaves, crashes, static restarts, topic growth, clock
// jumps and coordinator moves, checking at every step that no two
// clients believe they own one partition and that the coordinator's
// bookkeeping agrees with itself; then, left alone, the group settles with
// every partition owned and the load spread evenly.
func TestConsumerGroupRandomHistory(t *testing.T) {
	for seed := uint64(1); seed <= 50; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 848))
			f, ft := newConsumerFixture(t)
			parts := int32(6)
			var live []*sim848
			var away []*sim848 // static members gone for a restart
			for step := 0; step < 400; step++ {
				what := ""
				switch op := rng.IntN(100); {
				case op < 12 && len(live) < 6:
					s := newSim("orders")
					s.autoAck, s.slowRelease = true, rng.IntN(2) == 0
					if rng.IntN(3) == 0 {
						inst := fmt.Sprintf("i-%d-%d", seed, step)
						s.instance = &inst
					}
					live = append(live, s)
					s.beat(f, true)
					what = "join " + s.id
				case op < 65 && len(live) > 0:
					s := live[rng.IntN(len(live))]
					s.beat(f, rng.IntN(2) == 0)
					what = "heartbeat " + s.id
				case op < 70 && len(live) > 0:
					i := rng.IntN(len(live))
					live[i].leave(f, false)
					what = "leave " + live[i].id
					live = slices.Delete(live, i, i+1)
				case op < 75 && len(live) > 0:
					i := rng.IntN(len(live))
					what = "crash " + live[i].id
					live = slices.Delete(live, i, i+1) // its session runs out
				case op < 79 && len(live) > 0:
					i := rng.IntN(len(live))
					if s := live[i]; s.instance != nil {
						s.leave(f, true)
						away = append(away, s)
						live = slices.Delete(live, i, i+1)
						what = "static leave " + s.id
					}
				case op < 83 && len(away) > 0:
					i := rng.IntN(len(away))
					s := newSim("orders")
					s.autoAck, s.slowRelease = true, rng.IntN(2) == 0
					s.instance = away[i].instance
					away = slices.Delete(away, i, i+1)
					live = append(live, s)
					s.beat(f, true)
					what = "static return " + s.id
				case op < 85 && parts < 12:
					parts++
					ft.set("orders", parts)
					what = fmt.Sprintf("grow to %d partitions", parts)
				case op < 88:
					old := f.c
					f.c = f.replay()
					old.Close()
					what = "coordinator moved"
				default:
					f.advance(time.Duration(rng.IntN(3000)) * time.Millisecond)
					what = "time passes"
				}
				if os.Getenv("TRACE848") != "" {
					t.Logf("step %d: %s", step, what)
					for _, s := range live {
						t.Logf("   %s epoch %d owns %v", s.id, s.epoch, s.owned[fakeTopicID("orders")])
					}
					f.c.mu.Lock()
					if g := f.c.groups["g"]; g != nil && g.cons != nil {
						t.Logf("   group epoch %d", g.cons.epoch)
						for _, id := range sortedKeys(g.cons.members) {
							m := g.cons.members[id]
							t.Logf("   server %s epoch %d/%d %v left=%v assigned %v revoking %v target %v", id, m.epoch, m.prevEpoch, m.state, m.left,
								m.assigned[fakeTopicID("orders")], m.revoking[fakeTopicID("orders")], m.target[fakeTopicID("orders")])
						}
					}
					f.c.mu.Unlock()
				}
				checkDisjoint(t, fmt.Sprintf("step %d (%s)", step, what), live, f.clock())
				checkOwners(t, f.c)
			}
			// Left alone, with everyone heartbeating, it settles.
			for round := 0; round < 40; round++ {
				f.advance(time.Second)
				for _, s := range live {
					s.beat(f, true)
				}
				checkDisjoint(t, fmt.Sprintf("settling round %d", round), live, f.clock())
			}
			if len(live) == 0 {
				return
			}
			total := 0
			counts := []int{}
			for _, s := range live {
				total += s.owned.size()
				counts = append(counts, s.owned.size())
			}
			sort.Ints(counts)
			if total != int(parts) || counts[len(counts)-1]-counts[0] > 1 {
				t.Fatalf("settled with %d of %d partitions owned, counts %v", total, parts, counts)
			}
			if d := f.c.DescribeConsumer("g", nil); d.State != "Stable" {
				t.Fatalf("settled group is %s", d.State)
			}
		})
	}
}

func TestUniformAssignorIsStickyAndBalanced(t *testing.T) {
	topics := map[string]TopicMeta{"a": {ID: fakeTopicID("a"), Partitions: 12}}
	in := assignInput{members: []string{"m1", "m2"}, subs: map[string][]string{"m1": {"a"}, "m2": {"a"}}, topics: topics, prev: map[string]assignment{}}
	two := assignUniform(in)
	if two["m1"].size() != 6 || two["m2"].size() != 6 {
		t.Fatalf("two members: %v", two)
	}
	in.members = append(in.members, "m3")
	in.subs["m3"] = []string{"a"}
	in.prev = two
	three := assignUniform(in)
	moved := 0
	for _, m := range []string{"m1", "m2"} {
		two[m].each(func(tp tpid) {
			if !three[m].has(tp) {
				moved++
			}
		})
	}
	if three["m1"].size() != 4 || three["m2"].size() != 4 || three["m3"].size() != 4 || moved != 4 {
		t.Fatalf("three members: %v (moved %d, want 4)", three, moved)
	}
	// Heterogeneous subscriptions: m3 alone reads b.
	topics["b"] = TopicMeta{ID: fakeTopicID("b"), Partitions: 3}
	in.subs["m3"] = []string{"a", "b"}
	het := assignUniform(in)
	if het["m3"].size() < 5 || len(het["m1"][fakeTopicID("b")]) > 0 {
		t.Fatalf("heterogeneous: %v", het)
	}
	n := het["m1"].size() + het["m2"].size() + het["m3"].size()
	if n != 15 {
		t.Fatalf("heterogeneous: %d of 15 partitions assigned", n)
	}
}
