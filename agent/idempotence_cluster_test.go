package agent_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/tests/tlogtest"
)

// An idempotent producer whose connection loses every 5th produce
// response (so requests that were written are sent again) while a partition leader is
// killed: every retry is answered as a duplicate, on the old leader or the
// new one, and the log holds each record once.
func TestClusterIdempotentRetriesAcrossFailover(t *testing.T) {
	c := tlogtest.CreateCluster(t, 3)
	c.CreateTopic("idem", 6, 3, nil)
	d := tlogtest.NewFaultyDialer()
	d.DropResponses(0, 5)
	cl := c.Client(kgo.Dialer(d.Dial), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(2*time.Minute),
		kgo.ProducerLinger(2*time.Millisecond), kgo.ProducerBatchMaxBytes(2048), kgo.RetryBackoffFn(func(int) time.Duration { return 20 * time.Millisecond }))
	acked := &tlogtest.Acked{}
	const total = 20000
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := 0; i < total; i++ {
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Topic: "idem", Key: fmt.Appendf(nil, "k%d", i%61), Value: fmt.Appendf(nil, "v-%d", i)}, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			acked.Add(r)
		})
		if i == total/2 {
			c.Kill(c.WaitOnLeader("idem", 0, 5*time.Second))
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d produces failed, first: %v", len(errs), errs[0])
	}
	if d.Dropped.Load() < 20 {
		t.Fatalf("only %d produce responses were dropped; the test proves little", d.Dropped.Load())
	}
	rep := tlogtest.VerifyAll(t, c.Running()[0].Kafka, acked, false)
	if rep.Records != total {
		t.Fatalf("read %d records, want %d", rep.Records, total)
	}
	t.Logf("%d responses dropped; %d records, each once", d.Dropped.Load(), rep.Records)
}
