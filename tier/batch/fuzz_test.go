package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"maps"
	"slices"
	"sort"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// corpusVariants derives damaged copies of b that real traffic and torn
// writes produce.
func corpusVariants(b []byte) [][]byte {
	c := func() []byte { return append([]byte(nil), b...) }
	out := [][]byte{b, b[:len(b)-1], b[:HeaderSize], b[:HeaderSize-1], b[:12], b[:len(b)/2]}
	for _, i := range []int{8, 11, 16, 17, 21, 24, 58, 60, HeaderSize, len(b) - 1} {
		x := c()
		x[i] ^= 0x41
		out = append(out, x)
	}
	// Header edits with the CRC fixed up, so deeper checks are reached.
	for _, i := range []int{22, 26, 50, 56, 60, HeaderSize, HeaderSize + 1} {
		x := c()
		x[i] ^= 0x01
		out = append(out, reseal(x))
	}
	return append(out, append(c(), b...), append(c(), 0, 0, 0))
}

func seedsSorted(tb testing.TB) [][]byte {
	m := seedBatches(tb)
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([][]byte, 0, len(m))
	for _, n := range names {
		out = append(out, m[n])
	}
	return out
}

func FuzzValidateProduce(f *testing.F) {
	for _, b := range seedsSorted(f) {
		for _, v := range corpusVariants(b) {
			f.Add(v, uint16(0xffff), uint8(0))
			f.Add(v, uint16(0xffff), uint8(3))
		}
		f.Add(b, uint16(len(b)), uint8(0))
		f.Add(b, uint16(len(b)-1), uint8(0))
	}
	hostile := hostileSeeds(f)
	for _, name := range slices.Sorted(maps.Keys(hostile)) {
		f.Add(hostile[name], uint16(0xffff), uint8(0))
		f.Add(hostile[name], uint16(0xffff), uint8(3))
	}
	f.Add([]byte{}, uint16(0xffff), uint8(0))
	// A uint16 limit lands near real batch sizes, so the fuzzer hits both
	// sides of the MESSAGE_TOO_LARGE check; negative limits are unit-tested.
	f.Fuzz(func(t *testing.T, data []byte, limit uint16, fix uint8) {
		max := int(limit)
		// Random bytes almost never frame and checksum; fixing the length
		// and CRC lets the fuzzer reach the header and record checks.
		if fix&3 != 0 {
			data = append([]byte(nil), data...) // the engine's bytes are read-only
		}
		if fix&1 != 0 && len(data) >= lengthOverhead {
			binary.BigEndian.PutUint32(data[offBatchLength:], uint32(len(data)-lengthOverhead))
		}
		if fix&2 != 0 && len(data) >= crcStart {
			reseal(data)
		}
		// A small inflate bound, so bombs in reach of the fuzzer's
		// byte counts hit it.
		inflate := 4 * max
		h, err := ValidateProduceInflating(data, max, inflate)
		if err != nil {
			if code := KafkaErrorCode(err); code <= 0 {
				t.Fatalf("error %v maps to code %d", err, code)
			}
			if h != (Header{}) {
				t.Fatalf("header with error: %+v", h)
			}
			return
		}
		// Accepted: the bytes are exactly one sound batch.
		if h.Size() != len(data) || h.Size() > max {
			t.Fatalf("size %d, len %d, max %d", h.Size(), len(data), max)
		}
		if h.Magic != Magic || h.Control() || h.NumRecords <= 0 || int64(h.NumRecords) != int64(h.LastOffsetDelta)+1 {
			t.Fatalf("accepted bad header %+v", h)
		}
		if h.ProducerID >= 0 && h.BaseSequence < 0 {
			t.Fatalf("accepted pid %d seq %d", h.ProducerID, h.BaseSequence)
		}
		if crc32.Checksum(data[crcStart:], castagnoli) != h.CRC {
			t.Fatal("accepted bad crc")
		}
		if p, err := ParseHeader(data); err != nil || p != h {
			t.Fatalf("reparse %+v %v, want %+v", p, err, h)
		}
		sameAsKmsg(t, data, h)
		n := 0
		it := NewIterator(data, IterOptions{VerifyCRC: true})
		for it.Next() {
			if it.Header() != h || !bytes.Equal(it.Batch(), data) {
				t.Fatalf("iterator saw %+v", it.Header())
			}
			n++
		}
		if n != 1 || it.Err() != nil || it.Pos() != len(data) {
			t.Fatalf("iterator: %d batches, pos %d, err %v", n, it.Pos(), it.Err())
		}
		if h.Compression() == CompressionNone {
			checkRecordsKmsg(t, data[HeaderSize:], int(h.NumRecords))
		} else {
			// kmsg/kgo's own decompression and record reading agree.
			body, err := decompress(h.Compression(), data[HeaderSize:], inflate, nil)
			if err != nil || len(body) > inflate {
				t.Fatalf("accepted a compressed batch that does not inflate within %d: %d bytes, %v", inflate, len(body), err)
			}
			checkRecordsKmsg(t, body, int(h.NumRecords))
		}
		// Stamping stays inside the CRC-free prefix.
		s := append([]byte(nil), data...)
		SetBaseOffset(s, 123456789)
		SetPartitionLeaderEpoch(s, 77)
		h2, err := ValidateProduceInflating(s, max, inflate)
		want := h
		want.BaseOffset, want.PartitionLeaderEpoch = 123456789, 77
		if err != nil || h2 != want || !bytes.Equal(s[crcStart:], data[crcStart:]) {
			t.Fatalf("stamped: %+v %v", h2, err)
		}
	})
}

