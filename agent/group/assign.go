package group

// Server-side assignors of consumer-protocol (KIP-848) groups, chosen by
// the members' ServerAssignor as in Kafka:
//   - "uniform" (the default): partitions spread so member counts differ
//     by at most one where subscriptions allow, each member keeping what
//     its previous target gave it where it can (few moves per rebalance);
//   - "range": each topic's partitions in contiguous ranges over the
//     members subscribed to it, in member id order, so co-partitioned
//     topics line up.

import (
	"slices"
	"strings"
)

const defaultAssignor = "uniform"

var assignors = map[string]func(assignInput) map[string]assignment{
	"uniform": assignUniform,
	"range":   assignRange,
}

// tpid is one partition of a topic named by id.
type tpid struct {
	topic     [16]byte
	partition int32
}

// assignment maps topic ids to sorted partitions.
type assignment map[[16]byte][]int32

func (a assignment) clone() assignment {
	out := make(assignment, len(a))
	for t, ps := range a {
		out[t] = slices.Clone(ps)
	}
	return out
}

func (a assignment) size() int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}

func (a assignment) has(tp tpid) bool {
	_, ok := slices.BinarySearch(a[tp.topic], tp.partition)
	return ok
}

func (a assignment) each(f func(tpid)) {
	for t, ps := range a {
		for _, p := range ps {
			f(tpid{t, p})
		}
	}
}

func (a assignment) equal(b assignment) bool {
	if a.size() != b.size() {
		return false
	}
	for t, ps := range a {
		if len(ps) > 0 && !slices.Equal(ps, b[t]) {
			return false
		}
	}
	return true
}

// add inserts tp, keeping the partitions sorted.
func (a assignment) add(tp tpid) {
	ps := a[tp.topic]
	i, ok := slices.BinarySearch(ps, tp.partition)
	if !ok {
		a[tp.topic] = slices.Insert(ps, i, tp.partition)
	}
}

func (a assignment) remove(tp tpid) {
	ps := a[tp.topic]
	if i, ok := slices.BinarySearch(ps, tp.partition); ok {
		ps = slices.Delete(ps, i, i+1)
		if len(ps) == 0 {
			delete(a, tp.topic)
		} else {
			a[tp.topic] = ps
		}
	}
}

// assignInput is what an assignor decides from.
type assignInput struct {
	members []string            // sorted member ids
	subs    map[string][]string // member → the existing topics it subscribes to, sorted
	topics  map[string]TopicMeta
	prev    map[string]assignment // member → its previous target
}

// assignUniform balances partition counts, sticking to previous targets.
func assignUniform(in assignInput) map[string]assignment {
	type part struct {
		tp   tpid
		name string
	}
	var parts []part
	eligible := map[[16]byte][]string{} // topic → members subscribed, in member order
	nparts := map[[16]byte]int32{}
	for _, name := range sortedTopics(in) {
		tm := in.topics[name]
		nparts[tm.ID] = tm.Partitions
		for _, m := range in.members {
			if slices.Contains(in.subs[m], name) {
				eligible[tm.ID] = append(eligible[tm.ID], m)
			}
		}
		for p := int32(0); p < tm.Partitions; p++ {
			parts = append(parts, part{tpid{tm.ID, p}, name})
		}
	}
	owner := make(map[tpid]string, len(parts))
	count := map[string]int{}
	// Stickiness: what each member had and may still have.
	for _, m := range in.members {
		in.prev[m].each(func(tp tpid) {
			if _, taken := owner[tp]; !taken && slices.Contains(eligible[tp.topic], m) && tp.partition < nparts[tp.topic] {
				owner[tp] = m
				count[m]++
			}
		})
	}
	least := func(cands []string) string {
		best := ""
		for _, m := range cands {
			if best == "" || count[m] < count[best] {
				best = m
			}
		}
		return best
	}
	for _, p := range parts {
		if _, ok := owner[p.tp]; ok {
			continue
		}
		if m := least(eligible[p.tp.topic]); m != "" {
			owner[p.tp] = m
			count[m]++
		}
	}
	// Balance: move partitions from a member to an eligible one with at
	// least two fewer. Each move lowers the sum of squared counts, so
	// this ends; sticky partitions move only when balance needs it.
	for moved := true; moved; {
		moved = false
		for _, p := range parts {
			a, ok := owner[p.tp]
			if !ok {
				continue
			}
			if b := least(eligible[p.tp.topic]); b != "" && count[a]-count[b] > 1 {
				owner[p.tp] = b
				count[a]--
				count[b]++
				moved = true
			}
		}
	}
	out := make(map[string]assignment, len(in.members))
	for _, m := range in.members {
		out[m] = assignment{}
	}
	for tp, m := range owner {
		out[m].add(tp)
	}
	return out
}

// assignRange gives each member contiguous ranges of each topic.
func assignRange(in assignInput) map[string]assignment {
	out := make(map[string]assignment, len(in.members))
	for _, m := range in.members {
		out[m] = assignment{}
	}
	for _, name := range sortedTopics(in) {
		tm := in.topics[name]
		var ms []string
		for _, m := range in.members {
			if slices.Contains(in.subs[m], name) {
				ms = append(ms, m)
			}
		}
		if len(ms) == 0 {
			continue
		}
		per, extra := int(tm.Partitions)/len(ms), int(tm.Partitions)%len(ms)
		next := int32(0)
		for i, m := range ms {
			n := per
			if i < extra {
				n++
			}
			for j := 0; j < n; j++ {
				out[m].add(tpid{tm.ID, next})
				next++
			}
		}
	}
	return out
}

// sortedTopics lists the topics any member subscribes to, by name.
func sortedTopics(in assignInput) []string {
	var names []string
	for _, m := range in.members {
		for _, t := range in.subs[m] {
			if _, ok := in.topics[t]; ok {
				names = append(names, t)
			}
		}
	}
	slices.SortFunc(names, strings.Compare)
	return slices.Compact(names)
}
