package partition_test

import (
	"context"
	"errors"
	"testing"

	"github.com/tlog-io/tlog/agent/partition"
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
