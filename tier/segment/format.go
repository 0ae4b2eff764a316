package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"time"

	"github.com/tlog-io/tlog/tier/batch"
)

// Format constants; see the package doc for the layout they describe.
const (
	// Version is the footer version this package writes and reads.
	Version = 1
	// Magic ends every segment object.
	Magic = "TLOGSEG1"
	// TrailerSize is the fixed trailer at the end of the object.
	TrailerSize = 16
	// FooterHeaderSize is the footer's fixed part before the entries; it is
	// also the smallest footer (no entries).
	FooterHeaderSize = 26
	// MaxFooterLen bounds the footer so a corrupt length cannot make a
	// reader fetch or allocate gigabytes; the writer refuses to exceed it.
	MaxFooterLen = 64 << 20
	// BlockSize is the target spacing of the sparse index.
	BlockSize = 64 << 10
	// TailReadSize is how much of the object's end Open fetches first.
	TailReadSize = 64 << 10

	entryFixedSize = 96 // entry without index entries and snapshot bytes
	indexEntrySize = 20
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Errors, returned wrapped with context; match with errors.Is.
var (
	// ErrCorrupt: the object's bytes do not decode, fail a checksum, or are
	// inconsistent with the footer (truncated object, wrong size).
	ErrCorrupt = errors.New("corrupt segment")
	// ErrUnsupportedVersion: a footer version this reader does not know.
	ErrUnsupportedVersion = errors.New("unsupported segment version")
	// ErrOffsetOutOfRange: the offset is not in the entry's partition range.
	ErrOffsetOutOfRange = errors.New("offset out of segment range")
	// ErrInvalid: Writer.Add got arguments or batches it cannot store.
	ErrInvalid = errors.New("invalid segment input")
	// ErrNotContiguous: Writer.Add got offsets with a gap or overlap.
	ErrNotContiguous = errors.New("offsets not contiguous")
	// ErrTooLarge: the footer would exceed MaxFooterLen; seal the segment
	// and start another.
	ErrTooLarge = errors.New("segment footer too large")
)

// Footer is a segment's decoded index. It is immutable once parsed and safe
// for concurrent use.
type Footer struct {
	Version   uint16
	CreatedAt time.Time // millisecond precision
	AgentID   int32
	DataLen   int64   // data section length; the footer starts here
	Entries   []Entry // sorted by (TopicID, Partition)
}

// Entry describes one partition's data in a segment.
type Entry struct {
	TopicID      [16]byte
	Partition    int32
	LeaderEpoch  int32
	Pos          int64  // byte position of the data in the object
	Len          int64  // data length in bytes
	CRC          uint32 // CRC-32C of the data
	FirstOffset  int64
	LastOffset   int64
	MinTimestamp int64
	MaxTimestamp int64
	Records      int64
	Batches      int
	// Index is the sparse block index, empty when the data is one block.
	Index []IndexEntry
	// ProducerSnapshot is opaque producer state as of LastOffset. After
	// ParseFooter it aliases the footer buffer.
	ProducerSnapshot []byte
}

// IndexEntry locates one block of an entry's data.
type IndexEntry struct {
	Offset int64  // base offset of the block's first batch
	Pos    int64  // block start relative to Entry.Pos
	CRC    uint32 // CRC-32C of the block
}

// End is the byte position just past the entry's data.
func (e Entry) End() int64 { return e.Pos + e.Len }

// block returns block i's bounds relative to e.Pos.
func (e Entry) block(i int) (start, end int64) {
	start, end = e.Index[i].Pos, e.Len
	if i+1 < len(e.Index) {
		end = e.Index[i+1].Pos
	}
	return start, end
}

// Find returns the entry for a partition.
func (f *Footer) Find(topicID [16]byte, partition int32) (Entry, bool) {
	i, ok := slices.BinarySearchFunc(f.Entries, key{topicID, partition}, func(e Entry, k key) int {
		return compareKey(key{e.TopicID, e.Partition}, k)
	})
	if !ok {
		return Entry{}, false
	}
	return f.Entries[i], true
}

type key struct {
	topic     [16]byte
	partition int32
}

func compareKey(a, b key) int {
	if c := bytes.Compare(a.topic[:], b.topic[:]); c != 0 {
		return c
	}
	switch {
	case a.partition < b.partition:
		return -1
	case a.partition > b.partition:
		return 1
	}
	return 0
}

// appendFooter encodes f (which must satisfy ParseFooter's rules).
func appendFooter(dst []byte, f *Footer) []byte {
	be := binary.BigEndian
	dst = be.AppendUint16(dst, f.Version)
	dst = be.AppendUint64(dst, uint64(f.CreatedAt.UnixMilli()))
	dst = be.AppendUint32(dst, uint32(f.AgentID))
	dst = be.AppendUint64(dst, uint64(f.DataLen))
	dst = be.AppendUint32(dst, uint32(len(f.Entries)))
	for i := range f.Entries {
		e := &f.Entries[i]
		dst = append(dst, e.TopicID[:]...)
		dst = be.AppendUint32(dst, uint32(e.Partition))
		dst = be.AppendUint32(dst, uint32(e.LeaderEpoch))
		dst = be.AppendUint64(dst, uint64(e.Pos))
		dst = be.AppendUint64(dst, uint64(e.Len))
		dst = be.AppendUint32(dst, e.CRC)
		dst = be.AppendUint64(dst, uint64(e.FirstOffset))
		dst = be.AppendUint64(dst, uint64(e.LastOffset))
		dst = be.AppendUint64(dst, uint64(e.MinTimestamp))
		dst = be.AppendUint64(dst, uint64(e.MaxTimestamp))
		dst = be.AppendUint64(dst, uint64(e.Records))
		dst = be.AppendUint32(dst, uint32(e.Batches))
		dst = be.AppendUint32(dst, uint32(len(e.Index)))
		for _, ix := range e.Index {
			dst = be.AppendUint64(dst, uint64(ix.Offset))
			dst = be.AppendUint64(dst, uint64(ix.Pos))
			dst = be.AppendUint32(dst, ix.CRC)
		}
		dst = be.AppendUint32(dst, uint32(len(e.ProducerSnapshot)))
		dst = append(dst, e.ProducerSnapshot...)
	}
	return dst
}

func appendTrailer(dst []byte, footer []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(footer)))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(footer, castagnoli))
	return append(dst, Magic...)
}

