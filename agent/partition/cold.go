package partition

// Reads below the flushed end come from the bucket: the partition's
// committed ranges (Manifest, from metadata) name the object, byte range
// and CRC of each; a RangeReader (tier/rangecache) fetches a flush's range
// whole and a compacted range a few blocks at a time through its object's
// footer index, verifies what it read, keeps it in memory and reads ahead
// for sequential consumers. A read that reaches the flushed end continues
// from the WAL, so callers see one log.
//
// Timestamp lookups (ListOffsets by time, and -3 for the largest timestamp)
// span both the same way, walking forward once: the committed ranges of one
// manifest, then the WAL from where they end. Each committed range carries
// its min and max timestamps, so only ranges that can hold the answer are
// read. A flush that commits while a lookup runs may move batches from the
// WAL to the bucket before the walk reaches them; the WAL side says where
// it stopped, and the walk goes on over just the ranges that flush
// committed (a flush commits its range before the WAL drops it, so the
// newer manifest holds them).

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier/batch"
	"github.com/tlog-io/tlog/tier/rangecache"
	"github.com/tlog-io/tlog/tier/segment"
)

// Manifest names the partition's committed ranges as metadata has them.
type Manifest interface {
	// Committed returns the ranges in offset order with the log start
	// and flushed end beside them; ok is false once the partition has
	// left metadata.
	Committed() (c Committed, ok bool)
}

// Committed is a partition's manifest at one metadata state.
type Committed struct {
	Segments   []metadata.SegmentRef
	LogStart   int64
	FlushedEnd int64
}

// RangeReader reads the bytes of committed ranges (tier/rangecache.Reader).
type RangeReader interface {
	Read(ctx context.Context, ref rangecache.Ref, offset int64) (rangecache.Piece, error)
	Prefetch(ref rangecache.Ref)
	Done(p rangecache.Piece)
}

// coldEnough is where Read stops gathering flushed batches for one
// answer once a cached piece ends: the piece itself goes out uncopied.
const coldEnough = 256 << 10

// maxTimestampDecompressed bounds decompressing one batch to walk its
// records: what a compressed batch may inflate to at least, as produce
// validation allows.
const maxTimestampDecompressed = batch.MinInflateLimit

// Hit is a record found by a timestamp lookup.
type Hit struct {
	Offset, Timestamp int64
	Epoch             int32 // the leader epoch of its batch
}

// Read returns whole batches starting with the one holding offset, up to
// the high watermark and maxBytes, from the bucket and then the WAL. With
// minOne the first batch is returned even if larger, so a consumer can
// always make progress (KIP-74). offset == HW yields nothing.
func (p *Partition) Read(ctx context.Context, offset int64, maxBytes int, minOne bool) ([]byte, Offsets, error) {
	data, o, err := p.readWAL(offset, maxBytes, minOne)
	if !errors.Is(err, ErrFlushed) {
		return data, o, err
	}
	var out []byte
	for offset < o.FlushedEnd {
		chunk, next, err := p.readCold(ctx, offset, maxBytes-len(out), minOne && len(out) == 0)
		if err != nil {
			return nil, o, err
		}
		if len(chunk) == 0 {
			return out, o, nil
		}
		if out == nil {
			out = chunk // the cache's bytes, capped, so the next append copies
		} else {
			out = append(out, chunk...)
		}
		offset = next
		// Enough for one answer: a consumer asks again at once, and a
		// larger answer would be copied together from cached ranges
		// (a copy, and the zeroing of its buffer, per byte) only for
		// the response encoder to copy it once more.
		if len(out) >= maxBytes || len(out) >= coldEnough {
			return out, o, nil
		}
	}
	// Continue into the WAL with what budget is left.
	more, o2, err := p.readWAL(offset, maxBytes-len(out), len(out) == 0 && minOne)
	if err != nil && !errors.Is(err, ErrFlushed) {
		if len(out) > 0 {
			return out, o, nil
		}
		return nil, o2, err
	}
	return append(out, more...), o2, nil
}

