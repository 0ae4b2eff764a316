package segment

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"
	"testing"

	"github.com/tlog-io/tlog/tier"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const attrLogAppendTime = 0x08

// bspec describes one batch: n records from offset base, timestamps from ts
// one millisecond apart, values of valLen bytes.
type bspec struct {
	base   int64
	n      int
	ts     int64
	valLen int
	attrs  int16
	epoch  int32
}

// mkBatch encodes s as a sealed RecordBatch v2, as the leader stores it.
func mkBatch(tb testing.TB, s bspec) []byte {
	tb.Helper()
	var body []byte
	for i := 0; i < s.n; i++ {
		r := kmsg.Record{
			TimestampDelta64: int64(i),
			OffsetDelta:      int32(i),
			Key:              fmt.Appendf(nil, "k%d", s.base+int64(i)),
			Value:            bytes.Repeat([]byte{byte('a' + i%26)}, s.valLen),
		}
		enc := r.AppendTo(nil)[1:] // Length 0 is a one-byte varint
		r.Length = int32(len(enc))
		body = r.AppendTo(body)
	}
	rb := kmsg.RecordBatch{
		FirstOffset:          s.base,
		Length:               int32(61 - 12 + len(body)),
		PartitionLeaderEpoch: s.epoch,
		Magic:                2,
		Attributes:           s.attrs,
		LastOffsetDelta:      int32(s.n - 1),
		FirstTimestamp:       s.ts,
		MaxTimestamp:         s.ts + int64(s.n-1),
		ProducerID:           -1,
		ProducerEpoch:        -1,
		FirstSequence:        -1,
		NumRecords:           int32(s.n),
		Records:              body,
	}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// run builds count consecutive batches of recs records each from base and
// returns them concatenated and one by one.
func run(tb testing.TB, base int64, count, recs, valLen int, ts int64) ([]byte, [][]byte) {
	tb.Helper()
	var all []byte
	var each [][]byte
	for i := 0; i < count; i++ {
		b := mkBatch(tb, bspec{base: base, n: recs, ts: ts, valLen: valLen, epoch: 3})
		all = append(all, b...)
		each = append(each, b)
		base += int64(recs)
		ts += int64(recs)
	}
	return all, each
}

func topic(i int) [16]byte {
	var t [16]byte
	t[0] = 0xa0
	binary.BigEndian.PutUint32(t[12:], uint32(i))
	return t
}

// rangeLog records the ranges of GetRange calls.
type rangeLog struct {
	tier.Bucket
	mu     sync.Mutex
	ranges [][2]int64
}

func (r *rangeLog) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	r.mu.Lock()
	r.ranges = append(r.ranges, [2]int64{off, n})
	r.mu.Unlock()
	return r.Bucket.GetRange(ctx, key, off, n)
}

func (r *rangeLog) take() [][2]int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.ranges
	r.ranges = nil
	return out
}

func put(tb testing.TB, b tier.Bucket, key string, obj []byte) {
	tb.Helper()
	if _, err := b.Put(context.Background(), key, obj); err != nil {
		tb.Fatal(err)
	}
}

// Parse decodes and verifies the footer of a whole object held in memory,
// and checks that the object is exactly data + footer + trailer long.
func Parse(obj []byte) (*Footer, error) {
	footerLen, footerCRC, err := ParseTrailer(obj)
	if err != nil {
		return nil, err
	}
	if footerLen > len(obj)-TrailerSize {
		return nil, fmt.Errorf("segment: footer length %d exceeds object of %d bytes: %w", footerLen, len(obj), ErrCorrupt)
	}
	return footerOf(obj[len(obj)-TrailerSize-footerLen:len(obj)-TrailerSize], footerCRC, int64(len(obj)))
}

// ReadPartition fetches all of e's data with one ranged GET and verifies
// its CRC (readers in tlog go through rangecache; tests read directly).
func ReadPartition(ctx context.Context, b tier.Bucket, key string, e Entry) ([]byte, error) {
	if e.Len <= 0 {
		return nil, fmt.Errorf("segment: read %q %x/%d: entry has no data: %w", key, e.TopicID, e.Partition, ErrInvalid)
	}
	buf, err := getExact(ctx, b, key, e.Pos, e.Len)
	if err != nil {
		return nil, fmt.Errorf("segment: read %q %x/%d: %w", key, e.TopicID, e.Partition, err)
	}
	if got := crc32.Checksum(buf, castagnoli); got != e.CRC {
		return nil, fmt.Errorf("segment: read %q %x/%d: data crc %#08x, footer says %#08x: %w",
			key, e.TopicID, e.Partition, got, e.CRC, ErrCorrupt)
	}
	return buf, nil
}

func getExact(ctx context.Context, b tier.Bucket, key string, pos, n int64) ([]byte, error) {
	buf, err := b.GetRange(ctx, key, pos, n)
	if err != nil {
		return nil, err
	}
	if int64(len(buf)) != n {
		return nil, fmt.Errorf("range [%d, +%d) returned %d bytes: %w", pos, n, len(buf), ErrCorrupt)
	}
	return buf, nil
}

// ReadFrom reads e's batches from the one holding offset, about maxBytes of
// them, as a reader through Chunk does: one ranged GET of the chunk of
// max(1, maxBytes/BlockSize) blocks holding offset, each block's CRC
// verified, then Cut.
func ReadFrom(ctx context.Context, b tier.Bucket, key string, e Entry, offset int64, maxBytes int) ([]byte, error) {
	start, end, _, err := e.Chunk(offset, chunkBlocksFor(maxBytes))
	if err != nil {
		return nil, fmt.Errorf("segment: read %q from %d: %w", key, offset, err)
	}
	buf, err := getExact(ctx, b, key, start, end-start)
	if err == nil {
		err = e.Verify(start, buf)
	}
	if err == nil {
		buf, err = Cut(buf, offset, maxBytes)
	}
	if err != nil {
		return nil, fmt.Errorf("segment: read %q from %d: %w", key, offset, err)
	}
	return buf, nil
}

func chunkBlocksFor(maxBytes int) int { return max(1, maxBytes/BlockSize) }
