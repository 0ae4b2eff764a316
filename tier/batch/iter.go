package batch

import "fmt"

// IterOptions tunes an Iterator.
type IterOptions struct {
	// VerifyCRC checks every batch's CRC. Use it when recovering a WAL or
	// segment; skip it when re-serving bytes that were checked on append.
	VerifyCRC bool
	// AllowPartialTail ends iteration without error at a trailing batch that
	// is cut short (fewer bytes than its length field claims), as in a fetch
	// response truncated at max bytes. A too-small length or wrong magic is
	// still ErrCorrupt: that is garbage, not a cut.
	AllowPartialTail bool
}

// Iterator walks a concatenation of batches in place. Batches are
// sub-slices of the buffer; nothing is copied or allocated per batch.
//
//	it := batch.NewIterator(buf, batch.IterOptions{VerifyCRC: true})
//	for it.Next() {
//		use(it.Header(), it.Batch())
//	}
//	if err := it.Err(); err != nil {
//		truncate(it.Pos()) // end of the last good batch
//	}
type Iterator struct {
	buf  []byte
	opts IterOptions
	pos  int
	h    Header
	cur  []byte
	err  error
	done bool
}

// NewIterator returns an iterator over buf.
func NewIterator(buf []byte, opts IterOptions) *Iterator {
	return &Iterator{buf: buf, opts: opts}
}

// Next advances to the next batch, returning false at the end of the buffer
// or on error (see Err).
func (it *Iterator) Next() bool {
	if it.done {
		return false
	}
	it.h, it.cur = Header{}, nil
	rest := it.buf[it.pos:]
	if len(rest) == 0 {
		it.done = true
		return false
	}
	if len(rest) < lengthOverhead {
		return it.partial(fmt.Errorf("batch at byte %d: %d trailing bytes, too short for a length field: %w", it.pos, len(rest), ErrCorrupt))
	}
	size := batchSize(rest)
	if size < HeaderSize {
		return it.fail(fmt.Errorf("batch at byte %d: length %d below minimum %d: %w", it.pos, size-lengthOverhead, HeaderSize-lengthOverhead, ErrCorrupt))
	}
	if len(rest) > offMagic && int8(rest[offMagic]) != Magic {
		return it.fail(fmt.Errorf("batch at byte %d: magic %d, want %d: %w", it.pos, int8(rest[offMagic]), Magic, ErrCorrupt))
	}
	if size > int64(len(rest)) {
		return it.partial(fmt.Errorf("batch at byte %d: length says %d bytes, have %d: %w", it.pos, size, len(rest), ErrCorrupt))
	}
	b := rest[:size:size]
	if it.opts.VerifyCRC {
		if err := checkCRC(b); err != nil {
			return it.fail(fmt.Errorf("batch at byte %d: %w", it.pos, err))
		}
	}
	h, err := ParseHeader(b)
	if err != nil { // unreachable: size >= HeaderSize
		return it.fail(fmt.Errorf("batch at byte %d: %w", it.pos, err))
	}
	it.h, it.cur = h, b
	it.pos += int(size)
	return true
}

func (it *Iterator) fail(err error) bool {
	it.err, it.done = err, true
	return false
}

func (it *Iterator) partial(err error) bool {
	if it.opts.AllowPartialTail {
		it.done = true
		return false
	}
	return it.fail(err)
}

// Header is the current batch's header.
func (it *Iterator) Header() Header { return it.h }

// Batch is the current batch's bytes, a sub-slice of the buffer capped so
// appends cannot clobber the next batch.
func (it *Iterator) Batch() []byte { return it.cur }

// Err is the error that stopped iteration, nil at a clean end.
func (it *Iterator) Err() error { return it.err }

// Pos is the byte offset just past the last batch returned: after an error
// or a tolerated partial tail, the length of the valid prefix of the buffer.
func (it *Iterator) Pos() int { return it.pos }

// Iterate calls fn for each batch in buf until fn returns false. It checks
// framing and magic but not CRCs (use NewIterator with VerifyCRC for
// recovery), and reports a trailing partial batch as ErrCorrupt.
func Iterate(buf []byte, fn func(h Header, batch []byte) bool) error {
	it := Iterator{buf: buf}
	for it.Next() {
		if !fn(it.h, it.cur) {
			return nil
		}
	}
	return it.err
}
