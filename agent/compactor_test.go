package agent_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/tiertest"
)

// A steady trickle over many partitions makes many tiny ranges; the
// compactor merges them so each partition's manifest stays short, a replay
// reads far fewer objects, the old objects are collected, and every record
// still reads back in order.
func TestCompactionBoundsManifest(t *testing.T) {
	bucket := tiertest.NewFaulty(tier.NewMemBucket())
	var a *agent.Agent
	compacting := false
	cfg := func(c *agent.Config) {
		fastFlush(c)
		fastRetention(c)
		c.CompactBytes = 64 << 10
		c.CompactInterval = time.Hour // off until the trickle is done
		if compacting {
			c.CompactInterval = 50 * time.Millisecond
		}
	}
	dir := t.TempDir()
	a = tlogtest.StartAgent(t, dir, bucket, cfg)
	const parts = 20
	createTopic(t, dialRaw(t, a.Addr()), "trickle", parts, nil)
	prod := tlogtest.NewClient(t, a.Addr(), kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	want := &tlogtest.Acked{}
	// 30 rounds of one record per partition, a flush apart.
	for round := 0; round < 30; round++ {
		tlogtest.Produce(t, prod, want, parts, func(i int) *kgo.Record {
			return &kgo.Record{Topic: "trickle", Partition: int32(i), Value: fmt.Appendf(nil, "r%d-p%d", round, i)}
		})
		waitFlushed(t, a, "trickle", parts)
	}
	before := objectsReferenced(t, a, "trickle")
	maxBefore := maxRanges(t, a, "trickle")

	// Restart with the compactor on.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	compacting = true
	a = tlogtest.StartAgent(t, dir, bucket, cfg)
	tlogtest.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		if m := maxRanges(t, a, "trickle"); m > 1 {
			return fmt.Errorf("a partition still has %d ranges", m)
		}
		return nil
	})
	after := objectsReferenced(t, a, "trickle")
	t.Logf("ranges per partition: %d before, 1 after; objects a full replay reads: %d before, %d after", maxBefore, before, after)
	if after >= before {
		t.Fatalf("replay reads %d objects after compaction, %d before", after, before)
	}
	// Old objects leave the bucket once nothing references them.
	tlogtest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		objs, err := bucket.List(context.Background(), "data/")
		if err != nil {
			return err
		}
		if len(objs) != after {
			return fmt.Errorf("%d objects in the bucket, %d referenced", len(objs), after)
		}
		return nil
	})
	tlogtest.VerifyAll(t, a.Addr(), want, false)
}

func maxRanges(t *testing.T, a *agent.Agent, topic string) int {
	t.Helper()
	m := 0
	for _, p := range a.Manifest(topic) {
		m = max(m, len(p))
	}
	return m
}

func objectsReferenced(t *testing.T, a *agent.Agent, topic string) int {
	t.Helper()
	objs := map[string]bool{}
	for _, p := range a.Manifest(topic) {
		for _, o := range p {
			objs[o] = true
		}
	}
	return len(objs)
}
