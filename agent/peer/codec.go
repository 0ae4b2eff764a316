package peer

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed: a message does not decode (truncated, or a length field
// larger than what follows).
var ErrMalformed = errors.New("malformed peer message")

// Enc appends big-endian fields to a buffer. Tail, set by TailBytes, is
// the message's last field, sent after B as it is rather than copied in.
type Enc struct {
	B    []byte
	Tail []byte
}

func (e *Enc) Int8(v int8)     { e.B = append(e.B, byte(v)) }
func (e *Enc) Bool(v bool)     { e.B = append(e.B, b2u(v)) }
func (e *Enc) Int16(v int16)   { e.B = binary.BigEndian.AppendUint16(e.B, uint16(v)) }
func (e *Enc) Int32(v int32)   { e.B = binary.BigEndian.AppendUint32(e.B, uint32(v)) }
func (e *Enc) Int64(v int64)   { e.B = binary.BigEndian.AppendUint64(e.B, uint64(v)) }
func (e *Enc) Uint64(v uint64) { e.B = binary.BigEndian.AppendUint64(e.B, v) }
func (e *Enc) ID(v [16]byte)   { e.B = append(e.B, v[:]...) }

// Bytes writes a u32 length and the bytes.
func (e *Enc) Bytes(v []byte) {
	e.B = binary.BigEndian.AppendUint32(e.B, uint32(len(v)))
	e.B = append(e.B, v...)
}

// TailBytes writes what Bytes writes, as the message's last field: the
// length goes into B and v becomes Tail, so a large value (an append's
// batches) reaches the socket without a copy. Decoding is Bytes.
func (e *Enc) TailBytes(v []byte) {
	e.B = binary.BigEndian.AppendUint32(e.B, uint32(len(v)))
	e.Tail = v
}

func (e *Enc) String(v string) {
	e.B = binary.BigEndian.AppendUint32(e.B, uint32(len(v)))
	e.B = append(e.B, v...)
}

func b2u(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// Dec reads what Enc wrote. The first short read sets Err; later reads
// return zero values, so callers check Err once at the end.
type Dec struct {
	B   []byte
	Err error
}

func (d *Dec) take(n int) []byte {
	if d.Err != nil {
		return nil
	}
	if n < 0 || n > len(d.B) {
		d.Err = fmt.Errorf("%w: want %d bytes, %d left", ErrMalformed, n, len(d.B))
		return nil
	}
	b := d.B[:n:n]
	d.B = d.B[n:]
	return b
}

func (d *Dec) Int8() int8 {
	if b := d.take(1); b != nil {
		return int8(b[0])
	}
	return 0
}

func (d *Dec) Bool() bool { return d.Int8() != 0 }

func (d *Dec) Int16() int16 {
	if b := d.take(2); b != nil {
		return int16(binary.BigEndian.Uint16(b))
	}
	return 0
}

func (d *Dec) Int32() int32 {
	if b := d.take(4); b != nil {
		return int32(binary.BigEndian.Uint32(b))
	}
	return 0
}

func (d *Dec) Int64() int64 { return int64(d.Uint64()) }

func (d *Dec) Uint64() uint64 {
	if b := d.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (d *Dec) ID() (id [16]byte) {
	if b := d.take(16); b != nil {
		copy(id[:], b)
	}
	return id
}

// Bytes returns a slice of the message (not a copy): the length is
// checked against what is left before anything is taken.
func (d *Dec) Bytes() []byte {
	n := d.Int32()
	if d.Err != nil {
		return nil
	}
	if n < 0 {
		d.Err = fmt.Errorf("%w: negative length %d", ErrMalformed, n)
		return nil
	}
	return d.take(int(n))
}

func (d *Dec) String() string { return string(d.Bytes()) }

// Done reports Err, or an error if bytes are left over.
func (d *Dec) Done() error {
	if d.Err == nil && len(d.B) != 0 {
		d.Err = fmt.Errorf("%w: %d trailing bytes", ErrMalformed, len(d.B))
	}
	return d.Err
}
