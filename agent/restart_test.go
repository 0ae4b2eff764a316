package agent_test

import (
	"fmt"
	"testing"
	"time"

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