// ParseTrailer decodes the trailer in the last TrailerSize bytes of tail
// (any suffix of the object at least that long). It checks the magic and
// that footerLen is within [FooterHeaderSize, MaxFooterLen]; the caller
// checks it against the object size.
func ParseTrailer(tail []byte) (footerLen int, footerCRC uint32, err error) {
	if len(tail) < TrailerSize {
		return 0, 0, fmt.Errorf("segment: trailer needs %d bytes, have %d: %w", TrailerSize, len(tail), ErrCorrupt)
	}
	t := tail[len(tail)-TrailerSize:]
	if string(t[8:]) != Magic {
		return 0, 0, fmt.Errorf("segment: magic %q, want %q: %w", t[8:], Magic, ErrCorrupt)
	}
	n := binary.BigEndian.Uint32(t)
	if n < FooterHeaderSize || n > MaxFooterLen {
		return 0, 0, fmt.Errorf("segment: footer length %d outside [%d, %d]: %w", n, FooterHeaderSize, MaxFooterLen, ErrCorrupt)
	}
	return int(n), binary.BigEndian.Uint32(t[4:]), nil
}

// CheckFooter verifies footer against the CRC from the trailer.
func CheckFooter(footer []byte, footerCRC uint32) error {
	if got := crc32.Checksum(footer, castagnoli); got != footerCRC {
		return fmt.Errorf("segment: footer crc %#08x, trailer says %#08x: %w", got, footerCRC, ErrCorrupt)
	}
	return nil
}

