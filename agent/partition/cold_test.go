package partition_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/wal"
	"github.com/tlog-io/tlog/agent/wal/waltest"
	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/batch"
	"github.com/tlog-io/tlog/tier/rangecache"
	"github.com/tlog-io/tlog/tier/segment"
	"github.com/tlog-io/tlog/tier/tiertest"
)

// manifest is a partition's committed ranges as a test sets them.
type manifest struct{ c partition.Committed }

func (m *manifest) Committed() (partition.Committed, bool) { return m.c, true }

// offsetsOf lists the first offset of each batch in data.
func offsetsOf(t *testing.T, data []byte) []int64 {
	t.Helper()
	var offs []int64
	if err := batch.Iterate(data, func(h batch.Header, _ []byte) bool {
		offs = append(offs, h.BaseOffset)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return offs
}

// One Read serves a partition's whole log: the committed range in the
// bucket, then the WAL tail, in one answer; timestamp lookups span both;
// the bucket failing is a storage error; and "flushed" never reaches the
// caller, with or without a bucket to read.
func TestReadSpansBucketAndWAL(t *testing.T) {
	ctx := context.Background()
	bucket := tiertest.NewFaulty(tier.NewMemBucket())
	m := &manifest{}
	f := newFixture(t, partition.Config{Manifest: m, Ranges: rangecache.NewReader(rangecache.New(bucket, 64<<20, nil))})
	// Ten batches of five records, batch i stamped at 1000+100i.
	for i := range 10 {
		f.mustAppend(mkBatch(bopts{pid: -1, epoch: -1, seq: -1, ts: 1000 + 100*int64(i)}, 5))
	}
	// Flush them as the flusher would: one segment object, committed,
	// then the WAL drops them.
	data, first, end, err := f.p.Unflushed(1 << 20)
	if err != nil || first != 0 || end != 50 {
		t.Fatalf("unflushed [%d, %d): %v", first, end, err)
	}
	w := segment.NewWriter(0)
	if err := w.Add([16]byte{1, 2, 3}, 4, 0, data, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := bucket.Put(ctx, "data/0/seg", w.Bytes()); err != nil {
		t.Fatal(err)
	}
	e := w.Entries()[0]
	m.c = partition.Committed{FlushedEnd: 50, Segments: []metadata.SegmentRef{{
		Object: "data/0/seg", Offset: e.Pos, Length: e.Len, FirstOffset: 0, LastOffset: 49,
		MinTimestamp: e.MinTimestamp, MaxTimestamp: e.MaxTimestamp, CRC: e.CRC,
	}}}
	if err := f.p.SetFlushedEnd(50); err != nil {
		t.Fatal(err)
	}
	// Five more stay in the WAL.
	for i := 10; i < 15; i++ {
		f.mustAppend(mkBatch(bopts{pid: -1, epoch: -1, seq: -1, ts: 1000 + 100*int64(i)}, 5))
	}

	got, o, err := f.p.Read(ctx, 0, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	offs := offsetsOf(t, got)
	if len(offs) != 15 || offs[0] != 0 || offs[14] != 70 || o.HW != 75 {
		t.Fatalf("read from 0: batches at %v, HW %d; want 0, 5, ..., 70 and 75", offs, o.HW)
	}
	for i, off := range offs {
		if off != int64(5*i) {
			t.Fatalf("batch %d at %d", i, off)
		}
	}
	// From inside the bucket's range, and from the WAL alone.
	if got, _, err := f.p.Read(ctx, 47, 1<<20, true); err != nil || offsetsOf(t, got)[0] != 45 {
		t.Fatalf("read from 47: %v, %v", offsetsOf(t, got), err)
	}
	if got, _, err := f.p.Read(ctx, 60, 1<<20, true); err != nil || offsetsOf(t, got)[0] != 60 {
		t.Fatalf("read from 60: %v, %v", offsetsOf(t, got), err)
	}

	// Timestamps: the record stamped 1302 is offset 17 (batch 3, record 2),
	// in the bucket; 2103 is offset 58 (batch 11, record 3), in the WAL.
	for _, c := range []struct{ ts, off int64 }{{1302, 17}, {2103, 58}, {0, 0}} {
		hit, ok, err := f.p.OffsetForTimestamp(ctx, c.ts)
		if err != nil || !ok || hit.Offset != c.off {
			t.Fatalf("offset for timestamp %d: %+v, %v, %v; want %d", c.ts, hit, ok, err, c.off)
		}
	}
	if hit, ok, err := f.p.MaxTimestamp(ctx); err != nil || !ok || hit.Timestamp != 2404 || hit.Offset != 74 {
		t.Fatalf("max timestamp: %+v, %v, %v", hit, ok, err)
	}

	// The bucket failing is a storage error, not "flushed".
	bucket.SetError(tiertest.OpGetRange, tiertest.ErrInjected)
	// (A replica opened after the flush, as on a restart.)
	r2 := newFixture(t, partition.Config{FlushedEnd: 50, Manifest: m, Ranges: rangecache.NewReader(rangecache.New(bucket, 64<<20, nil))})
	if _, _, err := r2.p.Read(ctx, 10, 1<<20, true); !errors.Is(err, partition.ErrStorage) || errors.Is(err, partition.ErrFlushed) {
		t.Fatalf("read with the bucket failing: %v", err)
	}
	bucket.SetError(tiertest.OpGetRange, nil)

	// A partition that reads no bucket says the offset is out of range.
	bare := newFixture(t, partition.Config{FlushedEnd: 50})
	if _, _, err := bare.p.Read(ctx, 10, 1<<20, true); !errors.Is(err, partition.ErrOffsetOutOfRange) {
		t.Fatalf("read below the flushed end without a bucket: %v", err)
	}
}

// flushToBucket commits what the partition's WAL holds as one range, as
// the flusher does: the segment object, the manifest, then the WAL trim.
func flushToBucket(t *testing.T, f *fixture, bucket tier.Bucket, m *lockedManifest) {
	t.Helper()
	data, first, end, err := f.p.Unflushed(1 << 20)
	if err != nil || end == first {
		t.Fatalf("unflushed [%d, %d): %v", first, end, err)
	}
	w := segment.NewWriter(0)
	if err := w.Add([16]byte{1, 2, 3}, 4, 0, data, nil); err != nil {
		t.Fatal(err)
	}
	key := fmt.Sprintf("data/0/seg-%d", first)
	if _, err := bucket.Put(context.Background(), key, w.Bytes()); err != nil {
		t.Fatal(err)
	}
	e := w.Entries()[0]
	m.mu.Lock()
	m.c.FlushedEnd = end
	m.c.Segments = append(m.c.Segments, metadata.SegmentRef{Object: key, Offset: e.Pos, Length: e.Len,
		FirstOffset: first, LastOffset: end - 1, MinTimestamp: e.MinTimestamp, MaxTimestamp: e.MaxTimestamp, CRC: e.CRC})
	m.mu.Unlock()
	if err := f.p.SetFlushedEnd(end); err != nil {
		t.Fatal(err)
	}
}

// lockedManifest is a manifest a test changes while lookups read it.
type lockedManifest struct {
	mu sync.Mutex
	c  partition.Committed
}

func (m *lockedManifest) Committed() (partition.Committed, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.c
	c.Segments = slices.Clone(c.Segments)
	return c, true
}

// A flush that commits while a timestamp lookup reads the WAL moves the
// batch it is about to read into the bucket. The lookup does not answer
// from what it failed to read (a batch's first offset, not the record's)
// but goes on over the range that flush committed, and only that.
func TestTimestampLookupOvertakenByFlush(t *testing.T) {
	ctx := context.Background()
	store := waltest.NewFaulty(wal.NewMemStore())
	w := wal.New(store, wal.Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { w.Close() })
	bucket := tiertest.NewFaulty(tier.NewMemBucket())
	m := &lockedManifest{}
	f := &fixture{t: t, w: w, key: wal.NewPartKey([16]byte{1, 2, 3}, 4)}
	f.p = f.open(partition.Config{Manifest: m, Ranges: rangecache.NewReader(rangecache.New(bucket, 64<<20, nil))})
	// flush commits what the WAL holds as one range, then trims it, as
	// the flusher does.
	flush := func() { flushToBucket(t, f, bucket, m) }
	// overtaken runs lookup with the flush committing while it is inside
	// its first WAL read.
	overtaken := func(lookup func() (partition.Hit, bool, error)) (partition.Hit, bool, error) {
		entered, release := store.Hold(waltest.OpIterate)
		type result struct {
			hit partition.Hit
			ok  bool
			err error
		}
		done := make(chan result, 1)
		go func() {
			hit, ok, err := lookup()
			done <- result{hit, ok, err}
		}()
		<-entered
		flush()
		release()
		r := <-done
		return r.hit, r.ok, r.err
	}
	appendBatches := func(from, to int) {
		for i := from; i < to; i++ { // five records each, batch i stamped 1000+100i
			f.mustAppend(mkBatch(bopts{pid: -1, epoch: -1, seq: -1, ts: 1000 + 100*int64(i)}, 5))
		}
	}

	// Offset for timestamp: 1302 is offset 17 (batch 3, record 2).
	appendBatches(0, 10)
	hit, ok, err := overtaken(func() (partition.Hit, bool, error) { return f.p.OffsetForTimestamp(ctx, 1302) })
	if err != nil || !ok || hit.Offset != 17 || hit.Timestamp != 1302 {
		t.Fatalf("overtaken offset for timestamp 1302: %+v, %v, %v; want offset 17", hit, ok, err)
	}
	if f.p.Offsets().FlushedEnd != 50 {
		t.Fatalf("flushed end %d after the flush", f.p.Offsets().FlushedEnd)
	}

	// Max timestamp: the WAL's batch 14 leads (2404 at 74) and is flushed
	// while the lookup reads it to find its first record carrying it.
	appendBatches(10, 15)
	gets := bucket.Counts()[tiertest.OpGetRange]
	hit, ok, err = overtaken(func() (partition.Hit, bool, error) { return f.p.MaxTimestamp(ctx) })
	if err != nil || !ok || hit.Offset != 74 || hit.Timestamp != 2404 {
		t.Fatalf("overtaken max timestamp: %+v, %v, %v; want 2404 at 74", hit, ok, err)
	}
	// The first range is in the cache since the lookup above; the newly
	// committed one is read once.
	if n := bucket.Counts()[tiertest.OpGetRange] - gets; n != 1 {
		t.Fatalf("overtaken max timestamp read %d ranges from the bucket; want 1", n)
	}

	// Flushes overtaking it again and again, each while a newer batch
	// takes the lead (its largest timestamp on its second record): the
	// lookup follows them to the end rather than giving up after a
	// number of restarts with the batch it could not read.
	ts := int64(5000)
	f.mustAppend(tsBatch(t, batch.CompressionNone, false, ts, 0, 5, 1))
	entered, release := store.Hold(waltest.OpIterate)
	type result struct {
		hit partition.Hit
		ok  bool
		err error
	}
	done := make(chan result, 1)
	go func() {
		hit, ok, err := f.p.MaxTimestamp(ctx)
		done <- result{hit, ok, err}
	}()
	var want partition.Hit
	for round := range 6 {
		select {
		case <-entered:
		case r := <-done:
			t.Fatalf("max timestamp answered %+v in round %d without reading the WAL", r, round)
		}
		flush()
		ts += 100
		res := f.mustAppend(tsBatch(t, batch.CompressionNone, false, ts, 0, 5, 1))
		want = partition.Hit{Offset: res.BaseOffset + 1, Timestamp: ts + 5}
		prev := release
		if round < 5 {
			entered, release = store.Hold(waltest.OpIterate)
		}
		prev()
	}
	if r := <-done; r.err != nil || !r.ok || r.hit.Offset != want.Offset || r.hit.Timestamp != want.Timestamp {
		t.Fatalf("max timestamp overtaken six times: %+v, %v, %v; want %d at %d", r.hit, r.ok, r.err, want.Timestamp, want.Offset)
	}

	// And with nothing left in the WAL, both answer from the bucket.
	if hit, ok, err := f.p.OffsetForTimestamp(ctx, 2103); err != nil || !ok || hit.Offset != 58 {
		t.Fatalf("offset for timestamp 2103 from the bucket: %+v, %v, %v", hit, ok, err)
	}
}

// Prefetch starts the GET of the range holding a flushed offset (and the
// ranges after it) without a read; an offset the WAL holds GETs nothing.
func TestPrefetchReadsTheRangeAhead(t *testing.T) {
	ctx := context.Background()
	bucket := tiertest.NewFaulty(tier.NewMemBucket())
	m := &lockedManifest{}
	f := newFixture(t, partition.Config{Manifest: m, Ranges: rangecache.NewReader(rangecache.New(bucket, 64<<20, nil))})
	for round := range 3 { // three ranges of two batches
		for i := range 2 {
			f.mustAppend(mkBatch(bopts{pid: -1, epoch: -1, seq: -1, ts: int64(1000 + 100*(2*round+i))}, 5))
		}
		flushToBucket(t, f, bucket, m)
	}
	f.mustAppend(mkBatch(bopts{pid: -1, epoch: -1, seq: -1, ts: 2000}, 5)) // in the WAL only

	f.p.Prefetch(30) // the WAL's
	f.p.Prefetch(12) // the second range, then the third
	deadline := time.Now().Add(10 * time.Second)
	for bucket.Counts()[tiertest.OpGetRange] < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := bucket.Counts()[tiertest.OpGetRange]; n != 2 {
		t.Fatalf("%d range GETs after prefetching offset 12 of three ranges; want 2 (its range and the next)", n)
	}
	// The reads that follow are served from what was fetched.
	got, _, err := f.p.Read(ctx, 12, 1<<20, true)
	if err != nil || len(offsetsOf(t, got)) != 5 {
		t.Fatalf("read from 12: %v, %v", offsetsOf(t, got), err)
	}
	if n := bucket.Counts()[tiertest.OpGetRange]; n != 2 {
		t.Fatalf("%d range GETs after reading what was prefetched; want 2", n)
	}
}
