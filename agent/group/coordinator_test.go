package group

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/tier/batch"
)

// fixture is a coordinator on a fake clock and an in-memory log.
type fixture struct {
	t   *testing.T
	mu  sync.Mutex
	now time.Time
	log []batch.KV
	// failWrites makes writes fail.
	failWrites error
	c          *Coordinator
	// cfg adjusts every coordinator's Config (consumer-protocol tests).
	cfg func(*Config)
}

func newFixture(t *testing.T) *fixture { return newFixtureWith(t, nil) }

func newFixtureWith(t *testing.T, cfg func(*Config)) *fixture {
	f := &fixture{t: t, now: time.Unix(1_700_000_000, 0), cfg: cfg}
	c := Config{
		InitialRebalanceDelay: 100 * time.Millisecond,
		MinSessionTimeout:     time.Second,
		OffsetsRetention:      time.Hour,
		Now:                   f.clock,
		Write:                 f.write,
	}
	if cfg != nil {
		cfg(&c)
	}
	f.c = New(c)
	f.c.Loaded()
	t.Cleanup(f.c.Close)
	return f
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	now := f.now
	f.mu.Unlock()
	f.c.tick(now)
}

func (f *fixture) write(recs []batch.KV, done func(error)) {
	f.mu.Lock()
	err := f.failWrites
	if err == nil {
		f.log = append(f.log, recs...)
	}
	f.mu.Unlock()
	go done(err) // completes later, like a real append
}

// replay builds a new coordinator from everything written, and checks
// that the log as key compaction leaves it (each key's latest record only,
// with its tombstones and without) rebuilds the same state.
func (f *fixture) replay() *Coordinator {
	f.mu.Lock()
	recs := append([]batch.KV(nil), f.log...)
	f.mu.Unlock()
	c := f.replayFrom(recs, f.write)
	f.t.Cleanup(c.Close)
	want := stateRecords(c)
	for _, dropTombstones := range []bool{false, true} {
		// Only compared: it writes nowhere.
		cc := f.replayFrom(compactKVs(recs, dropTombstones), func(_ []batch.KV, done func(error)) { go done(errors.New("read only")) })
		got := stateRecords(cc)
		cc.Close()
		if !slices.EqualFunc(got, want, func(a, b batch.KV) bool {
			return bytes.Equal(a.Key, b.Key) && bytes.Equal(a.Value, b.Value)
		}) {
			f.t.Fatalf("the compacted log (tombstones dropped: %v) rebuilds %d records of state, the whole log %d", dropTombstones, len(got), len(want))
		}
	}
	return c
}

func (f *fixture) replayFrom(recs []batch.KV, write func([]batch.KV, func(error))) *Coordinator {
	cfg := Config{MinSessionTimeout: time.Second, Now: f.clock, Write: write}
	if f.cfg != nil {
		f.cfg(&cfg)
	}
	cfg.Write = write
	c := New(cfg)
	for _, r := range recs {
		if err := c.Apply(r.Key, r.Value, f.clock()); err != nil {
			f.t.Fatal(err)
		}
	}
	c.Loaded()
	return c
}

// compactKVs is recs as key compaction leaves them: a record stays only if
// it is its key's latest, in its place; a latest that is a tombstone
// stays unless dropTombstones.
func compactKVs(recs []batch.KV, dropTombstones bool) []batch.KV {
	latest := map[string]int{}
	for i, r := range recs {
		latest[string(r.Key)] = i
	}
	var out []batch.KV
	for i, r := range recs {
		if latest[string(r.Key)] == i && (r.Value != nil || !dropTombstones) {
			out = append(out, r)
		}
	}
	return out
}

// stateRecords renders a coordinator's whole state as the records that
// would set it, sorted by key: two coordinators with equal ones serve
// alike.
func stateRecords(c *Coordinator) []batch.KV {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []batch.KV
	for _, id := range sortedKeys(c.groups) {
		g := c.groups[id]
		if g.cons != nil {
			out = append(out, consumerRecords(g)...)
		} else if g.protocolType != "" || len(g.members) > 0 || g.generation > 0 {
			out = append(out, batch.KV{Key: groupKey(id), Value: groupValue(g)})
		}
		for tp, o := range g.offsets {
			out = append(out, batch.KV{Key: offsetKey(id, tp.Topic, tp.Partition), Value: offsetValue(o)})
		}
	}
	slices.SortFunc(out, func(a, b batch.KV) int { return bytes.Compare(a.Key, b.Key) })
	return out
}

