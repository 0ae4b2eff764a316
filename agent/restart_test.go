package agent_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
)

// An agent restarted with more partitions than one journal entry carries
// leader changes for (1,000) gets a new leader epoch for every one of them
// and serves them all. Before, the elections past the first entry were
// dropped once its new incarnation was registered, and it refused the rest
// with NOT_LEADER_OR_FOLLOWER for good.
func TestRestartWithManyPartitionsServesThemAll(t *testing.T) {
	dir, bucket := t.TempDir(), tier.NewMemBucket()
	a := tlogtest.StartAgent(t, dir, bucket, quiet)
	c := dialRaw(t, a.Addr())
	const parts = 2500
	createTopic(t, c, "many", parts, nil)
	mustProduce(c, "many", parts-1, mkBatch(plainBatch(), "before"))
	c.nc.Close()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	a = tlogtest.StartAgent(t, dir, bucket, quiet)
	c = dialRaw(t, a.Addr())
	for _, p := range []int32{0, parts / 2, parts - 1} {
		tlogtest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
			if r := produce(c, "many", p, mkBatch(plainBatch(), "after")); r.ErrorCode != 0 {
				return fmt.Errorf("partition %d: error %d", p, r.ErrorCode)
			}
			return nil
		})
	}
	tlogtest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if ok, why := a.Ready(); !ok {
			return fmt.Errorf("not ready: %s", why)
		}
		return nil
	})
	t.Logf("all %d partitions served %v after the restart", parts, time.Since(start).Round(time.Millisecond))
}

// With the WAL in tlog's own files (--wal-store files), what an agent
// acknowledged and had not flushed is there after a restart, then
// flushed and trimmed; the directory does not open with the other store.
func TestFilesWALRestart(t *testing.T) {
	dir, bucket := t.TempDir(), tier.NewMemBucket()
	noFlush := func(c *agent.Config) { quiet(c); c.WALStoreKind = agent.WALFiles; c.FlushInterval = time.Hour }
	a := tlogtest.StartAgent(t, dir, bucket, noFlush)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "files-wal", 4, nil)
	for i := range 200 {
		mustProduce(c, "files-wal", int32(i%4), mkBatch(plainBatch(), fmt.Sprintf("r%d-a", i), fmt.Sprintf("r%d-b", i)))
	}
	c.nc.Close()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	cfg := agent.Config{DataDir: dir, Listen: "127.0.0.1:0", Bucket: bucket, WALStoreKind: agent.WALBadger}
	quiet(&cfg)
	if b, err := agent.Start(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "--wal-store files or auto") {
		if b != nil {
			b.Close()
		}
		t.Fatalf("a files WAL opened as Badger: %v", err)
	}

	a = tlogtest.StartAgent(t, dir, bucket, func(c *agent.Config) {
		quiet(c)
		c.WALStoreKind = agent.WALFiles
		c.FlushInterval = 50 * time.Millisecond
	})
	c = dialRaw(t, a.Addr())
	for p := range int32(4) {
		tlogtest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
			if hw := latest(c, "files-wal", p); hw != 100 {
				return fmt.Errorf("partition %d: high watermark %d, want 100", p, hw)
			}
			return nil
		})
	}
	waitFlushed(t, a, "files-wal", 4)
	for p := range int32(4) {
		got := fetchOne(c, "files-wal", p, 0, 1<<20)
		if got.ErrorCode != 0 || len(got.RecordBatches) == 0 {
			t.Fatalf("partition %d after flush: error %d, %d bytes", p, got.ErrorCode, len(got.RecordBatches))
		}
	}
}
