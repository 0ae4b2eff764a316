package segment

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"math/rand/v2"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/batch"
	"github.com/tlog-io/tlog/tier/tiertest"
)

var ctx = context.Background()

type partData struct {
	topic     [16]byte
	partition int32
	epoch     int32
	data      []byte
	snap      []byte
	first     int64
	last      int64
	batches   int
}

// buildMany adds topics×parts partitions of 1-4 batches each, in shuffled
// order.
func buildMany(t *testing.T, topics, parts int, seed uint64) (*Writer, []partData) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	var ps []partData
	for ti := 0; ti < topics; ti++ {
		for p := 0; p < parts; p++ {
			n := 1 + rng.IntN(4)
			first := int64(rng.IntN(1000))
			data, _ := run(t, first, n, 1+rng.IntN(5), rng.IntN(200), 1_700_000_000_000+int64(p))
			var snap []byte
			if p%3 != 0 {
				snap = []byte{byte(ti), byte(p), 0xee}
			}
			ps = append(ps, partData{topic(ti), int32(p), int32(p % 7), data, snap, first, 0, n})
		}
	}
	rng.Shuffle(len(ps), func(i, j int) { ps[i], ps[j] = ps[j], ps[i] })
	w := NewWriter(42)
	w.SetCreatedAt(time.UnixMilli(1_700_000_123_456))
	for i := range ps {
		p := &ps[i]
		if err := w.Add(p.topic, p.partition, p.epoch, p.data, p.snap); err != nil {
			t.Fatal(err)
		}
		var last int64
		if err := batch.Iterate(p.data, func(h batch.Header, _ []byte) bool { last = h.LastOffset(); return true }); err != nil {
			t.Fatal(err)
		}
		p.last = last
	}
	return w, ps
}

func TestRoundTripManyPartitions(t *testing.T) {
	w, ps := buildMany(t, 5, 20, 1)
	obj := w.Bytes()
	if int64(len(obj)) != w.Size() {
		t.Fatalf("Bytes is %d bytes, Size said %d", len(obj), w.Size())
	}
	f, err := Parse(obj)
	if err != nil {
		t.Fatal(err)
	}
	if f.Version != Version || f.AgentID != 42 || f.CreatedAt.UnixMilli() != 1_700_000_123_456 || len(f.Entries) != 100 {
		t.Fatalf("footer header %+v with %d entries", f, len(f.Entries))
	}
	if !reflect.DeepEqual(f.Entries, w.Entries()) {
		t.Fatal("parsed entries differ from Writer.Entries")
	}

	mem := tier.NewMemBucket()
	faulty := tiertest.NewFaulty(mem)
	put(t, mem, "data/seg-1", obj)
	f2, err := Open(ctx, faulty, "data/seg-1", int64(len(obj)))
	if err != nil {
		t.Fatal(err)
	}
	if got := faulty.Counts()[tiertest.OpGetRange]; got != 1 {
		t.Fatalf("Open made %d ranged GETs, want 1", got)
	}
	if !reflect.DeepEqual(f, f2) {
		t.Fatal("Open and Parse disagree")
	}

	var prevEnd int64
	for i, e := range f.Entries {
		if e.Pos != prevEnd {
			t.Fatalf("entry %d at %d, previous ended at %d", i, e.Pos, prevEnd)
		}
		prevEnd = e.End()
	}
	if prevEnd != f.DataLen {
		t.Fatalf("entries end at %d, data length %d", prevEnd, f.DataLen)
	}
	for _, p := range ps {
		e, ok := f.Find(p.topic, p.partition)
		if !ok {
			t.Fatalf("%x/%d not found", p.topic, p.partition)
		}
		if e.FirstOffset != p.first || e.LastOffset != p.last || e.Batches != p.batches || e.LeaderEpoch != p.epoch ||
			!bytes.Equal(e.ProducerSnapshot, p.snap) || e.Len != int64(len(p.data)) {
			t.Fatalf("entry %+v for %x/%d first %d last %d batches %d", e, p.topic, p.partition, p.first, p.last, p.batches)
		}
		got, err := ReadPartition(ctx, faulty, "data/seg-1", e)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, p.data) {
			t.Fatalf("%x/%d: data differs", p.topic, p.partition)
		}
		// Reading from the last offset returns the last batch.
		got, err = ReadFrom(ctx, faulty, "data/seg-1", e, e.LastOffset, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		h, err := batch.ParseHeader(got)
		if err != nil || h.LastOffset() != e.LastOffset || h.Size() != len(got) {
			t.Fatalf("read from last offset: %+v, %d bytes, %v", h, len(got), err)
		}
	}
	for _, k := range []struct {
		t [16]byte
		p int32
	}{{topic(0), 20}, {topic(5), 0}, {topic(0), -1}, {[16]byte{}, 0}} {
		if _, ok := f.Find(k.t, k.p); ok {
			t.Fatalf("found %x/%d", k.t, k.p)
		}
	}
}

