package agent_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tests/tlogtest"
)

// A keyed changelog on a compacted RF=3 topic of a 3-agent cluster: keys
// overwritten in random order, a tenth of the writes tombstones
// (delete.retention.ms 1 s), the partition's leader killed halfway. After
// compaction a consumer from offset 0 reads exactly one record per live
// key, its latest value, in offset order, no deleted key; the bucket
// holds at most twice the live records' key and value bytes. 60,000
// records over 2,000 keys; with TLOG_HEAVY=1 (in .ci/run), 1,000,000 over
// 10,000.
func TestCompactedChangelogCluster(t *testing.T) {
	n, keys := 60_000, 2_000
	if os.Getenv("TLOG_HEAVY") != "" {
		n, keys = 1_000_000, 10_000
	}
	c := tlogtest.CreateCluster(t, 3, func(cfg *agent.Config) {
		cfg.FlushInterval = 100 * time.Millisecond
		cfg.CompactionInterval = 200 * time.Millisecond
		cfg.CompactionBufferBytes = 1 << 20
	})
	c.CreateTopic("changelog", 1, 3, map[string]*string{"cleanup.policy": kadm.StringPtr("compact"),
		"delete.retention.ms": kadm.StringPtr("1000"), "min.cleanable.dirty.ratio": kadm.StringPtr("0.2")})
	cl := c.Client(kgo.DefaultProduceTopic("changelog"), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordDeliveryTimeout(60*time.Second), kgo.ProducerLinger(5*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	rng := rand.New(rand.NewPCG(7, 11))
	latest := map[string][]byte{}
	produce := func(from, to int) {
		const chunk = 5_000
		for i := from; i < to; i += chunk {
			var rs []*kgo.Record
			for j := i; j < min(i+chunk, to); j++ {
				k := fmt.Appendf(nil, "entity-%05d", rng.IntN(keys))
				v := fmt.Appendf(nil, "state-%08d-%s", j, "payload-of-some-sixty-bytes-to-be-realistic")
				if rng.IntN(10) == 0 {
					v = nil
				}
				rs = append(rs, &kgo.Record{Key: k, Value: v})
			}
			res := cl.ProduceSync(ctx, rs...)
			if err := res.FirstErr(); err != nil {
				t.Fatalf("produce: %v", err)
			}
			for _, r := range res {
				latest[string(r.Record.Key)] = r.Record.Value
			}
		}
	}
	produce(0, n/2)
	leader := c.WaitOnLeader("changelog", 0, 10*time.Second)
	c.Kill(leader)
	produce(n/2, n)

	var live int
	var liveBytes int64
	for k, v := range latest {
		if v != nil {
			live++
			liveBytes += int64(len(k) + len(v))
		}
	}
	var addr string
	for _, m := range c.Running() {
		addr = m.Kafka
	}
	tlogtest.CheckFor(t, 5*time.Minute, time.Second, func() error {
		cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"changelog": {0: kgo.NewOffset().AtStart()}}),
			kgo.FetchMaxWait(200*time.Millisecond))
		if err != nil {
			return err
		}
		defer cons.Close()
		rctx, rcancel := context.WithTimeout(ctx, 20*time.Second)
		defer rcancel()
		seen := map[string]bool{}
		last := int64(-1)
		var problem error
		for len(seen) < live && rctx.Err() == nil && problem == nil {
			cons.PollFetches(rctx).EachRecord(func(r *kgo.Record) {
				k := string(r.Key)
				switch {
				case problem != nil:
				case r.Offset <= last:
					t.Fatalf("offset %d after %d", r.Offset, last)
				case seen[k]:
					problem = fmt.Errorf("key %s read twice: not compacted yet", k)
				case r.Value == nil:
					problem = fmt.Errorf("tombstone of %s at %d still there", k, r.Offset)
				case string(r.Value) != string(latest[k]):
					problem = fmt.Errorf("key %s reads %q at %d, latest is %q", k, r.Value, r.Offset, latest[k])
				}
				last = r.Offset
				seen[k] = true
			})
		}
		if problem != nil {
			return problem
		}
		if len(seen) < live {
			return fmt.Errorf("read %d of %d live keys", len(seen), live)
		}
		return nil
	})
	mp, _ := c.PartitionMeta("changelog", 0)
	var bucket int64
	for _, s := range mp.Segments {
		bucket += s.Length
	}
	t.Logf("%d records over %d keys, leader %d killed halfway: %d live keys, %d bytes of live keys and values; the topic's bucket ranges hold %d bytes (%.2fx)",
		n, keys, leader, live, liveBytes, bucket, float64(bucket)/float64(liveBytes))
	if bucket > 2*liveBytes {
		t.Fatalf("bucket bytes %d are over twice the live bytes %d", bucket, liveBytes)
	}
}
