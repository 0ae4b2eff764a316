package controller_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tlog-io/tlog/agent/controller"
	"github.com/tlog-io/tlog/metadata"
)

// cluster builds a state of n agents and one topic whose partitions have
// the given replica lists (led by their first replica, all in sync).
func cluster(t *testing.T, n int, replicas ...[]int32) (*metadata.State, uuid.UUID) {
	t.Helper()
	st := metadata.NewState()
	var cmds []metadata.Command
	for id := range int32(n) {
		cmds = append(cmds, metadata.RegisterAgent{Agent: metadata.AgentInfo{ID: id, Addr: fmt.Sprintf("127.0.0.1:%d", 9092+id)}})
	}
	id := uuid.New()
	ct := metadata.CreateTopic{ID: id, Name: "t"}
	for _, r := range replicas {
		ct.Partitions = append(ct.Partitions, metadata.PartitionSpec{Replicas: r, Leader: r[0]})
	}
	cmds = append(cmds, ct)
	st, err := st.Next(cmds...)
	if err != nil {
		t.Fatal(err)
	}
	return st, id
}

func apply(t *testing.T, st *metadata.State, cmds ...metadata.Command) *metadata.State {
	t.Helper()
	next, err := st.Next(cmds...)
	if err != nil {
		t.Fatalf("%v: %v", cmds, err)
	}
	return next
}

func TestElectionsMoveLeadersOffFencedAgents(t *testing.T) {
	st, id := cluster(t, 3, []int32{0, 1, 2}, []int32{1, 2, 0}, []int32{0, 1})
	if cmds := controller.Elections(st, nil); len(cmds) != 0 {
		t.Fatalf("a healthy cluster gets %v", cmds)
	}
	st = apply(t, st, metadata.SetAgentFenced{ID: 0, Fenced: true})
	st = apply(t, st, controller.Elections(st, nil)...)
	tp := st.Topics[id]
	// Led by 0: the next live in-sync replica in replica order leads, one
	// epoch on, and 0 leaves the ISR.
	for _, c := range []struct {
		p      int
		leader int32
		isr    []int32
	}{{0, 1, []int32{1, 2}}, {1, 1, []int32{1, 2}}, {2, 1, []int32{1}}} {
		p := tp.Partitions[c.p]
		if p.Leader != c.leader || !slices.Equal(p.ISR, c.isr) {
			t.Errorf("partition %d: leader %d isr %v, want %d %v", c.p, p.Leader, p.ISR, c.leader, c.isr)
		}
	}
	if tp.Partitions[0].LeaderEpoch != 1 || tp.Partitions[1].LeaderEpoch != 0 {
		t.Errorf("epochs %d, %d: a new leader bumps the epoch, a shrunk ISR does not", tp.Partitions[0].LeaderEpoch, tp.Partitions[1].LeaderEpoch)
	}
	if cmds := controller.Elections(st, nil); len(cmds) != 0 {
		t.Fatalf("elections are not idempotent: %v", cmds)
	}

	// No live in-sync replica: offline, the ISR kept for when one returns.
	st = apply(t, st, metadata.SetAgentFenced{ID: 1, Fenced: true})
	st = apply(t, st, controller.Elections(st, nil)...)
	p := st.Topics[id].Partitions[2]
	if p.Leader != -1 || !slices.Equal(p.ISR, []int32{1}) {
		t.Fatalf("partition with no live ISR member: leader %d isr %v", p.Leader, p.ISR)
	}
}

func TestElectionsMoveLeadersOffRestartedAgents(t *testing.T) {
	st, id := cluster(t, 3, []int32{0, 1, 2})
	st = apply(t, st, controller.Elections(st, map[int32]bool{0: true})...)
	p := st.Topics[id].Partitions[0]
	// The restarted agent stays in sync (it replays its WAL) but another
	// replica leads a new epoch, since what it had in flight is unknown.
	if p.Leader != 1 || p.LeaderEpoch != 1 || len(p.ISR) != 3 {
		t.Fatalf("after the leader restarted: leader %d epoch %d isr %v", p.Leader, p.LeaderEpoch, p.ISR)
	}
}

