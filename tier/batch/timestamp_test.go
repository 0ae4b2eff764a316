package batch

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"runtime"
	"testing"

	"github.com/klauspost/compress/zstd"
	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// codecCase is one way a producer compresses the records section.
type codecCase struct {
	name  string
	codec int8
	enc   func(tb testing.TB, raw []byte) []byte
}

func codecCases() []codecCase {
	std := func(c int8) func(testing.TB, []byte) []byte {
		return func(tb testing.TB, raw []byte) []byte { return compress(tb, c, raw) }
	}
	return []codecCase{
		{"none", CompressionNone, std(CompressionNone)},
		{"gzip", CompressionGzip, std(CompressionGzip)},
		{"snappy", CompressionSnappy, std(CompressionSnappy)},
		// Small blocks so the records span several xerial blocks.
		{"snappy-xerial", CompressionSnappy, func(_ testing.TB, raw []byte) []byte { return xerialSnappy(raw, 64) }},
		{"lz4", CompressionLZ4, std(CompressionLZ4)},
		{"zstd", CompressionZstd, std(CompressionZstd)},
		// Streamed: the frame does not declare its content size.
		{"zstd-stream", CompressionZstd, zstdStream},
	}
}

func zstdStream(tb testing.TB, raw []byte) []byte {
	var buf bytes.Buffer
	// As kgo streams: a 64 KiB window, so the decoder's output bound,
	// not the window bound, is what stops a bomb.
	w, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(64<<10))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := w.Write(raw); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

const tsBase = 500 // base offset the tests stamp

// tsBatch builds a stored batch at tsBase whose records sit at firstTS plus
// the given deltas, with the records section encoded by cc.
func tsBatch(tb testing.TB, cc codecCase, attrs int16, firstTS int64, deltas ...int64) []byte {
	tb.Helper()
	recs := mkRecords(len(deltas))
	for i, d := range deltas {
		recs[i].TimestampDelta64 = d
	}
	b := build(tb, spec{attrs: attrs, pid: -1, seq: -1, firstTS: firstTS, recs: recs, codec: cc.codec,
		rawBody: cc.enc(tb, encodeRecords(recs))})
	SetBaseOffset(b, tsBase)
	return b
}

// setMaxTimestamp stamps a LogAppendTime batch's max timestamp, as the
// produce path does.
func setMaxTimestamp(b []byte, ts int64) []byte {
	binary.BigEndian.PutUint64(b[offMaxTimestamp:], uint64(ts))
	return reseal(b)
}

// withBody replaces b's records section, fixing the length and CRC.
func withBody(b, body []byte) []byte {
	out := append(append([]byte(nil), b[:HeaderSize]...), body...)
	binary.BigEndian.PutUint32(out[offBatchLength:], uint32(len(out)-lengthOverhead))
	return reseal(out)
}

type tsWant struct {
	min, ts  int64
	off, rts int64
	ok       bool
}

func checkFirst(t *testing.T, b []byte, cases []tsWant) {
	t.Helper()
	for _, c := range cases {
		off, rts, ok, err := FirstAtOrAfterFrom(b, c.min, c.ts, 1<<20)
		if err != nil || ok != c.ok || (ok && (off != c.off || rts != c.rts)) {
			t.Errorf("from %d ts %d: %d@%d ok=%v err=%v; want %d@%d ok=%v", c.min, c.ts, off, rts, ok, err, c.off, c.rts, c.ok)
		}
		if c.min == math.MinInt64 {
			off2, rts2, ok2, err2 := FirstAtOrAfter(b, c.ts, 1<<20)
			if off2 != off || rts2 != rts || ok2 != ok || (err2 == nil) != (err == nil) {
				t.Errorf("ts %d: FirstAtOrAfter %d@%d %v %v differs", c.ts, off2, rts2, ok2, err2)
			}
		}
	}
}

