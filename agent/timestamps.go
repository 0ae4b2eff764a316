package agent

// Timestamp lookups (ListOffsets by time, and -3 for the largest timestamp)
// span the bucket and the WAL, as fetches do: offsets below flushedEnd live
// only in segment ranges once their WAL entries are dropped. Each committed
// range carries its min and max timestamps in metadata, so only ranges that
// can hold the answer are read (through the range cache, one ranged GET
// each); their batches are then walked as the WAL's are. A flush that
// commits while a lookup runs moves batches from the WAL to the bucket
// behind its back, so the lookup starts again on the newer manifest.

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sort"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier/batch"
)

// maxTimestampDecompressed bounds decompressing one batch to walk its
// records; batches are far smaller in practice.
const maxTimestampDecompressed = 64 << 20

// lookupAttempts bounds restarts of a lookup that flushes keep overtaking.
const lookupAttempts = 4

// tsHit is a record found by a timestamp lookup.
type tsHit struct {
	offset, timestamp int64
	epoch             int32 // the leader epoch of its batch
}

// coldView is the committed ranges of a partition holding offsets at or
// after the log start, as of one metadata state.
type coldView struct {
	segs       []metadata.SegmentRef
	logStart   int64
	flushedEnd int64
}

func (a *Agent) coldView(t *topic, idx int32, p *partition.Partition) coldView {
	o := p.Offsets()
	mp, ok := a.meta.State().Partition(t.id, idx)
	if !ok {
		return coldView{logStart: o.LogStart}
	}
	logStart := max(o.LogStart, mp.LogStart)
	segs := mp.Segments
	i := sort.Search(len(segs), func(i int) bool { return segs[i].LastOffset >= logStart })
	return coldView{segs: segs[i:], logStart: logStart, flushedEnd: mp.FlushedEnd}
}

// overtaken reports whether a flush committed since v was taken.
func (a *Agent) overtaken(t *topic, idx int32, v coldView) bool {
	mp, ok := a.meta.State().Partition(t.id, idx)
	return ok && mp.FlushedEnd != v.flushedEnd
}

// offsetForTimestamp returns the earliest record at or after the log start
// whose timestamp is at or after ts, or ok=false if none qualifies.
func (a *Agent) offsetForTimestamp(ctx context.Context, t *topic, idx int32, p *partition.Partition, ts int64) (hit tsHit, ok bool, err error) {
	for attempt := 1; ; attempt++ {
		v := a.coldView(t, idx, p)
		hit, ok, err := a.coldOffsetForTimestamp(ctx, v, ts)
		if err != nil || ok {
			return hit, ok, err
		}
		off, rts, ok := p.OffsetForTimestamp(ts)
		if ok {
			hit = tsHit{offset: off, timestamp: rts, epoch: p.EpochAt(off)}
		}
		if !a.overtaken(t, idx, v) || attempt == lookupAttempts {
			return hit, ok, nil
		}
	}
}

func (a *Agent) coldOffsetForTimestamp(ctx context.Context, v coldView, ts int64) (hit tsHit, found bool, err error) {
	for _, ref := range v.segs {
		if ref.MaxTimestamp < ts {
			continue
		}
		ierr := a.eachBatch(ctx, ref, func(h batch.Header, b []byte) bool {
			if h.MaxTimestamp < ts || h.LastOffset() < v.logStart {
				return true
			}
			off, rts, ok, err := batch.FirstAtOrAfterFrom(b, v.logStart, ts, maxTimestampDecompressed)
			switch {
			case err != nil || (ok && (off < h.BaseOffset || off > h.LastOffset())):
				// Undecodable, or at odds with its header: answer at batch
				// granularity, so a consumer may see a few records early
				// but misses none.
				hit, found = tsHit{max(h.BaseOffset, v.logStart), h.MaxTimestamp, h.PartitionLeaderEpoch}, true
			case ok:
				hit, found = tsHit{off, rts, h.PartitionLeaderEpoch}, true
			}
			return !found
		})
		if ierr != nil && !found {
			return hit, false, fmt.Errorf("%w: timestamp lookup in %s: %v", partition.ErrStorage, ref.Object, ierr)
		}
		if found {
			return hit, true, nil
		}
	}
	return hit, false, nil
}

