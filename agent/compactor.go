package agent

// Flushes every 250 ms leave many small ranges per partition. The compactor,
// on the controller, rewrites runs of consecutive small ranges of one
// partition into one per-partition object (up to CompactBytes, 64 MiB by
// default) and swaps them in the manifest with one journal entry, so the
// manifest grows with retained bytes, not with the number of flushes, and a
// replay reads few, large objects. A range counts as small below half the
// target, so a merged range stops being rewritten once it is big enough.
// The merged range carries the producer snapshot of the run's last range
// (state as of the same last offset), so a replica that starts at the
// flushed end still recognises a retried batch after compaction. The old
// objects are left to garbage collection, which deletes each once
// no partition references it.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"sort"

	"github.com/google/uuid"

	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier/segment"
)

func (a *Agent) compactLoop() {
	a.controllerLoop(a.cfg.CompactInterval, nil, "compaction", func(ctx context.Context) error {
		_, err := a.compactOnce(ctx)
		return err
	})
}

// smallRun returns the first run of at least two consecutive small ranges
// whose total fits in target.
func smallRun(segs []metadata.SegmentRef, target int64) []metadata.SegmentRef {
	for i := 0; i < len(segs); {
		if segs[i].Length >= target/2 {
			i++
			continue
		}
		j, total := i, int64(0)
		for j < len(segs) && segs[j].Length < target/2 && total+segs[j].Length <= target {
			total += segs[j].Length
			j++
		}
		if j-i >= 2 {
			return segs[i:j]
		}
		i = max(j, i+1)
	}
	return nil
}

// compactOnce merges at most one run per partition, reading at most
// CompactBytes×4 per pass to bound memory and bucket traffic. It returns
// how many runs it replaced.
func (a *Agent) compactOnce(ctx context.Context) (int, error) {
	st := a.meta.State()
	ids := make([]uuid.UUID, 0, len(st.Topics))
	for id := range st.Topics {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	budget := 4 * a.cfg.CompactBytes
	done := 0
	for _, id := range ids {
		mt := st.Topics[id]
		for i := range mt.Partitions {
			if budget <= 0 {
				return done, nil
			}
			run := smallRun(mt.Partitions[i].Segments, a.cfg.CompactBytes)
			if run == nil {
				continue
			}
			n, err := a.compactRun(ctx, mt, int32(i), run)
			if err != nil {
				return done, fmt.Errorf("%s/%d: %w", mt.Name, i, err)
			}
			budget -= n
			done++
		}
	}
	return done, nil
}

func (a *Agent) compactRun(ctx context.Context, mt *metadata.Topic, idx int32, run []metadata.SegmentRef) (int64, error) {
	var data []byte
	merged := metadata.SegmentRef{
		FirstOffset: run[0].FirstOffset, LastOffset: run[len(run)-1].LastOffset,
		MinTimestamp: run[0].MinTimestamp, MaxTimestamp: run[0].MaxTimestamp,
	}
	old := make([]string, len(run))
	for k, r := range run {
		b, err := a.cfg.Bucket.GetRange(ctx, r.Object, r.Offset, r.Length)
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", r.Object, err)
		}
		if int64(len(b)) != r.Length || (r.CRC != 0 && crc32.Checksum(b, castagnoli) != r.CRC) {
			return 0, fmt.Errorf("range of %s [%d,+%d) fails its checksum", r.Object, r.Offset, r.Length)
		}
		data = append(data, b...)
		old[k] = r.Object
		merged.MinTimestamp = min(merged.MinTimestamp, r.MinTimestamp)
		merged.MaxTimestamp = max(merged.MaxTimestamp, r.MaxTimestamp)
		merged.LeaderEpoch = max(merged.LeaderEpoch, r.LeaderEpoch)
	}
	snapshot, err := a.producerSnapshotOf(ctx, mt.ID, idx, run[len(run)-1])
	if err != nil {
		return 0, err
	}
	w := segment.NewWriter(a.cfg.ID)
	if err := w.Add(mt.ID, idx, merged.LeaderEpoch, data, snapshot); err != nil {
		return 0, fmt.Errorf("build merged object: %w", err)
	}
	e := w.Entries()[0]
	merged.Object = a.newObjectKey("c.seg")
	merged.Offset, merged.Length, merged.CRC = e.Pos, e.Len, e.CRC
	if _, err := a.cfg.Bucket.PutIfAbsent(ctx, merged.Object, w.Bytes()); err != nil {
		return 0, fmt.Errorf("upload %s: %w", merged.Object, err)
	}
	_, err = a.propose(ctx, metadata.ReplaceSegments{TopicID: mt.ID, Partition: idx, Old: old, New: merged})
	if err != nil {
		// Retention or another compaction got there first; the upload
		// is an orphan for garbage collection.
		if errors.Is(err, metadata.ErrNotContiguous) {
			return int64(len(data)), nil
		}
		return 0, fmt.Errorf("swap in %s: %w", merged.Object, err)
	}
	a.stats.compactions.Add(1)
	a.log.Debug("compacted", "topic", mt.Name, "partition", idx, "ranges", len(run), "bytes", len(data), "object", merged.Object)
	return int64(len(data)), nil
}