// decoder reads big-endian fields; the first short read sticks as ok=false
// and later reads return zero, so callers check once per group of fields.
type decoder struct {
	b  []byte
	ok bool
}

func (d *decoder) take(n int) []byte {
	if !d.ok || n > len(d.b) {
		d.ok = false
		return nil
	}
	s := d.b[:n:n]
	d.b = d.b[n:]
	return s
}

func (d *decoder) u16() uint16 {
	if s := d.take(2); s != nil {
		return binary.BigEndian.Uint16(s)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if s := d.take(4); s != nil {
		return binary.BigEndian.Uint32(s)
	}
	return 0
}

func (d *decoder) u64() uint64 {
	if s := d.take(8); s != nil {
		return binary.BigEndian.Uint64(s)
	}
	return 0
}

// ParseFooter decodes and validates a footer (without its CRC; see
// CheckFooter). It never panics and allocates at most in proportion to
// len(footer). Errors wrap ErrCorrupt or ErrUnsupportedVersion.
func ParseFooter(footer []byte) (*Footer, error) {
	if len(footer) > MaxFooterLen {
		return nil, fmt.Errorf("segment: footer of %d bytes exceeds %d: %w", len(footer), MaxFooterLen, ErrCorrupt)
	}
	d := decoder{b: footer, ok: true}
	v := d.u16()
	if !d.ok {
		return nil, fmt.Errorf("segment: footer of %d bytes has no version: %w", len(footer), ErrCorrupt)
	}
	if v != Version {
		return nil, fmt.Errorf("segment: footer version %d, this reader knows %d: %w", v, Version, ErrUnsupportedVersion)
	}
	f := &Footer{Version: v}
	f.CreatedAt = time.UnixMilli(int64(d.u64()))
	f.AgentID = int32(d.u32())
	dataLen := d.u64()
	count := d.u32()
	if !d.ok {
		return nil, fmt.Errorf("segment: footer of %d bytes, header needs %d: %w", len(footer), FooterHeaderSize, ErrCorrupt)
	}
	if dataLen > math.MaxInt64 {
		return nil, fmt.Errorf("segment: data length %d: %w", dataLen, ErrCorrupt)
	}
	f.DataLen = int64(dataLen)
	if uint64(count) > uint64(len(d.b)/entryFixedSize) {
		return nil, fmt.Errorf("segment: %d entries cannot fit in %d bytes: %w", count, len(d.b), ErrCorrupt)
	}
	f.Entries = make([]Entry, count)
	var prevEnd int64
	for i := range f.Entries {
		e := &f.Entries[i]
		if err := parseEntry(&d, e); err != nil {
			return nil, fmt.Errorf("segment: entry %d: %w", i, err)
		}
		if i > 0 && compareKey(key{f.Entries[i-1].TopicID, f.Entries[i-1].Partition}, key{e.TopicID, e.Partition}) >= 0 {
			return nil, fmt.Errorf("segment: entry %d (%x/%d) out of order: %w", i, e.TopicID, e.Partition, ErrCorrupt)
		}
		if e.Pos < prevEnd || e.Len > f.DataLen || e.Pos > f.DataLen-e.Len {
			return nil, fmt.Errorf("segment: entry %d data [%d, +%d) overlaps the previous (ends %d) or passes data end %d: %w",
				i, e.Pos, e.Len, prevEnd, f.DataLen, ErrCorrupt)
		}
		prevEnd = e.End()
	}
	if len(d.b) != 0 {
		return nil, fmt.Errorf("segment: %d bytes after the last entry: %w", len(d.b), ErrCorrupt)
	}
	return f, nil
}

// parseEntry decodes one entry and checks it on its own. d.ok is true on
// entry.
func parseEntry(d *decoder, e *Entry) error {
	copy(e.TopicID[:], d.take(16))
	e.Partition = int32(d.u32())
	e.LeaderEpoch = int32(d.u32())
	pos, n := d.u64(), d.u64()
	e.CRC = d.u32()
	e.FirstOffset = int64(d.u64())
	e.LastOffset = int64(d.u64())
	e.MinTimestamp = int64(d.u64())
	e.MaxTimestamp = int64(d.u64())
	e.Records = int64(d.u64())
	batches := d.u32()
	idx := d.u32()
	if !d.ok {
		return fmt.Errorf("truncated in fixed fields: %w", ErrCorrupt)
	}
	if pos > math.MaxInt64 || n > math.MaxInt64 {
		return fmt.Errorf("data range [%d, +%d): %w", pos, n, ErrCorrupt)
	}
	e.Pos, e.Len = int64(pos), int64(n)
	switch {
	case e.TopicID == [16]byte{}:
		return fmt.Errorf("zero topic id: %w", ErrCorrupt)
	case e.Partition < 0:
		return fmt.Errorf("partition %d: %w", e.Partition, ErrCorrupt)
	case e.FirstOffset < 0 || e.LastOffset < e.FirstOffset:
		return fmt.Errorf("offsets [%d, %d]: %w", e.FirstOffset, e.LastOffset, ErrCorrupt)
	}
	// 0 <= first <= last, so this cannot overflow.
	span := e.LastOffset - e.FirstOffset // offsets in range, minus one
	switch {
	case e.MinTimestamp > e.MaxTimestamp:
		return fmt.Errorf("timestamps [%d, %d]: %w", e.MinTimestamp, e.MaxTimestamp, ErrCorrupt)
	case e.Records < 0 || e.Records-1 > span:
		return fmt.Errorf("%d records for offsets [%d, %d]: %w", e.Records, e.FirstOffset, e.LastOffset, ErrCorrupt)
	case batches == 0 || int64(batches)-1 > span || int64(batches) > e.Len/batch.HeaderSize:
		return fmt.Errorf("%d batches for offsets [%d, %d] in %d bytes: %w", batches, e.FirstOffset, e.LastOffset, e.Len, ErrCorrupt)
	case idx == 1 || idx > batches:
		return fmt.Errorf("%d index entries for %d batches: %w", idx, batches, ErrCorrupt)
	case uint64(idx) > uint64(len(d.b)/indexEntrySize):
		return fmt.Errorf("%d index entries cannot fit in %d bytes: %w", idx, len(d.b), ErrCorrupt)
	}
	e.Batches = int(batches)
	if idx > 0 {
		e.Index = make([]IndexEntry, idx)
		for i := range e.Index {
			ix := &e.Index[i]
			ix.Offset = int64(d.u64())
			p := d.u64()
			ix.CRC = d.u32()
			if p > math.MaxInt64 {
				return fmt.Errorf("index %d: position %d: %w", i, p, ErrCorrupt)
			}
			ix.Pos = int64(p)
			if i == 0 {
				if ix.Pos != 0 || ix.Offset != e.FirstOffset {
					return fmt.Errorf("index 0 at (offset %d, pos %d), want (%d, 0): %w", ix.Offset, ix.Pos, e.FirstOffset, ErrCorrupt)
				}
				continue
			}
			prev := e.Index[i-1]
			if ix.Offset <= prev.Offset || ix.Offset > e.LastOffset || ix.Pos <= prev.Pos || ix.Pos >= e.Len {
				return fmt.Errorf("index %d (offset %d, pos %d) not after (%d, %d) within offsets <= %d, bytes < %d: %w",
					i, ix.Offset, ix.Pos, prev.Offset, prev.Pos, e.LastOffset, e.Len, ErrCorrupt)
			}
		}
	}
	sn := d.u32()
	if !d.ok {
		return fmt.Errorf("truncated before the snapshot: %w", ErrCorrupt)
	}
	if uint64(sn) > uint64(len(d.b)) {
		return fmt.Errorf("producer snapshot of %d bytes, %d left: %w", sn, len(d.b), ErrCorrupt)
	}
	if sn > 0 {
		e.ProducerSnapshot = d.take(int(sn))
	}
	return nil
}
