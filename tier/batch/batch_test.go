package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const maxBytes = 1 << 20

func TestValidateProduceOK(t *testing.T) {
	for name, b := range seedBatches(t) {
		t.Run(name, func(t *testing.T) {
			h, err := ValidateProduce(b, maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			if h.Size() != len(b) || h.Magic != 2 || h.NumRecords != h.LastOffsetDelta+1 {
				t.Fatalf("header %+v for %d bytes", h, len(b))
			}
			if KafkaErrorCode(err) != 0 {
				t.Fatal("nil error code")
			}
			// Exactly at the limit is allowed.
			if _, err := ValidateProduce(b, len(b)); err != nil {
				t.Fatalf("at limit: %v", err)
			}
		})
	}
}

func TestValidateProduceFields(t *testing.T) {
	b := build(t, spec{attrs: attrTransactional, codec: CompressionZstd, pid: 42, epoch: 3, seq: 100, firstTS: 1000, recs: mkRecords(4)})
	h, err := ValidateProduce(b, maxBytes)
	if err != nil {
		t.Fatal(err)
	}
	want := Header{
		BaseOffset: 0, BatchLength: int32(len(b) - 12), PartitionLeaderEpoch: -1, Magic: 2,
		CRC: binary.BigEndian.Uint32(b[17:]), Attributes: attrTransactional | int16(CompressionZstd),
		LastOffsetDelta: 3, FirstTimestamp: 1000, MaxTimestamp: 1009,
		ProducerID: 42, ProducerEpoch: 3, BaseSequence: 100, NumRecords: 4,
	}
	if h != want {
		t.Fatalf("got  %+v\nwant %+v", h, want)
	}
	if h.Compression() != CompressionZstd || !h.Transactional() || h.Control() || h.LogAppendTime() ||
		!h.Idempotent() || h.LastSequence() != 103 || h.LastOffset() != 3 {
		t.Fatalf("accessors wrong for %+v", h)
	}
}

func TestValidateProduceErrors(t *testing.T) {
	plain := func() []byte { return build(t, spec{pid: -1, seq: -1, recs: mkRecords(3)}) }
	setLen := func(b []byte, n int32) []byte { binary.BigEndian.PutUint32(b[8:], uint32(n)); return b }
	tests := []struct {
		name string
		b    []byte
		max  int
		want error
		code int16
	}{
		{name: "empty", b: nil, want: ErrInvalidRecord, code: 87},
		{name: "shorter than length field", b: plain()[:11], want: ErrCorrupt, code: 2},
		{name: "shorter than header", b: plain()[:60], want: ErrCorrupt, code: 2},
		{name: "truncated", b: func() []byte { b := plain(); return b[:len(b)-1] }(), want: ErrCorrupt, code: 2},
		{name: "length too long", b: func() []byte { b := plain(); return setLen(b, int32(len(b)-12+1)) }(), want: ErrCorrupt, code: 2},
		{name: "length too short", b: func() []byte { b := plain(); return setLen(b, int32(len(b)-12-1)) }(), want: ErrCorrupt, code: 2},
		{name: "length below header", b: func() []byte { return setLen(plain(), 48) }(), want: ErrCorrupt, code: 2},
		{name: "length negative", b: func() []byte { return setLen(plain(), -1) }(), want: ErrCorrupt, code: 2},
		{name: "length min int32", b: func() []byte { return setLen(plain(), math.MinInt32) }(), want: ErrCorrupt, code: 2},
		{name: "bad crc field", b: func() []byte { b := plain(); b[17] ^= 1; return b }(), want: ErrCorrupt, code: 2},
		{name: "bad crc payload", b: func() []byte { b := plain(); b[len(b)-1] ^= 0x80; return b }(), want: ErrCorrupt, code: 2},
		{name: "bad crc header", b: func() []byte { b := plain(); b[60] ^= 1; return b }(), want: ErrCorrupt, code: 2},
		{name: "magic 0", b: func() []byte { b := plain(); b[16] = 0; return b }(), want: ErrUnsupportedMagic, code: 43},
		{name: "magic 1", b: func() []byte { b := plain(); b[16] = 1; return b }(), want: ErrUnsupportedMagic, code: 43},
		{name: "magic 3", b: func() []byte { b := plain(); b[16] = 3; return b }(), want: ErrInvalidRecord, code: 87},
		{name: "magic -1", b: func() []byte { b := plain(); b[16] = 0xff; return b }(), want: ErrInvalidRecord, code: 87},
		{name: "count mismatch", b: build(t, spec{pid: -1, recs: mkRecords(3), lastDelta: i32(1)}), want: ErrInvalidRecord, code: 87},
		{name: "count zero", b: build(t, spec{pid: -1, recs: nil}), want: ErrInvalidRecord, code: 87},
		{name: "count negative", b: build(t, spec{pid: -1, recs: mkRecords(1), numRecs: i32(-5), lastDelta: i32(-6)}), want: ErrInvalidRecord, code: 87},
		{name: "count overflow", b: build(t, spec{pid: -1, recs: mkRecords(1), numRecs: i32(math.MinInt32), lastDelta: i32(math.MaxInt32)}), want: ErrInvalidRecord, code: 87},
		{name: "count lies uncompressed", b: build(t, spec{pid: -1, recs: mkRecords(2), numRecs: i32(3)}), want: ErrInvalidRecord, code: 87},
		{name: "count short uncompressed", b: build(t, spec{pid: -1, recs: mkRecords(3), numRecs: i32(2)}), want: ErrInvalidRecord, code: 87},
		{name: "record garbage", b: build(t, spec{pid: -1, recs: mkRecords(1), rawBody: []byte{0x7f, 1, 2, 3}}), want: ErrInvalidRecord, code: 87},
		{name: "control bit", b: build(t, spec{attrs: attrControl, pid: 1, recs: mkRecords(1)}), want: ErrInvalidRecord, code: 87},
		{name: "codec 5", b: build(t, spec{pid: -1, codec: 5, recs: mkRecords(1)}), want: ErrInvalidRecord, code: 87},
		{name: "pid without sequence", b: build(t, spec{pid: 3, seq: -1, recs: mkRecords(1)}), want: ErrInvalidRecord, code: 87},
		{name: "transactional without pid", b: build(t, spec{attrs: attrTransactional, pid: -1, recs: mkRecords(1)}), want: ErrInvalidRecord, code: 87},
		{name: "two batches", b: append(plain(), plain()...), want: ErrInvalidRecord, code: 87},
		{name: "trailing byte", b: append(plain(), 0), want: ErrInvalidRecord, code: 87},
		{name: "too large", b: plain(), max: 100, want: ErrTooLarge, code: 10},
		{name: "too large negative limit", b: plain(), max: -1, want: ErrTooLarge, code: 10},
		// The limit comes from the length field before anything else.
		{name: "too large before crc", b: func() []byte { b := plain(); b[17] ^= 1; return b }(), max: 100, want: ErrTooLarge, code: 10},
		{name: "too large before magic", b: func() []byte { b := plain(); b[16] = 1; return b }(), max: 100, want: ErrTooLarge, code: 10},
		{name: "too large before truncation", b: func() []byte { return setLen(plain()[:20], 1<<30) }(), want: ErrTooLarge, code: 10},
		{name: "too large max int32", b: func() []byte { return setLen(plain(), math.MaxInt32) }(), want: ErrTooLarge, code: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			max := tt.max
			if max == 0 {
				max = maxBytes
			}
			h, err := ValidateProduce(tt.b, max)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if h != (Header{}) {
				t.Fatalf("header %+v returned with error", h)
			}
			if got := KafkaErrorCode(err); got != tt.code {
				t.Fatalf("code %d, want %d (%v)", got, tt.code, err)
			}
			if errors.Unwrap(err) == nil {
				t.Fatalf("error %v carries no context", err)
			}
		})
	}
}

