package metadata

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
)

func mustJSON(t testing.TB, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	return string(b)
}

func agent(id int32) RegisterAgent {
	return RegisterAgent{Agent: AgentInfo{ID: id, Addr: "localhost:9092", Registered: time.Unix(1700000000, 0).UTC()}}
}

// baseState has agents 1..3 and topic "t" with two partitions on 1,2,3.
func baseState(t *testing.T) (*State, uuid.UUID) {
	t.Helper()
	s := NewState()
	id := uuid.New()
	err := s.Apply(agent(1), agent(2), agent(3), CreateTopic{
		ID: id, Name: "t",
		Partitions: []PartitionSpec{{Replicas: []int32{1, 2, 3}, Leader: 1}, {Replicas: []int32{2, 3, 1}, Leader: 2}},
		Configs:    map[string]string{"retention.ms": "1000"},
	})
	if err != nil {
		t.Fatalf("base state: %v", err)
	}
	return s, id
}

// mustFail applies cmds, expects want, and checks s was not modified.
func mustFail(t *testing.T, s *State, want error, cmds ...Command) {
	t.Helper()
	before := mustJSON(t, s)
	err := s.Apply(cmds...)
	if !errors.Is(err, want) {
		t.Fatalf("Apply(%s) = %v, want %v", mustJSON(t, cmds), err, want)
	}
	if after := mustJSON(t, s); after != before {
		t.Fatalf("failed Apply changed the state:\nbefore %s\nafter  %s", before, after)
	}
}

func mustApply(t *testing.T, s *State, cmds ...Command) {
	t.Helper()
	if err := s.Apply(cmds...); err != nil {
		t.Fatalf("Apply: %v", err)
	}
}

func TestAgents(t *testing.T) {
	s := NewState()
	mustFail(t, s, ErrInvalidAgent, RegisterAgent{Agent: AgentInfo{ID: -1, Addr: "h:1"}})
	mustFail(t, s, ErrInvalidAgent, RegisterAgent{Agent: AgentInfo{ID: 1}})
	mustFail(t, s, ErrInvalidAgent, RegisterAgent{Agent: AgentInfo{ID: 1, Addr: "nohost"}})
	mustFail(t, s, ErrInvalidAgent, RegisterAgent{Agent: AgentInfo{ID: 1, Addr: "h:1", PeerAddr: "bad"}})
	mustApply(t, s, RegisterAgent{Agent: AgentInfo{ID: 1, Addr: "h:1", Zone: "a"}})
	mustApply(t, s, RegisterAgent{Agent: AgentInfo{ID: 1, Addr: "h:2", Zone: "b"}}) // re-registration replaces
	if a := s.Agents[1]; a.Addr != "h:2" || a.Zone != "b" {
		t.Fatalf("agent 1 = %+v", a)
	}
	mustFail(t, s, ErrUnknownAgent, UnregisterAgent{ID: 7})
	mustApply(t, s, UnregisterAgent{ID: 1})
	if len(s.Agents) != 0 {
		t.Fatalf("agents left: %v", s.Agents)
	}
}