func TestBalanceRestoresPreferredLeaders(t *testing.T) {
	st, id := cluster(t, 3, []int32{0, 1, 2}, []int32{1, 2, 0}, []int32{2, 0, 1})
	st = apply(t, st, metadata.SetAgentFenced{ID: 0, Fenced: true})
	st = apply(t, st, controller.Elections(st, nil)...)
	st = apply(t, st, metadata.SetAgentFenced{ID: 0, Fenced: false})
	// Back and caught up: the leader grows the ISR again.
	for i, p := range st.Topics[id].Partitions {
		st = apply(t, st, metadata.SetISR{TopicID: id, Partition: int32(i), LeaderEpoch: p.LeaderEpoch, ISRVersion: p.ISRVersion, ISR: []int32{0, 1, 2}})
	}
	st = apply(t, st, controller.Balance(st)...)
	for i, p := range st.Topics[id].Partitions {
		if p.Leader != p.Replicas[0] {
			t.Errorf("partition %d led by %d, preferred %d", i, p.Leader, p.Replicas[0])
		}
	}
	if cmds := controller.Balance(st); len(cmds) != 0 {
		t.Fatalf("a balanced cluster gets %v", cmds)
	}
}

func TestDrainBlocker(t *testing.T) {
	st, _ := cluster(t, 3, []int32{0, 1, 2})
	if err := controller.DrainBlocker(st, 0); err == nil {
		t.Fatal("three agents at replication factor three: draining one cannot finish")
	}
	st, _ = cluster(t, 4, []int32{0, 1, 2})
	if err := controller.DrainBlocker(st, 0); err != nil {
		t.Fatalf("a fourth agent can take the replica: %v", err)
	}
	st = apply(t, st, metadata.SetAgentDraining{ID: 3, Draining: true})
	if err := controller.DrainBlocker(st, 0); err == nil || errors.Is(err, metadata.ErrUnknownAgent) {
		t.Fatalf("the only other agent is draining too: %v", err)
	}
}

// An agent fenced longer than the replacement delay is evacuated like a
// drained one: each partition it held gets a target with a live agent in
// its place (keeping the others); one fenced more recently, or with no
// fencing time, keeps its replicas. Evacuate (automatic balancing off)
// moves those replicas and nothing else.
func TestReplicasLeaveAgentsFencedForLong(t *testing.T) {
	st, id := cluster(t, 4, []int32{0, 1, 2}, []int32{1, 2, 0}, []int32{3, 0, 1})
	fencedAt := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	st = apply(t, st, metadata.SetAgentFenced{ID: 2, Fenced: true, At: fencedAt})
	st = apply(t, st, controller.Elections(st, nil)...)
	if got := st.Agents[2].FencedAt; !got.Equal(fencedAt) {
		t.Fatalf("FencedAt %v, want %v", got, fencedAt)
	}
	after := func(d time.Duration) func(metadata.AgentInfo) bool {
		return func(ag metadata.AgentInfo) bool {
			return !ag.FencedAt.IsZero() && fencedAt.Add(d).Sub(ag.FencedAt) >= time.Minute
		}
	}
	for _, cmd := range controller.Evacuate(st, after(30*time.Second)) {
		t.Fatalf("fenced 30 s (under a minute): got %v", cmd)
	}
	cmds := controller.Evacuate(st, after(2*time.Minute))
	if len(cmds) != 2 {
		t.Fatalf("fenced 2 minutes: want a reassignment of each of its 2 partitions, got %v", cmds)
	}
	for _, c := range cmds {
		r, ok := c.(metadata.Reassign)
		if !ok {
			t.Fatalf("got %T %v, want Reassign", c, c)
		}
		old := st.Topics[id].Partitions[r.Partition].Replicas
		if slices.Contains(r.Target, 2) || !slices.Contains(r.Target, 3) || len(r.Target) != len(old) {
			t.Errorf("partition %d: replicas %v, target %v: want 2 replaced by 3", r.Partition, old, r.Target)
		}
		for _, keep := range old {
			if keep != 2 && !slices.Contains(r.Target, keep) {
				t.Errorf("partition %d: target %v drops live replica %d", r.Partition, r.Target, keep)
			}
		}
	}
	// Balancing proper does the same moves first.
	if got := controller.BalanceEvacuating(st, after(2*time.Minute)); len(got) < 2 {
		t.Fatalf("BalanceEvacuating: %v", got)
	}
	// Unfenced, the time is forgotten.
	st = apply(t, st, metadata.SetAgentFenced{ID: 2, Fenced: false})
	if !st.Agents[2].FencedAt.IsZero() {
		t.Fatalf("FencedAt %v after unfencing", st.Agents[2].FencedAt)
	}
	if cmds := controller.Evacuate(st, after(time.Hour)); len(cmds) != 0 {
		t.Fatalf("nothing fenced or draining: Evacuate gives %v", cmds)
	}
}