// Compressed batches are decompressed (with a bound) and walked like
// uncompressed ones: every codec, the xerial snappy framing, lying counts
// and offset deltas, bombs and payloads that do not decompress.
func TestValidateProduceInsideCompressed(t *testing.T) {
	codecs := []int8{CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd}
	names := map[int8]string{CompressionGzip: "gzip", CompressionSnappy: "snappy", CompressionLZ4: "lz4", CompressionZstd: "zstd"}
	shifted := mkRecords(3)
	shifted[2].OffsetDelta = 7
	for _, c := range codecs {
		t.Run(names[c], func(t *testing.T) {
			if _, err := ValidateProduce(build(t, spec{pid: -1, codec: c, recs: mkRecords(5)}), maxBytes); err != nil {
				t.Fatalf("a sound batch: %v", err)
			}
			for _, tt := range []struct {
				name string
				b    []byte
				want error
			}{
				{"count above the records", build(t, spec{pid: -1, codec: c, recs: mkRecords(2), numRecs: i32(3), lastDelta: i32(2)}), ErrInvalidRecord},
				{"count below the records", build(t, spec{pid: -1, codec: c, recs: mkRecords(3), numRecs: i32(1), lastDelta: i32(0)}), ErrInvalidRecord},
				{"offset delta out of order", build(t, spec{pid: -1, codec: c, recs: shifted}), ErrInvalidRecord},
				{"not the codec's bytes", build(t, spec{pid: -1, codec: c, recs: mkRecords(1), rawBody: []byte("not compressed at all, no")}), ErrCorrupt},
			} {
				if _, err := ValidateProduce(tt.b, maxBytes); !errors.Is(err, tt.want) {
					t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
				}
			}
		})
	}
	// Bombs: small on the wire, past the inflate limit once expanded.
	// The record framing is valid (one record, its value all zeros).
	r := kmsg.NewRecord()
	r.Value = make([]byte, MinInflateLimit+1024)
	bomb := encodeRecords([]kmsg.Record{r})
	for _, c := range codecs {
		b := build(t, spec{pid: -1, codec: c, recs: []kmsg.Record{r}, rawBody: compress(t, c, bomb)})
		if len(b) > maxBytes {
			t.Logf("%s bomb is %d bytes on the wire, above the size limit: skipped", names[c], len(b))
			continue
		}
		if _, err := ValidateProduce(b, maxBytes); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s bomb (%d bytes inflating to %d): %v, want MESSAGE_TOO_LARGE", names[c], len(b), len(bomb), err)
		}
	}
	// The xerial framing the Java client writes.
	b := build(t, spec{pid: -1, codec: CompressionSnappy, recs: mkRecords(4), rawBody: xerialSnappy(encodeRecords(mkRecords(4)), 100)})
	if _, err := ValidateProduce(b, maxBytes); err != nil {
		t.Fatalf("xerial snappy: %v", err)
	}
}