func TestFirstAtOrAfter(t *testing.T) {
	const none = math.MinInt64
	for _, cc := range codecCases() {
		t.Run(cc.name, func(t *testing.T) {
			// Records at 1000, 1010, 1010, 1020, 1035: offsets 500-504.
			b := tsBatch(t, cc, 0, 1000, 0, 10, 10, 20, 35)
			checkFirst(t, b, []tsWant{
				{min: none, ts: math.MinInt64, off: 500, rts: 1000, ok: true},
				{min: none, ts: 0, off: 500, rts: 1000, ok: true},    // before the first
				{min: none, ts: 1000, off: 500, rts: 1000, ok: true}, // equal to the first
				{min: none, ts: 1005, off: 501, rts: 1010, ok: true}, // between: the next
				{min: none, ts: 1010, off: 501, rts: 1010, ok: true}, // equal pair: the first
				{min: none, ts: 1011, off: 503, rts: 1020, ok: true}, // skips the pair
				{min: none, ts: 1035, off: 504, rts: 1035, ok: true}, // the last, equal
				{min: none, ts: 1036},                                        // after the last
				{min: none, ts: math.MaxInt64},                               //
				{min: 502, ts: 1005, off: 502, rts: 1010, ok: true},          // log start inside the batch
				{min: 502, ts: 0, off: 502, rts: 1010, ok: true},             //
				{min: 504, ts: 0, off: 504, rts: 1035, ok: true},             //
				{min: 503, ts: 1021, off: 504, rts: 1035, ok: true},          //
				{min: 505, ts: 0},                                            // log start after the batch
				{min: 0, ts: 1020, off: 503, rts: 1020, ok: true},            //
				{min: 504, ts: 1036},                                         //
				{min: math.MaxInt64, ts: math.MinInt64},                      //
				{min: 501, ts: math.MinInt64, off: 501, rts: 1010, ok: true}, //
			})

			// CreateTime need not be ordered: the first record in
			// offset order at or after the target, as Kafka does.
			b = tsBatch(t, cc, 0, 1000, 0, 30, 10, 40)
			checkFirst(t, b, []tsWant{
				{min: none, ts: 1005, off: 501, rts: 1030, ok: true},
				{min: 502, ts: 1005, off: 502, rts: 1010, ok: true},
				{min: none, ts: 1031, off: 503, rts: 1040, ok: true},
			})

			// Negative deltas (timestamps before FirstTimestamp).
			b = tsBatch(t, cc, 0, 1000, 0, -5, 3)
			checkFirst(t, b, []tsWant{{min: none, ts: 996, off: 500, rts: 1000, ok: true}})

			// LogAppendTime: every record has the batch's max timestamp.
			b = setMaxTimestamp(tsBatch(t, cc, attrLogAppendTime, 1000, 0, 10, 20), 5000)
			checkFirst(t, b, []tsWant{
				{min: none, ts: 0, off: 500, rts: 5000, ok: true},
				{min: none, ts: 1015, off: 500, rts: 5000, ok: true},
				{min: none, ts: 5000, off: 500, rts: 5000, ok: true},
				{min: 501, ts: 5000, off: 501, rts: 5000, ok: true},
				{min: none, ts: 5001},
				{min: 503, ts: 0},
			})

			// One record.
			b = tsBatch(t, cc, 0, 77, 0)
			checkFirst(t, b, []tsWant{{min: none, ts: 77, off: 500, rts: 77, ok: true}, {min: none, ts: 78}})
		})
	}
}

// A header whose MaxTimestamp undershoots its records is taken at its word,
// as Kafka's searchForTimestamp does.
func TestFirstAtOrAfterTrustsMaxTimestamp(t *testing.T) {
	b := setMaxTimestamp(tsBatch(t, codecCases()[0], 0, 1000, 0, 10, 20), 1005)
	if _, _, ok, err := FirstAtOrAfter(b, 1010, 1<<20); ok || err != nil {
		t.Fatalf("ok=%v err=%v", ok, err)
	}
}

