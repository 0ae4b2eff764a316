package batch

import "fmt"

// checkRecords walks the framing of n uncompressed records in body, as
// Kafka's DefaultRecord.readFrom does, without copying or allocating. It
// catches a record count that disagrees with the payload, which would
// otherwise make the leader hand out offsets for records that do not exist.
func checkRecords(body []byte, n int32) error {
	return walkRecords(body, n, false, nil)
}

// checkProduceRecords is checkRecords with the rules a producer's records
// must also meet: record i has offsetDelta i (offsets are base + delta,
// and the broker never rewrites records, so a gap or repeat would give
// readers offsets outside the batch), and only -1 stands for a null key,
// value or header value.
func checkProduceRecords(body []byte, n int32) error {
	return walkRecords(body, n, true, nil)
}

// walkRecords is checkRecords calling fn, if not nil, with each record's
// timestampDelta and offsetDelta in order. fn returning false ends the walk
// early with a nil error; the records after it are then not checked.
func walkRecords(body []byte, n int32, strict bool, fn func(tsDelta int64, offDelta int32) bool) error {
	p := 0
	// Every record consumes at least one byte, so the loop is bounded by
	// len(body) whatever n claims.
	for i := int32(0); i < n; i++ {
		l, k := varint32(body[p:])
		if k <= 0 {
			return fmt.Errorf("batch: record %d of %d: bad length varint at byte %d: %w", i, n, HeaderSize+p, ErrInvalidRecord)
		}
		p += k
		if l < 0 || int64(l) > int64(len(body)-p) {
			return fmt.Errorf("batch: record %d of %d: length %d, %d bytes left: %w", i, n, l, len(body)-p, ErrInvalidRecord)
		}
		tsDelta, offDelta, err := readRecord(body[p:p+int(l)], strict)
		if err != nil {
			return fmt.Errorf("batch: record %d of %d: %w", i, n, err)
		}
		if strict && offDelta != i {
			return fmt.Errorf("batch: record %d of %d has offset delta %d: %w", i, n, offDelta, ErrInvalidRecord)
		}
		p += int(l)
		if fn != nil && !fn(tsDelta, offDelta) {
			return nil
		}
	}
	if p != len(body) {
		return fmt.Errorf("batch: %d bytes after record %d: %w", len(body)-p, n, ErrInvalidRecord)
	}
	return nil
}

// readRecord checks one record body (after its length varint): attributes,
// timestampDelta, offsetDelta, key, value, headers, consuming exactly r. It
// returns the two deltas. strict: see checkProduceRecords.
func readRecord(r []byte, strict bool) (tsDelta int64, offDelta int32, err error) {
	if len(r) < 1 {
		return 0, 0, fmt.Errorf("empty record: %w", ErrInvalidRecord)
	}
	p := 1 // attributes, unused in v2
	tsDelta, k := varint64(r[p:])
	if k <= 0 {
		return 0, 0, fmt.Errorf("bad timestamp delta: %w", ErrInvalidRecord)
	}
	p += k
	if offDelta, k = varint32(r[p:]); k <= 0 {
		return 0, 0, fmt.Errorf("bad offset delta: %w", ErrInvalidRecord)
	}
	p += k
	// Negative key/value lengths mean null (Kafka reads any negative
	// length so; producers write only -1, which strict requires).
	if p, err = skipBytes(r, p, "key", true, strict); err != nil {
		return 0, 0, err
	}
	if p, err = skipBytes(r, p, "value", true, strict); err != nil {
		return 0, 0, err
	}
	nh, k := varint32(r[p:])
	if k <= 0 || nh < 0 {
		return 0, 0, fmt.Errorf("bad header count: %w", ErrInvalidRecord)
	}
	p += k
	// Each header needs at least two bytes; bounded by len(r).
	for i := int32(0); i < nh; i++ {
		if p, err = skipBytes(r, p, "header key", false, strict); err != nil {
			return 0, 0, err
		}
		if p, err = skipBytes(r, p, "header value", true, strict); err != nil {
			return 0, 0, err
		}
	}
	if p != len(r) {
		return 0, 0, fmt.Errorf("record length %d, fields use %d: %w", len(r), p, ErrInvalidRecord)
	}
	return tsDelta, offDelta, nil
}

