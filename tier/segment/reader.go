package segment

import (
	"context"
	"fmt"
	"hash/crc32"
	"slices"
	"sort"

	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/batch"
)

// footerOf verifies and parses footer, then checks it against the size of
// the object it came from.
func footerOf(footer []byte, footerCRC uint32, size int64) (*Footer, error) {
	if err := CheckFooter(footer, footerCRC); err != nil {
		return nil, err
	}
	f, err := ParseFooter(footer)
	if err != nil {
		return nil, err
	}
	// DataLen <= MaxInt64 and footer <= MaxFooterLen: compare without
	// adding to DataLen.
	if f.DataLen != size-int64(len(footer))-TrailerSize {
		return nil, fmt.Errorf("segment: footer says %d data bytes, object of %d bytes has %d: %w",
			f.DataLen, size, size-int64(len(footer))-TrailerSize, ErrCorrupt)
	}
	return f, nil
}

// Open reads the footer of the object at key, whose size the caller knows
// (from the manifest or a Stat). It issues one ranged GET of the last
// min(size, TailReadSize) bytes, and a second for the rest of the footer
// only when the footer does not fit in that.
func Open(ctx context.Context, b tier.Bucket, key string, size int64) (*Footer, error) {
	if size < FooterHeaderSize+TrailerSize {
		return nil, fmt.Errorf("segment: open %q: size %d below minimum %d: %w", key, size, FooterHeaderSize+TrailerSize, ErrCorrupt)
	}
	n := min(size, TailReadSize)
	tail, err := b.GetRange(ctx, key, size-n, n)
	if err != nil {
		return nil, fmt.Errorf("segment: open %q: read tail: %w", key, err)
	}
	if int64(len(tail)) != n {
		return nil, fmt.Errorf("segment: open %q: tail read %d bytes, want %d (object shorter than %d): %w", key, len(tail), n, size, ErrCorrupt)
	}
	footerLen, footerCRC, err := ParseTrailer(tail)
	if err != nil {
		return nil, fmt.Errorf("segment: open %q: %w", key, err)
	}
	if int64(footerLen) > size-TrailerSize {
		return nil, fmt.Errorf("segment: open %q: footer length %d exceeds object of %d bytes: %w", key, footerLen, size, ErrCorrupt)
	}
	var footer []byte
	if have := len(tail) - TrailerSize; footerLen <= have {
		// Clone so the Footer does not pin the whole tail read.
		footer = slices.Clone(tail[have-footerLen : have])
	} else {
		missing := footerLen - have
		head, err := b.GetRange(ctx, key, size-TrailerSize-int64(footerLen), int64(missing))
		if err != nil {
			return nil, fmt.Errorf("segment: open %q: read footer head: %w", key, err)
		}
		if len(head) != missing {
			return nil, fmt.Errorf("segment: open %q: footer head read %d bytes, want %d: %w", key, len(head), missing, ErrCorrupt)
		}
		footer = append(head, tail[:have]...)
	}
	f, err := footerOf(footer, footerCRC, size)
	if err != nil {
		return nil, fmt.Errorf("segment: open %q: %w", key, err)
	}
	return f, nil
}

// Chunk returns the object byte range [start, end) of the chunk of blocks
// holding offset: chunks are runs of the given number of blocks from the
// partition's first, so readers asking for nearby offsets ask for the same
// ranges (a cache keys on them), and Verify can check them. through is the
// last offset the chunk holds. Without a sparse index the chunk is the
// whole partition.
func (e Entry) Chunk(offset int64, blocks int) (start, end, through int64, err error) {
	if offset < e.FirstOffset || offset > e.LastOffset {
		return 0, 0, 0, fmt.Errorf("offset %d outside [%d, %d]: %w", offset, e.FirstOffset, e.LastOffset, ErrOffsetOutOfRange)
	}
	if len(e.Index) == 0 || blocks <= 0 {
		return e.Pos, e.End(), e.LastOffset, nil
	}
	// Index[0].Offset == FirstOffset <= offset, so k >= 0.
	k := sort.Search(len(e.Index), func(i int) bool { return e.Index[i].Offset > offset }) - 1
	k -= k % blocks
	last := min(k+blocks, len(e.Index)) - 1
	s, _ := e.block(k)
	_, t := e.block(last)
	through = e.LastOffset
	if last+1 < len(e.Index) {
		through = e.Index[last+1].Offset - 1
	}
	return e.Pos + s, e.Pos + t, through, nil
}

// Verify checks buf, the object bytes at start, against e's checksums:
// the partition CRC when buf is the whole partition, otherwise the CRC of
// each block buf covers, which must be whole blocks (as Span returns).
func (e Entry) Verify(start int64, buf []byte) error {
	if start < e.Pos || start > e.End() {
		return fmt.Errorf("range at byte %d outside partition [%d, %d): %w", start, e.Pos, e.End(), ErrInvalid)
	}
	rel, n := start-e.Pos, int64(len(buf))
	if rel == 0 && n == e.Len {
		if got := crc32.Checksum(buf, castagnoli); got != e.CRC {
			return fmt.Errorf("data crc %#08x, footer says %#08x: %w", got, e.CRC, ErrCorrupt)
		}
		return nil
	}
	k, ok := slices.BinarySearchFunc(e.Index, rel, func(ix IndexEntry, p int64) int {
		switch {
		case ix.Pos < p:
			return -1
		case ix.Pos > p:
			return 1
		}
		return 0
	})
	if !ok {
		return fmt.Errorf("range at partition byte %d is not a block start: %w", rel, ErrInvalid)
	}
	for ; k < len(e.Index); k++ {
		s, t := e.block(k)
		if t-rel > n {
			break
		}
		if got := crc32.Checksum(buf[s-rel:t-rel], castagnoli); got != e.Index[k].CRC {
			return fmt.Errorf("block %d crc %#08x, footer says %#08x: %w", k, got, e.Index[k].CRC, ErrCorrupt)
		}
		if t-rel == n {
			return nil
		}
	}
	return fmt.Errorf("range [%d, +%d) of partition does not end at a block end: %w", rel, n, ErrInvalid)
}

// Cut returns the batches of buf (whole batches, as Span reads) from the one
// containing offset: whole batches totalling at most maxBytes, except that
// the first is always included. It aliases buf. Offset beyond buf's last
// batch is ErrOffsetOutOfRange; bad framing is ErrCorrupt.
func Cut(buf []byte, offset int64, maxBytes int) ([]byte, error) {
	pos, from, to := 0, -1, 0
	err := batch.Iterate(buf, func(h batch.Header, b []byte) bool {
		if from < 0 {
			if h.LastOffset() >= offset {
				from, to = pos, pos+len(b)
			}
			pos += len(b)
			return true
		}
		if to-from+len(b) > maxBytes {
			return false
		}
		to += len(b)
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if from < 0 {
		return nil, fmt.Errorf("no batch reaches offset %d: %w", offset, ErrOffsetOutOfRange)
	}
	return buf[from:to:to], nil
}
