// Package batch handles Kafka RecordBatch (magic 2) bytes for the broker.
//
// Batches stay raw bytes from the produce request to the WAL and back out in
// fetch responses. The leader only stamps baseOffset and partitionLeaderEpoch,
// which lie outside the CRC, so records are never re-encoded and the client's
// CRC stays valid end to end.
package batch

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"sync"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// RecordBatch v2 layout, big-endian. batchLength counts the bytes after
// itself; the CRC covers [crcStart:].
const (
	offBaseOffset      = 0
	offBatchLength     = 8
	offLeaderEpoch     = 12
	offMagic           = 16
	offCRC             = 17
	offAttributes      = 21
	offLastOffsetDelta = 23
	offFirstTimestamp  = 27
	offMaxTimestamp    = 35
	offProducerID      = 43
	offProducerEpoch   = 51
	offBaseSequence    = 53
	offNumRecords      = 57

	// lengthOverhead is the bytes before and including batchLength.
	lengthOverhead = 12
	crcStart       = offAttributes

	// HeaderSize is the fixed part of a v2 batch, before the records.
	HeaderSize = 61
)

// Magic is the only record format the broker stores.
const Magic = 2

// Compression codecs in attribute bits 0-2.
const (
	CompressionNone   int8 = 0
	CompressionGzip   int8 = 1
	CompressionSnappy int8 = 2
	CompressionLZ4    int8 = 3
	CompressionZstd   int8 = 4
)

const (
	attrCompressionMask = 0x07
	attrLogAppendTime   = 0x08
	attrTransactional   = 0x10
	attrControl         = 0x20
)

// Errors are returned wrapped with detail; match them with errors.Is and turn
// them into produce response codes with KafkaErrorCode.
var (
	// ErrCorrupt maps to CORRUPT_MESSAGE (2): the bytes do not frame a batch
	// (short, truncated, batchLength inconsistent with the buffer) or the
	// CRC does not match.
	ErrCorrupt = errors.New("corrupt record batch")
	// ErrTooLarge maps to MESSAGE_TOO_LARGE (10): the batch exceeds the
	// topic's max.message.bytes.
	ErrTooLarge = errors.New("record batch too large")
	// ErrInvalidRecord maps to INVALID_RECORD (87): the batch frames and
	// checksums correctly but breaks a rule the broker enforces (magic other
	// than 0, 1, 2; bad record count; control bit from a client; more than
	// one batch; bad producer fields; malformed uncompressed records).
	ErrInvalidRecord = errors.New("invalid record batch")
	// ErrUnsupportedMagic maps to UNSUPPORTED_FOR_MESSAGE_FORMAT (43): a
	// legacy message set (magic 0 or 1), which this broker does not store.
	// Apache Kafka answers INVALID_RECORD here for produce v3+; we keep the
	// distinct code so clients see the format is the problem.
	ErrUnsupportedMagic = errors.New("unsupported message format (magic < 2)")
)

// Kafka protocol error codes for the errors above.
const (
	codeNone                        int16 = 0
	codeUnknownServerError          int16 = -1
	codeCorruptMessage              int16 = 2
	codeMessageTooLarge             int16 = 10
	codeUnsupportedForMessageFormat int16 = 43
	codeInvalidRecord               int16 = 87
)

// KafkaErrorCode maps err to the Kafka error code for a produce partition
// response: 0 for nil, -1 (UNKNOWN_SERVER_ERROR) for errors not from this
// package.
func KafkaErrorCode(err error) int16 {
	switch {
	case err == nil:
		return codeNone
	case errors.Is(err, ErrCorrupt):
		return codeCorruptMessage
	case errors.Is(err, ErrTooLarge):
		return codeMessageTooLarge
	case errors.Is(err, ErrUnsupportedMagic):
		return codeUnsupportedForMessageFormat
	case errors.Is(err, ErrInvalidRecord):
		return codeInvalidRecord
	default:
		return codeUnknownServerError
	}
}

// Header is the fixed part of a v2 batch.
type Header struct {
	BaseOffset           int64
	BatchLength          int32
	PartitionLeaderEpoch int32
	Magic                int8
	CRC                  uint32
	Attributes           int16
	LastOffsetDelta      int32
	FirstTimestamp       int64
	MaxTimestamp         int64
	ProducerID           int64
	ProducerEpoch        int16
	BaseSequence         int32
	NumRecords           int32
}

// Compression returns the codec id (CompressionNone ... CompressionZstd;
// 5-7 are undefined).
func (h Header) Compression() int8 { return int8(h.Attributes & attrCompressionMask) }

