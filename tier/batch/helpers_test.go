package batch

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"
	"testing"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// spec describes a batch to build; zero values give a plain, non-idempotent
// uncompressed batch.
type spec struct {
	attrs     int16
	pid       int64
	epoch     int16
	seq       int32
	firstTS   int64
	recs      []kmsg.Record
	codec     int8
	rawBody   []byte // used as-is instead of encoded (and compressed) recs
	numRecs   *int32 // overrides len(recs)
	lastDelta *int32 // overrides len(recs)-1
}

// mkRecords returns n records the way kgo lays them out: offset deltas
// 0..n-1, growing timestamp deltas, keys, values and headers, with a null
// key and a null header value sprinkled in.
func mkRecords(n int) []kmsg.Record {
	recs := make([]kmsg.Record, n)
	for i := range recs {
		r := kmsg.Record{
			TimestampDelta64: int64(i * 3),
			OffsetDelta:      int32(i),
			Key:              []byte(fmt.Sprintf("key-%d", i)),
			Value:            bytes.Repeat([]byte{byte('a' + i%26)}, 10+i),
			Headers: []kmsg.Header{
				{Key: "trace", Value: []byte(fmt.Sprintf("t%d", i))},
				{Key: "nil", Value: nil},
			},
		}
		if i%3 == 2 {
			r.Key = nil
		}
		recs[i] = r
	}
	return recs
}

// encodeRecords frames records, filling in each record's length varint.
func encodeRecords(recs []kmsg.Record) []byte {
	var out []byte
	for _, r := range recs {
		r.Length = 0
		body := r.AppendTo(nil)[1:] // varint 0 is one byte
		r.Length = int32(len(body))
		out = r.AppendTo(out)
	}
	return out
}

func compress(tb testing.TB, codec int8, raw []byte) []byte {
	tb.Helper()
	switch codec {
	case CompressionNone:
		return raw
	case CompressionGzip:
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(raw); err != nil {
			tb.Fatal(err)
		}
		if err := w.Close(); err != nil {
			tb.Fatal(err)
		}
		return buf.Bytes()
	case CompressionSnappy:
		return s2.EncodeSnappy(nil, raw)
	case CompressionZstd:
		enc, err := zstd.NewWriter(nil)
		if err != nil {
			tb.Fatal(err)
		}
		defer enc.Close()
		return enc.EncodeAll(raw, nil)
	case CompressionLZ4:
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		if _, err := w.Write(raw); err != nil {
			tb.Fatal(err)
		}
		if err := w.Close(); err != nil {
			tb.Fatal(err)
		}
		return buf.Bytes()
	default:
		// Undefined codecs (5-7): the broker rejects them before looking
		// inside, so an opaque payload behind the flag is as good.
		return append([]byte{0xff}, raw...)
	}
}

// xerialSnappy frames raw as the Java client's snappy-java stream does: a
// 16-byte header, then per block of at most blockSize bytes a big-endian
// length and a raw snappy block.
func xerialSnappy(raw []byte, blockSize int) []byte {
	out := append([]byte(nil), xerialPrefix...)
	out = binary.BigEndian.AppendUint32(out, 1)
	out = binary.BigEndian.AppendUint32(out, 1)
	for len(raw) > 0 {
		n := min(blockSize, len(raw))
		block := s2.EncodeSnappy(nil, raw[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(block)))
		out = append(out, block...)
		raw = raw[n:]
	}
	return out
}

// build encodes s as a sealed batch with a valid CRC.
func build(tb testing.TB, s spec) []byte {
	tb.Helper()
	body := s.rawBody
	if body == nil {
		body = compress(tb, s.codec, encodeRecords(s.recs))
	}
	n := int32(len(s.recs))
	if s.numRecs != nil {
		n = *s.numRecs
	}
	last := n - 1
	if s.lastDelta != nil {
		last = *s.lastDelta
	}
	var maxTSDelta int64
	for _, r := range s.recs {
		maxTSDelta = max(maxTSDelta, r.TimestampDelta64)
	}
	rb := kmsg.RecordBatch{
		FirstOffset:          0, // producers send 0
		Length:               int32(HeaderSize - lengthOverhead + len(body)),
		PartitionLeaderEpoch: -1, // unused by clients
		Magic:                2,
		Attributes:           s.attrs | int16(s.codec),
		LastOffsetDelta:      last,
		FirstTimestamp:       s.firstTS,
		MaxTimestamp:         s.firstTS + maxTSDelta,
		ProducerID:           s.pid,
		ProducerEpoch:        s.epoch,
		FirstSequence:        s.seq,
		NumRecords:           n,
		Records:              body,
	}
	return reseal(rb.AppendTo(nil))
}