func FuzzIterate(f *testing.F) {
	seeds := seedsSorted(f)
	var all []byte
	for _, b := range seeds {
		all = append(all, b...)
		for _, v := range corpusVariants(b) {
			f.Add(v, uint8(0))
			f.Add(v, uint8(3))
		}
	}
	f.Add(all, uint8(1))
	f.Add(all[:len(all)-5], uint8(2))
	f.Add(append(append([]byte(nil), seeds[0]...), seeds[1][:30]...), uint8(2))
	f.Add([]byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, flags uint8) {
		opts := IterOptions{VerifyCRC: flags&1 != 0, AllowPartialTail: flags&2 != 0}
		it := NewIterator(data, opts)
		end, n := 0, 0
		for it.Next() {
			h, b := it.Header(), it.Batch()
			if len(b) != h.Size() || len(b) < HeaderSize || cap(b) != len(b) || !bytes.Equal(b, data[end:end+len(b)]) {
				t.Fatalf("batch %d: len %d cap %d header %+v", n, len(b), cap(b), h)
			}
			if p, err := ParseHeader(b); err != nil || p != h || h.Magic != Magic {
				t.Fatalf("batch %d: reparse %+v %v, want %+v", n, p, err, h)
			}
			if opts.VerifyCRC && crc32.Checksum(b[crcStart:], castagnoli) != h.CRC {
				t.Fatalf("batch %d: bad crc passed", n)
			}
			sameAsKmsg(t, b, h)
			end += len(b)
			n++
			if it.Pos() != end {
				t.Fatalf("pos %d, want %d", it.Pos(), end)
			}
		}
		if it.Pos() != end || it.Next() {
			t.Fatalf("pos %d/%d after end", it.Pos(), end)
		}
		rest := data[end:]
		switch err := it.Err(); {
		case err != nil:
			if !errors.Is(err, ErrCorrupt) || len(rest) == 0 {
				t.Fatalf("err %v with %d bytes left", err, len(rest))
			}
		case len(rest) > 0:
			// Only a cut-short batch may be left behind, and only on request.
			partial := len(rest) < lengthOverhead || batchSize(rest) > int64(len(rest))
			if !opts.AllowPartialTail || !partial {
				t.Fatalf("%d bytes left without error", len(rest))
			}
		}
		// Iterate is the strict, CRC-free iterator.
		if !opts.VerifyCRC && !opts.AllowPartialTail {
			m, pos := 0, 0
			err := Iterate(data, func(h Header, b []byte) bool {
				m++
				pos += len(b)
				return true
			})
			if m != n || pos != end || (err == nil) != (it.Err() == nil) {
				t.Fatalf("Iterate: %d batches to %d, err %v; iterator %d to %d, err %v", m, pos, err, n, end, it.Err())
			}
		}
	})
}

// checkRecordsKmsg re-reads accepted uncompressed records with franz-go's
// decoders, which consumers will use.
func checkRecordsKmsg(t *testing.T, body []byte, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		l, k := kbin.Varint(body)
		if k <= 0 || l < 0 || int64(l) > int64(len(body)-k) {
			t.Fatalf("record %d: accepted bad framing", i)
		}
		var r kmsg.Record
		if err := r.ReadFrom(body[:k+int(l)]); err != nil {
			t.Fatalf("record %d: accepted, kmsg says %v", i, err)
		}
		body = body[k+int(l):]
	}
	if len(body) != 0 {
		t.Fatalf("accepted %d bytes after %d records", len(body), n)
	}
}

// sameAsKmsg checks h against kmsg's independent decoding of b.
func sameAsKmsg(t *testing.T, b []byte, h Header) {
	t.Helper()
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b); err != nil {
		t.Fatalf("kmsg cannot read a batch we accepted: %v", err)
	}
	k := Header{
		BaseOffset: rb.FirstOffset, BatchLength: rb.Length, PartitionLeaderEpoch: rb.PartitionLeaderEpoch,
		Magic: rb.Magic, CRC: uint32(rb.CRC), Attributes: rb.Attributes, LastOffsetDelta: rb.LastOffsetDelta,
		FirstTimestamp: rb.FirstTimestamp, MaxTimestamp: rb.MaxTimestamp, ProducerID: rb.ProducerID,
		ProducerEpoch: rb.ProducerEpoch, BaseSequence: rb.FirstSequence, NumRecords: rb.NumRecords,
	}
	if k != h || len(rb.Records) != len(b)-HeaderSize {
		t.Fatalf("kmsg reads %+v (%d record bytes), we read %+v", k, len(rb.Records), h)
	}
}
