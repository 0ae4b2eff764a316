package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"
	"time"
)

// seedObjects are real segments covering the footer's shapes: empty, one
// partition, snapshots, a sparse index, several topics.
func seedObjects(tb testing.TB) [][]byte {
	var objs [][]byte
	objs = append(objs, NewWriter(0).Bytes())

	w := NewWriter(3)
	w.SetCreatedAt(time.UnixMilli(-1))
	if err := w.Add(topic(1), 0, 1, mkBatch(tb, bspec{base: 5, n: 2, ts: -10, valLen: 3}), nil); err != nil {
		tb.Fatal(err)
	}
	objs = append(objs, w.Bytes())

	w = NewWriter(4)
	for p := 0; p < 6; p++ {
		data, _ := run(tb, int64(p*10), 1+p%3, 2, 8, int64(p))
		if err := w.Add(topic(p%2), int32(p), int32(p), data, bytes.Repeat([]byte{byte(p)}, p)); err != nil {
			tb.Fatal(err)
		}
	}
	objs = append(objs, w.Bytes())

	// Sparse index: ~200 KiB in 2 KiB batches, so 4 blocks.
	w = NewWriter(5)
	data, _ := run(tb, 0, 100, 2, 1000, 0)
	if err := w.Add(topic(7), 2, 9, data, []byte("pstate")); err != nil {
		tb.Fatal(err)
	}
	small, _ := run(tb, 0, 2, 1, 1, 0)
	if err := w.Add(topic(8), 0, 9, small, nil); err != nil {
		tb.Fatal(err)
	}
	objs = append(objs, w.Bytes())
	return objs
}

func footerOfObj(obj []byte) []byte {
	n := int(binary.BigEndian.Uint32(obj[len(obj)-TrailerSize:]))
	return obj[len(obj)-TrailerSize-n : len(obj)-TrailerSize]
}

// variants are truncated and corrupted copies of b.
func variants(b []byte) [][]byte {
	out := [][]byte{b, b[:len(b)/2], b[:len(b)-1], b[1:], nil}
	for _, i := range []int{0, 1, 5, 13, 21, 22, 25, 26 + 16, 26 + 24, 26 + 39, 26 + 84, 26 + 88, 26 + 91, len(b) - 1} {
		if i < len(b) {
			c := bytes.Clone(b)
			c[i] ^= 0xff
			out = append(out, c)
		}
	}
	return out
}

func FuzzParseFooter(f *testing.F) {
	for _, obj := range seedObjects(f) {
		for _, v := range variants(footerOfObj(obj)) {
			f.Add(v)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ft, err := ParseFooter(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("error %v wraps neither ErrCorrupt nor ErrUnsupportedVersion", err)
			}
			return
		}
		// Only canonical encodings parse.
		if enc := appendFooter(nil, ft); !bytes.Equal(enc, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", enc, b)
		}
		for _, e := range ft.Entries {
			if got, ok := ft.Find(e.TopicID, e.Partition); !ok || got.Pos != e.Pos {
				t.Fatalf("Find %x/%d", e.TopicID, e.Partition)
			}
			// A chunk never leaves the entry's data and holds its offset.
			for _, off := range []int64{e.FirstOffset, e.LastOffset, e.FirstOffset + (e.LastOffset-e.FirstOffset)/2} {
				s, end, through, err := e.Chunk(off, 4)
				if err != nil || s < e.Pos || end > e.End() || s >= end || through < off || through > e.LastOffset {
					t.Fatalf("Chunk(%d) = [%d, %d) through %d, %v for [%d, %d)", off, s, end, through, err, e.Pos, e.End())
				}
			}
		}
	})
}

func FuzzParseTrailer(f *testing.F) {
	for _, obj := range seedObjects(f) {
		for _, v := range variants(obj[len(obj)-TrailerSize:]) {
			f.Add(v)
		}
		f.Add(obj[max(0, len(obj)-64):])
		f.Add(obj)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, crc, err := ParseTrailer(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if n < FooterHeaderSize || n > MaxFooterLen {
			t.Fatalf("footer length %d accepted", n)
		}
		tail := b[len(b)-TrailerSize:]
		if binary.BigEndian.Uint32(tail) != uint32(n) || binary.BigEndian.Uint32(tail[4:]) != crc || string(tail[8:]) != Magic {
			t.Fatalf("trailer %x decoded as %d, %#x", tail, n, crc)
		}
	})
}

// FuzzParse runs the whole in-memory read path on arbitrary objects. The
// footer CRC is recomputed so mutations get past it into the parser; Cut
// runs on every partition's bytes whether or not their CRC matches.
func FuzzParse(f *testing.F) {
	for _, obj := range seedObjects(f) {
		if len(obj) > 16<<10 {
			continue // the sparse-index seed makes every run slow
		}
		for _, v := range variants(obj) {
			f.Add(v)
		}
	}
	f.Fuzz(func(t *testing.T, obj []byte) {
		obj = bytes.Clone(obj) // the fuzzer owns the input
		if n, _, err := ParseTrailer(obj); err == nil && n <= len(obj)-TrailerSize {
			footer := obj[len(obj)-TrailerSize-n : len(obj)-TrailerSize]
			binary.BigEndian.PutUint32(obj[len(obj)-12:], crc32.Checksum(footer, castagnoli))
		}
		ft, err := Parse(obj)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrUnsupportedVersion) {
				t.Fatalf("error %v wraps neither ErrCorrupt nor ErrUnsupportedVersion", err)
			}
			return
		}
		for _, e := range ft.Entries {
			data := obj[e.Pos:e.End()] // in bounds: Parse checked DataLen
			_ = e.Verify(e.Pos, data)
			for _, off := range []int64{e.FirstOffset, e.LastOffset} {
				s, end, _, err := e.Chunk(off, 1)
				if err != nil {
					t.Fatal(err)
				}
				_ = e.Verify(s, obj[s:end])
				_, _ = Cut(obj[s:end], off, 1)
			}
		}
	})
}