// TestLayout pins the byte layout the package doc describes.
func TestLayout(t *testing.T) {
	data, _ := run(t, 100, 2, 3, 10, 5000)
	w := NewWriter(-7)
	w.SetCreatedAt(time.UnixMilli(123456789))
	tp := topic(9)
	if err := w.Add(tp, 4, 11, data, []byte("snap")); err != nil {
		t.Fatal(err)
	}
	obj := w.Bytes()
	be := binary.BigEndian
	n := len(obj)
	if string(obj[n-8:]) != "TLOGSEG1" {
		t.Fatalf("magic %q", obj[n-8:])
	}
	footerLen := int(be.Uint32(obj[n-16:]))
	footer := obj[n-16-footerLen : n-16]
	if footerLen != FooterHeaderSize+entryFixedSize+4 || be.Uint32(obj[n-12:]) != crc32.Checksum(footer, castagnoli) {
		t.Fatalf("trailer: footer length %d", footerLen)
	}
	if len(data)+footerLen+16 != n || !bytes.Equal(obj[:len(data)], data) {
		t.Fatal("data section")
	}
	want := []struct {
		off, size int
		v         uint64
	}{
		{0, 2, 1}, {2, 8, 123456789}, {10, 4, uint64(uint32(0xfffffff9))}, {14, 8, uint64(len(data))}, {22, 4, 1},
		{26 + 16, 4, 4}, {26 + 20, 4, 11}, {26 + 24, 8, 0}, {26 + 32, 8, uint64(len(data))},
		{26 + 40, 4, uint64(crc32.Checksum(data, castagnoli))},
		{26 + 44, 8, 100}, {26 + 52, 8, 105}, {26 + 60, 8, 5000}, {26 + 68, 8, 5005}, {26 + 76, 8, 6},
		{26 + 84, 4, 2}, {26 + 88, 4, 0}, {26 + 92, 4, 4},
	}
	for _, f := range want {
		var got uint64
		switch f.size {
		case 2:
			got = uint64(be.Uint16(footer[f.off:]))
		case 4:
			got = uint64(be.Uint32(footer[f.off:]))
		case 8:
			got = be.Uint64(footer[f.off:])
		}
		if got != f.v {
			t.Errorf("footer[%d:+%d] = %d, want %d", f.off, f.size, got, f.v)
		}
	}
	if !bytes.Equal(footer[26:42], tp[:]) || string(footer[26+96:]) != "snap" {
		t.Error("topic id or snapshot")
	}
}

func TestEmptySegment(t *testing.T) {
	obj := NewWriter(1).Bytes()
	if len(obj) != FooterHeaderSize+TrailerSize {
		t.Fatalf("%d bytes", len(obj))
	}
	f, err := Parse(obj)
	if err != nil || len(f.Entries) != 0 || f.DataLen != 0 {
		t.Fatalf("%+v %v", f, err)
	}
}

