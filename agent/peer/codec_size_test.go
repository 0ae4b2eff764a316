package peer

import (
	"bytes"
	"encoding/binary"
	"slices"
	"testing"
)

// An Append's frame head is allocated at its size, and its batches are
// the frame's tail, not copied: they go to the socket from where they are.
func TestAppendFrameSizedExactly(t *testing.T) {
	data := make([]byte, 1<<20)
	data[0], data[len(data)-1] = 1, 2
	m := &Append{Topic: [16]byte{1}, Partition: 3, Epoch: 4, Truncate: -1, Reset: -1, HW: 9, Data: data}
	f := frame(1, 7, m)
	if len(f.head) != cap(f.head) {
		t.Fatalf("frame head of %d bytes in a buffer of %d: the size hint is off", len(f.head), cap(f.head))
	}
	if len(f.tail) != len(data) || &f.tail[0] != &data[0] {
		t.Fatalf("the batches were copied into the frame")
	}
	if n := binary.BigEndian.Uint32(f.head); int(n) != f.size()-4 {
		t.Fatalf("frame length %d, frame holds %d after it", n, f.size()-4)
	}
	var got Append
	b := append(slices.Clone(f.head), f.tail...)
	if err := got.Decode(&Dec{B: b[9:]}); err != nil || got.HW != 9 || !bytes.Equal(got.Data, data) {
		t.Fatalf("decode: %v, %+v", err, got.HW)
	}
}
