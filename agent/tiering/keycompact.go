package tiering

// Key compaction (cleanup.policy=compact), on the controller, over the
// committed ranges in the bucket: what Kafka's log cleaner does to local
// segments. A pass over one partition takes the cleanable ranges (those
// whose newest record is older than min.compaction.lag.ms and that end
// before any transaction still open), builds the latest offset of each
// key from where the last pass stopped (the dirty part) into a bounded
// map (compact.OffsetMap; when it fills, the pass ends there and the next
// goes on), then rewrites every cleanable range below the map's end,
// oldest first, keeping only records that are their key's latest (offsets
// unchanged, every batch header kept, so gaps appear as in Kafka), and
// dropping aborted transactions' records, tombstones older than
// delete.retention.ms, and markers as old whose transactions have no
// record left (compact.Markers). Each rewritten range is a new
// per-partition object
// carrying the old range's producer snapshot, swapped in with
// ReplaceSegments; a swap the journal refuses (a merge or retention got
// there first) leaves an orphan for garbage collection, and a crash at
// any point leaves the manifest pointing at whole ranges, each either the
// old or the cleaned one: a key's latest value is never dropped, because
// only records a later record of the same key supersedes are, and the
// ranges are swapped oldest first (a tombstone goes only after the values
// it hides). Re-running a pass over cleaned ranges changes nothing.

import (
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier/compact"
	"github.com/tlog-io/tlog/tier/segment"
)

// maxDecompressedBatch bounds one batch's records while compacting (the
// front end's cap on what a producer may send inflated).
const maxDecompressedBatch = 64 << 20

// tp names one partition.
type tp struct {
	topic uuid.UUID
	idx   int32
}

// keyCompactState is the controller's memory between passes (where each
// partition's dirty part starts is in the journal: CleanedEnd). Lost on a
// controller change, it only delays a tombstone-only pass.
type keyCompactState struct {
	// tombstonesDue is when a partition's oldest kept tombstone expires
	// (unix ms; 0: none kept): a pass then runs even with nothing dirty,
	// so deleted keys go after delete.retention.ms on a quiet topic too.
	tombstonesDue map[tp]int64
	m             *compact.OffsetMap
	mBudget       int64 // the bytes m was made with
}

func (tr *Tiering) keyCompactLoop() {
	tr.controllerLoop(func() time.Duration { return tr.keyCompactInterval(tr.host.State()) }, nil, "key compaction", func(ctx context.Context) error {
		_, err := tr.keyCompactOnce(ctx, time.Now())
		return err
	})
}

// Dynamic broker configs (Kafka's names) an operator may set on the
// controller's agent or cluster-wide, over KeyCompactInterval and
// KeyCompactBufferBytes.
const (
	cleanerBackoffConfig    = "log.cleaner.backoff.ms"
	cleanerDedupeBufferSize = "log.cleaner.dedupe.buffer.size"
)

// keyCompactInterval is log.cleaner.backoff.ms if set dynamically, else
// the agent's KeyCompactInterval.
func (tr *Tiering) keyCompactInterval(st *metadata.State) time.Duration {
	if v, _, ok := st.BrokerConfig(tr.cfg.ID, cleanerBackoffConfig); ok {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 {
			return time.Duration(ms) * time.Millisecond
		}
	}
	return tr.cfg.KeyCompactInterval
}

// keyCompactBufferBytes is log.cleaner.dedupe.buffer.size if set
// dynamically, else the agent's KeyCompactBufferBytes.
func (tr *Tiering) keyCompactBufferBytes(st *metadata.State) int64 {
	if v, _, ok := st.BrokerConfig(tr.cfg.ID, cleanerDedupeBufferSize); ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return tr.cfg.KeyCompactBufferBytes
}

// keyCompactOnce runs one pass over every compacted partition that has
// enough to clean; it returns how many partitions it cleaned.
func (tr *Tiering) keyCompactOnce(ctx context.Context, now time.Time) (int, error) {
	st := tr.host.State()
	ids := make([]uuid.UUID, 0, len(st.Topics))
	for id, mt := range st.Topics {
		if mt.CleanupPolicyHas("compact") {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, func(a, b uuid.UUID) int { return strings.Compare(a.String(), b.String()) })
	done := 0
	var errs []error
	for _, id := range ids {
		mt := st.Topics[id]
		for i := range mt.Partitions {
			if ctx.Err() != nil {
				return done, ctx.Err()
			}
			cleaned, err := tr.keyCompactPartition(ctx, mt, int32(i), now)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s/%d: %w", mt.Name, i, err))
				continue
			}
			if cleaned {
				done++
			}
		}
	}
	return done, errors.Join(errs...)
}

