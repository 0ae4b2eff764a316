package batch

import (
	"bytes"
	"testing"
)

// Rewrite keeps the records asked for at their offsets, byte for byte,
// under every codec: the header keeps base offset, last offset delta,
// producer fields and first timestamp; the max timestamp is the kept
// records'; the CRC checks; keeping nothing leaves an empty uncompressed
// batch of 61 bytes; keeping everything returns the input; control
// batches are not touched; a corrupt batch is refused.
func TestRewrite(t *testing.T) {
	for _, codec := range []int8{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd} {
		recs := mkRecords(10)
		b := build(t, spec{pid: 7, epoch: 2, seq: 40, firstTS: 1_700_000_000_000, recs: recs, codec: codec})
		SetBaseOffset(b, 100)
		orig, _ := ParseHeader(b)
		all, err := Records(b, 1<<20)
		if err != nil {
			t.Fatal(err)
		}

		even, n, err := Rewrite(b, 1<<20, func(r RecordRef) bool { return r.Offset%2 == 0 })
		if err != nil || n != 5 {
			t.Fatalf("codec %d: kept %d, err %v", codec, n, err)
		}
		h, size, err := Next(even)
		if err != nil || size != len(even) {
			t.Fatalf("codec %d: rewritten batch does not frame: %v", codec, err)
		}
		if h.BaseOffset != 100 || h.LastOffsetDelta != 9 || h.ProducerID != 7 || h.ProducerEpoch != 2 || h.BaseSequence != 40 ||
			h.FirstTimestamp != orig.FirstTimestamp || h.NumRecords != 5 || h.Compression() != codec {
			t.Fatalf("codec %d: header %+v from %+v", codec, h, orig)
		}
		if want := orig.FirstTimestamp + recs[8].TimestampDelta64; h.MaxTimestamp != want {
			t.Fatalf("codec %d: max timestamp %d, want %d (the last kept record's)", codec, h.MaxTimestamp, want)
		}
		got, err := Records(even, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range got {
			w := all[2*i]
			if r.Offset != w.Offset || !bytes.Equal(r.Key, w.Key) || !bytes.Equal(r.Value, w.Value) || (r.Key == nil) != (w.Key == nil) {
				t.Fatalf("codec %d: record %d is %+v, want %+v", codec, i, r, w)
			}
		}

		none, n, err := Rewrite(b, 1<<20, func(RecordRef) bool { return false })
		if err != nil || n != 0 || len(none) != HeaderSize {
			t.Fatalf("codec %d: keep nothing: %d bytes, %d kept, %v", codec, len(none), n, err)
		}
		if h, _, err := Next(none); err != nil || h.NumRecords != 0 || h.Compression() != CompressionNone || h.LastOffset() != orig.LastOffset() {
			t.Fatalf("codec %d: empty batch %+v, %v", codec, h, err)
		}
		if rs, err := Records(none, 1<<20); err != nil || len(rs) != 0 {
			t.Fatalf("codec %d: empty batch records %v, %v", codec, rs, err)
		}

		same, n, err := Rewrite(b, 1<<20, func(RecordRef) bool { return true })
		if err != nil || n != 10 || !bytes.Equal(same, b) {
			t.Fatalf("codec %d: keep all changed the batch (%v)", codec, err)
		}
	}

	ctl := EncodeControl(9, 1, true, 0, 1)
	out, n, err := Rewrite(ctl, 1<<20, func(RecordRef) bool { t.Fatal("keep asked about a control record"); return false })
	if err != nil || n != 1 || !bytes.Equal(out, ctl) {
		t.Fatalf("control batch: %v %d", err, n)
	}
	bad := build(t, spec{recs: mkRecords(3)})
	bad[len(bad)-1] ^= 0xff
	if _, _, err := Rewrite(bad, 1<<20, func(RecordRef) bool { return false }); err == nil {
		t.Fatal("a batch with a bad CRC was rewritten")
	}
}