// consumerRecords renders a consumer-protocol group's records.
func consumerRecords(g *Group) []batch.KV {
	out := []batch.KV{{Key: consumerGroupKey(g.id), Value: consumerGroupValue(g.cons)}}
	for _, id := range sortedKeys(g.cons.members) {
		out = append(out, batch.KV{Key: consumerMemberKey(g.id, id), Value: consumerMemberValue(g.cons.members[id])})
	}
	return out
}

func joinReq(group, member string, instance *string) *kmsg.JoinGroupRequest {
	r := kmsg.NewPtrJoinGroupRequest()
	r.Version = 9
	r.Group, r.MemberID, r.InstanceID = group, member, instance
	r.SessionTimeoutMillis, r.RebalanceTimeoutMillis = 10_000, 5_000
	r.ProtocolType = "consumer"
	md := kmsg.NewConsumerMemberMetadata()
	md.Topics = []string{"orders"}
	r.Protocols = []kmsg.JoinGroupRequestProtocol{{Name: "range", Metadata: md.AppendTo(nil)}}
	return r
}

// join sends a JoinGroup and returns a channel for its answer.
func (f *fixture) join(req *kmsg.JoinGroupRequest) <-chan *kmsg.JoinGroupResponse {
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	f.c.Join(req, "client", "/127.0.0.1", func(r *kmsg.JoinGroupResponse) { ch <- r })
	return ch
}

func recv[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(5 * time.Second):
		t.Fatal("no answer")
		var zero T
		return zero
	}
}

func none[T any](t *testing.T, ch <-chan T) {
	t.Helper()
	select {
	case v := <-ch:
		t.Fatalf("unexpected answer %+v", v)
	case <-time.After(30 * time.Millisecond):
	}
}

// joinNew does the two-step join of a new member (MEMBER_ID_REQUIRED,
// then the real join) and returns the pending answer.
func (f *fixture) joinNew(group string) (string, <-chan *kmsg.JoinGroupResponse) {
	f.t.Helper()
	r := recv(f.t, f.join(joinReq(group, "", nil)))
	if r.ErrorCode != kerr.MemberIDRequired.Code || r.MemberID == "" {
		f.t.Fatalf("first join: %+v", r)
	}
	return r.MemberID, f.join(joinReq(group, r.MemberID, nil))
}

func (f *fixture) sync(group, member string, gen int32, assign map[string]string) <-chan *kmsg.SyncGroupResponse {
	req := kmsg.NewPtrSyncGroupRequest()
	req.Version = 5
	req.Group, req.MemberID, req.Generation = group, member, gen
	for m, a := range assign {
		req.GroupAssignment = append(req.GroupAssignment, kmsg.SyncGroupRequestGroupAssignment{MemberID: m, MemberAssignment: []byte(a)})
	}
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	f.c.Sync(req, func(r *kmsg.SyncGroupResponse) { ch <- r })
	return ch
}

func (f *fixture) heartbeat(group, member string, gen int32) int16 {
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.MemberID, req.Generation = group, member, gen
	return f.c.Heartbeat(req)
}

func (f *fixture) commit(group, member string, gen int32, offset int64) int16 {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Version = 8
	req.Group, req.MemberID, req.Generation = group, member, gen
	rt := kmsg.NewOffsetCommitRequestTopic()
	rt.Topic = "orders"
	rp := kmsg.NewOffsetCommitRequestTopicPartition()
	rp.Partition, rp.Offset, rp.LeaderEpoch = 0, offset, 3
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ch := make(chan *kmsg.OffsetCommitResponse, 1)
	f.c.Commit(req, func(r *kmsg.OffsetCommitResponse) { ch <- r })
	return recv(f.t, ch).Topics[0].Partitions[0].ErrorCode
}

// stableGroup brings up a group of two members and returns their ids and
// the generation.
func (f *fixture) stableGroup(group string) (leader, follower string, gen int32) {
	f.t.Helper()
	a, ja := f.joinNew(group)
	b, jb := f.joinNew(group)
	none(f.t, ja) // the first rebalance waits for more members
	f.advance(200 * time.Millisecond)
	ra, rb := recv(f.t, ja), recv(f.t, jb)
	if ra.ErrorCode != 0 || rb.ErrorCode != 0 || ra.Generation != rb.Generation {
		f.t.Fatalf("joins: %+v %+v", ra, rb)
	}
	leader, follower = ra.LeaderID, a
	if leader == a {
		follower = b
	}
	lead := ra
	if ra.MemberID != leader {
		lead = rb
	}
	if len(lead.Members) != 2 {
		f.t.Fatalf("leader got %d members", len(lead.Members))
	}
	sf := f.sync(group, follower, ra.Generation, nil)
	none(f.t, sf)
	sl := f.sync(group, leader, ra.Generation, map[string]string{leader: "L", follower: "F"})
	if r := recv(f.t, sl); r.ErrorCode != 0 || string(r.MemberAssignment) != "L" {
		f.t.Fatalf("leader sync: %+v", r)
	}
	if r := recv(f.t, sf); r.ErrorCode != 0 || string(r.MemberAssignment) != "F" {
		f.t.Fatalf("follower sync: %+v", r)
	}
	return leader, follower, ra.Generation
}

