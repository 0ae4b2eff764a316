package batch

import (
	"fmt"
)

// FirstAtOrAfterFrom finds the first record of batch b whose timestamp is at or
// after ts, as Kafka answers ListOffsets by timestamp: a record's timestamp
// is FirstTimestamp + its timestampDelta, or the batch's MaxTimestamp for
// every record of a LogAppendTime batch. It returns the record's offset
// (baseOffset + offsetDelta) and timestamp, or ok=false if no record
// qualifies.
//
// b is one whole batch, as stored; bytes after it are ignored. Compressed
// records (gzip, snappy raw or xerial-framed, lz4 frame, zstd) are
// decompressed to at most maxDecompressed bytes; a payload that would grow
// past that fails without allocating further. Errors wrap ErrCorrupt: the
// batch does not frame, cannot be decompressed, or its records do not parse
// or carry offset deltas outside [0, lastOffsetDelta] or out of order.
// Records whose offset is below minOffset (the log start, which may fall
// inside a batch) are skipped.
func FirstAtOrAfterFrom(b []byte, minOffset, ts int64, maxDecompressed int) (offset, timestamp int64, ok bool, err error) {
	if len(b) < HeaderSize {
		return 0, 0, false, fmt.Errorf("batch: %d bytes, header needs %d: %w", len(b), HeaderSize, ErrCorrupt)
	}
	size := batchSize(b)
	if size < HeaderSize || size > int64(len(b)) {
		return 0, 0, false, fmt.Errorf("batch: length says %d bytes, have %d: %w", size, len(b), ErrCorrupt)
	}
	h, err := ParseHeader(b)
	if err != nil {
		return 0, 0, false, err
	}
	if h.Magic != Magic {
		return 0, 0, false, fmt.Errorf("batch: magic %d, want %d: %w", h.Magic, Magic, ErrCorrupt)
	}
	if h.LastOffsetDelta < 0 {
		return 0, 0, false, fmt.Errorf("batch: last offset delta %d: %w", h.LastOffsetDelta, ErrCorrupt)
	}
	// Nothing in the batch can qualify: skip decompressing it. Kafka
	// checks MaxTimestamp the same way before looking at records.
	if h.MaxTimestamp < ts || h.LastOffset() < minOffset {
		return 0, 0, false, nil
	}
	body := b[HeaderSize:size]
	if c := h.Compression(); c != CompressionNone {
		if body, err = decompress(c, body, maxDecompressed, nil); err != nil {
			return 0, 0, false, err
		}
	}

	var (
		prev    = int32(-1)
		walkErr error
	)
	err = walkRecords(body, h.NumRecords, false, func(tsDelta int64, offDelta int32) bool {
		if offDelta <= prev || offDelta > h.LastOffsetDelta {
			walkErr = fmt.Errorf("batch: record offset delta %d after %d, last %d: %w", offDelta, prev, h.LastOffsetDelta, ErrCorrupt)
			return false
		}
		prev = offDelta
		rts := h.FirstTimestamp + tsDelta
		if h.LogAppendTime() {
			rts = h.MaxTimestamp
		}
		if off := h.BaseOffset + int64(offDelta); rts >= ts && off >= minOffset {
			offset, timestamp, ok = off, rts, true
			return false
		}
		return true
	})
	if walkErr != nil {
		return 0, 0, false, walkErr
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("%w: %w", err, ErrCorrupt)
	}
	return offset, timestamp, ok, nil
}
