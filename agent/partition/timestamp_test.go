package partition_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/s2"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/wal"
	"github.com/tlog-io/tlog/tier/batch"
)

// tsLog is a partition over a real WAL in a temporary directory.
type tsLog struct {
	t   *testing.T
	w   *wal.WAL
	key wal.PartKey
	p   *partition.Partition
}

func newTSLog(t *testing.T) *tsLog {
	t.Helper()
	w, err := wal.Open(wal.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	key := wal.NewPartKey([16]byte{9, 9}, 1)
	p := partition.New(partition.Config{Key: key, Topic: "ts", Index: 1, WAL: w})
	p.SetRole(soleLeader(0))
	return &tsLog{t: t, w: w, key: key, p: p}
}

// append produces b and waits until it is durable; it returns the base.
func (l *tsLog) append(b []byte) int64 {
	l.t.Helper()
	h, err := batch.ValidateProduce(b, 1<<20)
	if err != nil {
		l.t.Fatalf("test batch invalid: %v", err)
	}
	done := make(chan error, 1)
	res, err := l.p.Append(b, h, -1, func(err error) { done <- err })
	if err != nil {
		l.t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			l.t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		l.t.Fatal("append never completed")
	}
	return res.BaseOffset
}

// overwrite replaces the stored batch at base behind the partition's back.
func (l *tsLog) overwrite(base int64, b []byte) {
	l.t.Helper()
	done := make(chan error, 1)
	if err := l.w.Append(l.key, base, b, func(err error) { done <- err }); err != nil {
		l.t.Fatal(err)
	}
	if err := <-done; err != nil {
		l.t.Fatal(err)
	}
}

type tsCase struct {
	ts, off, outTS int64
	ok             bool
}

func (l *tsLog) check(what string, cases []tsCase) {
	l.t.Helper()
	for _, c := range cases {
		off, ts, ok := l.p.OffsetForTimestamp(c.ts)
		if off != c.off || ts != c.outTS || ok != c.ok {
			l.t.Errorf("%s: OffsetForTimestamp(%d) = %d, %d, %v; want %d, %d, %v", what, c.ts, off, ts, ok, c.off, c.outTS, c.ok)
		}
	}
}

var tsCastagnoli = crc32.MakeTable(crc32.Castagnoli)

// tsBatch builds a produce batch whose records sit at firstTS plus deltas,
// with the records section compressed by codec.
func tsBatch(t *testing.T, codec int8, logAppend bool, firstTS int64, deltas ...int64) []byte {
	t.Helper()
	var recs []byte
	maxTS := firstTS
	for i, d := range deltas {
		r := kmsg.NewRecord()
		r.TimestampDelta64 = d
		r.OffsetDelta = int32(i)
		r.Key = []byte(fmt.Sprintf("k%d", i))
		r.Value = bytes.Repeat([]byte{'v'}, 20+i)
		r.Length = int32(len(r.AppendTo(nil)) - 1)
		recs = r.AppendTo(recs)
		maxTS = max(maxTS, firstTS+d)
	}
	rb := kmsg.NewRecordBatch()
	rb.PartitionLeaderEpoch = -1
	rb.Magic = 2
	rb.Attributes = int16(codec)
	rb.LastOffsetDelta = int32(len(deltas) - 1)
	rb.FirstTimestamp = firstTS
	rb.MaxTimestamp = maxTS
	rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = -1, -1, -1
	rb.NumRecords = int32(len(deltas))
	rb.Records = tsCompress(t, codec, recs)
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	if logAppend {
		// As the produce path stamps a LogAppendTime topic's batches.
		b[22] |= 0x08
		binary.BigEndian.PutUint64(b[35:], 9000)
	}
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], tsCastagnoli))
	return b
}

