package compact

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/tlog-io/tlog/tier/batch"
)

// logOf stamps batches of (key, value) records at consecutive offsets
// from 0, each record timestamped ts + its offset; a nil value is a
// tombstone.
func logOf(ts int64, batches ...[]batch.KV) []byte {
	var out []byte
	off := int64(0)
	for _, kvs := range batches {
		b := batch.Encode(kvs, ts+off)
		batch.SetBaseOffset(b, off)
		out = append(out, b...)
		off += int64(len(kvs))
	}
	return out
}

type rec struct {
	off   int64
	key   string
	value string
	tomb  bool
}

func readAll(t *testing.T, data []byte) []rec {
	t.Helper()
	var out []rec
	last := int64(-1)
	err := batch.Iterate(data, func(h batch.Header, b []byte) bool {
		if h.BaseOffset <= last {
			t.Fatalf("batch at %d after one ending at %d", h.BaseOffset, last)
		}
		last = h.LastOffset()
		rs, err := batch.Records(b, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			out = append(out, rec{off: r.Offset, key: string(r.Key), value: string(r.Value), tomb: r.Value == nil})
		}
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// A changelog of keys overwritten many times, with tombstones, compacted
// in passes whose map holds only part of the keys (as a small budget
// forces): in the end exactly the latest record of every live key is
// left, at its original offset, in offset order; expired tombstones are
// gone and recent ones kept; batches keep their offsets.
func TestCleanKeepsLatestPerKey(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	const keys, batches, perBatch = 200, 100, 30
	latest := map[string]rec{}
	var bs [][]batch.KV
	off := int64(0)
	for range batches {
		var kvs []batch.KV
		for range perBatch {
			k := fmt.Sprintf("k%03d", rng.IntN(keys))
			v := fmt.Appendf(nil, "v%d", off)
			if rng.IntN(10) == 0 {
				v = nil
			}
			kvs = append(kvs, batch.KV{Key: []byte(k), Value: v})
			latest[k] = rec{off: off, key: k, value: string(v), tomb: v == nil}
			off++
		}
		bs = append(bs, kvs)
	}
	const ts = 1_000_000
	data := logOf(ts, bs...)
	// Tombstones below offset 1500 have expired.
	o := Options{MaxDecompressed: 1 << 20, DeleteTombstonesBefore: ts + 1500}
	m := NewOffsetMap(70 * slotSize) // 63 keys a pass
	from, passes := int64(0), 0
	for from < off {
		m.Clear()
		next, _, err := AddToMap(m, data, from, o)
		if err != nil {
			t.Fatal(err)
		}
		if next <= from {
			t.Fatalf("pass %d made no progress at %d", passes, from)
		}
		if data, _, err = Clean(data, m, next, o); err != nil {
			t.Fatal(err)
		}
		from = next
		passes++
	}
	if passes < 3 {
		t.Fatalf("%d passes: the map was meant to be too small for one", passes)
	}
	var want []rec
	for _, r := range latest {
		if r.tomb && r.off < 1500 {
			continue
		}
		want = append(want, r)
	}
	slices.SortFunc(want, func(a, b rec) int { return int(a.off - b.off) })
	got := readAll(t, data)
	if !slices.Equal(got, want) {
		t.Fatalf("after %d passes:\n got %d records %v\nwant %d records %v", passes, len(got), got, len(want), want)
	}
	// Runs of emptied batches were folded into one each.
	prevEmpty, left := false, 0
	batch.Iterate(data, func(h batch.Header, _ []byte) bool {
		empty := h.NumRecords == 0 && !h.Control()
		if empty && prevEmpty {
			t.Fatalf("two empty batches in a row, the second at %d", h.BaseOffset)
		}
		prevEmpty = empty
		left++
		return true
	})
	if left >= batches {
		t.Fatalf("%d batches after compaction, %d before", left, batches)
	}
	// Compacting a compacted log again (one pass, a map big enough)
	// drops nothing and returns the same bytes.
	big := NewOffsetMap(1 << 20)
	next, full, err := AddToMap(big, data, 0, o)
	if err != nil || full || next != off {
		t.Fatalf("map of the compacted log: next %d full %v err %v", next, full, err)
	}
	again, st, err := Clean(data, big, next, o)
	if err != nil || st.Dropped() != 0 || &again[0] != &data[0] {
		t.Fatalf("second compaction dropped %+v (err %v)", st, err)
	}
}

// Records of aborted transactions never count as a key's latest value
// and are dropped; control batches and committed records stay.
func TestCleanAbortedTransactions(t *testing.T) {
	committed := batch.Encode([]batch.KV{{Key: []byte("a"), Value: []byte("1")}}, 10)
	aborted := batch.EncodeTxn([]batch.KV{{Key: []byte("a"), Value: []byte("aborted")}, {Key: []byte("b"), Value: []byte("x")}}, 11, 5, 0)
	batch.SetBaseOffset(aborted, 1)
	marker := batch.EncodeControl(5, 0, false, 0, 12)
	batch.SetBaseOffset(marker, 3)
	data := append(append(append([]byte(nil), committed...), aborted...), marker...)
	o := Options{MaxDecompressed: 1 << 20, DeleteTombstonesBefore: math.MinInt64,
		Aborted: func(pid, off int64) bool { return pid == 5 && off == 1 }}
	m := NewOffsetMap(1 << 16)
	next, full, err := AddToMap(m, data, 0, o)
	if err != nil || full || next != 4 {
		t.Fatalf("map: next %d full %v err %v", next, full, err)
	}
	if off, _ := m.Get([]byte("a")); off != 0 {
		t.Fatalf("key a's latest is %d: an aborted record counted", off)
	}
	out, st, err := Clean(data, m, next, o)
	if err != nil || st.Aborted != 2 {
		t.Fatalf("clean: %+v %v", st, err)
	}
	// What is left: the committed record, the aborted batch's header
	// (empty, offsets 1-2) and the marker (its control record at 3).
	got := readAll(t, out)
	if len(got) != 2 || got[0] != (rec{off: 0, key: "a", value: "1"}) || got[1].off != 3 {
		t.Fatalf("after cleaning: %+v", got)
	}
	var bases []int64
	batch.Iterate(out, func(h batch.Header, _ []byte) bool { bases = append(bases, h.BaseOffset); return true })
	if !slices.Equal(bases, []int64{0, 1, 3}) {
		t.Fatalf("batches at %v, want [0 1 3] (the aborted one kept empty)", bases)
	}
}

// A marker goes (its batch blanked, folded into the empty ones beside it)
// once its transaction has no record left (an aborted one never has) and
// it is older than the delete horizon; markers of transactions with
// records left, young markers, and all markers without Markers stay.
func TestCleanMarkers(t *testing.T) {
	at := func(b []byte, off int64) []byte { batch.SetBaseOffset(b, off); return b }
	kv := func(k, v string) []batch.KV { return []batch.KV{{Key: []byte(k), Value: []byte(v)}} }
	var data []byte
	for _, b := range [][]byte{
		at(batch.EncodeTxn(kv("a", "1"), 10, 7, 0), 0),
		at(batch.EncodeControl(7, 0, true, 0, 11), 1),
		at(batch.EncodeTxn(kv("b", "1"), 12, 8, 0), 2),
		at(batch.EncodeControl(8, 0, true, 0, 13), 3),
		at(batch.Encode(kv("a", "2"), 14), 4),
		at(batch.EncodeTxn(kv("c", "1"), 15, 9, 0), 5),
		at(batch.EncodeControl(9, 0, false, 0, 16), 6),
	} {
		data = append(data, b...)
	}
	run := func(before int64, markers *Markers) ([]byte, Stats) {
		t.Helper()
		o := Options{MaxDecompressed: 1 << 20, DeleteTombstonesBefore: before, Markers: markers,
			Aborted: func(pid, off int64) bool { return pid == 9 && off == 5 }}
		m := NewOffsetMap(1 << 16)
		next, _, err := AddToMap(m, data, 0, o)
		if err != nil || next != 7 {
			t.Fatalf("map: next %d, %v", next, err)
		}
		out, st, err := Clean(data, m, next, o)
		if err != nil {
			t.Fatal(err)
		}
		return out, st
	}
	type shape struct {
		base, last    int64
		records       int32
		control, txnl bool
	}
	shapes := func(out []byte) []shape {
		var got []shape
		batch.Iterate(out, func(h batch.Header, _ []byte) bool {
			got = append(got, shape{h.BaseOffset, h.LastOffset(), h.NumRecords, h.Control(), h.Transactional()})
			return true
		})
		return got
	}

	out, st := run(100, NewMarkers())
	if st.Markers != 2 || st.Records != 1 || st.Aborted != 1 {
		t.Fatalf("stats %+v, want 2 markers, 1 superseded record, 1 aborted", st)
	}
	want := []shape{
		{0, 1, 0, false, false}, // a=1 emptied and its marker blanked, folded
		{2, 2, 1, false, true},  // b=1 is left: its marker stays
		{3, 3, 1, true, true},
		{4, 4, 1, false, false},
		{5, 6, 0, false, false}, // aborted, emptied, and its marker blanked: folded
	}
	if got := shapes(out); !slices.Equal(got, want) {
		t.Fatalf("batches after cleaning:\n got %+v\nwant %+v", got, want)
	}
	// Cleaning again changes nothing.
	again := append([]byte(nil), out...)
	m := NewOffsetMap(1 << 16)
	o := Options{MaxDecompressed: 1 << 20, DeleteTombstonesBefore: 100, Markers: NewMarkers()}
	if _, _, err := AddToMap(m, again, 0, o); err != nil {
		t.Fatal(err)
	}
	if out2, st2, err := Clean(again, m, 7, o); err != nil || st2.Dropped() != 0 || !slices.Equal(out2, out) {
		t.Fatalf("a second clean: %+v %v", st2, err)
	}

	for name, c := range map[string]struct {
		before  int64
		markers *Markers
	}{"young": {11, NewMarkers()}, "no markers state": {100, nil}} {
		out, st := run(c.before, c.markers)
		if st.Markers != 0 {
			t.Fatalf("%s: %d markers blanked", name, st.Markers)
		}
		if got := shapes(out); got[1] != (shape{1, 1, 1, true, true}) || got[len(got)-1] != (shape{6, 6, 1, true, true}) {
			t.Fatalf("%s: a marker is gone: %+v", name, got)
		}
	}
}