// maxTimestamp returns the first record holding the largest timestamp at or
// after the log start (ListOffsets -3), or ok=false if the log holds none.
func (a *Agent) maxTimestamp(ctx context.Context, t *topic, idx int32, p *partition.Partition) (hit tsHit, ok bool, err error) {
	for attempt := 1; ; attempt++ {
		v := a.coldView(t, idx, p)
		hit, ok, err := a.coldMaxTimestamp(ctx, v)
		if err != nil {
			return hit, false, err
		}
		// The WAL holds only offsets after the bucket's, so it wins only
		// with a strictly larger timestamp.
		if woff, wts, wok := p.MaxTimestamp(); wok && (!ok || wts > hit.timestamp) {
			// The first record carrying it, rather than its batch's end.
			if off, rts, found := p.OffsetForTimestamp(wts); found && rts == wts {
				woff = off
			}
			hit, ok = tsHit{offset: woff, timestamp: wts, epoch: p.EpochAt(woff)}, true
		}
		if !a.overtaken(t, idx, v) || attempt == lookupAttempts {
			return hit, ok, nil
		}
	}
}

func (a *Agent) coldMaxTimestamp(ctx context.Context, v coldView) (best tsHit, ok bool, err error) {
	best.timestamp = -1
	// Ranges by descending max timestamp (earlier offsets first on ties);
	// stop once no unread range can beat what was found.
	byMax := slices.Clone(v.segs)
	slices.SortStableFunc(byMax, func(x, y metadata.SegmentRef) int { return cmp.Compare(y.MaxTimestamp, x.MaxTimestamp) })
	for _, ref := range byMax {
		if ok && (ref.MaxTimestamp < best.timestamp || ref.MaxTimestamp == best.timestamp && ref.FirstOffset > best.offset) {
			break
		}
		ierr := a.eachBatch(ctx, ref, func(h batch.Header, b []byte) bool {
			if h.LastOffset() < v.logStart || h.MaxTimestamp < best.timestamp || ok && h.MaxTimestamp == best.timestamp && h.BaseOffset > best.offset {
				return true
			}
			// The batch's max record, unless it lies below the log start
			// (then the batch's retained records are not searched: a
			// partly deleted batch cannot lead).
			off, rts, hit, err := batch.FirstAtOrAfterFrom(b, v.logStart, h.MaxTimestamp, maxTimestampDecompressed)
			switch {
			case err != nil:
				off, rts, hit = max(h.BaseOffset, v.logStart), h.MaxTimestamp, true
			case hit && (off < h.BaseOffset || off > h.LastOffset()):
				off = max(h.BaseOffset, v.logStart)
			}
			if hit && (rts > best.timestamp || rts == best.timestamp && off < best.offset) {
				best, ok = tsHit{off, rts, h.PartitionLeaderEpoch}, true
			}
			return true
		})
		if ierr != nil {
			return best, false, fmt.Errorf("%w: max timestamp lookup in %s: %v", partition.ErrStorage, ref.Object, ierr)
		}
	}
	return best, ok, nil
}

// eachBatch calls fn on ref's batches in order until it returns false,
// reading the range a piece at a time (a compacted range's chunks are read
// only as far as fn goes).
func (a *Agent) eachBatch(ctx context.Context, ref metadata.SegmentRef, fn func(h batch.Header, b []byte) bool) error {
	r := refOf(ref)
	for off := r.FirstOffset; off <= r.LastOffset; {
		piece, err := a.ranges.Read(ctx, r, off)
		if err != nil {
			return err
		}
		more := true
		if err := batch.Iterate(piece.Data, func(h batch.Header, b []byte) bool {
			more = fn(h, b)
			return more
		}); err != nil || !more {
			return err
		}
		off = piece.Through + 1
	}
	return nil
}