func TestFirstAtOrAfterCorrupt(t *testing.T) {
	for _, cc := range codecCases() {
		t.Run(cc.name, func(t *testing.T) {
			b := tsBatch(t, cc, 0, 1000, 0, 10, 20, 30)
			body := b[HeaderSize:]
			bad := map[string][]byte{
				"truncated": withBody(b, body[:len(body)-3]),
				"half":      withBody(b, body[:len(body)/2]),
				"empty":     withBody(b, nil),
				// Records fine, but the count says more and the
				// max timestamp sends the walk past the last.
				"count": func() []byte {
					x := bytes.Clone(b)
					binary.BigEndian.PutUint32(x[offNumRecords:], 5)
					binary.BigEndian.PutUint32(x[offLastOffsetDelta:], 4)
					return setMaxTimestamp(x, 2000)
				}(),
			}
			if cc.codec != CompressionNone {
				garbage := bytes.Repeat([]byte{0xa5, 0x13, 0xff, 0x00}, 40)
				bad["garbage"] = withBody(b, garbage)
				// Valid compression of something that is not records.
				bad["not-records"] = withBody(b, cc.enc(t, garbage))
				// The whole payload is decompressed before the walk,
				// so bytes after the compressed data fail even
				// though the wanted record comes before them.
				bad["extra"] = withBody(b, append(bytes.Clone(body), 1, 2, 3))
				// A flipped byte in the middle of the data.
				flip := bytes.Clone(body)
				flip[len(flip)/2] ^= 0x5a
				bad["flip"] = withBody(b, flip)
			}
			for name, x := range bad {
				// The header still says a record qualifies.
				off, ts, ok, err := FirstAtOrAfter(x, 1025+975*int64(btoi(name == "count")), 1<<20)
				if !errors.Is(err, ErrCorrupt) || ok || off != 0 || ts != 0 {
					t.Errorf("%s: %d@%d ok=%v err=%v, want ErrCorrupt", name, off, ts, ok, err)
				}
			}
		})
	}
}

func TestFirstAtOrAfterBadFraming(t *testing.T) {
	cc := codecCases()[0]
	b := tsBatch(t, cc, 0, 1000, 0, 10)
	cut := func(n int) []byte { return b[:n] }
	cases := map[string][]byte{
		"nil":      nil,
		"short":    cut(HeaderSize - 1),
		"header":   cut(HeaderSize),
		"cut":      cut(len(b) - 1),
		"magic":    func() []byte { x := bytes.Clone(b); x[offMagic] = 1; return x }(),
		"tiny-len": func() []byte { x := bytes.Clone(b); binary.BigEndian.PutUint32(x[offBatchLength:], 3); return x }(),
		"neg-len": func() []byte {
			x := bytes.Clone(b)
			binary.BigEndian.PutUint32(x[offBatchLength:], 0xfffffff0)
			return x
		}(),
		"neg-delta": func() []byte {
			x := bytes.Clone(b)
			binary.BigEndian.PutUint32(x[offLastOffsetDelta:], 0xffffffff)
			return x
		}(),
		"low-delta":  func() []byte { x := bytes.Clone(b); binary.BigEndian.PutUint32(x[offLastOffsetDelta:], 0); return x }(),
		"bad-codec":  func() []byte { x := bytes.Clone(b); x[offAttributes+1] |= 6; return x }(),
		"dup-deltas": dupDeltas(t),
	}
	for name, x := range cases {
		if _, _, ok, err := FirstAtOrAfter(x, 1005, 1<<20); !errors.Is(err, ErrCorrupt) || ok {
			t.Errorf("%s: ok=%v err=%v, want ErrCorrupt", name, ok, err)
		}
	}
	// Bytes after the batch are not looked at.
	x := append(bytes.Clone(b), 9, 9, 9)
	if off, _, ok, err := FirstAtOrAfter(x, 1005, 1<<20); err != nil || !ok || off != 501 {
		t.Errorf("trailing bytes: %d ok=%v err=%v", off, ok, err)
	}
}

// dupDeltas is a batch whose records repeat an offset delta.
func dupDeltas(tb testing.TB) []byte {
	recs := mkRecords(3)
	recs[1].OffsetDelta = 0
	recs[2].TimestampDelta64 = 10
	return build(tb, spec{pid: -1, seq: -1, firstTS: 1000, recs: recs})
}

// bombRecords is one record whose value is n zero bytes.
func bombRecords(n int) []kmsg.Record {
	return []kmsg.Record{{Value: make([]byte, n)}}
}

