package compact

import (
	"fmt"
	"runtime"
	"testing"
)

// The map keeps the latest offset per key, refuses new keys once full
// (while still updating the ones it has), and is empty again after Clear.
func TestOffsetMap(t *testing.T) {
	m := NewOffsetMap(100 * slotSize) // 100 slots, 90 usable
	for i := range 90 {
		if !m.Put(fmt.Appendf(nil, "key-%d", i), int64(i)) {
			t.Fatalf("key %d refused with %d of %d used", i, m.Len(), m.capacity)
		}
	}
	if !m.Full() || m.Put([]byte("one-more"), 1000) {
		t.Fatal("a full map took a new key")
	}
	for i := range 90 {
		if !m.Put(fmt.Appendf(nil, "key-%d", i), int64(1000+i)) {
			t.Fatalf("a full map refused to update key %d", i)
		}
	}
	for i := range 90 {
		if off, ok := m.Get(fmt.Appendf(nil, "key-%d", i)); !ok || off != int64(1000+i) {
			t.Fatalf("key %d: %d, %v", i, off, ok)
		}
	}
	if _, ok := m.Get([]byte("one-more")); ok {
		t.Fatal("a refused key is in the map")
	}
	if m.Latest() != 1089 {
		t.Fatalf("latest %d", m.Latest())
	}
	if _, ok := m.Get(nil); ok {
		t.Fatal("an empty key found in an empty-keyed map")
	}
	m.Clear()
	if m.Len() != 0 || m.Latest() != -1 || m.Full() {
		t.Fatal("Clear left entries")
	}
	if _, ok := m.Get([]byte("key-1")); ok {
		t.Fatal("a cleared key is found")
	}
}

// BenchmarkOffsetMap10MKeys puts 10,000,000 distinct keys through a map
// with a 64 MiB budget (a pass holds about 2.5 million keys; the
// compactor then starts another pass), reporting the live heap the map
// added at its fullest, which stays within the budget whatever the key
// count.
func BenchmarkOffsetMap10MKeys(b *testing.B) {
	const budget = 64 << 20
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m := NewOffsetMap(budget)
		key := make([]byte, 0, 32)
		passes, peak := 1, uint64(0)
		for i := range 10_000_000 {
			key = fmt.Appendf(key[:0], "entity-%09d", i)
			if !m.Put(key, int64(i)) {
				runtime.GC() // what is live, not garbage awaiting collection
				runtime.ReadMemStats(&after)
				peak = max(peak, after.HeapAlloc-before.HeapAlloc)
				m.Clear()
				passes++
				m.Put(key, int64(i))
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		peak = max(peak, after.HeapAlloc-before.HeapAlloc)
		b.ReportMetric(float64(peak)/(1<<20), "peak-MiB")
		b.ReportMetric(float64(passes), "passes")
		if peak > budget+budget/16 {
			b.Fatalf("peak heap %d MiB over a %d MiB budget", peak>>20, budget>>20)
		}
		runtime.KeepAlive(m)
	}
}
