package agent_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/tiertest"
)

const tsBase = 1_700_000_000_000

// Offsets 0-4 (one compressed batch when the client batches them) and 5-7.
var (
	tsFirst  = []int64{tsBase + 1000, tsBase + 2000, tsBase + 5000, tsBase + 3000, tsBase + 4000}
	tsSecond = []int64{tsBase + 6000, tsBase + 9000, tsBase + 7000}
)

func produceStamped(t *testing.T, cl *kgo.Client, from int, stamps []int64) {
	t.Helper()
	var recs []*kgo.Record
	for i, ts := range stamps {
		recs = append(recs, &kgo.Record{Topic: "ts", Value: []byte{byte(from + i)}, Timestamp: time.UnixMilli(ts)})
	}
	if err := cl.ProduceSync(ctxT(t), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if r.Offset != int64(from+i) {
			t.Fatalf("record %d at offset %d", from+i, r.Offset)
		}
	}
}

// checkTimestampLookups asks ListOffsets what the log of tsFirst then
// tsSecond must answer, whichever of its offsets are in the bucket and
// which in the WAL.
func checkTimestampLookups(t *testing.T, c *rawConn, logStart int64) {
	t.Helper()
	for _, tc := range []struct {
		name       string
		v          int16
		ts         int64
		off, outTS int64
	}{
		{"latest", 8, -1, 8, -1},
		{"earliest", 8, -2, logStart, -1},
		{"max timestamp", 7, -3, 6, tsBase + 9000},
		{"before all", 8, tsBase, logStart, tsFirst[logStart]},
		{"exact first", 8, tsBase + 1000, logStart, tsFirst[logStart]},
		{"exact middle", 8, tsBase + 2000, 1, tsBase + 2000},
		// The first record at or after +2500 is offset 2 (+5000),
		// although +3000 comes later in the log.
		{"between", 8, tsBase + 2500, 2, tsBase + 5000},
		{"past the first part", 8, tsBase + 5001, 5, tsBase + 6000},
		{"second part", 8, tsBase + 7000, 6, tsBase + 9000},
		{"after the max", 8, tsBase + 9001, -1, -1},
		{"v1 middle", 1, tsBase + 2000, 1, tsBase + 2000},
	} {
		p := listOffsetV(c, tc.v, "ts", 0, tc.ts)
		if p.ErrorCode != 0 || p.Offset != tc.off || (tc.outTS != -1 && p.Timestamp != tc.outTS) {
			t.Errorf("%s (v%d, ts %d): offset %d, timestamp %d, error %d; want offset %d, timestamp %d",
				tc.name, tc.v, tc.ts, p.Offset, p.Timestamp, p.ErrorCode, tc.off, tc.outTS)
		}
	}
	// -3 below v7 is not a max-timestamp query.
	if p := listOffsetV(c, 6, "ts", 0, -3); p.ErrorCode == 0 && p.Offset == 6 {
		t.Errorf("ListOffsets v6 answered -3 as max timestamp")
	}
	// v0 answers with a list of offsets (Burrow's latest, among others);
	// a timestamp past every record gives the high watermark.
	for _, tc := range []struct {
		name string
		ts   int64
		max  int32
		want []int64
	}{
		{"latest", -1, 1, []int64{8}},
		{"earliest", -2, 1, []int64{logStart}},
		{"exact middle", tsBase + 2000, 1, []int64{1}},
		{"after the max", tsBase + 9001, 1, []int64{8}},
		{"none asked", -1, 0, []int64{}},
	} {
		p := listOffsetV0(c, "ts", 0, tc.ts, tc.max)
		if p.ErrorCode != 0 || !slices.Equal(p.OldStyleOffsets, tc.want) {
			t.Errorf("v0 %s (ts %d, max %d): offsets %v, error %d; want %v", tc.name, tc.ts, tc.max, p.OldStyleOffsets, p.ErrorCode, tc.want)
		}
	}
}