func TestCreateTopic(t *testing.T) {
	s, id := baseState(t)
	tp, ok := s.TopicByName("t")
	if !ok || tp.ID != id {
		t.Fatalf("TopicByName(t) = %v, %v", tp, ok)
	}
	p, ok := s.Partition(id, 1)
	if !ok || p.Leader != 2 || p.LeaderEpoch != 0 || !reflect.DeepEqual(p.ISR, []int32{2, 3, 1}) {
		t.Fatalf("partition 1 = %+v", p)
	}
	if _, ok := s.Partition(id, 2); ok {
		t.Fatal("partition 2 exists")
	}
	if _, ok := s.Partition(uuid.New(), 0); ok {
		t.Fatal("partition of unknown topic exists")
	}

	spec := []PartitionSpec{{Replicas: []int32{1}, Leader: 1}}
	mustFail(t, s, ErrTopicExists, CreateTopic{ID: uuid.New(), Name: "t", Partitions: spec})
	mustFail(t, s, ErrTopicExists, CreateTopic{ID: id, Name: "other", Partitions: spec})
	for _, name := range []string{"", ".", "..", "a b", "ä", "a/b", strings.Repeat("x", 250)} {
		mustFail(t, s, ErrInvalidTopic, CreateTopic{ID: uuid.New(), Name: name, Partitions: spec})
	}
	mustApply(t, s, CreateTopic{ID: uuid.New(), Name: strings.Repeat("x", 249), Partitions: spec})
	mustApply(t, s, CreateTopic{ID: uuid.New(), Name: "a.b", Partitions: spec})
	mustFail(t, s, ErrInvalidTopic, CreateTopic{ID: uuid.New(), Name: "a_b", Partitions: spec})
	mustFail(t, s, ErrInvalidCommand, CreateTopic{Name: "nil-id", Partitions: spec})
	mustFail(t, s, ErrInvalidPartitions, CreateTopic{ID: uuid.New(), Name: "none"})
	mustFail(t, s, ErrInvalidReplicas, CreateTopic{ID: uuid.New(), Name: "r", Partitions: []PartitionSpec{{}}})
	mustFail(t, s, ErrUnknownAgent, CreateTopic{ID: uuid.New(), Name: "r", Partitions: []PartitionSpec{{Replicas: []int32{9}, Leader: 9}}})
	mustFail(t, s, ErrInvalidReplicas, CreateTopic{ID: uuid.New(), Name: "r", Partitions: []PartitionSpec{{Replicas: []int32{1, 1}, Leader: 1}}})
	mustFail(t, s, ErrInvalidReplicas, CreateTopic{ID: uuid.New(), Name: "r", Partitions: []PartitionSpec{{Replicas: []int32{1, 2}, Leader: 3}}})
	mustFail(t, s, ErrInvalidConfig, CreateTopic{ID: uuid.New(), Name: "r", Partitions: spec, Configs: map[string]string{"": "x"}})
}

func TestDeleteTopic(t *testing.T) {
	s, id := baseState(t)
	mustFail(t, s, ErrUnknownTopic, DeleteTopic{ID: uuid.New()})
	mustApply(t, s, DeleteTopic{ID: id})
	if _, ok := s.TopicByName("t"); ok {
		t.Fatal("deleted topic still found by name")
	}
	mustFail(t, s, ErrUnknownTopic, DeleteTopic{ID: id})
	// The name is free again.
	mustApply(t, s, CreateTopic{ID: uuid.New(), Name: "t", Partitions: []PartitionSpec{{Replicas: []int32{1}, Leader: 1}}})
}

func TestCreatePartitions(t *testing.T) {
	s, id := baseState(t)
	mustFail(t, s, ErrUnknownTopic, CreatePartitions{TopicID: uuid.New(), New: []PartitionSpec{{Replicas: []int32{1}, Leader: 1}}})
	mustFail(t, s, ErrInvalidPartitions, CreatePartitions{TopicID: id})
	mustFail(t, s, ErrInvalidReplicas, CreatePartitions{TopicID: id, New: []PartitionSpec{{Replicas: []int32{1}, Leader: 2}}})
	mustApply(t, s, CreatePartitions{TopicID: id, New: []PartitionSpec{{Replicas: []int32{3}, Leader: 3}, {Replicas: []int32{1, 2}, Leader: 2}}})
	tp, _ := s.Topic(id)
	if len(tp.Partitions) != 4 || tp.Partitions[3].Index != 3 || tp.Partitions[3].Leader != 2 {
		t.Fatalf("partitions = %+v", tp.Partitions)
	}
}

func TestAlterTopicConfigs(t *testing.T) {
	s, id := baseState(t)
	mustFail(t, s, ErrUnknownTopic, AlterTopicConfigs{TopicID: uuid.New()})
	mustFail(t, s, ErrInvalidConfig, AlterTopicConfigs{TopicID: id, Set: map[string]string{"a": "1"}, Delete: []string{"a"}})
	mustFail(t, s, ErrInvalidConfig, AlterTopicConfigs{TopicID: id, Set: map[string]string{"": "1"}})
	mustApply(t, s, AlterTopicConfigs{TopicID: id, Set: map[string]string{"cleanup.policy": "delete"}, Delete: []string{"retention.ms", "absent"}})
	tp, _ := s.Topic(id)
	if !reflect.DeepEqual(tp.Configs, map[string]string{"cleanup.policy": "delete"}) {
		t.Fatalf("configs = %v", tp.Configs)
	}
}