// cleanable is the prefix of segs a pass may clean as of now.
func cleanable(mt *metadata.Topic, segs []metadata.SegmentRef, now time.Time) []metadata.SegmentRef {
	lag := mt.ConfigInt("min.compaction.lag.ms", 0)
	n := 0
	for n < len(segs) && segs[n].MaxTimestamp <= now.UnixMilli()-lag {
		n++
	}
	return segs[:n]
}

// dirtyRatio is the share of the cleanable bytes at or past from.
func dirtyRatio(segs []metadata.SegmentRef, from int64) float64 {
	var total, dirty int64
	for _, s := range segs {
		total += s.Length
		if s.FirstOffset >= from {
			dirty += s.Length
		}
	}
	if total == 0 {
		return 0
	}
	return float64(dirty) / float64(total)
}

func configFloat(mt *metadata.Topic, name string, def float64) float64 {
	if v, ok := mt.Configs[name]; ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	}
	return def
}

// keyCompactPartition runs a pass over one partition if it is due: its
// dirty ratio reached min.cleanable.dirty.ratio, or its oldest dirty
// record is older than max.compaction.lag.ms.
func (tr *Tiering) keyCompactPartition(ctx context.Context, mt *metadata.Topic, idx int32, now time.Time) (bool, error) {
	mp := mt.Partitions[idx]
	segs := cleanable(mt, mp.Segments, now)
	if len(segs) == 0 {
		return false, nil
	}
	key := tp{mt.ID, idx}
	ks := &tr.keyState
	if ks.tombstonesDue == nil {
		ks.tombstonesDue = map[tp]int64{}
	}
	from := max(mp.CleanedEnd, mp.LogStart)
	last := segs[len(segs)-1]
	due := ks.tombstonesDue[key]
	tombstonesDue := due != 0 && now.UnixMilli() >= due
	dirty := from <= last.LastOffset
	if !dirty && !tombstonesDue {
		return false, nil
	}
	ratio := dirtyRatio(segs, from)
	overdue := false
	if maxLag := mt.ConfigInt("max.compaction.lag.ms", math.MaxInt64); maxLag < math.MaxInt64 {
		for _, s := range segs {
			if s.LastOffset >= from {
				overdue = s.MinTimestamp < now.UnixMilli()-maxLag
				break
			}
		}
	}
	if ratio < configFloat(mt, "min.cleanable.dirty.ratio", 0.5) && !overdue && !tombstonesDue {
		return false, nil
	}

	// Transactions: a pass stops before the first one still open at the
	// end of the cleanable ranges, and knows every aborted one.
	snap, err := ProducerSnapshotOf(ctx, tr.cfg.Bucket, mt.ID, idx, last)
	if err != nil {
		return false, err
	}
	var aborted []partition.AbortedTxn
	if len(snap) > 0 {
		open, ab, _, err := partition.SnapshotTxns(snap)
		if err != nil {
			return false, fmt.Errorf("producer snapshot of %s: %w", last.Object, err)
		}
		aborted = ab
		if len(open) > 0 {
			n := 0
			for n < len(segs) && segs[n].LastOffset < open[0] {
				n++
			}
			segs = segs[:n]
		}
	}
	if len(segs) == 0 {
		return false, nil
	}
	opts := compact.Options{
		MaxDecompressed:        maxDecompressedBatch,
		DeleteTombstonesBefore: now.UnixMilli() - mt.ConfigInt("delete.retention.ms", 86_400_000),
		Markers:                compact.NewMarkers(), // the rewrite goes from the log start
		Aborted: func(pid, off int64) bool {
			for _, a := range aborted {
				if a.ProducerID == pid && a.FirstOffset <= off && off <= a.LastOffset {
					return true
				}
			}
			return false
		},
	}

	// The map: from the dirty start until the ranges end or it is full.
	budget := tr.keyCompactBufferBytes(tr.host.State())
	if ks.m == nil || ks.mBudget != budget {
		ks.m, ks.mBudget = compact.NewOffsetMap(int(budget)), budget
	}
	m := ks.m
	m.Clear()
	mapEnd := from
	read := map[string][]byte{} // ranges read for the map, reused for the rewrite while small
	var readBytes int64
	for _, s := range segs {
		if s.LastOffset < from || !dirty {
			continue
		}
		data, err := tr.readRange(ctx, s)
		if err != nil {
			return false, err
		}
		next, full, err := compact.AddToMap(m, data, mapEnd, opts)
		if err != nil {
			return false, fmt.Errorf("map %s: %w", s.Object, err)
		}
		mapEnd = next
		if readBytes+int64(len(data)) <= budget {
			read[s.Object] = data
			readBytes += int64(len(data))
		}
		if full {
			break
		}
	}
	if dirty && mapEnd <= from {
		return false, fmt.Errorf("a batch at offset %d has more keys than the compaction buffer holds (%d bytes)", from, budget)
	}

	// The rewrite, oldest range first.
	var st compact.Stats
	var oldestKept int64
	for _, s := range segs {
		if s.FirstOffset >= mapEnd {
			break
		}
		data, ok := read[s.Object]
		if !ok {
			if data, err = tr.readRange(ctx, s); err != nil {
				return false, err
			}
		}
		out, rst, err := compact.Clean(data, m, mapEnd, opts)
		if err != nil {
			return false, fmt.Errorf("clean %s: %w", s.Object, err)
		}
		st.KeptTombstones += rst.KeptTombstones
		if rst.KeptTombstones > 0 && (oldestKept == 0 || rst.OldestKeptTombstone < oldestKept) {
			oldestKept = rst.OldestKeptTombstone
		}
		if len(out) == len(data) && rst.Dropped() == 0 {
			continue
		}
		swapped, err := tr.swapCleaned(ctx, mt, idx, s, out)
		if err != nil {
			return false, err
		}
		if !swapped {
			// The range changed under the pass (merged, or retention):
			// the next pass starts over from here.
			return true, nil
		}
		st.Records += rst.Records
		st.Tombstones += rst.Tombstones
		st.Aborted += rst.Aborted
		st.Markers += rst.Markers
		tr.keyCompactedBytes.Add(int64(len(data) - len(out)))
		tr.keyCompactedRecords.Add(int64(rst.Dropped()))
	}
	if mapEnd > mp.CleanedEnd {
		if _, err := tr.host.Propose(ctx, metadata.SetCleanedEnd{TopicID: mt.ID, Partition: idx, Offset: mapEnd}); err != nil {
			return true, fmt.Errorf("journal the cleaned end: %w", err)
		}
	}
	ks.tombstonesDue[key] = 0
	if st.KeptTombstones > 0 {
		ks.tombstonesDue[key] = oldestKept + mt.ConfigInt("delete.retention.ms", 86_400_000)
	}
	tr.keyCompactions.Add(1)
	tr.log.Debug("key compaction pass", "topic", mt.Name, "partition", idx, "from", from, "to", mapEnd,
		"keys", m.Len(), "dropped", st.Records, "tombstones", st.Tombstones, "aborted", st.Aborted, "markers", st.Markers)
	return true, nil
}

