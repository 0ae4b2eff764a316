// Package history records what clients of a log saw, sends, polls and
// group commits, and checks it as Jepsen's Kafka queue workload does:
// every acknowledged send must be read, each value at one offset, each
// offset with one value, every consumer's reads going forward between
// rebalances, and a group's committed offsets never moving back without
// a reset. Tests under faults record into one History from all their
// clients and check it after a final drain.
package history

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"sync"
)

// Outcome is what a send's client was told.
type Outcome int

const (
	// Acked: the log took the value at the given partition and offset.
	Acked Outcome = iota
	// Failed: the client gave up; the value may still be in the log
	// (a timeout can hide a write), so nothing is checked of it.
	Failed
	// Unknown: no answer before the client stopped.
	Unknown
)

// TP is a partition of the topic under test.
type TP struct {
	Topic     string
	Partition int32
}

func (tp TP) String() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

type at struct {
	tp     TP
	offset int64
}

func (a at) String() string { return fmt.Sprintf("%s@%d", a.tp, a.offset) }

// History is safe for concurrent use.
type History struct {
	mu      sync.Mutex
	sends   int
	acked   map[at]string // offset -> value acknowledged there
	ackedOf map[string][]at
	failed  int
	unknown int
	// ackConflicts: one offset acknowledged for two values.
	ackConflicts []string

	read      map[at]map[string]bool // offset -> values read there
	readOf    map[string]map[at]bool
	polls     int
	epoch     map[string]int // consumer -> rebalances seen
	lastPoll  map[consumerTP]int64
	pollPairs []pollPair // consecutive reads of one consumer's partition within an epoch

	commits   int
	committed map[groupTP]int64
	backward  []string
}

type consumerTP struct {
	consumer string
	epoch    int
	tp       TP
}

type groupTP struct {
	group string
	tp    TP
}

type pollPair struct {
	consumer string
	tp       TP
	from, to int64
}

// New returns an empty history.
func New() *History {
	return &History{
		acked: map[at]string{}, ackedOf: map[string][]at{},
		read: map[at]map[string]bool{}, readOf: map[string]map[at]bool{},
		epoch: map[string]int{}, lastPoll: map[consumerTP]int64{},
		committed: map[groupTP]int64{},
	}
}

// Send records the outcome of sending value (values must be unique per
// send). offset matters only when Acked.
func (h *History) Send(value string, tp TP, offset int64, o Outcome) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sends++
	switch o {
	case Acked:
		a := at{tp, offset}
		if prev, ok := h.acked[a]; ok && prev != value {
			h.ackConflicts = append(h.ackConflicts, fmt.Sprintf("%s acknowledged for %q and %q", a, prev, value))
		}
		h.acked[a] = value
		h.ackedOf[value] = append(h.ackedOf[value], a)
	case Failed:
		h.failed++
	default:
		h.unknown++
	}
}

// Poll records that consumer read value at tp's offset. Reads of one
// consumer and partition must go forward until its next Rebalance.
func (h *History) Poll(consumer string, tp TP, offset int64, value string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.polls++
	h.addRead(at{tp, offset}, value)
	k := consumerTP{consumer, h.epoch[consumer], tp}
	if last, ok := h.lastPoll[k]; ok {
		h.pollPairs = append(h.pollPairs, pollPair{consumer, tp, last, offset})
	}
	h.lastPoll[k] = offset
}

func (h *History) addRead(a at, value string) {
	if h.read[a] == nil {
		h.read[a] = map[string]bool{}
	}
	h.read[a][value] = true
	if h.readOf[value] == nil {
		h.readOf[value] = map[at]bool{}
	}
	h.readOf[value][a] = true
}

// Rebalance records that consumer's assignment changed (or it restarted):
// it may read any offset again.
func (h *History) Rebalance(consumer string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.epoch[consumer]++
}

// Commit records that group's committed offset for tp became offset
// (acknowledged by the coordinator), in the order the commits completed.
func (h *History) Commit(group string, tp TP, offset int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.commits++
	k := groupTP{group, tp}
	if prev, ok := h.committed[k]; ok && offset < prev {
		h.backward = append(h.backward, fmt.Sprintf("group %s %s: committed %d after %d", group, tp, offset, prev))
	}
	h.committed[k] = offset
}

// Reset records that group's offset for tp was deliberately moved (it may
// go back once).
func (h *History) Reset(group string, tp TP) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.committed, groupTP{group, tp})
}

// Report is what a check found. Every list but the counts is an anomaly.
type Report struct {
	Sends, Acked, Failed, Unknown, Polls, Commits int
	// Lost: acknowledged, never read, though a later offset of its
	// partition was.
	Lost []string
	// Unseen: acknowledged and never read, nothing after it read either
	// (after a final drain, lost at the end of the log).
	Unseen []string
	// Duplicated: one value at two offsets.
	Duplicated []string
	// Inconsistent: one offset with two values.
	Inconsistent []string
	// NonMonotonic: a consumer read an offset at or below one it had
	// read since its last rebalance.
	NonMonotonic []string
	// Skipped: a consumer's consecutive reads jumped over an offset
	// that holds a value (read by someone or acknowledged).
	Skipped []string
	// BackwardCommits: a group's committed offset moved back without a
	// reset.
	BackwardCommits []string
}

