package batch

import (
	"encoding/binary"
	"errors"
	"testing"
)

// stored returns three stamped batches back to back, as in a segment, and
// their sizes.
func stored(t *testing.T) ([]byte, []int) {
	var buf []byte
	var sizes []int
	off := int64(0)
	for _, s := range []spec{
		{pid: -1, seq: -1, recs: mkRecords(3)},
		{pid: 4, seq: 0, codec: CompressionZstd, recs: mkRecords(5)},
		{pid: -1, seq: -1, recs: mkRecords(1)},
	} {
		b := build(t, s)
		SetBaseOffset(b, off)
		SetPartitionLeaderEpoch(b, 2)
		off += int64(len(s.recs))
		buf = append(buf, b...)
		sizes = append(sizes, len(b))
	}
	return buf, sizes
}

func TestIterate(t *testing.T) {
	buf, sizes := stored(t)
	var got []int
	next := int64(0)
	err := Iterate(buf, func(h Header, b []byte) bool {
		if h.Size() != len(b) || h.BaseOffset != next || h.PartitionLeaderEpoch != 2 {
			t.Errorf("batch %d: %+v len %d", len(got), h, len(b))
		}
		if cap(b) != len(b) {
			t.Errorf("batch %d: cap %d exposes the next batch", len(got), cap(b))
		}
		next = h.LastOffset() + 1
		got = append(got, len(b))
		return true
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0] != sizes[0] || got[1] != sizes[1] || got[2] != sizes[2] || next != 9 {
		t.Fatalf("sizes %v, want %v; next %d", got, sizes, next)
	}
}

func TestIterateStop(t *testing.T) {
	buf, _ := stored(t)
	n := 0
	if err := Iterate(buf, func(Header, []byte) bool { n++; return false }); err != nil || n != 1 {
		t.Fatalf("n %d err %v", n, err)
	}
}

func TestIterateEmpty(t *testing.T) {
	for _, buf := range [][]byte{nil, {}} {
		if err := Iterate(buf, func(Header, []byte) bool { t.Fatal("called"); return true }); err != nil {
			t.Fatal(err)
		}
		it := NewIterator(buf, IterOptions{VerifyCRC: true})
		if it.Next() || it.Err() != nil || it.Pos() != 0 {
			t.Fatal("empty buffer")
		}
	}
}

func TestIterateErrors(t *testing.T) {
	buf, sizes := stored(t)
	second := sizes[0]
	third := sizes[0] + sizes[1]
	edit := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), buf...)) }
	tests := []struct {
		name    string
		b       []byte
		opts    IterOptions
		n       int // batches delivered before stopping
		err     bool
		partial bool // error only without AllowPartialTail
	}{
		{name: "truncated tail", b: buf[:len(buf)-1], n: 2, err: true, partial: true},
		{name: "tail of 11 bytes", b: append(append([]byte(nil), buf...), make([]byte, 11)...), n: 3, err: true, partial: true},
		{name: "tail header only", b: buf[:third+HeaderSize], n: 2, err: true, partial: true},
		{name: "tail before magic", b: buf[:third+16], n: 2, err: true, partial: true},
		{name: "length past end", b: edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[second+8:], 1<<30)
			return b
		}), n: 1, err: true, partial: true},
		{name: "length below header", b: edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[second+8:], 10)
			return b
		}), n: 1, err: true},
		{name: "length negative", b: edit(func(b []byte) []byte {
			binary.BigEndian.PutUint32(b[second+8:], 0xffffffff)
			return b
		}), n: 1, err: true},
		{name: "bad magic", b: edit(func(b []byte) []byte { b[third+16] = 1; return b }), n: 2, err: true},
		{name: "bad magic in partial tail", b: edit(func(b []byte) []byte { b[third+16] = 7; return b[:len(b)-1] }), n: 2, err: true},
		{name: "bad crc unchecked", b: edit(func(b []byte) []byte { b[second+40] ^= 1; return b }), n: 3},
		{name: "bad crc checked", b: edit(func(b []byte) []byte { b[second+40] ^= 1; return b }), opts: IterOptions{VerifyCRC: true}, n: 1, err: true},
	}
	for _, tt := range tests {
		for _, allow := range []bool{false, true} {
			opts := tt.opts
			opts.AllowPartialTail = allow
			wantErr := tt.err && !(allow && tt.partial)
			it := NewIterator(tt.b, opts)
			n, end := 0, 0
			for it.Next() {
				n++
				end += len(it.Batch())
			}
			if n != tt.n || (it.Err() != nil) != wantErr || it.Pos() != end {
				t.Errorf("%s (partial ok %v): %d batches, pos %d/%d, err %v", tt.name, allow, n, it.Pos(), end, it.Err())
			}
			if wantErr && !errors.Is(it.Err(), ErrCorrupt) {
				t.Errorf("%s: err %v not ErrCorrupt", tt.name, it.Err())
			}
			if it.Next() {
				t.Errorf("%s: Next after end", tt.name)
			}
			if !allow && tt.opts == (IterOptions{}) {
				m := 0
				err := Iterate(tt.b, func(Header, []byte) bool { m++; return true })
				if m != n || (err != nil) != wantErr {
					t.Errorf("%s: Iterate %d batches err %v", tt.name, m, err)
				}
			}
		}
	}
}

// Pos after an error is where a WAL should be cut to keep only whole,
// verified batches.
func TestIteratorRecoveryPos(t *testing.T) {
	buf, sizes := stored(t)
	torn := buf[:len(buf)-7]
	it := NewIterator(torn, IterOptions{VerifyCRC: true})
	for it.Next() {
	}
	if !errors.Is(it.Err(), ErrCorrupt) || it.Pos() != sizes[0]+sizes[1] {
		t.Fatalf("pos %d err %v", it.Pos(), it.Err())
	}
	if err := Iterate(torn[:it.Pos()], func(Header, []byte) bool { return true }); err != nil {
		t.Fatal(err)
	}
}