func tsCompress(t *testing.T, codec int8, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	switch codec {
	case batch.CompressionNone:
		return raw
	case batch.CompressionSnappy:
		return s2.EncodeSnappy(nil, raw)
	case batch.CompressionGzip:
		w = gzip.NewWriter(&buf)
	case batch.CompressionLZ4:
		w = lz4.NewWriter(&buf)
	case batch.CompressionZstd:
		zw, err := zstd.NewWriter(&buf)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	}
	if _, err := w.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var tsCodecs = []struct {
	name  string
	codec int8
}{
	{"none", batch.CompressionNone},
	{"gzip", batch.CompressionGzip},
	{"snappy", batch.CompressionSnappy},
	{"lz4", batch.CompressionLZ4},
	{"zstd", batch.CompressionZstd},
}

func TestOffsetForTimestampWithinBatch(t *testing.T) {
	t.Parallel()
	for _, c := range tsCodecs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := newTSLog(t)
			// Offsets 0-4 at 1000 1010 1010 1020 1035; 5-8 at 2000
			// 2005 2005 2009; 9-11 out of order: 3000 5000 3001;
			// 12-13 at 6000 6001.
			l.append(tsBatch(t, c.codec, false, 1000, 0, 10, 10, 20, 35))
			l.append(tsBatch(t, c.codec, false, 2000, 0, 5, 5, 9))
			l.append(tsBatch(t, c.codec, false, 3000, 0, 2000, 1))
			l.append(tsBatch(t, c.codec, false, 6000, 0, 1))
			l.check("whole log", []tsCase{
				{0, 0, 1000, true},
				{1000, 0, 1000, true},
				{1005, 1, 1010, true}, // the middle of the batch
				{1010, 1, 1010, true}, // equal timestamps: the first
				{1011, 3, 1020, true},
				{1035, 4, 1035, true},
				{1036, 5, 2000, true}, // past a batch: the next one's first
				{2001, 6, 2005, true},
				{2009, 8, 2009, true},
				{3001, 10, 5000, true}, // first in offset order, not the closest
				{5000, 10, 5000, true},
				{5001, 12, 6000, true},
				{6001, 13, 6001, true},
				{6002, 14, -1, false}, // none: the HW
			})

			// A log start inside a batch: nothing before it is an
			// answer.
			if err := l.p.SetLogStart(3); err != nil {
				t.Fatal(err)
			}
			l.check("log start 3", []tsCase{
				{0, 3, 1020, true},
				{1005, 3, 1020, true},
				{1021, 4, 1035, true},
			})
			// The batch's max timestamp (5000, offset 10) is below
			// the log start: its later record does not qualify, so
			// the answer is in the next batch.
			if err := l.p.SetLogStart(11); err != nil {
				t.Fatal(err)
			}
			l.check("log start 11", []tsCase{
				{0, 11, 3001, true},
				{3001, 11, 3001, true},
				{3002, 12, 6000, true},
				{6002, 14, -1, false},
			})
		})
	}
}

func TestOffsetForTimestampLogAppendTime(t *testing.T) {
	t.Parallel()
	for _, c := range tsCodecs {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			l := newTSLog(t)
			l.append(tsBatch(t, c.codec, false, 1000, 0, 1))
			// Every record of a LogAppendTime batch has its max
			// timestamp, whatever the deltas say.
			l.append(tsBatch(t, c.codec, true, 5000, 0, 1, 2))
			l.check("log append time", []tsCase{
				{1001, 1, 1001, true},
				{1002, 2, 9000, true},
				{5001, 2, 9000, true},
				{9000, 2, 9000, true},
				{9001, 5, -1, false},
			})
			if err := l.p.SetLogStart(3); err != nil {
				t.Fatal(err)
			}
			l.check("log start 3", []tsCase{{0, 3, 9000, true}})
		})
	}
}

// A stored batch that does not decode is answered at batch granularity, as
// before: its first offset and max timestamp.
func TestOffsetForTimestampUndecodableBatch(t *testing.T) {
	t.Parallel()
	l := newTSLog(t)
	l.append(tsBatch(t, batch.CompressionNone, false, 1000, 0, 10))
	good := tsBatch(t, batch.CompressionZstd, false, 2000, 0, 5, 9)
	base := l.append(bytes.Clone(good))
	l.append(tsBatch(t, batch.CompressionGzip, false, 3000, 0, 1))

	bad := bytes.Clone(good)
	binary.BigEndian.PutUint64(bad, uint64(base))
	clear(bad[61:]) // the compressed records, zeroed
	l.overwrite(base, bad)
	l.check("corrupt payload", []tsCase{
		{1005, 1, 1010, true},
		{2003, 2, 2009, true}, // not 3@2005: the batch's first and max
		{2009, 2, 2009, true},
		{2010, 5, 3000, true}, // later batches still decode
		{3001, 6, 3001, true},
	})

	// Gone from the WAL altogether.
	if err := l.w.DeleteFrom(l.key, base); err != nil {
		t.Fatal(err)
	}
	l.check("missing batch", []tsCase{{2003, 2, 2009, true}, {1011, 2, 2009, true}})
}

// Lookups run the WAL read without the partition lock while appends and
// log-start moves go on; under -race this checks the lock discipline, and
// every answer must stay inside the log.
func TestOffsetForTimestampConcurrent(t *testing.T) {
	t.Parallel()
	l := newTSLog(t)
	l.append(tsBatch(t, batch.CompressionLZ4, false, 0, 0, 1, 2, 3))
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int64(0); ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				ts := (i*7 + int64(g)*13) % 500
				off, rts, ok := l.p.OffsetForTimestamp(ts)
				o := l.p.Offsets()
				if ok && (rts < ts || off >= o.HW) {
					t.Errorf("OffsetForTimestamp(%d) = %d@%d, offsets %+v", ts, off, rts, o)
					return
				}
			}
		}()
	}
	for i := int64(1); i < 100; i++ {
		l.append(tsBatch(t, tsCodecs[i%5].codec, false, i*4, 0, 1, 2, 3))
		if i%10 == 0 {
			if err := l.p.SetLogStart(i*4 - 2); err != nil {
				t.Error(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	l.check("after", []tsCase{{0, 358, 358, true}, {395, 395, 395, true}, {400, 400, -1, false}})
}