func seg(first, last int64) SegmentRef {
	return SegmentRef{Object: "data/o", Length: 10, FirstOffset: first, LastOffset: last}
}

func TestSetLogStart(t *testing.T) {
	s, id := baseState(t)
	mustApply(t, s,
		CommitSegment{TopicID: id, Partition: 0, Ref: seg(0, 9)},
		CommitSegment{TopicID: id, Partition: 0, Ref: seg(10, 19)})
	mustFail(t, s, ErrUnknownPartition, SetLogStart{TopicID: id, Partition: 5, Offset: 1})
	mustFail(t, s, ErrUnknownTopic, SetLogStart{TopicID: uuid.New(), Offset: 1})
	mustApply(t, s, SetLogStart{TopicID: id, Partition: 0, Offset: 12})
	p, _ := s.Partition(id, 0)
	if p.LogStart != 12 || len(p.Segments) != 1 || p.Segments[0].FirstOffset != 10 {
		t.Fatalf("after SetLogStart: %+v", p)
	}
	mustFail(t, s, ErrOffsetOutOfRange, SetLogStart{TopicID: id, Partition: 0, Offset: 11})
	mustApply(t, s, SetLogStart{TopicID: id, Partition: 0, Offset: 12}) // idempotent
}

func TestSetLeaderAndISR(t *testing.T) {
	s, id := baseState(t)
	mustFail(t, s, ErrStaleEpoch, SetLeader{TopicID: id, Partition: 0, Leader: 2, LeaderEpoch: 0, ISR: []int32{2}})
	mustFail(t, s, ErrInvalidReplicas, SetLeader{TopicID: id, Partition: 0, Leader: 9, LeaderEpoch: 1, ISR: []int32{1}})
	mustFail(t, s, ErrInvalidReplicas, SetLeader{TopicID: id, Partition: 0, Leader: 2, LeaderEpoch: 1, ISR: []int32{1, 3}})
	mustFail(t, s, ErrInvalidReplicas, SetLeader{TopicID: id, Partition: 0, Leader: 2, LeaderEpoch: 1, ISR: []int32{2, 2}})
	mustFail(t, s, ErrUnknownPartition, SetLeader{TopicID: id, Partition: -1, Leader: 2, LeaderEpoch: 1, ISR: []int32{2}})
	mustApply(t, s, SetLeader{TopicID: id, Partition: 0, Leader: 2, LeaderEpoch: 3, ISR: []int32{2, 3}})
	p, _ := s.Partition(id, 0)
	if p.Leader != 2 || p.LeaderEpoch != 3 || !reflect.DeepEqual(p.ISR, []int32{2, 3}) {
		t.Fatalf("after SetLeader: %+v", p)
	}
	mustApply(t, s, SetLeader{TopicID: id, Partition: 1, Leader: -1, LeaderEpoch: 1, ISR: nil}) // offline

	mustFail(t, s, ErrStaleEpoch, SetISR{TopicID: id, Partition: 0, LeaderEpoch: 2, ISR: []int32{2}})
	mustFail(t, s, ErrUnknownLeaderEpoch, SetISR{TopicID: id, Partition: 0, LeaderEpoch: 4, ISR: []int32{2}})
	mustFail(t, s, ErrInvalidReplicas, SetISR{TopicID: id, Partition: 0, LeaderEpoch: 3, ISRVersion: 1, ISR: []int32{3}}) // drops the leader
	mustFail(t, s, ErrInvalidReplicas, SetISR{TopicID: id, Partition: 0, LeaderEpoch: 3, ISRVersion: 1, ISR: []int32{2, 7}})
	// A change decided against an older ISR loses.
	mustFail(t, s, ErrStaleEpoch, SetISR{TopicID: id, Partition: 0, LeaderEpoch: 3, ISRVersion: 0, ISR: []int32{2, 1, 3}})
	mustApply(t, s, SetISR{TopicID: id, Partition: 0, LeaderEpoch: 3, ISRVersion: 1, ISR: []int32{2, 1, 3}})
	if p, _ := s.Partition(id, 0); !reflect.DeepEqual(p.ISR, []int32{2, 1, 3}) || p.ISRVersion != 2 {
		t.Fatalf("ISR = %v version %d", p.ISR, p.ISRVersion)
	}
	mustFail(t, s, ErrStaleEpoch, SetISR{TopicID: id, Partition: 0, LeaderEpoch: 3, ISRVersion: 1, ISR: []int32{2}})
}

