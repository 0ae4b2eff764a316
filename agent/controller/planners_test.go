package controller_test

import (
	"errors"
	"fmt"
	"slices"
	"testing"

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