// ReadCommitted is Read for read_committed consumers: whole batches below
// the last stable offset only, with the aborted transactions overlapping
// what it returns (the consumer drops their records).
func (p *Partition) ReadCommitted(ctx context.Context, offset int64, maxBytes int, minOne bool) ([]byte, Offsets, []AbortedTxn, error) {
	data, o, err := p.Read(ctx, offset, maxBytes, minOne)
	if err != nil || len(data) == 0 {
		return data, o, nil, err
	}
	if o.LSO < 0 {
		// Which transactions aborted is part of the producer state: serve
		// nothing until it loads rather than aborted records.
		return nil, o, nil, ErrProducersLoading
	}
	cut, end := 0, offset
	markers := map[int64]bool{} // offsets of the markers returned
	for cut < len(data) {
		h, size, err := batch.Next(data[cut:])
		if err != nil {
			return nil, o, nil, fmt.Errorf("%w: partition %s/%d at %d: %v", ErrStorage, p.cfg.Topic, p.cfg.Index, end, err)
		}
		if h.BaseOffset >= o.LSO {
			break
		}
		if h.Control() {
			markers[h.BaseOffset] = true
		}
		cut += size
		end = h.LastOffset() + 1
	}
	if cut == 0 {
		return nil, o, nil, nil
	}
	p.mu.Lock()
	aborted := p.producers.abortedIn(offset, end)
	p.mu.Unlock()
	// An aborted transaction whose marker falls inside what is returned
	// but is not there was cleaned away by key compaction, which blanks a
	// marker only once none of its records is left: naming it would have
	// the consumer drop that producer's later batches in this response,
	// waiting for a marker that never comes.
	kept := aborted[:0:0]
	for _, a := range aborted {
		if a.LastOffset >= end || markers[a.LastOffset] {
			kept = append(kept, a)
		}
	}
	return data[:cut], o, kept, nil
}

// Prefetch starts reading, in the background, the committed range holding
// offset and the one after it, if offset is below the flushed end: a fetch
// of many partitions asks for each of them before reading any, so their
// GETs overlap instead of running one after another.
func (p *Partition) Prefetch(offset int64) {
	if p.cfg.Manifest == nil || p.cfg.Ranges == nil {
		return
	}
	p.mu.Lock()
	flushed := p.flushed
	p.mu.Unlock()
	if offset >= flushed {
		return
	}
	mp, ok := p.cfg.Manifest.Committed()
	if !ok {
		return
	}
	segs := mp.Segments
	i := sort.Search(len(segs), func(i int) bool { return segs[i].LastOffset >= offset })
	if i < len(segs) && segs[i].FirstOffset <= offset {
		p.cfg.Ranges.Prefetch(refOf(segs[i]))
	}
	p.readAhead(segs, i+1)
}

// readAheadBytes is how far a cold reader's GETs run ahead of it: ranges
// from from on, until this many bytes (at least one range). A replay
// waits on GET latency, not bandwidth, so several ranges in flight per
// partition keep it fed; the range cache bounds the total.
const readAheadBytes = 8 << 20

func (p *Partition) readAhead(segs []metadata.SegmentRef, from int) {
	for j, n := from, int64(0); j < len(segs) && (j == from || n < readAheadBytes); j++ {
		p.cfg.Ranges.Prefetch(refOf(segs[j]))
		n += segs[j].Length
	}
}

// readCold reads from the segment range holding offset. It returns the
// batches and the offset after the last one.
func (p *Partition) readCold(ctx context.Context, offset int64, maxBytes int, minOne bool) ([]byte, int64, error) {
	if p.cfg.Manifest == nil || p.cfg.Ranges == nil {
		return nil, 0, fmt.Errorf("%w: %d is flushed and partition %s/%d reads no bucket", ErrOffsetOutOfRange, offset, p.cfg.Topic, p.cfg.Index)
	}
	mp, ok := p.cfg.Manifest.Committed()
	if !ok {
		return nil, 0, fmt.Errorf("%w: partition %s/%d left metadata", ErrOffsetOutOfRange, p.cfg.Topic, p.cfg.Index)
	}
	segs := mp.Segments
	i := sort.Search(len(segs), func(i int) bool { return segs[i].LastOffset >= offset })
	if i == len(segs) || segs[i].FirstOffset > offset {
		if offset < mp.LogStart {
			return nil, 0, fmt.Errorf("%w: %d is below the log start %d", ErrOffsetOutOfRange, offset, mp.LogStart)
		}
		return nil, 0, fmt.Errorf("%w: no segment holds offset %d of %s/%d", ErrStorage, offset, p.cfg.Topic, p.cfg.Index)
	}
	ref := refOf(segs[i])
	piece, err := p.cfg.Ranges.Read(ctx, ref, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	p.readAhead(segs, i+1)
	limit := maxBytes
	if !minOne && limit <= 0 {
		return nil, offset, nil
	}
	data, err := segment.Cut(piece.Data, offset, max(limit, 0))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %s: %v", ErrStorage, ref.Object, err)
	}
	if !minOne && len(data) > maxBytes {
		return nil, offset, nil
	}
	next, err := endOffset(data)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %s: %v", ErrStorage, ref.Object, err)
	}
	if next > piece.Through {
		p.cfg.Ranges.Done(piece)
	}
	return data, next, nil
}