func TestAgentFencingAndDraining(t *testing.T) {
	s, _ := baseState(t)
	mustFail(t, s, ErrUnknownAgent, SetAgentFenced{ID: 9, Fenced: true})
	mustFail(t, s, ErrUnknownAgent, SetAgentDraining{ID: 9, Draining: true})
	mustApply(t, s, SetAgentFenced{ID: 2, Fenced: true}, SetAgentDraining{ID: 3, Draining: true})
	if a := s.Agents[2]; !a.Fenced || a.Draining {
		t.Fatalf("agent 2 = %+v", a)
	}
	if a := s.Agents[3]; a.Fenced || !a.Draining {
		t.Fatalf("agent 3 = %+v", a)
	}
	mustApply(t, s, SetAgentFenced{ID: 2, Fenced: false})
	if s.Agents[2].Fenced {
		t.Fatal("fence not lifted")
	}
}

func TestReassign(t *testing.T) {
	s, id := baseState(t) // partition 0: replicas [1 2 3], leader 1
	mustApply(t, s, RegisterAgent{Agent: AgentInfo{ID: 4, Addr: "h:4"}}, RegisterAgent{Agent: AgentInfo{ID: 5, Addr: "h:5"}})
	mustFail(t, s, ErrInvalidReplicas, Reassign{TopicID: id, Partition: 0, Target: nil})
	mustFail(t, s, ErrInvalidReplicas, Reassign{TopicID: id, Partition: 0, Target: []int32{4, 4}})
	mustFail(t, s, ErrInvalidReplicas, Reassign{TopicID: id, Partition: 0, Target: []int32{4, 9}})
	mustApply(t, s, SetAgentFenced{ID: 5, Fenced: true})
	mustFail(t, s, ErrInvalidReplicas, Reassign{TopicID: id, Partition: 0, Target: []int32{5, 2, 3}})

	// Same set, new order: the preferred leader changes, nothing moves.
	mustApply(t, s, Reassign{TopicID: id, Partition: 0, Target: []int32{2, 1, 3}})
	p, _ := s.Partition(id, 0)
	if !reflect.DeepEqual(p.Replicas, []int32{2, 1, 3}) || p.Target != nil {
		t.Fatalf("reorder: %+v", p)
	}

	// Replace 1 by 4: both serve until the move ends.
	mustApply(t, s, Reassign{TopicID: id, Partition: 0, Target: []int32{4, 2, 3}})
	p, _ = s.Partition(id, 0)
	if !reflect.DeepEqual(p.Replicas, []int32{2, 1, 3, 4}) || !reflect.DeepEqual(p.Target, []int32{4, 2, 3}) {
		t.Fatalf("in progress: %+v", p)
	}
	// Ending it: the ISR and leader must lie in the new set.
	mustFail(t, s, ErrInvalidReplicas, SetLeader{TopicID: id, Partition: 0, Leader: 1, LeaderEpoch: p.LeaderEpoch + 1, ISR: []int32{1, 2}, Replicas: p.Target})
	mustApply(t, s, SetLeader{TopicID: id, Partition: 0, Leader: 4, LeaderEpoch: p.LeaderEpoch + 1, ISR: []int32{4, 2, 3}, Replicas: p.Target})
	p, _ = s.Partition(id, 0)
	if !reflect.DeepEqual(p.Replicas, []int32{4, 2, 3}) || p.Target != nil || p.Leader != 4 {
		t.Fatalf("done: %+v", p)
	}
}