// reseal recomputes b's CRC after a test edits bytes it covers.
func reseal(b []byte) []byte {
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[crcStart:], castagnoli))
	return b
}

func i32(v int32) *int32 { return &v }

// clientLike mirrors kgo's seqRecBatch.appendTo: baseOffset 0, leader epoch
// -1, and for a non-idempotent producer id -1 with sequence 0 (not -1).
func clientLike(tb testing.TB) []byte {
	return build(tb, spec{pid: -1, epoch: -1, seq: 0, firstTS: 1_700_000_000_000, recs: mkRecords(5)})
}

// seedBatches are real batches covering the shapes a broker sees.
func seedBatches(tb testing.TB) map[string][]byte {
	tb.Helper()
	m := map[string][]byte{
		"one":           build(tb, spec{pid: -1, seq: -1, recs: mkRecords(1)}),
		"plain":         build(tb, spec{pid: -1, seq: -1, firstTS: 1_700_000_000_000, recs: mkRecords(7)}),
		"client-like":   clientLike(tb),
		"idempotent":    build(tb, spec{pid: 42, epoch: 3, seq: 100, recs: mkRecords(4)}),
		"transactional": build(tb, spec{attrs: attrTransactional, pid: 7, epoch: 1, seq: 0, recs: mkRecords(3)}),
		"seq-wrap":      build(tb, spec{pid: 9, seq: 2147483646, recs: mkRecords(4)}),
		"gzip":          build(tb, spec{pid: -1, seq: -1, codec: CompressionGzip, recs: mkRecords(6)}),
		"snappy":        build(tb, spec{pid: -1, seq: -1, codec: CompressionSnappy, recs: mkRecords(6)}),
		"lz4":           build(tb, spec{pid: 5, seq: 0, codec: CompressionLZ4, recs: mkRecords(8)}),
		"zstd":          build(tb, spec{pid: 5, seq: 8, codec: CompressionZstd, recs: mkRecords(8)}),
		"log-append":    build(tb, spec{attrs: attrLogAppendTime, pid: -1, seq: -1, recs: mkRecords(2)}),
	}
	return m
}

// hostileSeeds are batches that frame and checksum but must be refused:
// per codec, a bomb (one record of 1 MiB of zeros: tiny on the wire,
// past the fuzz's inflate limit), a count above and below what the
// payload holds, and offset deltas out of order.
func hostileSeeds(tb testing.TB) map[string][]byte {
	tb.Helper()
	m := map[string][]byte{}
	bomb := kmsg.NewRecord()
	bomb.Value = make([]byte, 1<<20)
	shifted := mkRecords(3)
	shifted[2].OffsetDelta = 5
	for name, c := range map[string]int8{"gzip": CompressionGzip, "snappy": CompressionSnappy, "lz4": CompressionLZ4, "zstd": CompressionZstd} {
		m[name+"-bomb"] = build(tb, spec{pid: -1, seq: -1, codec: c, recs: []kmsg.Record{bomb}})
		m[name+"-count-high"] = build(tb, spec{pid: -1, seq: -1, codec: c, recs: mkRecords(2), numRecs: i32(1000), lastDelta: i32(999)})
		m[name+"-count-low"] = build(tb, spec{pid: -1, seq: -1, codec: c, recs: mkRecords(3), numRecs: i32(1), lastDelta: i32(0)})
		m[name+"-deltas"] = build(tb, spec{pid: -1, seq: -1, codec: c, recs: shifted})
	}
	return m
}

// FirstAtOrAfter is FirstAtOrAfterFrom over the whole batch.
func FirstAtOrAfter(b []byte, ts int64, maxDecompressed int) (offset, timestamp int64, ok bool, err error) {
	return FirstAtOrAfterFrom(b, math.MinInt64, ts, maxDecompressed)
}
