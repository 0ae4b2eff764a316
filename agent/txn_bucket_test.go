package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
)

// The aborted-transaction index follows the log out of the WAL: with six
// transactions flushed one range each (every other one aborted),
// read_committed reads exactly the committed records, and read_uncommitted
// all of them, after each of: a restart with the WAL deleted (the index
// comes from the segment footers), the small ranges merged into one
// object, DeleteRecords moving the log start into an aborted transaction,
// and a last restart without the WAL.
func TestReadCommittedFromTheBucket(t *testing.T) {
	dir := t.TempDir()
	bucket := tier.NewMemBucket()
	merge := time.Hour
	start := func() *agent.Agent {
		return tlogtest.StartAgent(t, dir, bucket, fastFlush, func(c *agent.Config) {
			c.CompactBytes, c.CompactInterval = 64<<10, merge
		})
	}
	restart := func(a *agent.Agent) *agent.Agent {
		t.Helper()
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(dir, "wal")); err != nil {
			t.Fatal(err)
		}
		return start()
	}
	a := start()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := kadm.NewClient(tlogtest.NewClient(t, a.Addr())).CreateTopic(ctx, 1, 1, nil, "txb"); err != nil {
		t.Fatal(err)
	}
	p := tlogtest.NewClient(t, a.Addr(), kgo.TransactionalID("txb-producer"), kgo.DefaultProduceTopic("txb"))
	var committed []string
	total := 0
	for round := range 6 {
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			v := fmt.Sprintf("r%d-%d", round, i)
			if err := p.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
				t.Fatal(err)
			}
			if round%2 == 1 {
				committed = append(committed, v)
			}
			total++
		}
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(round%2 == 1)); err != nil {
			t.Fatal(err)
		}
		waitFlushed(t, a, "txb", 1)
	}
	p.Close()
	check := func(stage string, uncommitted int) {
		t.Helper()
		if got := consumeAll(t, a.Addr(), "txb", len(committed), kgo.ReadCommitted()); !slices.Equal(got, committed) {
			t.Fatalf("%s: read_committed got %v, want %v", stage, got, committed)
		}
		if got := consumeAll(t, a.Addr(), "txb", uncommitted, kgo.ReadUncommitted()); len(got) != uncommitted {
			t.Fatalf("%s: read_uncommitted got %d records, want %d", stage, len(got), uncommitted)
		}
	}
	check("flushed", total)
	ranges := len(a.Manifest("txb")[0])
	a = restart(a)
	check("restarted without its WAL", total)

	merge = 50 * time.Millisecond
	a = restart(a)
	tlogtest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if n := len(a.Manifest("txb")[0]); n >= ranges {
			return fmt.Errorf("%d objects, %d before merging", n, ranges)
		}
		return nil
	})
	check(fmt.Sprintf("merged from %d objects into %d", ranges, len(a.Manifest("txb")[0])), total)

	// Each transaction is 5 records and a marker: offsets 0-5 are the first
	// (aborted) one. The log now starts inside it.
	o := kadm.Offsets{}
	o.Add(kadm.Offset{Topic: "txb", Partition: 0, At: 3})
	res, err := kadm.NewClient(tlogtest.NewClient(t, a.Addr())).DeleteRecords(ctx, o)
	if err != nil || res.Error() != nil {
		t.Fatalf("DeleteRecords: %v %v", err, res.Error())
	}
	check("log start inside an aborted transaction", total-3)
	merge = time.Hour
	a = restart(a)
	check("and restarted without its WAL", total-3)
}