// readRange reads one committed range and checks it.
func (tr *Tiering) readRange(ctx context.Context, s metadata.SegmentRef) ([]byte, error) {
	b, err := tr.cfg.Bucket.GetRange(ctx, s.Object, s.Offset, s.Length)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", s.Object, err)
	}
	if int64(len(b)) != s.Length || (s.CRC != 0 && crc32.Checksum(b, castagnoli) != s.CRC) {
		return nil, fmt.Errorf("range of %s [%d,+%d) fails its checksum", s.Object, s.Offset, s.Length)
	}
	return b, nil
}

// swapCleaned uploads a cleaned range as its own object, with the old
// range's producer snapshot, and swaps it in; false if the journal
// refused (the range is no longer in the manifest as it was).
func (tr *Tiering) swapCleaned(ctx context.Context, mt *metadata.Topic, idx int32, old metadata.SegmentRef, data []byte) (bool, error) {
	snap, err := ProducerSnapshotOf(ctx, tr.cfg.Bucket, mt.ID, idx, old)
	if err != nil {
		return false, err
	}
	w := segment.NewWriter(tr.cfg.ID)
	if err := w.Add(mt.ID, idx, old.LeaderEpoch, data, snap); err != nil {
		return false, fmt.Errorf("build cleaned object: %w", err)
	}
	e := w.Entries()[0]
	if e.FirstOffset > old.FirstOffset || e.LastOffset != old.LastOffset {
		return false, fmt.Errorf("cleaned range spans %d-%d, the old one %d-%d", e.FirstOffset, e.LastOffset, old.FirstOffset, old.LastOffset)
	}
	nref := metadata.SegmentRef{
		Object: tr.newObjectKey("k.seg"), Offset: e.Pos, Length: e.Len, CRC: e.CRC,
		FirstOffset: old.FirstOffset, LastOffset: old.LastOffset,
		MinTimestamp: e.MinTimestamp, MaxTimestamp: e.MaxTimestamp, LeaderEpoch: old.LeaderEpoch,
	}
	if _, err := tr.cfg.Bucket.PutIfAbsent(ctx, nref.Object, w.Bytes()); err != nil {
		return false, fmt.Errorf("upload %s: %w", nref.Object, err)
	}
	if _, err := tr.host.Propose(ctx, metadata.ReplaceSegments{TopicID: mt.ID, Partition: idx, Old: []string{old.Object}, New: nref}); err != nil {
		if errors.Is(err, metadata.ErrNotContiguous) {
			return false, nil
		}
		return false, fmt.Errorf("swap in %s: %w", nref.Object, err)
	}
	return true, nil
}
