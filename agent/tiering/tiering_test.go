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

// A merged range is merged again only with at least as many bytes as it
// holds, so a slow partition's data is not rewritten with every pass.
func TestSmallRunBoundsRewriting(t *testing.T) {
	seg := func(first, length int64) metadata.SegmentRef {
		return metadata.SegmentRef{FirstOffset: first, LastOffset: first, Length: length}
	}
	// Not merged: the first range outweighs the rest; the two after it
	// are merged alone.
	segs := []metadata.SegmentRef{seg(0, 300), seg(1, 100), seg(2, 100)}
	if got := smallRun(segs, 1000, math.MaxInt64); len(got) != 2 || got[0].FirstOffset != 1 {
		t.Fatalf("run %v, want the two ranges after the large one", got)
	}
	// Small ranges before a larger one are merged without it.
	segs = []metadata.SegmentRef{seg(0, 10), seg(1, 10), seg(2, 300)}
	if got := smallRun(segs, 1000, math.MaxInt64); len(got) != 2 || got[0].FirstOffset != 0 {
		t.Fatalf("run %v, want the first two", got)
	}

	// A partition flushing 10 bytes a pass, compacted once a pass, until
	// its ranges reach half the target: every byte is rewritten at most
	// log2(500/10)+1 times, where merging every pass's ranges into the
	// last merged one rewrote each byte about 25 times.
	const target, flush = 1000, 10
	var ranges []metadata.SegmentRef
	var written, flushed int64
	for pass := range 2000 {
		ranges = append(ranges, seg(int64(pass), flush))
		flushed += flush
		// One run a pass, as compactOnce does.
		if run := smallRun(ranges, target, math.MaxInt64); run != nil {
			var total int64
			for _, r := range run {
				total += r.Length
			}
			written += total
			i := slices.IndexFunc(ranges, func(r metadata.SegmentRef) bool { return r.FirstOffset == run[0].FirstOffset })
			ranges = slices.Replace(ranges, i, i+len(run), seg(run[0].FirstOffset, total))
		}
	}
	amp := float64(written) / float64(flushed)
	t.Logf("%d bytes flushed, %d rewritten (%.1f× ), %d ranges left", flushed, written, amp, len(ranges))
	if amp > 7 {
		t.Fatalf("each byte rewritten %.1f times on average, want at most log2(%d/%d)+1", amp, target/2, flush)
	}
	if int64(len(ranges)) > 2*flushed/target+12 {
		t.Fatalf("%d ranges left for %d bytes: merging stalls", len(ranges), flushed)
	}
}
