package agent_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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
	// Wait until the cluster has fenced the agent and a new coordinator
	// answers. franz-go otherwise races itself: a cached coordinator that
	// drops out of metadata between resolving and dialing it fails
	// AddPartitionsToTxn with a fatal "unknown broker" (it would against
	// Kafka too); the failover itself is what this test checks.
	tlogtest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		brokers, err := adm.ListBrokers(ctx)
		if err != nil {
			return err
		}
		for _, b := range brokers {
			if b.NodeID == coord {
				return fmt.Errorf("agent %d is still in metadata", coord)
			}
		}
		d, err := adm.DescribeTransactions(ctx, "cluster-txn")
		if err != nil {
			return err
		}
		if dt := d["cluster-txn"]; dt.Err != nil || dt.Coordinator == coord {
			return fmt.Errorf("coordinator %d (killed %d), error %v", dt.Coordinator, coord, dt.Err)
		}
		return nil
	})
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

// A partition's leader asks the transaction's coordinator on another
// agent before taking a transaction's first batch (AddPartitionsToTxn v4
// VerifyOnly): a partition the producer never added is refused with
// INVALID_TXN_STATE and nothing is written.
func TestClusterTransactionVerification(t *testing.T) {
	c := tlogtest.CreateCluster(t, 3)
	c.CreateTopic("ver", 3, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	p := c.Client(kgo.TransactionalID("verify-me"), kgo.DefaultProduceTopic("ver"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(c.Client())
	// Produce to a partition the coordinator's agent does not lead, so
	// the check crosses agents.
	var d kadm.DescribedTransaction
	var target int32 = -1
	for part := range int32(3) {
		if err := p.ProduceSync(ctx, &kgo.Record{Partition: part, Value: []byte("in")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
		described, err := adm.DescribeTransactions(ctx, "verify-me")
		if err != nil {
			t.Fatal(err)
		}
		d = described["verify-me"]
		if leader := c.WaitOnLeader("ver", part, 5*time.Second); leader != d.Coordinator && target < 0 {
			target = part
			break
		}
	}
	if target < 0 {
		t.Fatal("every partition is led by the coordinator's agent")
	}
	// Three partitions: their leaders are the three agents, so one is
	// led away from the coordinator.
	c.CreateTopic("other", 3, 3, nil)
	var op int32
	leader := c.WaitOnLeader("other", op, 5*time.Second)
	for ; leader == d.Coordinator; leader = c.WaitOnLeader("other", op, 5*time.Second) {
		op++
	}
	raw := dialRaw(t, c.Agents[leader].Kafka)
	req := produceReq(-1, "other", op, mkBatch(batchOpts{pid: d.ProducerID, epoch: d.ProducerEpoch, seq: 0, attrs: 0x10, firstTS: 1_700_000_000_000}, "never-added"))
	req.TransactionID = kmsg.StringPtr("verify-me")
	deadline := time.Now().Add(10 * time.Second)
	for {
		sp := do[*kmsg.ProduceResponse](raw, 9, req).Topics[0].Partitions[0]
		if sp.ErrorCode == kerr.InvalidTxnState.Code {
			break
		}
		if sp.ErrorCode != kerr.NotEnoughReplicas.Code || time.Now().After(deadline) {
			t.Fatalf("produce to a partition not in the transaction: error %d (%s), want INVALID_TXN_STATE", sp.ErrorCode, deref(sp.ErrorMessage))
		}
		time.Sleep(50 * time.Millisecond)
	}
	ends, err := adm.ListEndOffsets(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("other", op); o.Offset != 0 {
		t.Fatalf("the refused batch was written: end offset %d", o.Offset)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
}