// Only -1 means null for a key, value or header value; offset deltas
// must count up from 0.
func TestValidateProduceStrictRecords(t *testing.T) {
	r := kmsg.NewRecord()
	r.Key = []byte("k")
	body := encodeRecords([]kmsg.Record{r})
	// The key length varint (zigzag 1 = 0x02) follows length, attributes,
	// timestamp delta and offset delta: make it -7 (zigzag 13 = 0x0d),
	// dropping the key byte and fixing the record length.
	i := bytes.Index(body, []byte{0x02, 'k'})
	if i < 0 {
		t.Fatal("key not found")
	}
	bad := append(append(append([]byte{}, body[:i]...), 0x0d), body[i+2:]...)
	bad[0] -= 2 // record length (zigzag): one byte shorter
	b := build(t, spec{pid: -1, recs: []kmsg.Record{r}, rawBody: bad})
	if _, err := ValidateProduce(b, maxBytes); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("key length -7: %v", err)
	}
	recs := mkRecords(3)
	recs[1].OffsetDelta = 2
	if _, err := ValidateProduce(build(t, spec{pid: -1, recs: recs}), maxBytes); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("offset deltas 0, 2, 2: %v", err)
	}
}

func TestKafkaErrorCode(t *testing.T) {
	for _, tt := range []struct {
		err  error
		code int16
	}{
		{nil, 0},
		{ErrCorrupt, 2},
		{ErrTooLarge, 10},
		{ErrUnsupportedMagic, 43},
		{ErrInvalidRecord, 87},
		{fmt.Errorf("a: %w", fmt.Errorf("b: %w", ErrCorrupt)), 2},
		{io.EOF, -1},
	} {
		if got := KafkaErrorCode(tt.err); got != tt.code {
			t.Errorf("KafkaErrorCode(%v) = %d, want %d", tt.err, got, tt.code)
		}
	}
}

