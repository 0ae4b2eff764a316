package peer

import "testing"

// An Append's frame is allocated at its size: encoding fills it without
// growing, so the batches are copied once.
func TestAppendFrameSizedExactly(t *testing.T) {
	m := &Append{Topic: [16]byte{1}, Partition: 3, Epoch: 4, Truncate: -1, Reset: -1, HW: 9, Data: make([]byte, 1<<20)}
	b := frame(1, 7, m)
	if len(b) != cap(b) {
		t.Fatalf("frame of %d bytes in a buffer of %d: the size hint is off", len(b), cap(b))
	}
	var got Append
	if err := got.Decode(&Dec{B: b[9:]}); err != nil || got.HW != 9 || len(got.Data) != 1<<20 {
		t.Fatalf("decode: %v, %+v", err, got.HW)
	}
}