func TestJoinSyncStable(t *testing.T) {
	f := newFixture(t)
	leader, follower, gen := f.stableGroup("g")
	if st, _, _ := f.c.Since("g"); st != Stable {
		t.Fatalf("state %v", st)
	}
	if code := f.heartbeat("g", follower, gen); code != 0 {
		t.Fatalf("heartbeat: %d", code)
	}
	if code := f.heartbeat("g", follower, gen-1); code != kerr.IllegalGeneration.Code {
		t.Fatalf("old generation: %d", code)
	}
	if code := f.heartbeat("g", "nobody", gen); code != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown member: %d", code)
	}
	// A third member triggers a rebalance: the others learn it from
	// their heartbeats and rejoin.
	_, jc := f.joinNew("g")
	none(t, jc)
	if code := f.heartbeat("g", leader, gen); code != kerr.RebalanceInProgress.Code {
		t.Fatalf("heartbeat during rebalance: %d", code)
	}
	ja, jb := f.join(joinReq("g", leader, nil)), f.join(joinReq("g", follower, nil))
	for _, ch := range []<-chan *kmsg.JoinGroupResponse{ja, jb, jc} {
		if r := recv(t, ch); r.ErrorCode != 0 || r.Generation != gen+1 {
			t.Fatalf("rejoin: %+v", r)
		}
	}
}

func TestSessionExpiryRebalances(t *testing.T) {
	f := newFixture(t)
	leader, follower, gen := f.stableGroup("g")
	// Only the leader heartbeats; the follower's 10 s session runs out.
	for i := 0; i < 11; i++ {
		f.advance(time.Second)
		f.heartbeat("g", leader, gen)
	}
	if st, _, _ := f.c.Since("g"); st != PreparingRebalance {
		t.Fatalf("after the follower's session: %v", st)
	}
	r := recv(t, f.join(joinReq("g", leader, nil)))
	if r.ErrorCode != 0 || r.Generation != gen+1 || len(r.Members) != 1 {
		t.Fatalf("rejoin alone: %+v", r)
	}
	if code := f.heartbeat("g", follower, gen); code != kerr.UnknownMemberID.Code {
		t.Fatalf("expired member: %d", code)
	}
}

func TestRebalanceTimeoutDropsLaggards(t *testing.T) {
	f := newFixture(t)
	leader, follower, gen := f.stableGroup("g")
	ja := f.join(joinReq("g", leader, nil)) // the leader rejoins: a rebalance
	none(t, ja)
	f.advance(6 * time.Second) // past the 5 s rebalance timeout
	r := recv(t, ja)
	if r.ErrorCode != 0 || r.Generation != gen+1 || len(r.Members) != 1 {
		t.Fatalf("after the rebalance timeout: %+v", r)
	}
	if code := f.heartbeat("g", follower, gen); code != kerr.UnknownMemberID.Code {
		t.Fatalf("laggard: %d", code)
	}
}

func TestCommitRulesAndReplay(t *testing.T) {
	f := newFixture(t)
	leader, follower, gen := f.stableGroup("g")
	if code := f.commit("g", follower, gen, 42); code != 0 {
		t.Fatalf("member commit: %d", code)
	}
	if code := f.commit("g", follower, gen+1, 43); code != kerr.IllegalGeneration.Code {
		t.Fatalf("wrong generation: %d", code)
	}
	if code := f.commit("g", "", -1, 0); code != kerr.UnknownMemberID.Code {
		t.Fatalf("outside commit to a live group: %d", code)
	}
	if code := f.commit("other", "", -1, 7); code != 0 {
		t.Fatalf("outside commit to a new group: %d", code)
	}
	f.mu.Lock()
	f.failWrites = errors.New("disk gone")
	f.mu.Unlock()
	if code := f.commit("g", follower, gen, 99); code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("failed write: %d", code)
	}
	f.mu.Lock()
	f.failWrites = nil
	f.mu.Unlock()
	got, _ := f.c.FetchOffsets("g", map[string][]int32{"orders": {0, 1}})
	if got[TP{"orders", 0}].Offset != 42 || got[TP{"orders", 1}].Offset != -1 {
		t.Fatalf("fetched %+v", got)
	}

	// A new coordinator replaying the log has the same offsets and the
	// same members, generation and assignments: members carry on.
	c2 := f.replay()
	got2, _ := c2.FetchOffsets("g", nil)
	if o := got2[TP{"orders", 0}]; o.Offset != 42 || o.LeaderEpoch != 3 {
		t.Fatalf("replayed %+v", got2)
	}
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation = "g", leader, gen
	if code := c2.Heartbeat(hb); code != 0 {
		t.Fatalf("heartbeat to the new coordinator: %d", code)
	}
	d := c2.Describe("g", nil)
	if d.State != "Stable" || len(d.Members) != 2 {
		t.Fatalf("replayed group: %+v", d)
	}
	for _, m := range d.Members {
		if string(m.MemberAssignment) != map[bool]string{true: "L", false: "F"}[m.MemberID == leader] {
			t.Fatalf("replayed assignment of %s: %q", m.MemberID, m.MemberAssignment)
		}
	}
}

