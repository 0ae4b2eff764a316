package agent_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
)

// 3 topics × 8 partitions, 200,000 records keyed and unkeyed, read back in
// order per partition with none lost and none duplicated; then the same
// after an in-process restart on the same WAL and bucket.
func TestEndToEnd200k(t *testing.T) {
	dir := t.TempDir()
	bucket := tier.NewMemBucket()
	a := tlogtest.StartAgent(t, dir, bucket)

	adm := kadm.NewClient(tlogtest.NewClient(t, a.Addr()))
	topics := []string{"orders", "clicks", "payments"}
	resp, err := adm.CreateTopics(context.Background(), 8, 1, nil, topics...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil {
			t.Fatalf("create %s: %v", r.Topic, r.Err)
		}
	}

	const total = 200_000
	want := &tlogtest.Acked{}
	prod := tlogtest.NewClient(t, a.Addr(), kgo.ProducerLinger(5*time.Millisecond), kgo.RequiredAcks(kgo.AllISRAcks()))
	tlogtest.Produce(t, prod, want, total, func(i int) *kgo.Record {
		r := &kgo.Record{Topic: topics[i%3], Value: fmt.Appendf(nil, "v-%d", i)}
		if i%2 == 0 {
			r.Key = fmt.Appendf(nil, "key-%d", i%997)
		}
		return r
	})
	if want.N != total {
		t.Fatalf("acknowledged %d of %d", want.N, total)
	}
	for _, tp := range topics {
		if len(want.M[tp]) != 8 {
			t.Fatalf("topic %s: records landed in %d partitions, want 8", tp, len(want.M[tp]))
		}
	}
	if rep := tlogtest.VerifyAll(t, a.Addr(), want, false); rep.Records != total {
		t.Fatalf("read %d records, want %d", rep.Records, total)
	}

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a = tlogtest.StartAgent(t, dir, bucket)
	if rep := tlogtest.VerifyAll(t, a.Addr(), want, false); rep.Records != total {
		t.Fatalf("after restart: read %d records, want %d", rep.Records, total)
	}
}