// skipBytes skips a varint-length-prefixed byte field starting at r[p:].
func skipBytes(r []byte, p int, what string, nullable, strict bool) (int, error) {
	l, k := varint32(r[p:])
	if k <= 0 {
		return 0, fmt.Errorf("bad %s length: %w", what, ErrInvalidRecord)
	}
	p += k
	if l < 0 {
		if !nullable || (strict && l != -1) {
			return 0, fmt.Errorf("%s length %d (only -1 means null): %w", what, l, ErrInvalidRecord)
		}
		return p, nil
	}
	if int64(l) > int64(len(r)-p) {
		return 0, fmt.Errorf("%s length %d, %d bytes left: %w", what, l, len(r)-p, ErrInvalidRecord)
	}
	return p + int(l), nil
}

// varint32 decodes a zigzag varint of at most 5 bytes. k is the bytes read,
// or 0 if b ends first or the value overflows 32 bits. Kafka's readVarint
// silently drops overflowing bits; no encoder emits them and franz-go
// consumers reject them, so we do too.
func varint32(b []byte) (v int32, k int) {
	var u uint32
	for i := 0; i < len(b) && i < 5; i++ {
		c := b[i]
		if i == 4 && c > 0x0f {
			return 0, 0
		}
		u |= uint32(c&0x7f) << (7 * i)
		if c < 0x80 {
			return int32(u>>1) ^ -int32(u&1), i + 1
		}
	}
	return 0, 0
}

// varint64 decodes a zigzag varint of at most 10 bytes (readVarlong), with
// the same overflow rule.
func varint64(b []byte) (v int64, k int) {
	var u uint64
	for i := 0; i < len(b) && i < 10; i++ {
		c := b[i]
		if i == 9 && c > 0x01 {
			return 0, 0
		}
		u |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return int64(u>>1) ^ -int64(u&1), i + 1
		}
	}
	return 0, 0
}

// Record is one decoded record of a batch.
type Record struct {
	Offset     int64
	Key, Value []byte // nil when null; slices of the (decompressed) batch
}

// Records decodes every record of the batch at the start of b (whose
// framing Next or ValidateProduce checked), decompressing up to
// maxDecompressed bytes. Record framing is checked before anything is
// taken.
func Records(b []byte, maxDecompressed int) ([]Record, error) {
	h, size, err := Next(b)
	if err != nil {
		return nil, err
	}
	body := b[HeaderSize:size]
	if c := h.Compression(); c != CompressionNone {
		if body, err = decompress(c, body, maxDecompressed, nil); err != nil {
			return nil, err
		}
	}
	if err := checkRecords(body, h.NumRecords); err != nil {
		return nil, err
	}
	out := make([]Record, 0, h.NumRecords)
	for p := 0; p < len(body); {
		l, k := varint32(body[p:])
		p += k
		r := body[p : p+int(l)]
		p += int(l)
		q := 1 // attributes
		_, k = varint64(r[q:])
		q += k
		offDelta, k := varint32(r[q:])
		q += k
		var key, value []byte
		key, q = takeBytes(r, q)
		value, _ = takeBytes(r, q)
		out = append(out, Record{Offset: h.BaseOffset + int64(offDelta), Key: key, Value: value})
	}
	return out, nil
}

// takeBytes reads a varint-length-prefixed nullable field that
// checkRecords has already checked.
func takeBytes(r []byte, p int) ([]byte, int) {
	l, k := varint32(r[p:])
	p += k
	if l < 0 {
		return nil, p
	}
	return r[p : p+int(l)], p + int(l)
}

// RecordTimestamps calls fn with the index and timestamp of every record
// of the batch at the start of b (whose framing Next or ValidateProduce
// checked), decompressing up to maxDecompressed bytes: each record's
// timestamp is the batch's first timestamp plus its delta.
func RecordTimestamps(b []byte, maxDecompressed int, fn func(i int, ts int64)) error {
	h, size, err := Next(b)
	if err != nil {
		return err
	}
	body := b[HeaderSize:size]
	if c := h.Compression(); c != CompressionNone {
		if body, err = decompress(c, body, maxDecompressed, nil); err != nil {
			return err
		}
	}
	i := 0
	return walkRecords(body, h.NumRecords, false, func(tsDelta int64, _ int32) bool {
		fn(i, h.FirstTimestamp+tsDelta)
		i++
		return true
	})
}
