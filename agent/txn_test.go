package agent_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// consumeAll reads topic from the start until it has read n records (or
// the deadline), with the given isolation level, and returns the values.
func consumeAll(t *testing.T, addr, topic string, n int, iso kgo.IsolationLevel) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	for len(got) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		if err := fs.Err0(); err != nil {
			t.Fatalf("fetch: %v", err)
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

// One transaction committed, one aborted, one committed: read_committed
// consumers see the committed records only, in order; read_uncommitted
// ones see all three transactions' records. A second producer with the
// same transactional id fences the first. Under both transaction
// versions: with 2 (franz-go follows the finalized feature) the produces
// add the partition and every EndTxn bumps the epoch; with 1 the client
// adds partitions itself and the epoch stays.
func TestTransactionsCommitAbort(t *testing.T) {
	for _, version := range []int16{1, 2} {
		t.Run(fmt.Sprintf("transaction.version=%d", version), func(t *testing.T) {
			testTransactionsCommitAbort(t, version)
		})
	}
}

func testTransactionsCommitAbort(t *testing.T, version int16) {
	a := startAgent(t, quiet, func(c *agent.Config) { c.TransactionVersion = version })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(tlogtest.NewClient(t, a.Addr()))
	if _, err := adm.CreateTopic(ctx, 1, 1, nil, "tx"); err != nil {
		t.Fatal(err)
	}
	p, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.TransactionalID("tx-producer"),
		kgo.DefaultProduceTopic("tx"), kgo.TransactionTimeout(20*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	txn := func(prefix string, commit bool) {
		t.Helper()
		if err := p.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if err := p.ProduceSync(ctx, kgo.StringRecord(fmt.Sprintf("%s-%d", prefix, i))).FirstErr(); err != nil {
				t.Fatalf("produce %s-%d: %v", prefix, i, err)
			}
		}
		if err := p.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatalf("end transaction %s (commit %v): %v", prefix, commit, err)
		}
	}
	txn("a", true)
	txn("b", false)
	txn("c", true)
	d, err := adm.DescribeTransactions(ctx, "tx-producer")
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int16]int16{1: 0, 2: 3}[version]; d["tx-producer"].ProducerEpoch != want {
		t.Fatalf("epoch after three transactions %d, want %d", d["tx-producer"].ProducerEpoch, want)
	}

	want := []string{"a-0", "a-1", "a-2", "a-3", "a-4", "c-0", "c-1", "c-2", "c-3", "c-4"}
	if got := consumeAll(t, a.Addr(), "tx", len(want), kgo.ReadCommitted()); !slices.Equal(got, want) {
		t.Fatalf("read_committed got %v, want %v", got, want)
	}
	if got := consumeAll(t, a.Addr(), "tx", 15, kgo.ReadUncommitted()); len(got) != 15 || got[5] != "b-0" {
		t.Fatalf("read_uncommitted got %v, want all 15 records", got)
	}
	ends, err := adm.ListEndOffsets(ctx, "tx")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := ends.Lookup("tx", 0); o.Offset != 18 { // 15 records and 3 markers
		t.Fatalf("end offset %d, want 18", o.Offset)
	}

	// A zombie: a new producer takes the transactional id over.
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, kgo.StringRecord("zombie-0")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p2, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.TransactionalID("tx-producer"), kgo.DefaultProduceTopic("tx"))
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if err := p2.BeginTransaction(); err != nil { // InitProducerID aborts the zombie's transaction
		t.Fatal(err)
	}
	if err := p2.ProduceSync(ctx, kgo.StringRecord("d-0")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := p2.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	err = p.ProduceSync(ctx, kgo.StringRecord("zombie-1")).FirstErr()
	if err == nil {
		err = p.EndTransaction(ctx, kgo.TryCommit)
	}
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("the fenced producer's write or commit: %v, want PRODUCER_FENCED", err)
	}
	want = append(want, "d-0")
	if got := consumeAll(t, a.Addr(), "tx", len(want), kgo.ReadCommitted()); !slices.Equal(got, want) {
		t.Fatalf("read_committed after the zombie got %v, want %v", got, want)
	}
}

// The admin APIs kafka-transactions.sh uses see an open transaction:
// ListTransactions and DescribeTransactions at its coordinator, and
// DescribeProducers at the partition's leader with its start offset.
func TestTransactionsAdmin(t *testing.T) {
	a := startAgent(t, quiet)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	adm := kadm.NewClient(tlogtest.NewClient(t, a.Addr()))
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "adm"); err != nil {
		t.Fatal(err)
	}
	p, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.TransactionalID("open-txn"),
		kgo.DefaultProduceTopic("adm"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Partition: 1, Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	listed, err := adm.ListTransactions(ctx, nil, []string{"Ongoing"})
	if err != nil {
		t.Fatal(err)
	}
	if ids := listed.TransactionalIDs(); !slices.Equal(ids, []string{"open-txn"}) {
		t.Fatalf("ListTransactions(Ongoing) = %v", ids)
	}
	described, err := adm.DescribeTransactions(ctx, "open-txn")
	if err != nil {
		t.Fatal(err)
	}
	d, ok := described["open-txn"]
	if _, in := d.Topics["adm"][1]; !ok || d.Err != nil || d.State != "Ongoing" || len(d.Topics["adm"]) != 1 || !in {
		t.Fatalf("DescribeTransactions = %+v", described)
	}
	prods, err := adm.DescribeProducers(ctx, kadm.TopicsSet{"adm": {1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	prods.EachProducer(func(dp kadm.DescribedProducer) {
		if dp.ProducerID == d.ProducerID && dp.CurrentTxnStartOffset == 0 {
			found = true
		}
	})
	if !found {
		t.Fatalf("DescribeProducers does not show producer %d's open transaction at offset 0: %+v", d.ProducerID, prods)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		described, err = adm.DescribeTransactions(ctx, "open-txn")
		if err == nil && described["open-txn"].State == "CompleteCommit" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the commit: %+v, %v", described, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
