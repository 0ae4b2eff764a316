package tests

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
)

// tlog txn: a producer leaves a transaction open and goes away; list and
// describe show it, abort ends it on its partition, and read_committed
// consumers get past it.
func TestCLITransactions(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the tlog binary")
	}
	bin := tlogtest.BuildTlog(t)
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket())
	addr := a.Addr()
	cliOK(t, bin, addr, "", "topic", "create", "orders", "--partitions", "1")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	p, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.TransactionalID("hanging"),
		kgo.DefaultProduceTopic("orders"), kgo.TransactionTimeout(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, kgo.StringRecord("never-ended")).FirstErr(); err != nil {
		t.Fatal(err)
	}
	p.Close() // gone without ending the transaction

	var listed []struct {
		ID    string `json:"transactional_id"`
		State string `json:"state"`
	}
	if err := json.Unmarshal([]byte(cliOK(t, bin, addr, "", "txn", "list", "--format", "json").stdout), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].ID != "hanging" || listed[0].State != "Ongoing" {
		t.Fatalf("txn list: %+v", listed)
	}
	if out := cliOK(t, bin, addr, "", "txn", "list", "--state", "CompleteCommit").stdout; strings.Contains(out, "hanging") {
		t.Fatalf("txn list --state CompleteCommit shows the open transaction:\n%s", out)
	}
	if out := cliOK(t, bin, addr, "", "txn", "describe", "hanging").stdout; !strings.Contains(out, "Ongoing") || !strings.Contains(out, "orders/0") {
		t.Fatalf("txn describe:\n%s", out)
	}
	cliFails(t, bin, addr, 1, []string{"cannot describe", "nosuch"}, "txn", "describe", "nosuch")
	cliFails(t, bin, addr, 2, []string{"--topic and --partition are required"}, "txn", "abort")
	cliFails(t, bin, addr, 1, []string{"no open transaction"}, "txn", "abort", "--topic", "orders", "--partition", "0", "--start-offset", "5")

	adm := kadm.NewClient(tlogtest.NewClient(t, addr))
	stable := func() int64 {
		offs, err := adm.ListCommittedOffsets(ctx, "orders")
		if err != nil {
			t.Fatal(err)
		}
		o, _ := offs.Lookup("orders", 0)
		return o.Offset
	}
	if lso := stable(); lso != 0 {
		t.Fatalf("last stable offset %d under the open transaction, want 0", lso)
	}
	if out := cliOK(t, bin, addr, "", "txn", "abort", "--topic", "orders", "--partition", "0").stdout; !strings.Contains(out, "aborted producer") {
		t.Fatalf("txn abort: %s", out)
	}
	if lso := stable(); lso != 2 {
		t.Fatalf("last stable offset %d after the abort, want 2 (the record and its marker)", lso)
	}
	cliFails(t, bin, addr, 1, []string{"no open transaction"}, "txn", "abort", "--topic", "orders", "--partition", "0")
}
