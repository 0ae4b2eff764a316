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