func TestFirstAtOrAfterCap(t *testing.T) {
	recs := bombRecords(100_000)
	raw := encodeRecords(recs)
	for _, cc := range codecCases()[1:] {
		t.Run(cc.name, func(t *testing.T) {
			b := build(t, spec{pid: -1, seq: -1, firstTS: 1000, recs: recs, codec: cc.codec, rawBody: cc.enc(t, raw)})
			if _, _, ok, err := FirstAtOrAfter(b, 0, len(raw)); err != nil || !ok {
				t.Fatalf("cap at the size: ok=%v err=%v", ok, err)
			}
			for _, limit := range []int{len(raw) - 1, 1000, 1, 0, -1} {
				_, _, ok, err := FirstAtOrAfter(b, 0, limit)
				if !errors.Is(err, ErrCorrupt) || !errors.Is(err, errTooBig) || ok {
					t.Errorf("cap %d: ok=%v err=%v, want too big", limit, ok, err)
				}
			}
		})
	}
}

// A decompression bomb must fail having allocated about the cap, not the
// decompressed size.
func TestFirstAtOrAfterBomb(t *testing.T) {
	const size, limit = 32 << 20, 1 << 20
	recs := bombRecords(size)
	raw := encodeRecords(recs)
	for _, cc := range codecCases()[1:] {
		t.Run(cc.name, func(t *testing.T) {
			enc := cc.enc
			if cc.name == "snappy-xerial" {
				enc = func(_ testing.TB, raw []byte) []byte { return xerialSnappy(raw, 32<<10) }
			}
			b := build(t, spec{pid: -1, seq: -1, firstTS: 1000, recs: recs, codec: cc.codec, rawBody: enc(t, raw)})
			t.Logf("%d bytes compress to %d", len(raw), len(b))
			// Warm pools (zstd decoders, lz4 block buffers) first.
			FirstAtOrAfter(b, 0, limit)
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, _, ok, err := FirstAtOrAfter(b, 0, limit)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, ErrCorrupt) || !errors.Is(err, errTooBig) || ok {
				t.Fatalf("ok=%v err=%v, want too big", ok, err)
			}
			alloc := after.TotalAlloc - before.TotalAlloc
			t.Logf("allocated %d bytes", alloc)
			if alloc > 8*limit {
				t.Errorf("allocated %d bytes for a cap of %d", alloc, limit)
			}
		})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// The test encoders frame payloads the way kgo reads them.
func TestTSBatchesDecodeWithKgo(t *testing.T) {
	dec := kgo.DefaultDecompressor()
	raw := encodeRecords(mkRecords(50))
	for _, cc := range codecCases()[1:] {
		got, err := dec.Decompress(cc.enc(t, raw), kgo.CompressionCodecType(cc.codec))
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("%s: kgo decompresses %d bytes, err %v", cc.name, len(got), err)
		}
	}
}

// refFirstAtOrAfter answers FirstAtOrAfterFrom with franz-go's decoders:
// kmsg for the batch and records, kgo's decompressor for the payload.
func refFirstAtOrAfter(b []byte, minOffset, ts int64) (offset, timestamp int64, ok bool, err error) {
	var rb kmsg.RecordBatch
	if err := rb.ReadFrom(b[:batchSize(b)]); err != nil {
		return 0, 0, false, err
	}
	if rb.MaxTimestamp < ts || rb.FirstOffset+int64(rb.LastOffsetDelta) < minOffset {
		return 0, 0, false, nil
	}
	body := rb.Records
	if c := rb.Attributes & 7; c != 0 {
		if body, err = kgo.DefaultDecompressor().Decompress(body, kgo.CompressionCodecType(c)); err != nil {
			return 0, 0, false, err
		}
	}
	prev := int32(-1)
	for i := int32(0); i < rb.NumRecords; i++ {
		l, k := kbin.Varint(body)
		if k <= 0 || l < 0 || int64(l) > int64(len(body)-k) {
			return 0, 0, false, errors.New("bad record length")
		}
		var r kmsg.Record
		if err := r.ReadFrom(body[:k+int(l)]); err != nil {
			return 0, 0, false, err
		}
		body = body[k+int(l):]
		if r.OffsetDelta <= prev || r.OffsetDelta > rb.LastOffsetDelta {
			return 0, 0, false, errors.New("bad offset delta")
		}
		prev = r.OffsetDelta
		rts := rb.FirstTimestamp + r.TimestampDelta64
		if rb.Attributes&attrLogAppendTime != 0 {
			rts = rb.MaxTimestamp
		}
		if off := rb.FirstOffset + int64(r.OffsetDelta); rts >= ts && off >= minOffset {
			return off, rts, true, nil
		}
	}
	if len(body) != 0 {
		return 0, 0, false, errors.New("bytes after the records")
	}
	return 0, 0, false, nil
}