func TestStats(t *testing.T) {
	b1 := mkBatch(t, bspec{base: 10, n: 3, ts: 1000, valLen: 5})
	b2 := mkBatch(t, bspec{base: 13, n: 2, ts: 900, valLen: 5})                           // earlier producer clock
	b3 := mkBatch(t, bspec{base: 15, n: 4, ts: 800, valLen: 5, attrs: attrLogAppendTime}) // every record at max ts 803
	w := NewWriter(1)
	if err := w.Add(topic(1), 0, 1, append(append(append([]byte(nil), b1...), b2...), b3...), nil); err != nil {
		t.Fatal(err)
	}
	e := w.Entries()[0]
	if e.FirstOffset != 10 || e.LastOffset != 18 || e.Records != 9 || e.Batches != 3 ||
		e.MinTimestamp != 803 || e.MaxTimestamp != 1002 || e.ProducerSnapshot != nil || e.Index != nil {
		t.Fatalf("%+v", e)
	}
}

func TestAppend(t *testing.T) {
	all, each := run(t, 0, 6, 2, 30, 0)
	w := NewWriter(1)
	if err := w.Add(topic(1), 3, 5, bytes.Join(each[:2], nil), []byte("s1")); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(topic(2), 0, 5, each[0], nil); err != nil {
		t.Fatal(err)
	}
	size, entries := w.Size(), w.Entries()
	for name, tc := range map[string]struct {
		epoch int32
		b     []byte
		want  error
	}{
		"gap":        {5, each[3], ErrNotContiguous},
		"overlap":    {5, each[1], ErrNotContiguous},
		"gap inside": {5, append(append([]byte(nil), each[2]...), each[4]...), ErrNotContiguous},
		"epoch":      {6, each[2], ErrInvalid},
	} {
		if err := w.Add(topic(1), 3, tc.epoch, tc.b, nil); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
	}
	if w.Size() != size || !reflect.DeepEqual(w.Entries(), entries) {
		t.Fatal("a refused Add changed the writer")
	}
	if err := w.Add(topic(1), 3, 5, each[2], nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(topic(1), 3, 5, bytes.Join(each[3:], nil), []byte("s2")); err != nil {
		t.Fatal(err)
	}
	f, err := Parse(w.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	e, _ := f.Find(topic(1), 3)
	if e.FirstOffset != 0 || e.LastOffset != 11 || e.Batches != 6 || e.Records != 12 || string(e.ProducerSnapshot) != "s2" ||
		e.CRC != crc32.Checksum(all, castagnoli) {
		t.Fatalf("%+v", e)
	}
}

func TestAddInvalid(t *testing.T) {
	good := mkBatch(t, bspec{base: 0, n: 2, valLen: 3})
	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 1
	negBase := mkBatch(t, bspec{base: -5, n: 2, valLen: 3})
	badMagic := bytes.Clone(good)
	badMagic[16] = 1
	for name, tc := range map[string]struct {
		topic [16]byte
		part  int32
		b     []byte
		want  error
	}{
		"zero topic":    {[16]byte{}, 0, good, ErrInvalid},
		"neg partition": {topic(1), -1, good, ErrInvalid},
		"empty":         {topic(1), 0, nil, ErrInvalid},
		"truncated":     {topic(1), 0, good[:len(good)-1], batch.ErrCorrupt},
		"short":         {topic(1), 0, good[:30], batch.ErrCorrupt},
		"trailing":      {topic(1), 0, append(bytes.Clone(good), 0), batch.ErrCorrupt},
		"bad crc":       {topic(1), 0, badCRC, batch.ErrCorrupt},
		"bad magic":     {topic(1), 0, badMagic, batch.ErrCorrupt},
		"neg base":      {topic(1), 0, negBase, ErrInvalid},
	} {
		w := NewWriter(1)
		err := w.Add(tc.topic, tc.part, 0, tc.b, nil)
		if !errors.Is(err, tc.want) || !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want %v", name, err, tc.want)
		}
		if w.Len() != 0 || w.Size() != FooterHeaderSize+TrailerSize {
			t.Errorf("%s: refused Add changed the writer", name)
		}
	}
}

// bigPartition builds one partition of ~1.2 MiB in batches of ~4 KiB.
func bigPartition(t *testing.T) ([]byte, [][]byte) {
	return run(t, 1000, 300, 4, 1000, 1_000_000)
}

func TestSparseIndex(t *testing.T) {
	all, each := bigPartition(t)
	w := NewWriter(1)
	if err := w.Add(topic(1), 0, 1, all, nil); err != nil {
		t.Fatal(err)
	}
	// Adding the same batches a few at a time builds the same index.
	w2 := NewWriter(1)
	for i := 0; i < len(each); {
		n := min(1+i%7, len(each)-i)
		if err := w2.Add(topic(1), 0, 1, bytes.Join(each[i:i+n], nil), nil); err != nil {
			t.Fatal(err)
		}
		i += n
	}
	w2.SetCreatedAt(w.createdAt)
	if !bytes.Equal(w.Bytes(), w2.Bytes()) {
		t.Fatal("one Add and many Adds encode differently")
	}
	obj := w.Bytes()
	f, err := Parse(obj)
	if err != nil {
		t.Fatal(err)
	}
	e := f.Entries[0]
	if len(e.Index) < 15 {
		t.Fatalf("%d index entries for %d bytes", len(e.Index), e.Len)
	}
	// Blocks start at batch boundaries, span >= BlockSize (but the last)
	// and < BlockSize + one batch, and carry their CRCs.
	starts := map[int64]int64{}
	var pos int64
	for _, b := range each {
		h, _ := batch.ParseHeader(b)
		starts[pos] = h.BaseOffset
		pos += int64(len(b))
	}
	for i, ix := range e.Index {
		s, end := e.block(i)
		if off, ok := starts[ix.Pos]; !ok || off != ix.Offset {
			t.Fatalf("block %d at %d offset %d is not a batch start", i, ix.Pos, ix.Offset)
		}
		if i < len(e.Index)-1 && (end-s < BlockSize || end-s >= BlockSize+int64(len(each[0]))) {
			t.Fatalf("block %d spans %d bytes", i, end-s)
		}
		if crc32.Checksum(all[s:end], castagnoli) != ix.CRC {
			t.Fatalf("block %d crc", i)
		}
	}

	rl := &rangeLog{Bucket: tier.NewMemBucket()}
	put(t, rl, "seg", obj)
	for _, maxBytes := range []int{0, 1, 10_000, 100_000, 1 << 20, 4 << 20} {
		for off := e.FirstOffset; off <= e.LastOffset; off += 37 {
			got, err := ReadFrom(ctx, rl, "seg", e, off, maxBytes)
			if err != nil {
				t.Fatal(err)
			}
			// Expected: batches from the one holding off, at most
			// maxBytes but at least one.
			var from, to int64 = -1, 0
			pos = 0
			for _, b := range each {
				h, _ := batch.ParseHeader(b)
				switch {
				case from < 0 && h.LastOffset() >= off:
					from, to = pos, pos+int64(len(b))
				case from >= 0 && to == pos && to-from+int64(len(b)) <= int64(maxBytes):
					to += int64(len(b))
				}
				pos += int64(len(b))
			}
			if !bytes.Equal(got, all[from:to]) && !(len(got) < int(to-from) && bytes.Equal(got, all[from:from+int64(len(got))])) {
				t.Fatalf("offset %d max %d: got %d bytes, not a prefix of want [%d, %d)", off, maxBytes, len(got), from, to)
			}
			if len(got) > max(maxBytes, len(each[0])) {
				t.Fatalf("offset %d max %d: %d bytes", off, maxBytes, len(got))
			}
			rs := rl.take()
			if len(rs) != 1 {
				t.Fatalf("%d GETs", len(rs))
			}
			// One ranged GET: the chunk of blocks holding off.
			if lim := int64(chunkBlocksFor(maxBytes)) * (BlockSize + int64(len(each[0]))); rs[0][1] > lim {
				t.Fatalf("offset %d max %d: read %d bytes", off, maxBytes, rs[0][1])
			}
		}
	}
	// A small read from the middle fetches one block, not the partition.
	got, err := ReadFrom(ctx, rl, "seg", e, (e.FirstOffset+e.LastOffset)/2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if rs := rl.take(); rs[0][1] >= BlockSize+int64(len(each[0])) || len(got) != len(each[0]) {
		t.Fatalf("middle read: GET %v, %d bytes", rs, len(got))
	}
	for _, off := range []int64{e.FirstOffset - 1, e.LastOffset + 1, -1} {
		if _, err := ReadFrom(ctx, rl, "seg", e, off, 100); !errors.Is(err, ErrOffsetOutOfRange) {
			t.Fatalf("offset %d: %v", off, err)
		}
	}
}

func TestCorruptData(t *testing.T) {
	all, _ := bigPartition(t)
	small, _ := run(t, 0, 3, 2, 20, 0)
	w := NewWriter(1)
	if err := w.Add(topic(1), 0, 1, all, nil); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(topic(1), 1, 1, small, nil); err != nil {
		t.Fatal(err)
	}
	obj := w.Bytes()
	f, err := Parse(obj)
	if err != nil {
		t.Fatal(err)
	}
	big, _ := f.Find(topic(1), 0)
	sm, _ := f.Find(topic(1), 1)
	mid := big.Index[len(big.Index)/2]

	for name, at := range map[string]int64{
		"batch payload":  big.Pos + mid.Pos + 100,
		"base offset":    big.Pos + mid.Pos + 7, // outside the batch CRC
		"small base":     sm.Pos + 3,
		"small last one": sm.End() - 1,
	} {
		bad := bytes.Clone(obj)
		bad[at] ^= 0x10
		mem := tier.NewMemBucket()
		put(t, mem, "seg", bad)
		if _, err := Parse(bad); err != nil {
			t.Fatalf("%s: footer should still parse: %v", name, err)
		}
		e := big
		if at >= sm.Pos {
			e = sm
		}
		if _, err := ReadPartition(ctx, mem, "seg", e); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: ReadPartition: %v", name, err)
		}
		if e.Index == nil {
			if _, err := ReadFrom(ctx, mem, "seg", e, e.FirstOffset, 1); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%s: ReadFrom: %v", name, err)
			}
			continue
		}
		if _, err := ReadFrom(ctx, mem, "seg", e, mid.Offset, 1); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: ReadFrom corrupt block: %v", name, err)
		}
		// Blocks elsewhere still read.
		if _, err := ReadFrom(ctx, mem, "seg", e, e.FirstOffset, 1); err != nil {
			t.Errorf("%s: ReadFrom clean block: %v", name, err)
		}
	}
}

