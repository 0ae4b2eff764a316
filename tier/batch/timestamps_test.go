package batch

import (
	"slices"
	"testing"
)

// RecordTimestamps gives every record's own timestamp (the first timestamp
// plus its delta, which may be negative), in order, whatever the codec.
func TestRecordTimestamps(t *testing.T) {
	for _, cc := range codecCases() {
		b := tsBatch(t, cc, 0, 5000, 0, 30, -20, 10)
		var got []int64
		if err := RecordTimestamps(b, 1<<20, func(i int, ts int64) {
			if i != len(got) {
				t.Fatalf("%s: record %d reported as %d", cc.name, len(got), i)
			}
			got = append(got, ts)
		}); err != nil {
			t.Fatalf("%s: %v", cc.name, err)
		}
		if want := []int64{5000, 5030, 4980, 5010}; !slices.Equal(got, want) {
			t.Fatalf("%s: timestamps %v, want %v", cc.name, got, want)
		}
	}
	if err := RecordTimestamps(tsBatch(t, codecCases()[0], 0, 1, 0)[:20], 1<<20, func(int, int64) {}); err == nil {
		t.Fatal("a truncated batch gave no error")
	}
}