func TestLeaveDeleteAndExpiry(t *testing.T) {
	f := newFixture(t)
	leader, follower, gen := f.stableGroup("g")
	f.commit("g", leader, gen, 10)
	done := make(chan int16, 1)
	f.c.Delete("g", func(c int16) { done <- c })
	if code := recv(t, done); code != kerr.NonEmptyGroup.Code {
		t.Fatalf("delete a live group: %d", code)
	}
	// Offsets of a topic the group consumes cannot be deleted under it.
	od := make(chan []int16, 1)
	f.c.DeleteOffsets("g", []TP{{"orders", 0}, {"other", 0}}, func(_ int16, codes []int16) { od <- codes })
	if codes := recv(t, od); codes[0] != kerr.GroupSubscribedToTopic.Code || codes[1] != 0 {
		t.Fatalf("offset delete: %v", codes)
	}
	if _, codes := f.c.Leave("g", []LeaveMember{{MemberID: leader}, {MemberID: follower}, {MemberID: "x"}}); codes[0] != 0 || codes[1] != 0 || codes[2] != kerr.UnknownMemberID.Code {
		t.Fatalf("leave: %v", codes)
	}
	if st, _, _ := f.c.Since("g"); st != Empty {
		t.Fatalf("after everyone left: %v", st)
	}
	// Empty now: an outside commit (an offset reset) is allowed.
	if code := f.commit("g", "", -1, 5); code != 0 {
		t.Fatalf("reset on an empty group: %d", code)
	}
	// A failed (timed-out) write fails the whole OffsetDelete at the top
	// level, where admin clients look for a coordinator error to retry.
	f.mu.Lock()
	f.failWrites = kerr.RequestTimedOut
	f.mu.Unlock()
	odTop := make(chan int16, 1)
	f.c.DeleteOffsets("g", []TP{{"orders", 0}}, func(code int16, codes []int16) {
		if len(codes) != 0 {
			t.Errorf("per-partition codes %v beside a top-level error", codes)
		}
		odTop <- code
	})
	if code := recv(t, odTop); code != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("offset delete with the write timing out: top-level %d, want COORDINATOR_NOT_AVAILABLE", code)
	}
	f.mu.Lock()
	f.failWrites = nil
	f.mu.Unlock()
	if got, _ := f.c.FetchOffsets("g", nil); got[TP{"orders", 0}].Offset != 5 {
		t.Fatalf("a failed offset delete removed offsets: %+v", got)
	}
	// Retention (an hour here) expires the offsets of an empty group.
	f.advance(2 * time.Hour)
	if got, _ := f.c.FetchOffsets("g", nil); len(got) != 0 {
		t.Fatalf("offsets after retention: %+v", got)
	}
	if got, _ := f.replay().FetchOffsets("g", nil); len(got) != 0 {
		t.Fatalf("expired offsets came back on replay: %+v", got)
	}
	f.commit("h", "", -1, 1)
	f.c.Delete("h", func(c int16) { done <- c })
	if code := recv(t, done); code != 0 {
		t.Fatalf("delete an empty group: %d", code)
	}
	f.c.Delete("h", func(c int16) { done <- c })
	if code := recv(t, done); code != kerr.GroupIDNotFound.Code {
		t.Fatalf("delete again: %d", code)
	}
}