func TestCommitSegment(t *testing.T) {
	s, id := baseState(t)
	mustApply(t, s, SetLeader{TopicID: id, Partition: 0, Leader: 1, LeaderEpoch: 2, ISR: []int32{1}})
	mustFail(t, s, ErrStaleEpoch, CommitSegment{TopicID: id, Partition: 0, LeaderEpoch: 1, Ref: seg(0, 9)})
	mustFail(t, s, ErrUnknownLeaderEpoch, CommitSegment{TopicID: id, Partition: 0, LeaderEpoch: 3, Ref: seg(0, 9)})
	mustFail(t, s, ErrNotContiguous, CommitSegment{TopicID: id, Partition: 0, LeaderEpoch: 2, Ref: seg(1, 9)})
	mustFail(t, s, ErrInvalidSegment, CommitSegment{TopicID: id, Partition: 0, LeaderEpoch: 2, Ref: seg(5, 4)})
	mustFail(t, s, ErrInvalidSegment, CommitSegment{TopicID: id, Partition: 0, LeaderEpoch: 2, Ref: SegmentRef{LastOffset: 3, Length: 1}})
	mustFail(t, s, ErrUnknownPartition, CommitSegment{TopicID: id, Partition: 9, LeaderEpoch: 2, Ref: seg(0, 9)})
	mustApply(t, s, CommitSegment{TopicID: id, Partition: 0, LeaderEpoch: 2, Ref: seg(0, 9)})
	mustFail(t, s, ErrNotContiguous, CommitSegment{TopicID: id, Partition: 0, LeaderEpoch: 2, Ref: seg(0, 9)})   // overlap
	mustFail(t, s, ErrNotContiguous, CommitSegment{TopicID: id, Partition: 0, LeaderEpoch: 2, Ref: seg(11, 19)}) // gap
	mustApply(t, s, CommitSegment{TopicID: id, Partition: 0, LeaderEpoch: 2, Ref: seg(10, 19)})
	p, _ := s.Partition(id, 0)
	if p.FlushedEnd != 20 || len(p.Segments) != 2 {
		t.Fatalf("after commits: %+v", p)
	}
}

func TestCommitSegmentsAtomic(t *testing.T) {
	s, id := baseState(t)
	good := CommitSegment{TopicID: id, Partition: 0, Ref: seg(0, 4)}
	bad := CommitSegment{TopicID: id, Partition: 1, Ref: seg(3, 4)}
	mustFail(t, s, ErrNotContiguous, CommitSegments{Commits: []CommitSegment{good, bad}})
	mustFail(t, s, ErrInvalidCommand, CommitSegments{})
	// Also atomic across the commands of one Apply.
	mustFail(t, s, ErrNotContiguous, good, bad)
	mustApply(t, s, CommitSegments{Commits: []CommitSegment{good, {TopicID: id, Partition: 1, Ref: seg(0, 2)}, {TopicID: id, Partition: 0, Ref: seg(5, 6)}}})
	p0, _ := s.Partition(id, 0)
	p1, _ := s.Partition(id, 1)
	if p0.FlushedEnd != 7 || p1.FlushedEnd != 3 || len(p0.Segments) != 2 {
		t.Fatalf("p0 %+v p1 %+v", p0, p1)
	}
}

func TestAllocateProducerIDs(t *testing.T) {
	s, _ := baseState(t)
	mustFail(t, s, ErrUnknownAgent, AllocateProducerIDs{Agent: 9, Count: 10})
	mustFail(t, s, ErrInvalidCommand, AllocateProducerIDs{Agent: 1, Count: 0})
	mustApply(t, s, AllocateProducerIDs{Agent: 1, Count: 10})
	mustApply(t, s, AllocateProducerIDs{Agent: 2, Count: 5})
	mustApply(t, s, AllocateProducerIDs{Agent: 1, Count: 10})
	if b := s.ProducerBlocks[1]; b != (ProducerBlock{First: 15, Count: 10}) {
		t.Fatalf("agent 1 block = %+v", b)
	}
	if b := s.ProducerBlocks[2]; b != (ProducerBlock{First: 10, Count: 5}) {
		t.Fatalf("agent 2 block = %+v", b)
	}
	if s.NextProducerID != 25 {
		t.Fatalf("NextProducerID = %d", s.NextProducerID)
	}
}

