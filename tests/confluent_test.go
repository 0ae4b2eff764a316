package tests

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
)

func confluentPython(t *testing.T) string {
	t.Helper()
	py := "/usr/bin/python3"
	if err := exec.Command(py, "-c", "import confluent_kafka").Run(); err != nil {
		t.Skip("confluent-kafka not installed (.ci/run installs python3-confluent-kafka with apt-get)")
	}
	return py
}

// confluent-kafka (librdkafka) commits one transaction and aborts
// another: a read_committed consumer reads exactly the committed records,
// a read_uncommitted one both.
func TestConfluentKafkaTransactions(t *testing.T) {
	py := confluentPython(t)
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket())
	out, err := exec.Command(py, filepath.Join("clients", "confluent_txn.py"), a.Addr(), "commit-abort", "py-txn").CombinedOutput()
	if err != nil {
		t.Fatalf("confluent-kafka: %v\n%s", err, out)
	}
	var committed, uncommitted string
	for _, l := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(l, "committed "):
			committed = strings.TrimPrefix(l, "committed ")
		case strings.HasPrefix(l, "uncommitted "):
			uncommitted = strings.TrimPrefix(l, "uncommitted ")
		}
	}
	if committed != "a-0 a-1 a-2 a-3 a-4" {
		t.Fatalf("read_committed read %q, want a-0..a-4\n%s", committed, out)
	}
	if uncommitted != "a-0 a-1 a-2 a-3 a-4 b-0 b-1 b-2 b-3 b-4" {
		t.Fatalf("read_uncommitted read %q, want a-0..a-4 b-0..b-4\n%s", uncommitted, out)
	}
}

// A consume-transform-produce loop (send_offsets_to_transaction) is
// SIGKILLed mid-stream and run again over the same input: every input
// record is in the output exactly once.
func TestConfluentKafkaConsumeTransformProduce(t *testing.T) {
	py := confluentPython(t)
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cl := tlogtest.NewClient(t, a.Addr(), kgo.RequiredAcks(kgo.AllISRAcks()))
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopics(ctx, 3, 1, nil, "ctp-in", "ctp-out"); err != nil {
		t.Fatal(err)
	}
	const n = 600
	var want []string
	for i := range n {
		v := fmt.Sprintf("rec-%04d", i)
		want = append(want, strings.ToUpper(v))
		cl.Produce(ctx, &kgo.Record{Topic: "ctp-in", Key: []byte(v), Value: []byte(v)}, nil)
	}
	if err := cl.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// First run: killed after a few transactions.
	cmd := exec.Command(py, filepath.Join("clients", "confluent_txn.py"), a.Addr(), "ctp", "ctp-in", "ctp-out", "ctp", "py-ctp", "0.05")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(stdout)
	txns := 0
	for sc.Scan() && txns < 5 {
		if strings.HasPrefix(sc.Text(), "txn ") {
			txns++
		}
	}
	if txns < 5 {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("the first run ended after %d transactions", txns)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()

	// Second run, same transactional id and group: it fences what the
	// first left open and carries on from the committed offsets.
	out, err := exec.Command(py, filepath.Join("clients", "confluent_txn.py"), a.Addr(), "ctp", "ctp-in", "ctp-out", "ctp", "py-ctp").CombinedOutput()
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}

	rd := tlogtest.NewClient(t, a.Addr(), kgo.ConsumeTopics("ctp-out"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	rctx, rcancel := context.WithTimeout(ctx, 10*time.Second)
	defer rcancel()
	for len(got) < n+1 {
		fs := rd.PollFetches(rctx)
		if rctx.Err() != nil {
			break
		}
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	sort.Strings(got)
	dups := 0
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			dups++
		}
	}
	if len(got) != n || dups != 0 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("output has %d records (%d duplicates), want each of the %d inputs once", len(got), dups, n)
	}
	t.Logf("killed after %d transactions; output holds each of %d records once", txns, n)
}