func TestStaticMemberRestartsWithoutRebalance(t *testing.T) {
	f := newFixture(t)
	inst := "consumer-1"
	jr := f.join(joinReq("g", "", &inst))
	f.advance(200 * time.Millisecond)
	r := recv(t, jr)
	if r.ErrorCode != 0 {
		t.Fatalf("static join: %+v", r)
	}
	if s := recv(t, f.sync("g", r.MemberID, r.Generation, map[string]string{r.MemberID: "A"})); s.ErrorCode != 0 {
		t.Fatalf("sync: %+v", s)
	}
	// The process restarts: same instance id, no member id.
	r2 := recv(t, f.join(joinReq("g", "", &inst)))
	if r2.ErrorCode != 0 || r2.Generation != r.Generation || r2.MemberID == r.MemberID {
		t.Fatalf("static rejoin: %+v (first %+v)", r2, r)
	}
	if st, _, _ := f.c.Since("g"); st != Stable {
		t.Fatalf("state after static rejoin: %v", st)
	}
	// The old process, still around, is fenced.
	hb := kmsg.NewPtrHeartbeatRequest()
	hb.Group, hb.MemberID, hb.Generation, hb.InstanceID = "g", r.MemberID, r.Generation, &inst
	if code := f.c.Heartbeat(hb); code != kerr.FencedInstanceID.Code {
		t.Fatalf("old incarnation: %d", code)
	}
	if s := recv(t, f.sync("g", r2.MemberID, r2.Generation, nil)); s.ErrorCode != 0 || string(s.MemberAssignment) != "A" {
		t.Fatalf("assignment kept: %+v", s)
	}
}

func TestJoinValidation(t *testing.T) {
	f := newFixture(t)
	bad := joinReq("", "", nil)
	if r := recv(t, f.join(bad)); r.ErrorCode != kerr.InvalidGroupID.Code {
		t.Fatalf("empty group id: %d", r.ErrorCode)
	}
	short := joinReq("g", "", nil)
	short.SessionTimeoutMillis = 10
	if r := recv(t, f.join(short)); r.ErrorCode != kerr.InvalidSessionTimeout.Code {
		t.Fatalf("session too short: %d", r.ErrorCode)
	}
	if r := recv(t, f.join(joinReq("g", "made-up", nil))); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("unknown member id: %d", r.ErrorCode)
	}
	f.stableGroup("g")
	other := joinReq("g", "", nil)
	other.ProtocolType = "connect"
	if r := recv(t, f.join(other)); r.ErrorCode != kerr.InconsistentGroupProtocol.Code {
		t.Fatalf("other protocol type: %d", r.ErrorCode)
	}
	f.c.Close()
	if r := recv(t, f.join(joinReq("g", "", nil))); r.ErrorCode != kerr.NotCoordinator.Code {
		t.Fatalf("closed: %d", r.ErrorCode)
	}
}

// A member that does not rejoin during PreparingRebalance, nor
// heartbeat, is dropped at its session timeout, not at the rebalance
// timeout (max.poll.interval.ms, 300 s in librdkafka): one dead consumer
// must not hold its group's rebalance for minutes (librdkafka 0084).
func TestSilentMemberDroppedAtSessionDuringRebalance(t *testing.T) {
	f := newFixture(t)
	long := func(member string) *kmsg.JoinGroupRequest {
		r := joinReq("g", member, nil)
		r.RebalanceTimeoutMillis = 300_000
		return r
	}
	var ids []string
	var chans []<-chan *kmsg.JoinGroupResponse
	for range 2 {
		r := recv(t, f.join(long("")))
		ids = append(ids, r.MemberID)
		chans = append(chans, f.join(long(r.MemberID)))
	}
	f.advance(200 * time.Millisecond)
	ra, rb := recv(t, chans[0]), recv(t, chans[1])
	if ra.ErrorCode != 0 || rb.ErrorCode != 0 {
		t.Fatalf("joins: %+v %+v", ra, rb)
	}
	leader, gen := ra.LeaderID, ra.Generation
	follower := ids[0]
	if follower == leader {
		follower = ids[1]
	}
	sf := f.sync("g", follower, gen, nil)
	if r := recv(t, f.sync("g", leader, gen, map[string]string{leader: "L", follower: "F"})); r.ErrorCode != 0 {
		t.Fatalf("leader sync: %+v", r)
	}
	recv(t, sf)
	// The leader rejoins; the follower has died without leaving.
	jl := f.join(long(leader))
	none(t, jl)
	for range 11 {
		f.advance(time.Second)
	}
	r := recv(t, jl)
	if r.ErrorCode != 0 || r.Generation != gen+1 || len(r.Members) != 1 {
		t.Fatalf("after the silent member's session: %+v", r)
	}
	if code := f.heartbeat("g", follower, gen); code != kerr.UnknownMemberID.Code {
		t.Fatalf("the silent member: %d", code)
	}
}
