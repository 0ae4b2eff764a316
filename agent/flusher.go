package agent

// The flusher seals the unflushed, committed tail of every partition this
// agent leads into one segment object (many partitions per object, so the
// PUT rate grows with bytes, not partitions), uploads it, and commits it in
// the metadata journal. The journal refuses a commit whose leader epoch is
// stale or whose first offset isn't the partition's flushedEnd, which fences
// zombie leaders and forbids gaps and overlaps. Only after the commit do
// partitions drop the flushed batches from the WAL.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier/segment"
)

func (a *Agent) flushLoop() {
	interval := a.cfg.FlushInterval
	t := time.NewTicker(interval / 4)
	defer t.Stop()
	last := time.Now()
	backoff := time.Duration(0)
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-a.flushKick:
		case <-t.C:
		}
		// Seal on age or size, whichever comes first.
		if time.Since(last) < interval && a.unflushedBytes() < a.cfg.FlushBytes {
			continue
		}
		if backoff > 0 && time.Since(last) < backoff {
			continue
		}
		last = time.Now()
		n, err := a.flushOnce(a.ctx)
		switch {
		case err != nil && a.ctx.Err() == nil:
			a.obs.flushFailed()
			backoff = min(max(2*backoff, interval), 5*time.Second)
			a.log.Warn("flush failed; data stays in the WAL", "err", err, "retry_in", backoff)
		case err == nil:
			backoff = 0
			if n > 0 && a.unflushedBytes() >= a.cfg.FlushBytes {
				// More waiting: go again without the tick.
				select {
				case a.flushKick <- struct{}{}:
				default:
				}
			}
		}
	}
}

// kickFlush asks the flusher to look now (a size threshold may be crossed).
func (a *Agent) kickFlush() {
	select {
	case a.flushKick <- struct{}{}:
	default:
	}
}

// unflushedBytes is what all partitions hold in the WAL.
func (a *Agent) unflushedBytes() int64 { return a.walBytes.Load() }

type flushPart struct {
	t          *topic
	idx        int32
	p          *partition.Partition
	first, end int64
	epoch      int32
}

// flushOnce writes one segment with what is flushable now, up to the
// segment size. It returns the bytes flushed.
func (a *Agent) flushOnce(ctx context.Context) (int64, error) {
	a.mu.RLock()
	topics := make([]*topic, 0, len(a.topics))
	for _, t := range a.topics {
		topics = append(topics, t)
	}
	a.mu.RUnlock()

	w := segment.NewWriter(a.cfg.ID)
	var parts []flushPart
	budget := a.cfg.SegmentBytes
	for _, t := range topics {
		for i, p := range t.parts {
			if budget <= 0 {
				break
			}
			if !p.IsLeader() {
				continue
			}
			data, first, end, err := p.Unflushed(int(budget))
			if err != nil {
				return 0, err
			}
			if len(data) == 0 {
				continue
			}
			o := p.Offsets()
			if err := w.Add(t.id, int32(i), o.Epoch, data, p.ProducerSnapshot(end)); err != nil {
				return 0, fmt.Errorf("flush %s/%d: %w", t.name, i, err)
			}
			budget -= int64(len(data))
			parts = append(parts, flushPart{t: t, idx: int32(i), p: p, first: first, end: end, epoch: o.Epoch})
		}
	}
	if len(parts) == 0 {
		return 0, nil
	}
	body := w.Bytes()
	key := a.newObjectKey("seg")
	start := time.Now()
	if _, err := a.cfg.Bucket.PutIfAbsent(ctx, key, body); err != nil {
		return 0, fmt.Errorf("upload %s (%d bytes): %w", key, len(body), err)
	}
	uploaded := time.Since(start)

	entries := w.Entries()
	cmds := make([]metadata.CommitSegment, 0, len(parts))
	for _, fp := range parts {
		e, ok := findEntry(entries, fp.t.id, fp.idx)
		if !ok {
			return 0, fmt.Errorf("segment writer lost %s/%d", fp.t.name, fp.idx)
		}
		cmds = append(cmds, metadata.CommitSegment{
			TopicID: fp.t.id, Partition: fp.idx, LeaderEpoch: fp.epoch,
			Ref: metadata.SegmentRef{
				Object: key, Offset: e.Pos, Length: e.Len,
				// The first batch may start below flushedEnd (a log
				// start inside it); the range serves from flushedEnd.
				FirstOffset: fp.first, LastOffset: fp.end - 1,
				MinTimestamp: e.MinTimestamp, MaxTimestamp: e.MaxTimestamp,
				LeaderEpoch: fp.epoch, CRC: e.CRC,
			},
		})
	}
	if _, err := a.propose(ctx, metadata.CommitSegments{Commits: cmds}); err != nil {
		// The object is orphaned; garbage collection removes it.
		if errors.Is(err, metadata.ErrStaleEpoch) || errors.Is(err, metadata.ErrNotContiguous) {
			a.stats.commitsRefused.Add(1)
			a.log.Error("segment commit refused: this agent no longer leads or its view is stale", "object", key, "err", err)
		}
		return 0, fmt.Errorf("commit %s: %w", key, err)
	}
	a.log.Debug("flushed segment", "object", key, "bytes", len(body), "partitions", len(parts),
		"upload", uploaded.Round(time.Millisecond), "total", time.Since(start).Round(time.Millisecond))
	a.stats.flushes.Add(1)
	a.stats.flushedBytes.Add(int64(len(body)))
	a.obs.flushed(time.Since(start))
	return int64(len(body)), nil
}

func findEntry(entries []segment.Entry, id [16]byte, idx int32) (segment.Entry, bool) {
	for _, e := range entries {
		if e.TopicID == id && e.Partition == idx {
			return e, true
		}
	}
	return segment.Entry{}, false
}

// newObjectKey names a segment object: by agent, then time, so listing
// data/ shows age, with random bits so retries never collide. kind is
// "seg" for flushes and "c.seg" for compaction output.
func (a *Agent) newObjectKey(kind string) string {
	var r [6]byte
	rand.Read(r[:])
	return fmt.Sprintf("data/%d/%s-%s.%s", a.cfg.ID, time.Now().UTC().Format("20060102T150405.000000000"), hex.EncodeToString(r[:]), kind)
}