func TestCorruptFooter(t *testing.T) {
	w, _ := buildMany(t, 2, 5, 2)
	obj := w.Bytes()
	footerLen, _, err := ParseTrailer(obj)
	if err != nil {
		t.Fatal(err)
	}
	// Every single-bit flip in footer or trailer is caught.
	for i := len(obj) - TrailerSize - footerLen; i < len(obj); i++ {
		for bit := 0; bit < 8; bit++ {
			bad := bytes.Clone(obj)
			bad[i] ^= 1 << bit
			if _, err := Parse(bad); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("flip byte %d bit %d: %v", i, bit, err)
			}
		}
	}
	// A well-checksummed footer of an unknown version.
	bad := bytes.Clone(obj)
	footer := bad[len(bad)-TrailerSize-footerLen : len(bad)-TrailerSize]
	binary.BigEndian.PutUint16(footer, 2)
	binary.BigEndian.PutUint32(bad[len(bad)-12:], crc32.Checksum(footer, castagnoli))
	if _, err := Parse(bad); !errors.Is(err, ErrUnsupportedVersion) {
		t.Fatalf("version 2: %v", err)
	}
}

func TestTruncatedAndWrongSize(t *testing.T) {
	w, _ := buildMany(t, 2, 10, 3)
	obj := w.Bytes()
	for n := 0; n < len(obj); n += 1 + n/8 {
		if _, err := Parse(obj[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("prefix of %d bytes: %v", n, err)
		}
		if _, err := Parse(obj[len(obj)-n:]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("suffix of %d bytes: %v", n, err)
		}
	}
	// Extra bytes before the data section (the size is wrong).
	if _, err := Parse(append([]byte{0}, obj...)); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("prefixed: %v", err)
	}

	mem := tier.NewMemBucket()
	put(t, mem, "full", obj)
	put(t, mem, "cut", obj[:len(obj)-5])
	put(t, mem, "cut-front", obj[100:])
	for name, tc := range map[string]struct {
		key  string
		size int64
	}{
		"object shorter than size": {"cut", int64(len(obj))},
		"object cut at the front":  {"cut-front", int64(len(obj) - 100)},
		"size too small":           {"full", int64(len(obj) - 1)},
		"size tiny":                {"full", 10},
		"size zero":                {"full", 0},
	} {
		if _, err := Open(ctx, mem, tc.key, tc.size); !errors.Is(err, ErrCorrupt) && !errors.Is(err, tier.ErrInvalidRange) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Open(ctx, mem, "missing", int64(len(obj))); !errors.Is(err, tier.ErrNotFound) {
		t.Errorf("missing: %v", err)
	}
	// A partition read from an object that lost its tail.
	f, err := Parse(obj)
	if err != nil {
		t.Fatal(err)
	}
	last := f.Entries[len(f.Entries)-1]
	put(t, mem, "cut-data", obj[:last.End()-1])
	if _, err := ReadPartition(ctx, mem, "cut-data", last); !errors.Is(err, ErrCorrupt) {
		t.Errorf("truncated partition: %v", err)
	}
}

func TestLargeFooterTwoGets(t *testing.T) {
	// 800 partitions × ~100 footer bytes > 64 KiB.
	w := NewWriter(9)
	b := mkBatch(t, bspec{base: 0, n: 1, valLen: 1})
	for p := 0; p < 800; p++ {
		if err := w.Add(topic(p%3), int32(p), 1, b, []byte("producer-state")); err != nil {
			t.Fatal(err)
		}
	}
	obj := w.Bytes()
	footerLen, _, err := ParseTrailer(obj)
	if err != nil {
		t.Fatal(err)
	}
	if footerLen+TrailerSize <= TailReadSize {
		t.Fatalf("footer only %d bytes", footerLen)
	}
	mem := tier.NewMemBucket()
	put(t, mem, "seg", obj)
	faulty := tiertest.NewFaulty(mem)
	f, err := Open(ctx, faulty, "seg", int64(len(obj)))
	if err != nil {
		t.Fatal(err)
	}
	if got := faulty.Counts()[tiertest.OpGetRange]; got != 2 {
		t.Fatalf("%d ranged GETs, want 2", got)
	}
	if len(f.Entries) != 800 || !reflect.DeepEqual(f.Entries, w.Entries()) {
		t.Fatal("entries differ")
	}
	// An error on the second GET surfaces.
	faulty.FailNextAfter(tiertest.OpGetRange, 0, nil)
	faulty.FailNext(tiertest.OpGetRange, 1, tiertest.ErrInjected)
	if _, err := Open(ctx, faulty, "seg", int64(len(obj))); !errors.Is(err, tiertest.ErrInjected) {
		t.Fatalf("injected: %v", err)
	}

	// A small object is read whole with one GET.
	small := NewWriter(1)
	if err := small.Add(topic(1), 0, 1, b, nil); err != nil {
		t.Fatal(err)
	}
	put(t, mem, "small", small.Bytes())
	faulty = tiertest.NewFaulty(mem)
	if _, err := Open(ctx, faulty, "small", small.Size()); err != nil {
		t.Fatal(err)
	}
	if got := faulty.Counts()[tiertest.OpGetRange]; got != 1 {
		t.Fatalf("%d ranged GETs, want 1", got)
	}
}

func TestFooterTooLarge(t *testing.T) {
	w := NewWriter(1)
	b := mkBatch(t, bspec{base: 0, n: 1, valLen: 1})
	if err := w.Add(topic(1), 0, 1, b, make([]byte, MaxFooterLen)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("%v", err)
	}
	if w.Len() != 0 {
		t.Fatal("refused Add kept the partition")
	}
}

func TestConcurrentReads(t *testing.T) {
	all, _ := bigPartition(t)
	w := NewWriter(1)
	if err := w.Add(topic(1), 0, 1, all, nil); err != nil {
		t.Fatal(err)
	}
	mem := tier.NewMemBucket()
	obj := w.Bytes()
	put(t, mem, "seg", obj)
	f, err := Open(ctx, mem, "seg", int64(len(obj)))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Go(func() {
			e, _ := f.Find(topic(1), 0)
			for off := e.FirstOffset + int64(g); off <= e.LastOffset; off += 97 {
				if _, err := ReadFrom(ctx, mem, "seg", e, off, 50_000); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestVerifyAndCut(t *testing.T) {
	all, each := bigPartition(t)
	w := NewWriter(1)
	if err := w.Add(topic(1), 0, 1, all, nil); err != nil {
		t.Fatal(err)
	}
	e := w.Entries()[0]
	s, end := e.block(1)
	if err := e.Verify(s, all[s:end]); err != nil {
		t.Fatal(err)
	}
	if err := e.Verify(s+1, all[s+1:end]); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unaligned start: %v", err)
	}
	if err := e.Verify(-1<<63, all[s:end]); !errors.Is(err, ErrInvalid) {
		t.Fatalf("start before partition: %v", err)
	}
	if err := e.Verify(s, all[s:end-1]); !errors.Is(err, ErrInvalid) {
		t.Fatalf("unaligned end: %v", err)
	}
	if _, err := Cut(all, e.LastOffset+1, 10); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("past end: %v", err)
	}
	if _, err := Cut(all[:len(all)-1], e.LastOffset, 10); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("cut batch: %v", err)
	}
	got, err := Cut(all, e.FirstOffset, len(each[0])*2+len(each[0])/2)
	if err != nil || !bytes.Equal(got, all[:2*len(each[0])]) {
		t.Fatalf("%d bytes, %v", len(got), err)
	}
}

// TestParseFooterRejects breaks one rule of a well-formed footer at a time.
func TestParseFooterRejects(t *testing.T) {
	objs := seedObjects(t)
	good := bytes.Clone(footerOfObj(objs[len(objs)-1])) // topic 7/2 with 4 blocks, topic 8/0
	ft, err := ParseFooter(good)
	if err != nil || len(ft.Entries) != 2 || len(ft.Entries[0].Index) != 4 {
		t.Fatalf("seed: %v", err)
	}
	e0 := ft.Entries[0]
	const h = FooterHeaderSize
	ix := h + 92                        // entry 0's index
	e1 := ix + 4*20 + 4 + len("pstate") // entry 1
	be := binary.BigEndian
	u32 := func(at int, v uint32) func([]byte) { return func(b []byte) { be.PutUint32(b[at:], v) } }
	u64 := func(at int, v uint64) func([]byte) { return func(b []byte) { be.PutUint64(b[at:], v) } }
	for name, mut := range map[string]func([]byte){
		"data len huge":        u64(14, 1<<63),
		"data len short":       u64(14, uint64(e0.Len)),
		"count too big":        u32(22, 1<<20),
		"count one more":       u32(22, 3),
		"count one less":       u32(22, 1),
		"zero topic":           func(b []byte) { clear(b[h : h+16]) },
		"negative partition":   u32(h+16, 0xffffffff),
		"pos huge":             u64(h+24, 1<<63),
		"len huge":             u64(h+32, 1<<63),
		"len zero":             u64(h+32, 0),
		"first negative":       u64(h+44, 1<<63),
		"last before first":    u64(h+52, 1<<63),
		"last negative":        func(b []byte) { u64(h+44, 1<<62)(b); u64(h+52, 1<<63)(b) },
		"timestamps inverted":  u64(h+60, 1<<62),
		"records negative":     u64(h+76, 1<<63),
		"records too many":     u64(h+76, uint64(e0.LastOffset-e0.FirstOffset+2)),
		"batches zero":         u32(h+84, 0),
		"batches too many":     u32(h+84, uint32(e0.LastOffset-e0.FirstOffset+2)),
		"index one":            u32(h+88, 1),
		"index huge":           u32(h+88, 1<<30),
		"index 0 not at 0":     u64(ix+8, 1),
		"index 0 wrong offset": u64(ix, 1),
		"index pos backwards":  u64(ix+2*20+8, uint64(e0.Index[1].Pos)),
		"index pos past len":   u64(ix+3*20+8, uint64(e0.Len)),
		"index pos huge":       u64(ix+3*20+8, 1<<63),
		"index offset repeats": u64(ix+2*20, uint64(e0.Index[1].Offset)),
		"index offset past":    u64(ix+3*20, uint64(e0.LastOffset+1)),
		"snapshot too long":    u32(ix+4*20, 1<<20),
		"entries out of order": func(b []byte) { b[e1] = 0 },
		"same key":             func(b []byte) { copy(b[e1:e1+20], b[h:h+20]) },
		"data overlaps":        u64(e1+24, uint64(e0.Len-1)),
		"data past end":        u64(e1+24, uint64(ft.DataLen)),
		"truncated":            nil,
		"trailing byte":        nil,
	} {
		b := bytes.Clone(good)
		switch name {
		case "truncated":
			b = b[:len(b)-1]
		case "trailing byte":
			b = append(b, 0)
		default:
			mut(b)
		}
		if _, err := ParseFooter(b); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := ParseFooter(good[:1]); !errors.Is(err, ErrCorrupt) {
		t.Errorf("one byte: %v", err)
	}
	if _, err := ParseFooter(make([]byte, MaxFooterLen+1)); !errors.Is(err, ErrCorrupt) {
		t.Errorf("too long: %v", err)
	}
}

// AddOwned builds the same object as Add, keeps the first buffer it is
// given rather than copying it, and copies what later Adds append.
func TestAddOwned(t *testing.T) {
	all, each := run(t, 0, 6, 2, 30, 0)
	copied, owned := NewWriter(1), NewWriter(1)
	copied.SetCreatedAt(time.UnixMilli(1))
	owned.SetCreatedAt(time.UnixMilli(1))
	first := bytes.Join(each[:3], nil)
	for _, step := range []struct {
		b    []byte
		snap string
	}{{first, "s1"}, {bytes.Join(each[3:], nil), "s2"}} {
		if err := copied.Add(topic(1), 0, 3, step.b, []byte(step.snap)); err != nil {
			t.Fatal(err)
		}
		if err := owned.AddOwned(topic(1), 0, 3, step.b, []byte(step.snap)); err != nil {
			t.Fatal(err)
		}
		if step.snap == "s1" {
			if p := owned.parts[key{topic(1), 0}]; &p.data[0] != &first[0] {
				t.Fatal("AddOwned copied the first buffer")
			}
			if p := copied.parts[key{topic(1), 0}]; &p.data[0] == &first[0] {
				t.Fatal("Add kept the caller's buffer")
			}
		}
	}
	if !bytes.Equal(owned.Bytes(), copied.Bytes()) {
		t.Fatal("AddOwned built another object than Add")
	}
	f, err := Parse(owned.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := f.Find(topic(1), 0); e.CRC != crc32.Checksum(all, castagnoli) || e.LastOffset != 11 {
		t.Fatalf("%+v", e)
	}
}