func TestNextIsCopyOnWrite(t *testing.T) {
	s, id := baseState(t)
	other := uuid.New()
	mustApply(t, s, CreateTopic{ID: other, Name: "other", Partitions: []PartitionSpec{{Replicas: []int32{1}, Leader: 1}}})
	mustApply(t, s, CommitSegment{TopicID: id, Partition: 0, Ref: seg(0, 0)})
	before := mustJSON(t, s)
	deep := s.Clone()

	// Build a chain from s and a sibling of it: neither may disturb s or
	// each other, even though they share backing arrays.
	n1, err := s.Next(CommitSegment{TopicID: id, Partition: 0, Ref: seg(1, 1)}, AlterTopicConfigs{TopicID: id, Set: map[string]string{"k": "v"}},
		SetISR{TopicID: id, Partition: 1, ISRVersion: 0, ISR: []int32{2}}, RegisterAgent{Agent: AgentInfo{ID: 4, Addr: "h:4"}}, AllocateProducerIDs{Agent: 1, Count: 1})
	if err != nil {
		t.Fatal(err)
	}
	n2, err := s.Next(CommitSegment{TopicID: id, Partition: 0, Ref: seg(1, 5)})
	if err != nil {
		t.Fatal(err)
	}
	if got := mustJSON(t, s); got != before {
		t.Fatalf("Next modified its input:\nbefore %s\nafter  %s", before, got)
	}
	if mustJSON(t, deep) != before {
		t.Fatal("Clone differs from its source")
	}
	if p, _ := n1.Partition(id, 0); p.Segments[1].LastOffset != 1 {
		t.Fatalf("sibling overwrote n1's segment: %+v", p.Segments)
	}
	if p, _ := n2.Partition(id, 0); p.Segments[1].LastOffset != 5 {
		t.Fatalf("n2 segment: %+v", p.Segments)
	}
	if n1.Topics[other] != s.Topics[other] {
		t.Fatal("unchanged topic was copied")
	}
	if n1.Topics[id] == s.Topics[id] {
		t.Fatal("changed topic was not copied")
	}
}

func TestCommandJSONRoundTrip(t *testing.T) {
	id := uuid.New()
	cmds := []Command{
		RegisterAgent{Agent: AgentInfo{ID: 1, Addr: "h:1", PeerAddr: "h:2", AdminAddr: "h:3", Zone: "z", Registered: time.UnixMilli(1700000000123).UTC()}},
		UnregisterAgent{ID: 3},
		CreateTopic{ID: id, Name: "n", Partitions: []PartitionSpec{{Replicas: []int32{1, 2}, Leader: 2}}, Configs: map[string]string{"a": "b"}, Created: time.UnixMilli(1700000000000).UTC()},
		DeleteTopic{ID: id},
		CreatePartitions{TopicID: id, New: []PartitionSpec{{Replicas: []int32{1}, Leader: 1}}},
		AlterTopicConfigs{TopicID: id, Set: map[string]string{"x": "y"}, Delete: []string{"z"}},
		SetLogStart{TopicID: id, Partition: 1, Offset: 5},
		SetLeader{TopicID: id, Partition: 2, Leader: 3, LeaderEpoch: 4, ISR: []int32{3}, Replicas: []int32{3, 1}},
		SetISR{TopicID: id, Partition: 2, LeaderEpoch: 4, ISRVersion: 3, ISR: []int32{3, 1}},
		SetAgentFenced{ID: 2, Fenced: true},
		SetAgentDraining{ID: 2, Draining: true},
		Reassign{TopicID: id, Partition: 1, Target: []int32{2, 1}},
		CommitSegment{TopicID: id, Partition: 1, LeaderEpoch: 2, Ref: SegmentRef{Object: "o", Offset: 1, Length: 2, FirstOffset: 3, LastOffset: 4, MinTimestamp: 5, MaxTimestamp: 6, LeaderEpoch: 7}},
		CommitSegments{Commits: []CommitSegment{{TopicID: id, Ref: seg(0, 1)}}},
		AllocateProducerIDs{Agent: 1, Count: 1000},
		ReplaceSegments{TopicID: id, Partition: 1, Old: []string{"a", "b"}, New: SegmentRef{Object: "m", Length: 9, FirstOffset: 3, LastOffset: 8, CRC: 42}},
		SetScramCredential{User: "u", Mechanism: ScramSHA256, Credential: ScramCredential{Iterations: 4096, Salt: []byte("0123456789abcdef"), StoredKey: make([]byte, 32), ServerKey: make([]byte, 32)}},
		DeleteScramCredential{User: "u", Mechanism: ScramSHA512},
		CreateACLs{ACLs: []ACL{{Principal: "User:a", Host: "*", ResourceType: ResourceTopic, PatternType: PatternPrefixed, Name: "orders-", Operation: OpRead, Permission: PermissionAllow}}},
		DeleteACLs{ACLs: []ACL{{Principal: "User:*", Host: "*", ResourceType: ResourceCluster, PatternType: PatternLiteral, Name: ClusterResourceName, Operation: OpAlter, Permission: PermissionDeny}}},
		AlterClientQuotas{Entries: []QuotaAlteration{{Entity: QuotaEntity{User: &QuotaName{Name: "alice"}, ClientID: &QuotaName{Default: true}},
			Set: map[string]float64{QuotaProducerByteRate: 1024}, Remove: []string{QuotaConsumerByteRate}}}},
		SetCleanedEnd{TopicID: id, Partition: 1, Offset: 7},
		SetBrokerConfigs{Resource: "2", Configs: map[string]string{"log.cleaner.backoff.ms": "100"}},
	}
	if len(cmds) != len(commandDecoders) {
		t.Fatalf("test covers %d command types, %d exist", len(cmds), len(commandDecoders))
	}
	b, err := json.Marshal(Entry{Seq: 7, Epoch: 3, Agent: 2, Cmds: cmds})
	if err != nil {
		t.Fatal(err)
	}
	e, err := decodeEntry(7, b)
	if err != nil {
		t.Fatal(err)
	}
	if e.Epoch != 3 || e.Agent != 2 || !reflect.DeepEqual(e.Cmds, cmds) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", e.Cmds, cmds)
	}
	if !strings.Contains(string(b), `{"type":"delete_topic","id":`) {
		t.Fatalf("unexpected encoding: %s", b)
	}
}