// Anomalies counts everything the report lists.
func (r Report) Anomalies() int {
	return len(r.Lost) + len(r.Unseen) + len(r.Duplicated) + len(r.Inconsistent) +
		len(r.NonMonotonic) + len(r.Skipped) + len(r.BackwardCommits)
}

// Err is nil for a clean history, else names the first few anomalies of
// each kind.
func (r Report) Err() error {
	if r.Anomalies() == 0 {
		return nil
	}
	msg := fmt.Sprintf("%d anomalies:", r.Anomalies())
	for _, k := range []struct {
		name string
		list []string
	}{{"lost", r.Lost}, {"unseen", r.Unseen}, {"duplicated", r.Duplicated}, {"inconsistent", r.Inconsistent},
		{"non-monotonic", r.NonMonotonic}, {"skipped", r.Skipped}, {"backward commits", r.BackwardCommits}} {
		if len(k.list) > 0 {
			msg += fmt.Sprintf(" %d %s (%s)", len(k.list), k.name, first(k.list, 3))
		}
	}
	return fmt.Errorf("%s", msg)
}

func first(l []string, n int) string {
	s := ""
	for i, x := range l[:min(n, len(l))] {
		if i > 0 {
			s += "; "
		}
		s += x
	}
	if len(l) > n {
		s += "; …"
	}
	return s
}

// Summary is the report's figures in one line.
func (r Report) Summary() string {
	return fmt.Sprintf("sends %d (acknowledged %d, failed %d, unknown %d), polls %d, commits %d; lost %d, unseen %d, duplicated %d, inconsistent %d, non-monotonic %d, skipped %d, backward commits %d",
		r.Sends, r.Acked, r.Failed, r.Unknown, r.Polls, r.Commits, len(r.Lost), len(r.Unseen), len(r.Duplicated),
		len(r.Inconsistent), len(r.NonMonotonic), len(r.Skipped), len(r.BackwardCommits))
}

// Check checks the history as it stands.
func (h *History) Check() Report {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := Report{Sends: h.sends, Acked: len(h.acked), Failed: h.failed, Unknown: h.unknown, Polls: h.polls, Commits: h.commits}

	// The highest offset read per partition, and every offset holding a
	// value, sorted, per partition.
	highest := map[TP]int64{}
	held := map[TP][]int64{}
	for a := range h.read {
		if off, ok := highest[a.tp]; !ok || a.offset > off {
			highest[a.tp] = a.offset
		}
		held[a.tp] = append(held[a.tp], a.offset)
	}
	for a := range h.acked {
		if _, ok := h.read[a]; !ok {
			held[a.tp] = append(held[a.tp], a.offset)
		}
	}
	for tp := range held {
		slices.Sort(held[tp])
	}

	for _, a := range sortedAts(h.acked) {
		v := h.acked[a]
		if h.readOf[v] != nil {
			continue
		}
		if off, ok := highest[a.tp]; ok && off > a.offset {
			r.Lost = append(r.Lost, fmt.Sprintf("%q acknowledged at %s", v, a))
		} else {
			r.Unseen = append(r.Unseen, fmt.Sprintf("%q acknowledged at %s", v, a))
		}
	}

	values := map[string]bool{}
	for v := range h.readOf {
		values[v] = true
	}
	for v := range h.ackedOf {
		values[v] = true
	}
	for _, v := range sortedKeys(values) {
		where := map[at]bool{}
		for a := range h.readOf[v] {
			where[a] = true
		}
		for _, a := range h.ackedOf[v] {
			where[a] = true
		}
		if len(where) > 1 {
			r.Duplicated = append(r.Duplicated, fmt.Sprintf("%q at %v", v, sortedAts(where)))
		}
	}

	for _, a := range sortedAts(h.read) {
		vs := h.read[a]
		if v, ok := h.acked[a]; ok && !vs[v] {
			vs = mapsWith(vs, v)
		}
		if len(vs) > 1 {
			r.Inconsistent = append(r.Inconsistent, fmt.Sprintf("%s holds %q", a, sortedKeys(vs)))
		}
	}
	r.Inconsistent = append(r.Inconsistent, h.ackConflicts...)

	for _, pp := range h.pollPairs {
		switch {
		case pp.to <= pp.from:
			r.NonMonotonic = append(r.NonMonotonic, fmt.Sprintf("%s read %s@%d after @%d", pp.consumer, pp.tp, pp.to, pp.from))
		default:
			offs := held[pp.tp]
			i := sort.Search(len(offs), func(i int) bool { return offs[i] > pp.from })
			if i < len(offs) && offs[i] < pp.to {
				r.Skipped = append(r.Skipped, fmt.Sprintf("%s read %s@%d then @%d, over @%d", pp.consumer, pp.tp, pp.from, pp.to, offs[i]))
			}
		}
	}
	r.BackwardCommits = append(r.BackwardCommits, h.backward...)
	return r
}

func mapsWith(m map[string]bool, v string) map[string]bool {
	out := map[string]bool{v: true}
	for k := range m {
		out[k] = true
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func sortedAts[V any](m map[at]V) []at {
	out := make([]at, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b at) int {
		return cmp.Or(cmp.Compare(a.tp.Topic, b.tp.Topic), cmp.Compare(a.tp.Partition, b.tp.Partition), cmp.Compare(a.offset, b.offset))
	})
	return out
}