// LogAppendTime reports whether timestamps are broker append times.
func (h Header) LogAppendTime() bool { return h.Attributes&attrLogAppendTime != 0 }

// Transactional reports whether the batch belongs to a transaction.
func (h Header) Transactional() bool { return h.Attributes&attrTransactional != 0 }

// Control reports whether the batch holds control records (txn markers).
func (h Header) Control() bool { return h.Attributes&attrControl != 0 }

// LastOffset is the offset of the batch's last record.
func (h Header) LastOffset() int64 { return h.BaseOffset + int64(h.LastOffsetDelta) }

// Size is the whole batch's length in bytes, including baseOffset and
// batchLength.
func (h Header) Size() int { return int(int64(h.BatchLength) + lengthOverhead) }

// Idempotent reports whether the batch carries a producer id.
func (h Header) Idempotent() bool { return h.ProducerID >= 0 }

// LastSequence is the sequence of the batch's last record. Sequences wrap
// from MaxInt32 to 0, as in Kafka's DefaultRecordBatch.incrementSequence; a
// batch without a sequence (-1) yields -1.
func (h Header) LastSequence() int32 {
	if h.BaseSequence == -1 {
		return -1
	}
	s := int64(h.BaseSequence) + int64(h.LastOffsetDelta)
	if s > math.MaxInt32 {
		s -= math.MaxInt32 + 1
	}
	return int32(s)
}

// ParseHeader decodes the fixed header of the batch at the start of b. It
// checks nothing beyond the length of b.
func ParseHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, fmt.Errorf("batch: header needs %d bytes, have %d: %w", HeaderSize, len(b), ErrCorrupt)
	}
	be := binary.BigEndian
	return Header{
		BaseOffset:           int64(be.Uint64(b[offBaseOffset:])),
		BatchLength:          int32(be.Uint32(b[offBatchLength:])),
		PartitionLeaderEpoch: int32(be.Uint32(b[offLeaderEpoch:])),
		Magic:                int8(b[offMagic]),
		CRC:                  be.Uint32(b[offCRC:]),
		Attributes:           int16(be.Uint16(b[offAttributes:])),
		LastOffsetDelta:      int32(be.Uint32(b[offLastOffsetDelta:])),
		FirstTimestamp:       int64(be.Uint64(b[offFirstTimestamp:])),
		MaxTimestamp:         int64(be.Uint64(b[offMaxTimestamp:])),
		ProducerID:           int64(be.Uint64(b[offProducerID:])),
		ProducerEpoch:        int16(be.Uint16(b[offProducerEpoch:])),
		BaseSequence:         int32(be.Uint32(b[offBaseSequence:])),
		NumRecords:           int32(be.Uint32(b[offNumRecords:])),
	}, nil
}

// SetBaseOffset stamps the batch's base offset in place. The CRC does not
// cover it. b must be a validated batch; a b shorter than HeaderSize is left
// untouched rather than panicking.
func SetBaseOffset(b []byte, off int64) {
	if len(b) < HeaderSize {
		return
	}
	binary.BigEndian.PutUint64(b[offBaseOffset:], uint64(off))
}