func refOf(ref metadata.SegmentRef) rangecache.Ref {
	return rangecache.Ref{Object: ref.Object, Pos: ref.Offset, Len: ref.Length, CRC: ref.CRC, FirstOffset: ref.FirstOffset, LastOffset: ref.LastOffset}
}

// endOffset is the offset after the last batch in data.
func endOffset(data []byte) (int64, error) {
	var next int64 = -1
	err := batch.Iterate(data, func(h batch.Header, _ []byte) bool {
		next = h.LastOffset() + 1
		return true
	})
	if err == nil && next < 0 {
		err = errors.New("no batches")
	}
	return next, err
}

// coldView is the committed ranges of a partition holding offsets at or
// after from (and the log start), as of one metadata state.
type coldView struct {
	segs       []metadata.SegmentRef
	from       int64 // the lowest offset searched: max(from, log start)
	flushedEnd int64 // where the ranges end
}

func (p *Partition) coldView(from int64) coldView {
	o := p.Offsets()
	from = max(from, o.LogStart)
	var mp Committed
	ok := p.cfg.Manifest != nil
	if ok {
		mp, ok = p.cfg.Manifest.Committed()
	}
	if !ok {
		// Nothing below the flushed end can be read.
		return coldView{from: from, flushedEnd: max(from, o.FlushedEnd)}
	}
	from = max(from, mp.LogStart)
	segs := mp.Segments
	i := sort.Search(len(segs), func(i int) bool { return segs[i].LastOffset >= from })
	return coldView{segs: segs[i:], from: from, flushedEnd: max(mp.FlushedEnd, from)}
}

// walFrom is where a lookup's walk continues into the WAL after v: v's end,
// which must be past where the previous pass stopped (resumed, or -1), or
// the manifest is behind the WAL and the lookup would not progress.
func (p *Partition) walFrom(v coldView, resumed int64) (int64, error) {
	if resumed >= 0 && v.flushedEnd <= resumed {
		return 0, fmt.Errorf("%w: partition %s/%d: offsets from %d left the WAL but its committed ranges end at %d",
			ErrStorage, p.cfg.Topic, p.cfg.Index, resumed, v.flushedEnd)
	}
	return v.flushedEnd, nil
}

// OffsetForTimestamp returns the earliest record at or after the log start
// whose timestamp is at or after ts, or ok=false if none qualifies.
func (p *Partition) OffsetForTimestamp(ctx context.Context, ts int64) (Hit, bool, error) {
	for from, resumed := int64(-1), int64(-1); ; {
		v := p.coldView(from)
		hit, ok, err := p.coldOffsetForTimestamp(ctx, v, ts)
		if err != nil || ok {
			return hit, ok, err
		}
		walFrom, err := p.walFrom(v, resumed)
		if err != nil {
			return Hit{}, false, err
		}
		off, rts, ok, resume := p.walOffsetForTimestamp(walFrom, ts)
		if resume >= 0 {
			// A flush moved [resume, ...) to the bucket before the walk
			// read it: search just the ranges that flush committed.
			from, resumed = resume, resume
			continue
		}
		if !ok {
			return Hit{}, false, nil
		}
		return Hit{Offset: off, Timestamp: rts, Epoch: p.EpochAt(off)}, true, nil
	}
}

func (p *Partition) coldOffsetForTimestamp(ctx context.Context, v coldView, ts int64) (hit Hit, found bool, err error) {
	for _, ref := range v.segs {
		if ref.MaxTimestamp < ts {
			continue
		}
		ierr := p.eachBatch(ctx, ref, func(h batch.Header, b []byte) bool {
			if h.MaxTimestamp < ts || h.LastOffset() < v.from {
				return true
			}
			off, rts, ok, err := batch.FirstAtOrAfterFrom(b, v.from, ts, maxTimestampDecompressed)
			switch {
			case err != nil || (ok && (off < h.BaseOffset || off > h.LastOffset())):
				// Undecodable, or at odds with its header: answer at batch
				// granularity, so a consumer may see a few records early
				// but misses none.
				hit, found = Hit{max(h.BaseOffset, v.from), h.MaxTimestamp, h.PartitionLeaderEpoch}, true
			case ok:
				hit, found = Hit{off, rts, h.PartitionLeaderEpoch}, true
			}
			return !found
		})
		if ierr != nil && !found {
			return hit, false, fmt.Errorf("%w: timestamp lookup in %s: %v", ErrStorage, ref.Object, ierr)
		}
		if found {
			return hit, true, nil
		}
	}
	return hit, false, nil
}

