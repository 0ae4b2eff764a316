package agent_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/tests/tlogtest"
)

// Transactions on three agents, RF=3: a transaction spans partitions led
// by different agents (markers go through WriteTxnMarkers); the
// coordinator's agent is killed between transactions and the next
// coordinator carries on from __transaction_state; read_committed readers
// see every committed record once and no aborted one.
func TestClusterTransactionsAcrossCoordinatorKill(t *testing.T) {
	c := tlogtest.CreateCluster(t, 3)
	c.CreateTopic("ctx", 3, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	p := c.Client(kgo.TransactionalID("cluster-txn"), kgo.DefaultProduceTopic("ctx"),
		kgo.TransactionTimeout(30*time.Second), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.RecordDeliveryTimeout(60*time.Second))
	var want []string
	txn := func(n int, commit bool) {
		t.Helper()
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var batch []string
		for i := range 30 {
			v := fmt.Sprintf("t%d-%d", n, i)
			if err := p.ProduceSync(ctx, kgo.StringRecord(v)).FirstErr(); err != nil {
				t.Fatalf("produce %s: %v", v, err)
			}
			batch = append(batch, v)
		}
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end transaction %d: %v", n, err)
		}
		if commit {
			want = append(want, batch...)
		}
	}
	txn(1, true)
	txn(2, false)

	adm := kadm.NewClient(c.Client())
	d, err := adm.DescribeTransactions(ctx, "cluster-txn")
	if err != nil {
		t.Fatal(err)
	}
	coord := d["cluster-txn"].Coordinator
	c.Kill(coord)
	t.Logf("killed the coordinator, agent %d", coord)
	txn(3, true)
	txn(4, false)
	txn(5, true)

	var seed string
	for _, m := range c.Running() {
		seed = m.Kafka
	}
	got := consumeAll(t, seed, "ctx", len(want)+1, kgo.ReadCommitted())
	sort.Strings(got)
	sort.Strings(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("read_committed read %d records, want the %d committed ones:\n got %v\nwant %v", len(got), len(want), got, want)
	}
}