func TestCorruptContentIsAnError(t *testing.T) {
	for name, body := range map[string]string{
		"not json":       `{"seq":1,`,
		"unknown type":   `{"seq":1,"epoch":1,"agent":1,"cmds":[{"type":"launch_missiles"}]}`,
		"wrong seq":      `{"seq":2,"epoch":1,"agent":1,"cmds":[]}`,
		"bad field type": `{"seq":1,"epoch":1,"agent":1,"cmds":[{"type":"delete_topic","id":"not-a-uuid"}]}`,
	} {
		if _, err := decodeEntry(1, []byte(body)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: decodeEntry error = %v, want ErrCorrupt", name, err)
		}
	}
	id := uuid.New()
	for name, body := range map[string]string{
		"not json":      `[`,
		"null topic":    `{"seq":1,"topics":{"` + id.String() + `":null}}`,
		"key mismatch":  `{"seq":1,"topics":{"` + id.String() + `":{"id":"` + uuid.NewString() + `","name":"a"}}}`,
		"bad partition": `{"seq":1,"topics":{"` + id.String() + `":{"id":"` + id.String() + `","name":"a","partitions":[{"index":3}]}}}`,
		"wrong seq":     `{"seq":2}`,
	} {
		if _, err := decodeSnapshot(1, []byte(body)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: decodeSnapshot error = %v, want ErrCorrupt", name, err)
		}
	}
}

func TestSnapshotJSONRoundTrip(t *testing.T) {
	s, id := baseState(t)
	mustApply(t, s, CommitSegment{TopicID: id, Partition: 0, Ref: seg(0, 3)}, AllocateProducerIDs{Agent: 2, Count: 3})
	s.Seq = 9
	b := mustJSON(t, s)
	got, err := decodeSnapshot(9, []byte(b))
	if err != nil {
		t.Fatal(err)
	}
	if mustJSON(t, got) != b {
		t.Fatalf("snapshot round trip differs:\n%s\n%s", b, mustJSON(t, got))
	}
	if tp, ok := got.TopicByName("t"); !ok || tp.ID != id {
		t.Fatal("name index not rebuilt")
	}
}