func TestStamp(t *testing.T) {
	for name, b := range seedBatches(t) {
		t.Run(name, func(t *testing.T) {
			before, err := ValidateProduce(b, maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			SetBaseOffset(b, 1<<40+7)
			SetPartitionLeaderEpoch(b, 12)
			after, err := ValidateProduce(b, maxBytes)
			if err != nil {
				t.Fatalf("stamped batch invalid: %v", err)
			}
			want := before
			want.BaseOffset, want.PartitionLeaderEpoch = 1<<40+7, 12
			if after != want {
				t.Fatalf("got %+v, want %+v", after, want)
			}
			if after.LastOffset() != 1<<40+7+int64(after.LastOffsetDelta) {
				t.Fatal("last offset")
			}
			if it := NewIterator(b, IterOptions{VerifyCRC: true}); !it.Next() || it.Err() != nil {
				t.Fatal("iterator rejects stamped batch")
			}
		})
	}
}

func TestStampShort(t *testing.T) {
	b := make([]byte, HeaderSize-1)
	SetBaseOffset(b, -1)
	SetPartitionLeaderEpoch(b, -1)
	SetBaseOffset(nil, 1)
	SetPartitionLeaderEpoch(nil, 1)
	if !slices.Equal(b, make([]byte, HeaderSize-1)) {
		t.Fatal("short buffer written")
	}
}

func TestParseHeader(t *testing.T) {
	b := clientLike(t)
	for _, n := range []int{0, 1, 12, HeaderSize - 1} {
		if _, err := ParseHeader(b[:n]); !errors.Is(err, ErrCorrupt) {
			t.Errorf("len %d: err = %v", n, err)
		}
	}
	// Only the header is read; records are not needed.
	h, err := ParseHeader(b[:HeaderSize])
	if err != nil {
		t.Fatal(err)
	}
	if h.ProducerID != -1 || h.BaseSequence != 0 || h.PartitionLeaderEpoch != -1 || h.NumRecords != 5 || h.Size() != len(b) {
		t.Fatalf("%+v", h)
	}
	if h.Idempotent() || h.LastSequence() != 4 {
		t.Fatalf("idempotent %v last seq %d", h.Idempotent(), h.LastSequence())
	}
}

func TestHeaderAccessors(t *testing.T) {
	for _, tt := range []struct {
		base, delta, want int32
	}{
		{0, 0, 0},
		{10, 4, 14},
		{-1, 5, -1}, // no sequence
		{math.MaxInt32, 0, math.MaxInt32},
		{math.MaxInt32, 1, 0},
		{math.MaxInt32 - 1, 5, 3},
		{math.MaxInt32, math.MaxInt32, math.MaxInt32 - 1},
	} {
		h := Header{BaseSequence: tt.base, LastOffsetDelta: tt.delta}
		if got := h.LastSequence(); got != tt.want {
			t.Errorf("LastSequence(%d+%d) = %d, want %d", tt.base, tt.delta, got, tt.want)
		}
	}
	for attrs, want := range map[int16][4]bool{ // logAppend, txn, control
		0x00: {}, 0x08: {true}, 0x10: {false, true}, 0x20: {false, false, true}, 0x3f: {true, true, true},
	} {
		h := Header{Attributes: attrs}
		got := [4]bool{h.LogAppendTime(), h.Transactional(), h.Control()}
		if got != want {
			t.Errorf("attrs %#x: %v, want %v", attrs, got, want)
		}
	}
	if c := (Header{Attributes: 0x7c}).Compression(); c != CompressionZstd {
		t.Errorf("compression %d", c)
	}
	h := Header{BatchLength: math.MaxInt32, BaseOffset: 100, LastOffsetDelta: 9, ProducerID: 0}
	if h.Size() != math.MaxInt32+12 || h.LastOffset() != 109 || !h.Idempotent() {
		t.Errorf("%+v: size %d last %d", h, h.Size(), h.LastOffset())
	}
}

// rawRecord frames hand-written record fields with their length varint.
func rawRecord(fields ...[]byte) []byte {
	body := bytes.Join(fields, nil)
	return append(binary.AppendVarint(nil, int64(len(body))), body...)
}

func vi(v int64) []byte { return binary.AppendVarint(nil, v) }

func TestValidateProduceRecords(t *testing.T) {
	attrs, ts, od := []byte{0}, vi(5), vi(0)
	hdrs0 := vi(0)
	tooLong := bytes.Repeat([]byte{0xff}, 11)
	tests := []struct {
		name string
		body []byte
		ok   bool
	}{
		{"minimal null key and value", rawRecord(attrs, ts, od, vi(-1), vi(-1), hdrs0), true},
		{"key value header", rawRecord(attrs, ts, od, vi(1), []byte("k"), vi(2), []byte("vv"), vi(1), vi(1), []byte("h"), vi(-1)), true},
		{"non-minimal varint", rawRecord(attrs, ts, od, []byte{0x81, 0x80, 0x80, 0x80, 0x00}, vi(-1), hdrs0), true}, // -1 in 5 bytes
		{"empty record", rawRecord(), false},
		{"no timestamp", rawRecord(attrs), false},
		{"timestamp varint too long", rawRecord(attrs, tooLong, od, vi(-1), vi(-1), hdrs0), false},
		{"offset delta varint too long", rawRecord(attrs, ts, tooLong[:6], vi(-1), vi(-1), hdrs0), false},
		{"key past record", rawRecord(attrs, ts, od, vi(9), []byte("k"), vi(-1), hdrs0), false},
		{"value past record", rawRecord(attrs, ts, od, vi(-1), vi(9), hdrs0), false},
		{"no header count", rawRecord(attrs, ts, od, vi(-1), vi(-1)), false},
		{"negative header count", rawRecord(attrs, ts, od, vi(-1), vi(-1), vi(-1)), false},
		{"header count past record", rawRecord(attrs, ts, od, vi(-1), vi(-1), vi(3), vi(0), vi(-1)), false},
		{"null header key", rawRecord(attrs, ts, od, vi(-1), vi(-1), vi(1), vi(-1), vi(-1)), false},
		{"header value past record", rawRecord(attrs, ts, od, vi(-1), vi(-1), vi(1), vi(0), vi(4), []byte("x")), false},
		{"extra byte in record", rawRecord(attrs, ts, od, vi(-1), vi(-1), hdrs0, []byte{0}), false},
		{"negative record length", vi(-3), false},
		{"record length past batch", append(vi(50), attrs...), false},
		{"record length varint cut", []byte{0x80}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := build(t, spec{pid: -1, recs: mkRecords(1), rawBody: tt.body})
			_, err := ValidateProduce(b, maxBytes)
			if tt.ok != (err == nil) || (err != nil && !errors.Is(err, ErrInvalidRecord)) {
				t.Fatalf("err = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestVarint(t *testing.T) {
	for _, tt := range []struct {
		in   []byte
		v    int64
		k32  int
		k64  int
		name string
	}{
		{[]byte{0x00}, 0, 1, 1, "zero"},
		{[]byte{0x01}, -1, 1, 1, "minus one"},
		{[]byte{0xfe, 0xff, 0xff, 0xff, 0x0f}, math.MaxInt32, 5, 5, "max int32"},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, math.MinInt32, 5, 5, "min int32"},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x10}, 1 << 31, 0, 5, "overflows 32 bits"},
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x00}, 0, 0, 6, "six bytes"},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, math.MinInt64, 0, 10, "min int64"},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, 0, 0, 0, "overflows 64 bits"},
		{bytes.Repeat([]byte{0x80}, 11), 0, 0, 0, "eleven bytes"},
		{[]byte{0x80}, 0, 0, 0, "cut"},
		{nil, 0, 0, 0, "empty"},
	} {
		v32, k32 := varint32(tt.in)
		v64, k64 := varint64(tt.in)
		if k32 != tt.k32 || (k32 > 0 && int64(v32) != tt.v) || k64 != tt.k64 || (k64 > 0 && v64 != tt.v) {
			t.Errorf("%s: varint32 %d/%d varint64 %d/%d, want %d k %d/%d", tt.name, v32, k32, v64, k64, tt.v, tt.k32, tt.k64)
		}
		if k32 > 0 {
			if kv, kk := kbin.Varint(tt.in); kk != k32 || kv != v32 {
				t.Errorf("%s: kbin says %d/%d", tt.name, kv, kk)
			}
		}
	}
}