// Lookups by time give the same answers whether the records are in the WAL,
// in the bucket only (their WAL entries dropped after the flush), or split
// between the two.
func TestListOffsetsByTimestampAcrossTiers(t *testing.T) {
	t.Parallel()
	noFlush := func(c *agent.Config) {
		c.FlushInterval = time.Hour
		quiet(c)
	}
	for _, mode := range []string{"wal", "bucket", "split"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			dir, bucket := t.TempDir(), tiertest.NewFaulty(tier.NewMemBucket())
			mod := fastFlush
			if mode == "wal" {
				mod = noFlush
			}
			a := tlogtest.StartAgent(t, dir, bucket, mod)
			c := dialRaw(t, a.Addr())
			createTopic(t, c, "ts", 1, nil)
			cl := tlogtest.NewClient(t, a.Addr(), kgo.ProducerBatchCompression(kgo.GzipCompression()), kgo.ProducerLinger(20*time.Millisecond))

			produceStamped(t, cl, 0, tsFirst)
			if mode == "split" {
				waitFlushed(t, a, "ts", 1)
				bucket.SetErrorUnder(tiertest.OpPutIfAbsent, "data/", errors.New("injected: no more segment uploads"))
			}
			produceStamped(t, cl, len(tsFirst), tsSecond)
			o, _ := a.PartitionOffsets("ts", 0)
			switch mode {
			case "bucket":
				waitFlushed(t, a, "ts", 1)
			case "split":
				if o.FlushedEnd != int64(len(tsFirst)) {
					t.Fatalf("flushed to %d, want the first part (%d) only", o.FlushedEnd, len(tsFirst))
				}
			case "wal":
				if o.FlushedEnd != 0 {
					t.Fatalf("flushed to %d with flushing held off", o.FlushedEnd)
				}
			}
			checkTimestampLookups(t, c, 0)

			// A log start inside the bucket's first batch.
			deleteRecordsTo(t, c, "ts", 0, 1)
			checkTimestampLookups(t, c, 1)
		})
	}
}

// From the bucket alone (a restarted agent without its WAL): the same
// answers, and a bucket that cannot serve the range answers
// KAFKA_STORAGE_ERROR for lookups that need it, not a wrong offset.
func TestListOffsetsByTimestampFromBucketAlone(t *testing.T) {
	t.Parallel()
	dir, bucket := t.TempDir(), tiertest.NewFaulty(tier.NewMemBucket())
	a := tlogtest.StartAgent(t, dir, bucket, fastFlush)
	createTopic(t, dialRaw(t, a.Addr()), "ts", 1, nil)
	cl := tlogtest.NewClient(t, a.Addr())
	produceStamped(t, cl, 0, tsFirst)
	produceStamped(t, cl, len(tsFirst), tsSecond)
	waitFlushed(t, a, "ts", 1)
	epoch := listOffset(dialRaw(t, a.Addr()), "ts", 0, tsBase+2500).LeaderEpoch
	if epoch < 0 {
		t.Fatalf("lookup before the restart: leader epoch %d", epoch)
	}
	cl.Close()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "wal")); err != nil {
		t.Fatal(err)
	}

	a = tlogtest.StartAgent(t, dir, bucket, fastFlush)
	c := dialRaw(t, a.Addr())
	bucket.SetError(tiertest.OpGetRange, errors.New("injected: bucket down"))
	for _, ts := range []int64{-3, tsBase + 2500} {
		if p := listOffset(c, "ts", 0, ts); p.ErrorCode != kerr.KafkaStorageError.Code {
			t.Errorf("ts %d with the bucket down: offset %d, error %d; want KAFKA_STORAGE_ERROR", ts, p.Offset, p.ErrorCode)
		}
	}
	if got := latest(c, "ts", 0); got != 8 {
		t.Errorf("latest with the bucket down: %d, want 8", got)
	}
	bucket.SetError(tiertest.OpGetRange, nil)
	checkTimestampLookups(t, c, 0)
	// The epoch of the batch found, though this agent's epoch cache only
	// starts after a restart: clients validate positions with it.
	for _, ts := range []int64{-3, tsBase + 2500} {
		if got := listOffset(c, "ts", 0, ts).LeaderEpoch; got != epoch {
			t.Errorf("ts %d after the restart: leader epoch %d, want the batch's %d", ts, got, epoch)
		}
	}
}

func deleteRecordsTo(t *testing.T, c *rawConn, topic string, partition int32, offset int64) {
	t.Helper()
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = partition, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	resp := do[*kmsg.DeleteRecordsResponse](c, 2, req)
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("delete records %s/%d to %d: error %d", topic, partition, offset, code)
	}
}
