package agent

// Timestamp lookups (ListOffsets by time, and -3 for the largest timestamp)
// span the bucket and the WAL, as fetches do: offsets below flushedEnd live
// only in segment ranges once their WAL entries are dropped. Each committed
// range carries its min and max timestamps in metadata, so only ranges that
// can hold the answer are read (through the range cache, one ranged GET
// each); their batches are then walked as the WAL's are.

import (
	"context"
	"fmt"
	"sort"

	"github.com/tlog-io/tlog/agent/batch"
	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/metadata"
)

// maxTimestampDecompressed bounds decompressing one batch to walk its
// records; batches are far smaller in practice.
const maxTimestampDecompressed = 64 << 20

// coldRanges returns the committed ranges of t/idx that hold offsets at or
// after the log start, and that log start.
func (a *Agent) coldRanges(t *topic, idx int32, p *partition.Partition) ([]metadata.SegmentRef, int64) {
	o := p.Offsets()
	mp, ok := a.meta.State().Partition(t.id, idx)
	if !ok {
		return nil, o.LogStart
	}
	logStart := max(o.LogStart, mp.LogStart)
	segs := mp.Segments
	i := sort.Search(len(segs), func(i int) bool { return segs[i].LastOffset >= logStart })
	return segs[i:], logStart
}

// offsetForTimestamp returns the earliest offset at or after the log start
// whose record timestamp is at or after ts, with that timestamp, or
// ok=false if no record qualifies.
func (a *Agent) offsetForTimestamp(ctx context.Context, t *topic, idx int32, p *partition.Partition, ts int64) (offset, timestamp int64, ok bool, err error) {
	segs, logStart := a.coldRanges(t, idx, p)
	for _, ref := range segs {
		if ref.MaxTimestamp < ts {
			continue
		}
		buf, err := a.cache.Get(ctx, rangeOf(ref))
		if err != nil {
			return 0, 0, false, fmt.Errorf("%w: timestamp lookup in %s: %v", partition.ErrStorage, ref.Object, err)
		}
		var found bool
		ierr := batch.Iterate(buf, func(h batch.Header, b []byte) bool {
			if h.MaxTimestamp < ts || h.LastOffset() < logStart {
				return true
			}
			off, rts, hit, err := batch.FirstAtOrAfterFrom(b, logStart, ts, maxTimestampDecompressed)
			switch {
			case err != nil || (hit && (off < h.BaseOffset || off > h.LastOffset())):
				// Undecodable, or at odds with its header: answer at batch
				// granularity, so a consumer may see a few records early
				// but misses none.
				offset, timestamp, found = max(h.BaseOffset, logStart), h.MaxTimestamp, true
			case hit:
				offset, timestamp, found = off, rts, true
			}
			return !found
		})
		if ierr != nil && !found {
			return 0, 0, false, fmt.Errorf("%w: timestamp lookup in %s: %v", partition.ErrStorage, ref.Object, ierr)
		}
		if found {
			return offset, timestamp, true, nil
		}
	}
	offset, timestamp, ok = p.OffsetForTimestamp(ts)
	return offset, timestamp, ok, nil
}

// maxTimestamp returns the offset and timestamp of the first record holding
// the largest timestamp at or after the log start (ListOffsets -3), or
// ok=false if the log holds none.
func (a *Agent) maxTimestamp(ctx context.Context, t *topic, idx int32, p *partition.Partition) (offset, timestamp int64, ok bool, err error) {
	segs, logStart := a.coldRanges(t, idx, p)
	timestamp = -1
	// Ranges by descending max timestamp (earlier offsets first on ties);
	// stop once no unread range can beat what was found.
	order := make([]int, len(segs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(i, j int) bool { return segs[order[i]].MaxTimestamp > segs[order[j]].MaxTimestamp })
	for _, i := range order {
		ref := segs[i]
		if ok && ref.MaxTimestamp < timestamp || ok && ref.MaxTimestamp == timestamp && ref.FirstOffset > offset {
			break
		}
		buf, err := a.cache.Get(ctx, rangeOf(ref))
		if err != nil {
			return 0, 0, false, fmt.Errorf("%w: max timestamp lookup in %s: %v", partition.ErrStorage, ref.Object, err)
		}
		ierr := batch.Iterate(buf, func(h batch.Header, b []byte) bool {
			if h.LastOffset() < logStart || h.MaxTimestamp < timestamp || ok && h.MaxTimestamp == timestamp && h.BaseOffset > offset {
				return true
			}
			// The batch's max record, unless it lies below the log start
			// (then the batch's retained records are not searched: a
			// partly deleted batch cannot lead).
			off, rts, hit, err := batch.FirstAtOrAfterFrom(b, logStart, h.MaxTimestamp, maxTimestampDecompressed)
			switch {
			case err != nil:
				off, rts, hit = max(h.BaseOffset, logStart), h.MaxTimestamp, true
			case hit && (off < h.BaseOffset || off > h.LastOffset()):
				off = max(h.BaseOffset, logStart)
			}
			if hit && (rts > timestamp || rts == timestamp && off < offset) {
				offset, timestamp, ok = off, rts, true
			}
			return true
		})
		if ierr != nil {
			return 0, 0, false, fmt.Errorf("%w: max timestamp lookup in %s: %v", partition.ErrStorage, ref.Object, ierr)
		}
	}
	// The WAL holds only offsets after the bucket's, so it wins only with a
	// strictly larger timestamp.
	if woff, wts, wok := p.MaxTimestamp(); wok && wts > timestamp {
		// The first record carrying it, rather than its batch's end.
		if off, rts, hit := p.OffsetForTimestamp(wts); hit && rts == wts {
			woff = off
		}
		return woff, wts, true, nil
	}
	return offset, timestamp, ok, nil
}
