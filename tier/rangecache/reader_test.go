package rangecache_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/rangecache"
	"github.com/tlog-io/tlog/tier/segment"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// batches encodes count sealed batches of recs records of valLen bytes
// each, offsets from base.
func batches(base int64, count, recs, valLen int) []byte {
	var all []byte
	for i := 0; i < count; i++ {
		var body []byte
		for j := 0; j < recs; j++ {
			r := kmsg.Record{OffsetDelta: int32(j), Value: bytes.Repeat([]byte{byte('a' + (i+j)%26)}, valLen),
				Key: fmt.Appendf(nil, "%d", base+int64(j))}
			r.Length = int32(len(r.AppendTo(nil)[1:]))
			body = r.AppendTo(body)
		}
		rb := kmsg.RecordBatch{FirstOffset: base, Length: int32(49 + len(body)), Magic: 2,
			LastOffsetDelta: int32(recs - 1), ProducerID: -1, ProducerEpoch: -1, FirstSequence: -1,
			NumRecords: int32(recs), Records: body}
		b := rb.AppendTo(nil)
		binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
		all = append(all, b...)
		base += int64(recs)
	}
	return all
}

// readBytes is what the metered bucket says was read so far.
func readBytes(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "tlog_bucket_read_bytes_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// A read of one record from a 64 MiB compacted range moves the footer and
// a few blocks, not the range; every block read is checked; a small range
// is still read whole.
func TestReaderReadsBlocksOfLargeRange(t *testing.T) {
	ctx := context.Background()
	// 16,400 batches of 4 records of 1000 bytes: just over 64 MiB.
	const nBatches, perBatch = 16_400, 4
	big := batches(0, nBatches, perBatch, 1000)
	small := batches(0, 10, 4, 100)
	w := segment.NewWriter(1)
	if err := w.Add([16]byte{1}, 0, 1, big, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Add([16]byte{2}, 0, 1, small, nil); err != nil {
		t.Fatal(err)
	}
	obj := w.Bytes()
	entries := w.Entries()
	mem := tier.NewMemBucket()
	if _, err := mem.Put(ctx, "data/big.seg", obj); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	bucket := tier.WithMetrics(mem, reg)
	r := rangecache.NewReader(rangecache.New(bucket, 256<<20, nil))
	refOf := func(e segment.Entry, last int64) rangecache.Ref {
		return rangecache.Ref{Object: "data/big.seg", Pos: e.Pos, Len: e.Len, CRC: e.CRC, FirstOffset: 0, LastOffset: last}
	}
	bigRef, smallRef := refOf(entries[0], nBatches*perBatch-1), refOf(entries[1], 39)
	if bigRef.Len < 64<<20 {
		t.Fatalf("range of %d bytes, want 64 MiB", bigRef.Len)
	}

	const offset = 40_001
	before := readBytes(t, reg)
	p, err := r.Read(ctx, bigRef, offset)
	if err != nil {
		t.Fatal(err)
	}
	got, err := segment.Cut(p.Data, offset, 1)
	if err != nil {
		t.Fatal(err)
	}
	var h kmsg.RecordBatch
	if err := h.ReadFrom(got); err != nil || h.FirstOffset > offset || h.FirstOffset+int64(h.LastOffsetDelta) < offset {
		t.Fatalf("read batch [%d, +%d], err %v; want the one holding %d", h.FirstOffset, h.LastOffsetDelta, err, offset)
	}
	if p.Through < offset || p.Through >= bigRef.LastOffset {
		t.Fatalf("piece reaches %d", p.Through)
	}
	moved := readBytes(t, reg) - before
	// The footer's tail read, one chunk, and the next chunk read ahead.
	limit := float64(segment.TailReadSize + 2*(rangecache.ChunkBlocks+1)*segment.BlockSize)
	t.Logf("one record from a %d MiB range: %.0f KiB read from the bucket (the whole range: %d KiB)", bigRef.Len>>20, moved/1024, bigRef.Len>>10)
	if moved > limit {
		t.Fatalf("read %.0f bytes for one record, want at most %.0f", moved, limit)
	}

	// Reading on through the range returns every batch once, in order.
	var seen int64
	for off := int64(0); off <= bigRef.LastOffset; {
		p, err := r.Read(ctx, bigRef, off)
		if err != nil {
			t.Fatal(err)
		}
		if err := batchesFrom(p.Data, off, &seen); err != nil {
			t.Fatal(err)
		}
		off = p.Through + 1
		r.Done(p)
	}
	if seen != nBatches*perBatch {
		t.Fatalf("read %d offsets through the range, want %d", seen, nBatches*perBatch)
	}

	// A small range is one piece.
	p, err = r.Read(ctx, smallRef, 5)
	if err != nil || p.Through != 39 || int64(len(p.Data)) != smallRef.Len {
		t.Fatalf("small range: %d bytes through %d, err %v", len(p.Data), p.Through, err)
	}
	if _, err := r.Read(ctx, smallRef, 40); !errors.Is(err, segment.ErrOffsetOutOfRange) {
		t.Fatalf("offset past the range: %v", err)
	}

	// A flipped byte in a block is caught by that block's CRC.
	bad := bytes.Clone(obj)
	bad[entries[0].Pos+40<<20] ^= 0xff
	if _, err := mem.Put(ctx, "data/bad.seg", bad); err != nil {
		t.Fatal(err)
	}
	r2 := rangecache.NewReader(rangecache.New(bucket, 256<<20, nil))
	badRef := bigRef
	badRef.Object = "data/bad.seg"
	var corrupt error
	for off := int64(0); off <= badRef.LastOffset && corrupt == nil; {
		p, err := r2.Read(ctx, badRef, off)
		corrupt = err
		off = p.Through + 1
	}
	if !errors.Is(corrupt, segment.ErrCorrupt) {
		t.Fatalf("corrupt block read as %v", corrupt)
	}
}

// batchesFrom counts the offsets of data's batches at or after from into n,
// checking they continue where the last call ended.
func batchesFrom(data []byte, from int64, n *int64) error {
	for len(data) > 0 {
		var h kmsg.RecordBatch
		if err := h.ReadFrom(data); err != nil {
			return err
		}
		last := h.FirstOffset + int64(h.LastOffsetDelta)
		if last >= from {
			if h.FirstOffset != *n {
				return fmt.Errorf("batch at %d, want %d", h.FirstOffset, *n)
			}
			*n = last + 1
		}
		data = data[12+h.Length:]
	}
	return nil
}