// SetPartitionLeaderEpoch stamps the leader epoch in place. The CRC does not
// cover it. A b shorter than HeaderSize is left untouched.
func SetPartitionLeaderEpoch(b []byte, e int32) {
	if len(b) < HeaderSize {
		return
	}
	binary.BigEndian.PutUint32(b[offLeaderEpoch:], uint32(e))
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// checkCRC verifies b's CRC; b must be exactly one batch of at least
// HeaderSize bytes.
func checkCRC(b []byte) error {
	want := binary.BigEndian.Uint32(b[offCRC:])
	if got := crc32.Checksum(b[crcStart:], castagnoli); got != want {
		return fmt.Errorf("batch: crc %#08x, computed %#08x: %w", want, got, ErrCorrupt)
	}
	return nil
}

// Next checks the batch at the start of b as a replica receives it from
// its leader (already stamped): a whole v2 batch within b, sane length and
// CRC. It returns the header and the batch's size in bytes.
func Next(b []byte) (Header, int, error) {
	h, err := ParseHeader(b)
	if err != nil {
		return h, 0, err
	}
	size := batchSize(b)
	switch {
	case h.Magic != 2:
		return h, 0, fmt.Errorf("batch: magic %d: %w", h.Magic, ErrCorrupt)
	case size < HeaderSize || size > int64(len(b)):
		return h, 0, fmt.Errorf("batch: length %d with %d bytes left: %w", h.BatchLength, len(b), ErrCorrupt)
	case h.LastOffsetDelta < 0:
		return h, 0, fmt.Errorf("batch: negative last offset delta: %w", ErrCorrupt)
	}
	if err := checkCRC(b[:size]); err != nil {
		return h, 0, err
	}
	return h, int(size), nil
}

// batchSize reads the whole-batch size from the length field as int64 so a
// hostile length cannot overflow int on any platform. b must hold 12 bytes.
func batchSize(b []byte) int64 {
	return int64(int32(binary.BigEndian.Uint32(b[offBatchLength:]))) + lengthOverhead
}

// ValidateProduce checks one partition's records from a produce request:
// exactly one v2 batch spanning all of records, no larger than
// maxMessageBytes, with a valid CRC, consistent counts, no control bit and
// sane producer fields. The records are walked (decompressed first, with a
// bound, when compressed) so the record count, offset deltas and lengths
// cannot lie. The size limit is checked first, from the length field alone,
// so oversized batches cost nothing and report MESSAGE_TOO_LARGE as Kafka
// does.
//
// Not checked here, because they need state or request context: baseOffset
// (ignored, it is overwritten), produce-version limits on codecs (zstd needs
// produce v7+), timestamps, transactional/idempotent authorization.
func ValidateProduce(records []byte, maxMessageBytes int) (Header, error) {
	return ValidateProduceInflating(records, maxMessageBytes, InflateLimit(maxMessageBytes))
}

// ValidateProduceInflating is ValidateProduce with the bound on what a
// compressed batch may decompress to given (maxInflated bytes).
func ValidateProduceInflating(records []byte, maxMessageBytes, maxInflated int) (Header, error) {
	if len(records) == 0 {
		// Kafka: "must have at least one record batch per partition".
		return Header{}, fmt.Errorf("batch: no record batch: %w", ErrInvalidRecord)
	}
	if len(records) < lengthOverhead {
		return Header{}, fmt.Errorf("batch: %d bytes, too short for a length field: %w", len(records), ErrCorrupt)
	}
	size := batchSize(records)
	if size > int64(maxMessageBytes) {
		return Header{}, fmt.Errorf("batch: %d bytes exceeds max message bytes %d: %w", size, maxMessageBytes, ErrTooLarge)
	}
	if size < HeaderSize {
		return Header{}, fmt.Errorf("batch: length %d below minimum %d: %w", size-lengthOverhead, HeaderSize-lengthOverhead, ErrCorrupt)
	}
	if size > int64(len(records)) {
		return Header{}, fmt.Errorf("batch: length says %d bytes, have %d: %w", size, len(records), ErrCorrupt)
	}
	// Magic decides how the rest is laid out, so check it before the CRC.
	switch m := int8(records[offMagic]); {
	case m == 0 || m == 1:
		return Header{}, fmt.Errorf("batch: magic %d: %w", m, ErrUnsupportedMagic)
	case m != Magic:
		return Header{}, fmt.Errorf("batch: magic %d, want %d: %w", m, Magic, ErrInvalidRecord)
	}
	// A length field that undershoots the buffer fails the CRC here
	// (CORRUPT_MESSAGE); only a sound first batch with bytes after it is
	// the one-batch rule's INVALID_RECORD.
	if err := checkCRC(records[:size]); err != nil {
		return Header{}, err
	}
	if size < int64(len(records)) {
		// Kafka allows one batch per partition per request for magic 2.
		return Header{}, fmt.Errorf("batch: %d bytes after the first batch, want exactly one: %w", int64(len(records))-size, ErrInvalidRecord)
	}
	h, err := ParseHeader(records)
	if err != nil {
		return Header{}, err
	}
	if err := checkProduceHeader(h); err != nil {
		return Header{}, err
	}
	if h.Compression() == CompressionNone {
		if err := checkProduceRecords(records[HeaderSize:], h.NumRecords); err != nil {
			return Header{}, err
		}
		return h, nil
	}
	if err := checkCompressed(h, records[HeaderSize:size], maxInflated); err != nil {
		return Header{}, err
	}
	return h, nil
}

// MinInflateLimit is the least a compressed batch may inflate to: what a
// consumer with Kafka's default fetch.max.bytes (50 MiB) can take in one
// response, with room. A topic whose max.message.bytes is larger allows
// that much.
const MinInflateLimit = 64 << 20

// InflateLimit is the most a compressed batch of a topic with
// maxMessageBytes may decompress to.
func InflateLimit(maxMessageBytes int) int { return max(MinInflateLimit, maxMessageBytes) }

// inflateBufs are reused for decompressing produced batches; only the
// record walk reads them, and nothing keeps them.
var inflateBufs sync.Pool

// checkCompressed decompresses a produced batch's records, with the size
// bounded as the data streams (InflateLimit; beyond it MESSAGE_TOO_LARGE),
// into a reused buffer, and walks them as checkProduceRecords does: a
// record count or offset deltas that lie, malformed records and header
// counts are INVALID_RECORD; bytes that do not decompress CORRUPT_MESSAGE.
// Kafka's broker decompresses to validate in the same way.
func checkCompressed(h Header, body []byte, limit int) error {
	var buf []byte
	if bp, _ := inflateBufs.Get().(*[]byte); bp != nil {
		buf = *bp
	}
	out, err := decompress(h.Compression(), body, limit, buf)
	if err != nil {
		if buf != nil {
			inflateBufs.Put(&buf)
		}
		if errors.Is(err, errTooBig) {
			return fmt.Errorf("batch: records inflate to more than %d bytes: %w", limit, ErrTooLarge)
		}
		return err
	}
	err = checkProduceRecords(out, h.NumRecords)
	// Keep the larger of the two buffers for the next batch.
	if cap(out) >= cap(buf) {
		buf = out[:0]
	}
	inflateBufs.Put(&buf)
	return err
}

// checkProduceHeader applies Kafka's LogValidator client-batch rules.
func checkProduceHeader(h Header) error {
	switch {
	case h.LastOffsetDelta < 0:
		return fmt.Errorf("batch: last offset delta %d: %w", h.LastOffsetDelta, ErrInvalidRecord)
	case h.NumRecords <= 0:
		return fmt.Errorf("batch: record count %d: %w", h.NumRecords, ErrInvalidRecord)
	case int64(h.NumRecords) != int64(h.LastOffsetDelta)+1:
		return fmt.Errorf("batch: record count %d does not match last offset delta %d: %w",
			h.NumRecords, h.LastOffsetDelta, ErrInvalidRecord)
	case h.Control():
		return fmt.Errorf("batch: clients may not write control batches: %w", ErrInvalidRecord)
	case h.Compression() > CompressionZstd:
		return fmt.Errorf("batch: unknown compression codec %d: %w", h.Compression(), ErrInvalidRecord)
	case h.ProducerID >= 0 && h.BaseSequence < 0:
		return fmt.Errorf("batch: producer id %d with base sequence %d: %w", h.ProducerID, h.BaseSequence, ErrInvalidRecord)
	case h.Transactional() && h.ProducerID < 0:
		// Kafka lets this through, but no transaction can own it and the
		// LSO/abort bookkeeping keys on producer id.
		return fmt.Errorf("batch: transactional batch without producer id: %w", ErrInvalidRecord)
	}
	return nil
}

// KV is one record to encode: a nil Value is a tombstone.
type KV struct {
	Key, Value []byte
}

// Encode builds an uncompressed RecordBatch v2 of records, all stamped
// with timestamp ts, for a non-idempotent producer: what an agent writes
// itself (group offsets and metadata in __consumer_offsets).
func Encode(records []KV, ts int64) []byte { return encode(records, ts, -1, -1, 0) }

// EncodeTxn is Encode for records an agent writes on behalf of producer
// pid at epoch inside its transaction (TxnOffsetCommit): a transactional
// batch with the producer's id and epoch and no sequence, as Kafka's
// coordinator writes them.
func EncodeTxn(records []KV, ts, pid int64, epoch int16) []byte {
	return encode(records, ts, pid, epoch, attrTransactional)
}

func encode(records []KV, ts, pid int64, epoch int16, attrs int16) []byte {
	var recs []byte
	for i, kv := range records {
		r := kmsg.NewRecord()
		r.OffsetDelta = int32(i)
		r.Key = kv.Key
		r.Value = kv.Value
		body := r.AppendTo(nil)[1:] // Length 0 encodes as one byte
		r.Length = int32(len(body))
		recs = r.AppendTo(recs)
	}
	rb := kmsg.NewRecordBatch()
	rb.PartitionLeaderEpoch = -1
	rb.Magic = 2
	rb.Attributes = attrs
	rb.LastOffsetDelta = int32(len(records) - 1)
	rb.FirstTimestamp, rb.MaxTimestamp = ts, ts
	rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = pid, epoch, -1
	rb.NumRecords = int32(len(records))
	rb.Records = recs
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-int(lengthOverhead)))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[crcStart:], castagnoli))
	return b
}