func TestReplaceSegments(t *testing.T) {
	s := NewState()
	if err := s.Apply(RegisterAgent{Agent: AgentInfo{ID: 0, Addr: "127.0.0.1:9092"}}); err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	if err := s.Apply(CreateTopic{ID: id, Name: "c", Partitions: []PartitionSpec{{Replicas: []int32{0}, Leader: 0}}}); err != nil {
		t.Fatal(err)
	}
	for i, obj := range []string{"a", "b", "c", "d"} {
		ref := SegmentRef{Object: obj, Length: 10, FirstOffset: int64(i * 10), LastOffset: int64(i*10 + 9)}
		if err := s.Apply(CommitSegment{TopicID: id, Partition: 0, Ref: ref}); err != nil {
			t.Fatal(err)
		}
	}
	merged := SegmentRef{Object: "m", Length: 20, FirstOffset: 10, LastOffset: 29}
	// Wrong objects, wrong start, wrong end: refused, state unchanged.
	for _, bad := range []ReplaceSegments{
		{TopicID: id, Old: []string{"b", "x"}, New: merged},
		{TopicID: id, Old: []string{"b", "c"}, New: SegmentRef{Object: "m", Length: 20, FirstOffset: 11, LastOffset: 29}},
		{TopicID: id, Old: []string{"b", "c"}, New: SegmentRef{Object: "m", Length: 20, FirstOffset: 10, LastOffset: 39}},
		{TopicID: id, Old: []string{"b", "c", "d", "e"}, New: SegmentRef{Object: "m", Length: 20, FirstOffset: 10, LastOffset: 39}},
		{TopicID: id, Old: nil, New: merged},
	} {
		if err := s.Apply(bad); err == nil {
			t.Fatalf("replace %+v accepted", bad)
		}
	}
	if err := s.Apply(ReplaceSegments{TopicID: id, Old: []string{"b", "c"}, New: merged}); err != nil {
		t.Fatal(err)
	}
	p, _ := s.Partition(id, 0)
	var objs []string
	for _, r := range p.Segments {
		objs = append(objs, r.Object)
	}
	if fmt.Sprint(objs) != "[a m d]" || p.FlushedEnd != 40 {
		t.Fatalf("manifest %v flushedEnd %d, want [a m d] and 40", objs, p.FlushedEnd)
	}
}

// SCRAM credentials: checked before they are kept (mechanism, iteration
// bounds, key and salt lengths), replaced per mechanism, and the user gone
// with its last one; a state's users are never shared with its successor.
func TestScramCredentials(t *testing.T) {
	s := NewState()
	good := ScramCredential{Iterations: 4096, Salt: []byte("0123456789abcdef"), StoredKey: make([]byte, 64), ServerKey: make([]byte, 64)}
	mustFail(t, s, ErrInvalidCommand, SetScramCredential{User: "", Mechanism: ScramSHA512, Credential: good})
	mustFail(t, s, ErrInvalidCommand, SetScramCredential{User: "a", Mechanism: "PLAIN", Credential: good})
	mustFail(t, s, ErrInvalidCommand, SetScramCredential{User: "a", Mechanism: ScramSHA256, Credential: good}) // 64-byte keys
	low := good
	low.Iterations = 100
	mustFail(t, s, ErrInvalidCommand, SetScramCredential{User: "a", Mechanism: ScramSHA512, Credential: low})
	short := good
	short.Salt = []byte("x")
	mustFail(t, s, ErrInvalidCommand, SetScramCredential{User: "a", Mechanism: ScramSHA512, Credential: short})
	mustFail(t, s, ErrUnknownUser, DeleteScramCredential{User: "a", Mechanism: ScramSHA512})
	before := s.Clone()
	mustApply(t, s, SetScramCredential{User: "a", Mechanism: ScramSHA512, Credential: good})
	if _, ok := s.ScramCredentialOf("a", ScramSHA512); !ok {
		t.Fatal("credential not kept")
	}
	if _, ok := before.ScramCredentialOf("a", ScramSHA512); ok {
		t.Fatal("a clone taken before changed")
	}
	mustApply(t, s, DeleteScramCredential{User: "a", Mechanism: ScramSHA512})
	if _, ok := s.Users["a"]; ok {
		t.Fatal("user kept without credentials")
	}
}

// A refused name's bad character is named whole, not by its first byte.
func TestTopicNameErrorNamesTheCharacter(t *testing.T) {
	err := ValidateTopicName("café")
	if !errors.Is(err, ErrInvalidTopic) || !strings.Contains(err.Error(), `contains 'é'`) {
		t.Fatalf("ValidateTopicName(café) = %v, want it to name 'é'", err)
	}
}
