package controller

import (
	"fmt"
	"slices"
	"sort"

	"github.com/google/uuid"
	"github.com/tlog-io/tlog/metadata"
)

// The placement planners: pure functions from a metadata state to the
// commands that move it toward its shape. The controller runs them every
// tick; they are tested on states alone, without a cluster.

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

// Elections moves leadership off fenced (and restarted) agents and
// takes fenced followers out of ISRs.
func Elections(st *metadata.State, restarted map[int32]bool) []metadata.Command {
	var cmds []metadata.Command
	forEachPartition(st, func(t *metadata.Topic, p *metadata.Partition) {
		isLive := st.AgentLive
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

// Reassignments ends moves whose target replicas are all in sync.
func Reassignments(st *metadata.State) []metadata.Command {
	var cmds []metadata.Command
	forEachPartition(st, func(t *metadata.Topic, p *metadata.Partition) {
		if len(p.Target) == 0 || p.Leader < 0 {
			return
		}
		for _, id := range p.Target {
			if !slices.Contains(p.ISR, id) || !st.AgentLive(id) {
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

// Balance drains, evens out replicas and preferred leaders over live
// agents, and hands leadership to preferred replicas that are in sync.
func Balance(st *metadata.State) []metadata.Command { return balance(st, nil, true) }

// BalanceEvacuating is Balance that also moves replicas off the agents
// gone says are gone for good (fenced for long), as off draining ones.
func BalanceEvacuating(st *metadata.State, gone func(metadata.AgentInfo) bool) []metadata.Command {
	return balance(st, gone, true)
}

// Evacuate is only the moves off draining and gone agents (and the
// hand-over of leadership from draining ones): what runs when automatic
// balancing is off.
func Evacuate(st *metadata.State, gone func(metadata.AgentInfo) bool) []metadata.Command {
	return balance(st, gone, false)
}

func balance(st *metadata.State, gone func(metadata.AgentInfo) bool, evenOut bool) []metadata.Command {
	var eligible []int32
	for _, id := range st.AgentIDs() {
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

	// Replicas on draining (or long-gone) agents move first.
	for _, pt := range parts {
		if inFlight >= maxMoves {
			break
		}
		if len(pt.p.Target) > 0 {
			continue
		}
		for _, id := range pt.p.Replicas {
			if st.Agents[id].Draining || (gone != nil && st.Agents[id].Fenced && gone(st.Agents[id])) {
				if to := pickFor(pt.p.Replicas, id); to >= 0 {
					move(pt, id, to)
				}
				break
			}
		}
	}
	// Then even out the replica counts.
	for evenOut && inFlight < maxMoves {
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
	for i := 0; evenOut && i < len(parts); i++ {
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
		if !evenOut && !st.Agents[p.Leader].Draining {
			continue
		}
		want := int32(-1)
		for _, id := range p.Replicas {
			if slices.Contains(p.ISR, id) && st.AgentLive(id) && !st.Agents[id].Draining {
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

// DrainBlocker says why agent id cannot be drained, if it cannot: some
// partition it holds a replica of has no other live, undrained agent
// outside its replica set to move to (three agents, replication factor
// three), so the drain could never finish.
func DrainBlocker(st *metadata.State, id int32) error {
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
				return fmt.Errorf("agent %d cannot be drained: partition %s/%d has replicas on agents %v and no other live agent that is not draining can take one; add an agent or lower the topic's replication factor first",
					id, t.Name, i, p.Replicas)
			}
		}
	}
	return nil
}
