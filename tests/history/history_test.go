package history

import (
	"fmt"
	"strings"
	"testing"
)

var p0, p1 = TP{"t", 0}, TP{"t", 1}

// clean is a history with nothing wrong: ten values acknowledged on two
// partitions, read in order by one consumer, re-read from 3 after a
// rebalance, a failed and an unknown send, commits that only go forward
// (and back once after a reset).
func clean() *History {
	h := New()
	for i := range 10 {
		tp := []TP{p0, p1}[i%2]
		h.Send(fmt.Sprintf("v%d", i), tp, int64(i/2), Acked)
	}
	h.Send("failed", p0, 0, Failed)
	h.Send("unknown", p1, 0, Unknown)
	for i := range 10 {
		tp := []TP{p0, p1}[i%2]
		h.Poll("c1", tp, int64(i/2), fmt.Sprintf("v%d", i))
	}
	h.Rebalance("c1")
	for off := int64(3); off < 5; off++ {
		h.Poll("c1", p0, off, fmt.Sprintf("v%d", 2*off))
	}
	h.Commit("g", p0, 3)
	h.Commit("g", p0, 5)
	h.Reset("g", p0)
	h.Commit("g", p0, 1)
	return h
}

func TestCleanHistory(t *testing.T) {
	r := clean().Check()
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if r.Sends != 12 || r.Acked != 10 || r.Failed != 1 || r.Unknown != 1 || r.Polls != 12 || r.Commits != 3 {
		t.Fatalf("counts: %s", r.Summary())
	}
}

// Each kind of anomaly, added to a clean history, is reported as that
// kind and only that kind.
func TestAnomalies(t *testing.T) {
	for _, c := range []struct {
		kind   string
		inject func(h *History)
		list   func(r Report) []string
	}{
		{"lost", func(h *History) {
			// Acknowledged at 5, never read, while 6 was.
			h.Send("gone", p0, 5, Acked)
			h.Send("after", p0, 6, Acked)
			h.Poll("c2", p0, 6, "after")
		}, func(r Report) []string { return r.Lost }},
		{"unseen", func(h *History) {
			h.Send("tail", p1, 5, Acked)
		}, func(r Report) []string { return r.Unseen }},
		{"duplicated", func(h *History) {
			// v0 (acknowledged at p0@0) read again at p0@5.
			h.Poll("c2", p0, 5, "v0")
		}, func(r Report) []string { return r.Duplicated }},
		{"inconsistent read", func(h *History) {
			// p1@2 holds v5; a reader sees something else there... and
			// that value nowhere else.
			h.Send("w", p1, 9, Unknown)
			h.Poll("c2", p1, 2, "w")
		}, func(r Report) []string { return r.Inconsistent }},
		{"inconsistent acks", func(h *History) {
			h.Send("x", p0, 7, Acked)
			h.Send("y", p0, 7, Acked)
			h.Poll("c2", p0, 7, "x")
			h.Poll("c3", p0, 7, "y")
		}, func(r Report) []string { return r.Inconsistent }},
		{"non-monotonic", func(h *History) {
			h.Poll("c1", p1, 4, "v9")
			h.Poll("c1", p1, 4, "v9") // no rebalance in between
		}, func(r Report) []string { return r.NonMonotonic }},
		{"skipped", func(h *History) {
			h.Rebalance("c1")
			h.Poll("c1", p1, 1, "v3")
			h.Poll("c1", p1, 3, "v7") // over p1@2 (v5)
		}, func(r Report) []string { return r.Skipped }},
		{"backward commit", func(h *History) {
			h.Commit("g", p0, 0) // after 1, no reset
		}, func(r Report) []string { return r.BackwardCommits }},
	} {
		t.Run(c.kind, func(t *testing.T) {
			h := clean()
			c.inject(h)
			r := h.Check()
			got := c.list(r)
			if len(got) == 0 {
				t.Fatalf("%s: not reported; %s", c.kind, r.Summary())
			}
			if r.Anomalies() != len(got) {
				t.Fatalf("%s: other anomalies too: %v", c.kind, r.Err())
			}
			if err := r.Err(); err == nil || !strings.Contains(err.Error(), strings.Fields(c.kind)[0]) {
				t.Fatalf("%s: error %v", c.kind, err)
			}
		})
	}
}

// A consumer's reads across a rebalance may start over; gaps with no
// value in them (transaction markers, compaction) are not skips.
func TestRebalanceAndGaps(t *testing.T) {
	h := New()
	h.Send("a", p0, 0, Acked)
	h.Send("b", p0, 5, Acked) // 1-4: markers, say
	h.Poll("c", p0, 0, "a")
	h.Poll("c", p0, 5, "b")
	h.Rebalance("c")
	h.Poll("c", p0, 0, "a")
	if err := h.Check().Err(); err != nil {
		t.Fatal(err)
	}
}