func FuzzFirstAtOrAfter(f *testing.F) {
	const limit = 1 << 20
	var seeds [][]byte
	for _, cc := range codecCases() {
		seeds = append(seeds,
			tsBatch(f, cc, 0, 1000, 0, 10, 10, 20, 35),
			tsBatch(f, cc, 0, 1000, 0, 30, 10, 40),
			setMaxTimestamp(tsBatch(f, cc, attrLogAppendTime, 1000, 0, 10, 20), 5000),
		)
		if cc.codec != CompressionNone {
			recs := bombRecords(200_000)
			seeds = append(seeds, build(f, spec{pid: -1, seq: -1, firstTS: 1000, recs: recs, codec: cc.codec,
				rawBody: cc.enc(f, encodeRecords(recs))}))
		}
	}
	seeds = append(seeds, seedsSorted(f)...)
	for _, b := range seeds {
		for _, v := range corpusVariants(b) {
			f.Add(v, int64(math.MinInt64), int64(1005), uint8(0))
			f.Add(v, int64(502), int64(1011), uint8(1))
		}
		f.Add(b, int64(0), int64(0), uint8(0))
		f.Add(b, int64(0), int64(1020), uint8(0x20))
	}
	f.Fuzz(func(t *testing.T, data []byte, minOffset, ts int64, fix uint8) {
		// Random bytes rarely frame: fixing the length field, and
		// forcing a codec, lets the fuzzer reach the decoders with
		// arbitrary payloads.
		if fix&3 != 0 {
			data = bytes.Clone(data) // the engine's bytes are read-only
		}
		if fix&1 != 0 && len(data) >= lengthOverhead {
			binary.BigEndian.PutUint32(data[offBatchLength:], uint32(len(data)-lengthOverhead))
		}
		if fix&2 != 0 && len(data) > offAttributes+1 {
			data[offAttributes+1] = data[offAttributes+1]&^attrCompressionMask | (fix>>2)&attrCompressionMask
		}
		capBytes := limit
		if fix&0x20 != 0 {
			capBytes = 1000 // small enough for the seeds' payloads to exceed
		}
		orig := bytes.Clone(data)
		off, rts, ok, err := FirstAtOrAfterFrom(data, minOffset, ts, capBytes)
		if !bytes.Equal(data, orig) {
			t.Fatal("input modified")
		}
		if err != nil {
			if !errors.Is(err, ErrCorrupt) || ok || off != 0 || rts != 0 {
				t.Fatalf("error %v with %d@%d ok=%v", err, off, rts, ok)
			}
			return
		}
		h, herr := ParseHeader(data)
		if herr != nil {
			t.Fatalf("accepted %d bytes: %v", len(data), herr)
		}
		if ok {
			if off < h.BaseOffset || off > h.LastOffset() || off < minOffset || rts < ts {
				t.Fatalf("%d@%d for from %d ts %d, header %+v", off, rts, minOffset, ts, h)
			}
			if h.LogAppendTime() && rts != h.MaxTimestamp {
				t.Fatalf("log append time %d, max %d", rts, h.MaxTimestamp)
			}
		} else if off != 0 || rts != 0 {
			t.Fatalf("not ok with %d@%d", off, rts)
		}
		if minOffset == math.MinInt64 {
			o2, r2, ok2, err2 := FirstAtOrAfter(data, ts, capBytes)
			if o2 != off || r2 != rts || ok2 != ok || err2 != nil {
				t.Fatalf("FirstAtOrAfter %d@%d %v %v, From %d@%d %v", o2, r2, ok2, err2, off, rts, ok)
			}
		}
		ro, rr, rok, rerr := refFirstAtOrAfter(data, minOffset, ts)
		if rerr != nil || ro != off || rr != rts || rok != ok {
			t.Fatalf("ours %d@%d ok=%v; franz-go %d@%d ok=%v err=%v", off, rts, ok, ro, rr, rok, rerr)
		}
	})
}
