package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
)

// A keyed changelog on a cleanup.policy=compact topic: keys overwritten
// many times, a tenth of the writes tombstones (delete.retention.ms=0).
// Once flushed and compacted, a consumer from offset 0 reads exactly one
// record per live key, its latest value, no deleted key, in offset
// order, at the offsets they were written at; the bucket holds fewer
// bytes than before. A record without a key is refused with
// INVALID_RECORD and nothing of its batch is stored.
func TestKeyCompactedTopic(t *testing.T) {
	t.Parallel()
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket(), func(c *agent.Config) {
		fastFlush(c)
		c.CompactionInterval = 100 * time.Millisecond
		c.CompactionBufferBytes = 1 << 20
	})
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "changelog", 1, map[string]string{"cleanup.policy": "compact", "delete.retention.ms": "0", "min.cleanable.dirty.ratio": "0.01"})

	// Keyless: refused, whole batch.
	o := plainBatch()
	b := mkBatch(o, "keyless")
	resp := do[*kmsg.ProduceResponse](c, 9, produceReq(-1, "changelog", 0, noKeys(b)))
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.InvalidRecord.Code || len(p.ErrorRecords) != 1 {
		t.Fatalf("keyless record: code %d (%v), error records %v", p.ErrorCode, kerr.ErrorForCode(p.ErrorCode), p.ErrorRecords)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.DefaultProduceTopic("changelog"), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type rec struct {
		off   int64
		value string
	}
	latest := map[string]rec{}
	const keys, writes = 300, 6000
	for i := 0; i < writes; i += 200 {
		var rs []*kgo.Record
		for j := i; j < i+200; j++ {
			k := fmt.Sprintf("key-%03d", (j*7919)%keys)
			r := &kgo.Record{Key: []byte(k), Value: fmt.Appendf(nil, "v%d", j)}
			if j%10 == 3 {
				r.Value = nil
			}
			rs = append(rs, r)
		}
		res := cl.ProduceSync(ctx, rs...)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			latest[string(r.Record.Key)] = rec{r.Record.Offset, string(r.Record.Value)}
		}
	}
	waitFlushed(t, a, "changelog", 1)
	before := bucketBytes(t, a, "changelog")
	tlogtest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if s := a.Stats(); s.KeyCompactions == 0 || s.KeyCompactedBytes == 0 {
			return fmt.Errorf("no compaction yet: %+v", s)
		}
		return nil
	})
	after := bucketBytes(t, a, "changelog")
	if after >= before {
		t.Fatalf("bucket bytes %d after compaction, %d before", after, before)
	}

	var want []rec
	for _, r := range latest {
		if r.value != "" {
			want = append(want, r)
		}
	}
	cons, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"changelog": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var got []rec
	seen := map[string]bool{}
	last := int64(-1)
	for len(got) < len(want) {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %d of %d live keys: %v", len(got), len(want), err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset <= last {
				t.Fatalf("offset %d after %d", r.Offset, last)
			}
			last = r.Offset
			k := string(r.Key)
			if seen[k] {
				t.Fatalf("key %s read twice (offset %d)", k, r.Offset)
			}
			seen[k] = true
			if r.Value == nil {
				t.Fatalf("tombstone of %s at %d survived delete.retention.ms=0", k, r.Offset)
			}
			if w := latest[k]; w.off != r.Offset || w.value != string(r.Value) {
				t.Fatalf("key %s: read %q at %d, latest is %q at %d", k, r.Value, r.Offset, w.value, w.off)
			}
			got = append(got, rec{r.Offset, string(r.Value)})
		})
	}
	t.Logf("%d writes over %d keys: %d live keys read back; bucket bytes %d -> %d", writes, keys, len(got), before, after)
}

// noKeys turns the records of an uncompressed batch built by mkBatch into
// keyless ones (key length -1), resealing it.
func noKeys(b []byte) []byte {
	s := string(b)
	// mkBatch keys are "k<i>": varint length 2 (0x04) then 'k'.
	s = strings.Replace(s, "\x04k0", "\x01", 1)
	out := []byte(s)
	// The record's length varint shrank by 2 bytes: fix it and reseal.
	out[61] -= 4
	return seal(out)
}

// bucketBytes sums the committed ranges of topic's partitions.
func bucketBytes(t *testing.T, a *agent.Agent, topic string) int64 {
	t.Helper()
	mp, ok := a.PartitionMeta(topic, 0)
	if !ok {
		t.Fatalf("no %s/0", topic)
	}
	var n int64
	for _, s := range mp.Segments {
		n += s.Length
	}
	return n
}
