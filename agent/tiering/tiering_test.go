package tiering

import (
	"math"
	"slices"
	"testing"

	"github.com/tlog-io/tlog/metadata"
)

// smallRun picks the first run of two or more small adjacent ranges that
// fits the target size (segment.bytes, capped by the agent's merge size)
// and spans at most span ms of record time (segment.ms).
func TestSmallRun(t *testing.T) {
	seg := func(first, length, minTS, maxTS int64) metadata.SegmentRef {
		return metadata.SegmentRef{FirstOffset: first, LastOffset: first + 9, Length: length, MinTimestamp: minTS, MaxTimestamp: maxTS}
	}
	segs := []metadata.SegmentRef{
		seg(0, 100, 0, 10),
		seg(10, 900, 10, 20), // large for a target of 1000
		seg(20, 100, 20, 30),
		seg(30, 100, 30, 40),
		seg(40, 100, 1000, 1010),
		seg(50, 100, 1010, 1020),
	}
	firsts := func(run []metadata.SegmentRef) []int64 {
		var out []int64
		for _, s := range run {
			out = append(out, s.FirstOffset)
		}
		return out
	}
	for _, c := range []struct {
		target, span int64
		want         []int64
	}{
		{1000, math.MaxInt64, []int64{20, 30, 40, 50}},
		{250, math.MaxInt64, []int64{20, 30}}, // segment.bytes: two fit
		{1000, 100, []int64{20, 30}},          // segment.ms: 1000 ms later is too far
		{1000, 5, nil},                        // no two ranges span 5 ms
		{150, math.MaxInt64, nil},             // no two ranges fit
		{1000, 990, []int64{20, 30, 40}},      // 20..1010 fits; 20..1020 does not
	} {
		got := firsts(smallRun(segs, c.target, c.span))
		if !slices.Equal(got, c.want) {
			t.Errorf("target %d span %d: run at %v, want %v", c.target, c.span, got, c.want)
		}
	}
}