func TestEncodeValidates(t *testing.T) {
	b := Encode([]KV{{Key: []byte("k"), Value: []byte("v")}, {Key: []byte("gone")}}, 1234)
	h, err := ValidateProduce(b, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if h.NumRecords != 2 || h.MaxTimestamp != 1234 || h.ProducerID != -1 {
		t.Fatalf("header %+v", h)
	}
	SetBaseOffset(b, 40)
	recs, err := Records(b, 1<<20)
	if err != nil || len(recs) != 2 || string(recs[0].Key) != "k" || string(recs[0].Value) != "v" || recs[1].Value != nil || recs[1].Offset != 41 {
		t.Fatalf("decoded %+v %v", recs, err)
	}
	// Broken framing is an error, not a panic.
	for i := HeaderSize; i < len(b); i++ {
		c := append([]byte(nil), b[:i]...)
		if _, err := Records(c, 1<<20); err == nil {
			t.Fatalf("truncated to %d: no error", i)
		}
	}
}

// BenchmarkValidateProduce measures produce validation per codec: the
// records walked inside the decompressed batch ("inside") against the
// header and CRC checks alone ("header"), which is all a compressed batch
// got before round 2. Batches are 100 records of 1 KiB of JSON-like text.
// Throughput is of the batch bytes as sent.
func BenchmarkValidateProduce(b *testing.B) {
	recs := make([]kmsg.Record, 100)
	for i := range recs {
		recs[i] = kmsg.NewRecord()
		recs[i].OffsetDelta = int32(i)
		recs[i].Key = fmt.Appendf(nil, "order-%d", i)
		v := fmt.Appendf(nil, `{"id":%d,"customer":"c-%d","items":[`, i, i*7)
		for j := 0; len(v) < 1000; j++ {
			v = fmt.Appendf(v, `{"sku":"sku-%d","qty":%d,"price":%d.%02d},`, (i*31+j)%997, j%5+1, j*3%200, j%100)
		}
		recs[i].Value = append(v, "]}"...)
	}
	for _, c := range []struct {
		name  string
		codec int8
	}{{"none", CompressionNone}, {"gzip", CompressionGzip}, {"snappy", CompressionSnappy}, {"lz4", CompressionLZ4}, {"zstd", CompressionZstd}} {
		batch := build(b, spec{pid: 1, seq: 0, codec: c.codec, recs: recs})
		b.Run("codec="+c.name+"/inside", func(b *testing.B) {
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ValidateProduce(batch, 1<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
		if c.codec == CompressionNone {
			continue
		}
		b.Run("codec="+c.name+"/header", func(b *testing.B) {
			b.SetBytes(int64(len(batch)))
			b.ReportAllocs()
			for b.Loop() {
				h, err := ParseHeader(batch)
				if err != nil || checkCRC(batch) != nil || checkProduceHeader(h) != nil {
					b.Fatal("invalid")
				}
			}
		})
	}
}
