package batch

// Rewriting a stored batch with some of its records dropped, as Kafka's
// log cleaner does for compacted topics: the header keeps its base
// offset, last offset delta, producer id, epoch and base sequence,
// leader epoch, first timestamp and attributes, so offsets stay where
// they were (gaps appear, as in Kafka) and producer state stays visible;
// the records kept are copied byte for byte and recompressed with the
// batch's codec. A batch left with no record stays as an empty batch
// (Kafka keeps such batches for their producer state): no records, no
// compression.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"math"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// RecordRef is a record of a batch being rewritten: its offset, key and
// timestamp (nil key: null).
type RecordRef struct {
	Offset    int64
	Timestamp int64
	Key       []byte
	Value     []byte // nil: null (a tombstone)
}

// Rewrite returns the batch at the start of b with only the records keep
// says yes to, and how many it kept. It decompresses at most
// maxDecompressed bytes. Control batches are returned unchanged (keep is
// not asked). If keep keeps every record the original bytes are
// returned.
func Rewrite(b []byte, maxDecompressed int, keep func(RecordRef) bool) ([]byte, int, error) {
	h, size, err := Next(b)
	if err != nil {
		return nil, 0, err
	}
	if h.Control() {
		return b[:size], int(h.NumRecords), nil
	}
	codec := h.Compression()
	body := b[HeaderSize:size]
	if codec != CompressionNone {
		if body, err = decompress(codec, body, maxDecompressed, nil); err != nil {
			return nil, 0, err
		}
	}
	if err := checkRecords(body, h.NumRecords); err != nil {
		return nil, 0, err
	}
	var kept []byte
	n := 0
	maxTS := h.FirstTimestamp
	for p := 0; p < len(body); {
		l, k := varint32(body[p:])
		raw := body[p : p+k+int(l)]
		r := body[p+k : p+k+int(l)]
		p += k + int(l)
		q := 1 // attributes
		tsDelta, k := varint64(r[q:])
		q += k
		offDelta, k := varint32(r[q:])
		q += k
		var key, value []byte
		key, q = takeBytes(r, q)
		value, _ = takeBytes(r, q)
		ref := RecordRef{Offset: h.BaseOffset + int64(offDelta), Timestamp: h.FirstTimestamp + tsDelta, Key: key, Value: value}
		if h.LogAppendTime() {
			ref.Timestamp = h.MaxTimestamp
		}
		if !keep(ref) {
			continue
		}
		kept = append(kept, raw...)
		n++
		maxTS = max(maxTS, h.FirstTimestamp+tsDelta)
	}
	if n == int(h.NumRecords) {
		return b[:size], n, nil
	}
	attrs := h.Attributes
	if n == 0 {
		attrs &^= attrCompressionMask
		kept = nil
	} else if codec != CompressionNone {
		if kept, err = compressBody(codec, kept); err != nil {
			return nil, 0, err
		}
	}
	out := make([]byte, HeaderSize, HeaderSize+len(kept))
	copy(out, b[:HeaderSize])
	out = append(out, kept...)
	binary.BigEndian.PutUint32(out[offBatchLength:], uint32(len(out)-lengthOverhead))
	binary.BigEndian.PutUint16(out[offAttributes:], uint16(attrs))
	if !h.LogAppendTime() {
		// The -3 (largest timestamp) lookup reads it from the header.
		binary.BigEndian.PutUint64(out[offMaxTimestamp:], uint64(maxTS))
	}
	binary.BigEndian.PutUint32(out[offNumRecords:], uint32(n))
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(out[crcStart:], castagnoli))
	return out, n, nil
}

