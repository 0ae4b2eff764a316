package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
)

func fastRetention(c *agent.Config) {
	c.RetentionInterval = 50 * time.Millisecond
	c.OrphanGrace = 200 * time.Millisecond
}

// With a short retention.ms, old ranges leave the partition, their objects
// leave the bucket, a fetch below the new log start is OFFSET_OUT_OF_RANGE,
// and a consumer at the tail carries on.
func TestRetentionDropsOldSegments(t *testing.T) {
	bucket := tier.NewMemBucket()
	a := tlogtest.StartAgent(t, t.TempDir(), bucket, fastFlush, fastRetention)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "short", 2, map[string]string{"retention.ms": "1000"})

	old := time.Now().Add(-time.Hour) // timestamps already past retention
	prod := tlogtest.NewClient(t, a.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	want := &tlogtest.Acked{}
	tlogtest.Produce(t, prod, want, 2000, func(i int) *kgo.Record {
		return &kgo.Record{Topic: "short", Partition: int32(i % 2), Timestamp: old, Value: fmt.Appendf(nil, "old-%d", i)}
	})
	waitFlushed(t, a, "short", 2)
	tlogtest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		for p := int32(0); p < 2; p++ {
			if o, _ := a.PartitionOffsets("short", p); o.LogStart != o.HW {
				return fmt.Errorf("partition %d: log start %d, HW %d", p, o.LogStart, o.HW)
			}
		}
		if objs := listData(t, bucket); len(objs) != 0 {
			return fmt.Errorf("%d objects still in the bucket", len(objs))
		}
		return nil
	})
	if f := fetchOne(c, "short", 0, 0, 1<<20); f.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Fatalf("fetch below the log start: error %d, want OFFSET_OUT_OF_RANGE", f.ErrorCode)
	}
	// The tail is unaffected: new records (current timestamps) are served.
	end, _ := a.PartitionOffsets("short", 0)
	tail := tlogtest.NewClient(t, a.Addr(), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"short": {0: kgo.NewOffset().At(end.HW)}}))
	if err := prod.ProduceSync(context.Background(), &kgo.Record{Topic: "short", Partition: 0, Value: []byte("fresh")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	fs := tail.PollFetches(ctx)
	if errs := fs.Errors(); len(errs) > 0 {
		t.Fatalf("tail consumer: %v", errs[0].Err)
	}
	if recs := fs.Records(); len(recs) != 1 || string(recs[0].Value) != "fresh" {
		t.Fatalf("tail consumer read %d records", len(recs))
	}
}

// retention.bytes keeps the newest ranges within the bound.
func TestRetentionBytes(t *testing.T) {
	bucket := tier.NewMemBucket()
	a := tlogtest.StartAgent(t, t.TempDir(), bucket, fastFlush, fastRetention)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "sized", 1, map[string]string{"retention.bytes": "20000"})
	prod := tlogtest.NewClient(t, a.Addr(), kgo.ProducerBatchCompression(kgo.NoCompression()))
	for round := 0; round < 10; round++ {
		want := &tlogtest.Acked{}
		tlogtest.Produce(t, prod, want, 10, func(i int) *kgo.Record {
			return &kgo.Record{Topic: "sized", Value: []byte(strings.Repeat("r", 1000))}
		})
		waitFlushed(t, a, "sized", 1) // one range of ~10 KB per round
	}
	tlogtest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		o, _ := a.PartitionOffsets("sized", 0)
		if o.LogStart == 0 {
			return fmt.Errorf("log start still 0 with %d records", o.HW)
		}
		if kept := o.HW - o.LogStart; kept > 40 {
			return fmt.Errorf("%d records kept, want about 20 KB worth", kept)
		}
		return nil
	})
}

// An uploaded object that never got committed is deleted after the grace.
func TestOrphanedUploadsAreCollected(t *testing.T) {
	bucket := tier.NewMemBucket()
	tlogtest.StartAgent(t, t.TempDir(), bucket, fastFlush, fastRetention)
	if _, err := bucket.Put(context.Background(), "data/9/orphan.seg", []byte("never committed")); err != nil {
		t.Fatal(err)
	}
	tlogtest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		if _, err := bucket.Stat(context.Background(), "data/9/orphan.seg"); err == nil {
			return fmt.Errorf("orphan still there")
		}
		return nil
	})
}