// MaxTimestamp returns the first record holding the largest timestamp at or
// after the log start (ListOffsets -3), or ok=false if the log holds none.
func (p *Partition) MaxTimestamp(ctx context.Context) (best Hit, found bool, err error) {
	for from, resumed := int64(-1), int64(-1); ; {
		v := p.coldView(from)
		hit, ok, err := p.coldMaxTimestamp(ctx, v)
		if err != nil {
			return Hit{}, false, err
		}
		// Each pass covers later offsets than the one before, so it wins
		// only with a strictly larger timestamp.
		if ok && (!found || hit.Timestamp > best.Timestamp) {
			best, found = hit, true
		}
		walFrom, err := p.walFrom(v, resumed)
		if err != nil {
			return Hit{}, false, err
		}
		woff, wts, wok, resume := p.walMaxTimestamp(walFrom)
		if wok && (!found || wts > best.Timestamp) && resume < 0 {
			// The first record carrying it, rather than its batch's end.
			var off, rts int64
			var hit bool
			if off, rts, hit, resume = p.walOffsetForTimestamp(walFrom, wts); hit && rts == wts {
				woff = off
			}
			if resume < 0 {
				best, found = Hit{Offset: woff, Timestamp: wts, Epoch: p.EpochAt(woff)}, true
			}
		}
		if resume < 0 {
			return best, found, nil
		}
		// A flush moved [resume, ...) to the bucket: continue there.
		from, resumed = resume, resume
	}
}

func (p *Partition) coldMaxTimestamp(ctx context.Context, v coldView) (best Hit, ok bool, err error) {
	best.Timestamp = -1
	// Ranges by descending max timestamp (earlier offsets first on ties);
	// stop once no unread range can beat what was found.
	byMax := slices.Clone(v.segs)
	slices.SortStableFunc(byMax, func(x, y metadata.SegmentRef) int { return cmp.Compare(y.MaxTimestamp, x.MaxTimestamp) })
	for _, ref := range byMax {
		if ok && (ref.MaxTimestamp < best.Timestamp || ref.MaxTimestamp == best.Timestamp && ref.FirstOffset > best.Offset) {
			break
		}
		ierr := p.eachBatch(ctx, ref, func(h batch.Header, b []byte) bool {
			if h.LastOffset() < v.from || h.MaxTimestamp < best.Timestamp || ok && h.MaxTimestamp == best.Timestamp && h.BaseOffset > best.Offset {
				return true
			}
			// The batch's max record, unless it lies below the log start
			// (then the batch's retained records are not searched: a
			// partly deleted batch cannot lead).
			off, rts, hit, err := batch.FirstAtOrAfterFrom(b, v.from, h.MaxTimestamp, maxTimestampDecompressed)
			switch {
			case err != nil:
				off, rts, hit = max(h.BaseOffset, v.from), h.MaxTimestamp, true
			case hit && (off < h.BaseOffset || off > h.LastOffset()):
				off = max(h.BaseOffset, v.from)
			}
			if hit && (rts > best.Timestamp || rts == best.Timestamp && off < best.Offset) {
				best, ok = Hit{off, rts, h.PartitionLeaderEpoch}, true
			}
			return true
		})
		if ierr != nil {
			return best, false, fmt.Errorf("%w: max timestamp lookup in %s: %v", ErrStorage, ref.Object, ierr)
		}
	}
	return best, ok, nil
}

// eachBatch calls fn on ref's batches in order until it returns false,
// reading the range a piece at a time (a compacted range's chunks are read
// only as far as fn goes).
func (p *Partition) eachBatch(ctx context.Context, ref metadata.SegmentRef, fn func(h batch.Header, b []byte) bool) error {
	r := refOf(ref)
	for off := r.FirstOffset; off <= r.LastOffset; {
		piece, err := p.cfg.Ranges.Read(ctx, r, off)
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