// compressBody compresses a records section with codec, in the framing
// Kafka clients read: gzip, raw snappy (snappy-java reads it as well as
// its own stream), the lz4 frame format, a zstd frame.
func compressBody(codec int8, raw []byte) ([]byte, error) {
	switch codec {
	case CompressionGzip:
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		if _, err := w.Write(raw); err != nil {
			return nil, fmt.Errorf("batch: gzip: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("batch: gzip: %w", err)
		}
		return buf.Bytes(), nil
	case CompressionSnappy:
		return s2.EncodeSnappy(nil, raw), nil
	case CompressionLZ4:
		var buf bytes.Buffer
		w := lz4.NewWriter(&buf)
		if _, err := w.Write(raw); err != nil {
			return nil, fmt.Errorf("batch: lz4: %w", err)
		}
		if err := w.Close(); err != nil {
			return nil, fmt.Errorf("batch: lz4: %w", err)
		}
		return buf.Bytes(), nil
	case CompressionZstd:
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("batch: zstd: %w", err)
		}
		defer enc.Close()
		return enc.EncodeAll(raw, nil), nil
	}
	return nil, fmt.Errorf("batch: cannot compress with codec %d", codec)
}

// NullKeys are the indexes of the records of the batch at the start of b
// whose key is null (decompressing at most maxDecompressed bytes): a
// compacted topic refuses such records, and names each one, as Kafka does.
func NullKeys(b []byte, maxDecompressed int) ([]int, error) {
	recs, err := Records(b, maxDecompressed)
	if err != nil {
		return nil, err
	}
	var out []int
	for i, r := range recs {
		if r.Key == nil {
			out = append(out, i)
		}
	}
	return out, nil
}

// Blank returns the batch at the start of b as an empty plain batch at the
// same offsets: no records, not compressed, not transactional, not
// control; its producer fields, leader epoch and timestamps stay.
// Compaction blanks a transaction's marker once nothing of the
// transaction is left, so a compacted log does not keep a marker per
// transaction it once had.
func Blank(b []byte) ([]byte, error) {
	h, _, err := Next(b)
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), b[:HeaderSize]...)
	binary.BigEndian.PutUint32(out[offBatchLength:], uint32(HeaderSize-lengthOverhead))
	binary.BigEndian.PutUint16(out[offAttributes:], uint16(h.Attributes&^(attrCompressionMask|attrTransactional|attrControl)))
	binary.BigEndian.PutUint32(out[offNumRecords:], 0)
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(out[crcStart:], castagnoli))
	return out, nil
}

// MergeEmpty returns one empty batch spanning a and b, two empty
// (no-record) non-control batches where b starts right after a ends: a's
// base offset and first timestamp, b's last offset, producer fields and
// leader epoch, the larger max timestamp. Compaction folds runs of
// emptied batches this way, so a compacted log does not keep a header per
// batch it once had.
func MergeEmpty(a, b []byte) ([]byte, error) {
	ha, err := ParseHeader(a)
	if err != nil {
		return nil, err
	}
	hb, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	switch {
	case ha.NumRecords != 0 || hb.NumRecords != 0 || ha.Control() || hb.Control() || len(a) != HeaderSize || len(b) != HeaderSize:
		return nil, fmt.Errorf("batch: merge: only empty non-control batches: %w", ErrInvalidRecord)
	case hb.BaseOffset != ha.LastOffset()+1 || hb.LastOffset()-ha.BaseOffset > math.MaxInt32:
		return nil, fmt.Errorf("batch: merge: batches at %d-%d and %d-%d do not adjoin: %w", ha.BaseOffset, ha.LastOffset(), hb.BaseOffset, hb.LastOffset(), ErrInvalidRecord)
	}
	out := append([]byte(nil), b...)
	binary.BigEndian.PutUint64(out[offBaseOffset:], uint64(ha.BaseOffset))
	binary.BigEndian.PutUint32(out[offLastOffsetDelta:], uint32(hb.LastOffset()-ha.BaseOffset))
	binary.BigEndian.PutUint64(out[offFirstTimestamp:], uint64(ha.FirstTimestamp))
	binary.BigEndian.PutUint64(out[offMaxTimestamp:], uint64(max(ha.MaxTimestamp, hb.MaxTimestamp)))
	binary.BigEndian.PutUint32(out[offCRC:], crc32.Checksum(out[crcStart:], castagnoli))
	return out, nil
}
