package agent

// Reads below a partition's flushedEnd come from segment objects: the
// partition's committed ranges in metadata name the object, byte range and
// CRC; the range reader fetches a flush's range with one ranged GET, and a
// compacted range a few blocks at a time through its object's footer index,
// verifies what it read, keeps it in memory, and reads ahead for sequential
// consumers. A fetch that reaches flushedEnd continues from the WAL.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier/batch"
	"github.com/tlog-io/tlog/tier/rangecache"
	"github.com/tlog-io/tlog/tier/segment"
)

// maxColdResponse bounds the buffer readFrom sizes ahead of need.
const maxColdResponse = 16 << 20

// readFrom returns whole batches from offset, up to maxBytes (the first
// batch regardless when minOne), from the bucket and then the WAL.
func (a *Agent) readFrom(ctx context.Context, t *topic, idx int32, p *partition.Partition, offset int64, maxBytes int, minOne bool) ([]byte, partition.Offsets, error) {
	data, o, err := p.Read(offset, maxBytes, minOne)
	if !errors.Is(err, partition.ErrFlushed) {
		return data, o, err
	}
	var out []byte
	for offset < o.FlushedEnd {
		chunk, next, err := a.readCold(ctx, t, idx, offset, maxBytes-len(out), minOne && len(out) == 0)
		if err != nil {
			return nil, o, err
		}
		if len(chunk) == 0 {
			return out, o, nil
		}
		if out == nil {
			out = chunk // the cache's bytes, capped, so the next append copies
		} else {
			// Sized for the whole budget on leaving the cache's bytes,
			// rather than regrown chunk by chunk (a no-op after that).
			out = slices.Grow(out, max(len(chunk), min(maxBytes, maxColdResponse)-len(out)))
			out = append(out, chunk...)
		}
		offset = next
		if len(out) >= maxBytes {
			return out, o, nil
		}
	}
	// Continue into the WAL with what budget is left.
	more, o2, err := p.Read(offset, maxBytes-len(out), len(out) == 0 && minOne)
	if err != nil && !errors.Is(err, partition.ErrFlushed) {
		if len(out) > 0 {
			return out, o, nil
		}
		return nil, o2, err
	}
	return append(out, more...), o2, nil
}

// readCold reads from the segment range holding offset. It returns the
// batches and the offset after the last one.
func (a *Agent) readCold(ctx context.Context, t *topic, idx int32, offset int64, maxBytes int, minOne bool) ([]byte, int64, error) {
	mp, ok := a.meta.State().Partition(t.id, idx)
	if !ok {
		return nil, 0, fmt.Errorf("%w: partition %s/%d left metadata", partition.ErrOffsetOutOfRange, t.name, idx)
	}
	segs := mp.Segments
	i := sort.Search(len(segs), func(i int) bool { return segs[i].LastOffset >= offset })
	if i == len(segs) || segs[i].FirstOffset > offset {
		if offset < mp.LogStart {
			return nil, 0, fmt.Errorf("%w: %d is below the log start %d", partition.ErrOffsetOutOfRange, offset, mp.LogStart)
		}
		return nil, 0, fmt.Errorf("%w: no segment holds offset %d of %s/%d", partition.ErrStorage, offset, t.name, idx)
	}
	ref := refOf(segs[i])
	piece, err := a.ranges.Read(ctx, ref, offset)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %v", partition.ErrStorage, err)
	}
	if i+1 < len(segs) {
		a.ranges.Prefetch(refOf(segs[i+1]))
	}
	limit := maxBytes
	if !minOne && limit <= 0 {
		return nil, offset, nil
	}
	data, err := segment.Cut(piece.Data, offset, max(limit, 0))
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %s: %v", partition.ErrStorage, ref.Object, err)
	}
	if !minOne && len(data) > maxBytes {
		return nil, offset, nil
	}
	next, err := endOffset(data)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: %s: %v", partition.ErrStorage, ref.Object, err)
	}
	if next > piece.Through {
		a.ranges.Done(piece)
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
