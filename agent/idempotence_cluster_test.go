package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
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

// An agent that lost its WAL (everything is in the bucket) still answers
// an idempotent producer's retry of a flushed batch as a duplicate: the
// producer state comes back from the segment footer, also after the
// compactor has merged the ranges into one object of its own.
func TestProducerStateFromSegmentFooter(t *testing.T) {
	for _, compact := range []bool{false, true} {
		t.Run(fmt.Sprintf("compacted=%v", compact), func(t *testing.T) {
			t.Parallel()
			dir, bucket := t.TempDir(), tier.NewMemBucket()
			compacting := false
			cfg := func(c *agent.Config) {
				fastFlush(c)
				c.CompactBytes = 64 << 10
				c.CompactInterval = time.Hour
				if compacting {
					c.CompactInterval = 50 * time.Millisecond
				}
			}
			a := tlogtest.StartAgent(t, dir, bucket, cfg)
			c := dialRaw(t, a.Addr())
			createTopic(t, c, "fp", 1, nil)
			pid := initProducerID(c, nil, -1, -1)
			idem := func(seq int32, v string) []byte {
				return mkBatch(batchOpts{pid: pid.ProducerID, epoch: pid.ProducerEpoch, seq: seq, firstTS: 1_700_000_000_000}, v)
			}
			// Two batches, a flush apart: two ranges.
			first := mustProduce(c, "fp", 0, idem(0, "a"))
			waitFlushed(t, a, "fp", 1)
			second := mustProduce(c, "fp", 0, idem(1, "b"))
			waitFlushed(t, a, "fp", 1)
			if compact {
				c.nc.Close()
				a.Close()
				compacting = true
				a = tlogtest.StartAgent(t, dir, bucket, cfg)
				tlogtest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
					if m := a.Manifest("fp"); len(m[0]) != 1 || !strings.HasSuffix(m[0][0], "c.seg") {
						return fmt.Errorf("manifest %v, want one compacted object", m)
					}
					return nil
				})
			}
			c.nc.Close()
			a.Close()
			if err := os.RemoveAll(filepath.Join(dir, "wal")); err != nil {
				t.Fatal(err)
			}
			a = tlogtest.StartAgent(t, dir, bucket, fastFlush)
			c = dialRaw(t, a.Addr())
			tlogtest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
				// The retry of the last batch: its original offset, not a new one.
				r := produce(c, "fp", 0, idem(1, "b"))
				if r.ErrorCode != 0 {
					return fmt.Errorf("retry: error %d", r.ErrorCode)
				}
				if r.BaseOffset != second {
					t.Fatalf("retry of a flushed batch appended at %d; it is at %d", r.BaseOffset, second)
				}
				return nil
			})
			if r := produce(c, "fp", 0, idem(5, "gap")); r.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
				t.Fatalf("a gap after the restored state: error %d", r.ErrorCode)
			}
			if next := mustProduce(c, "fp", 0, idem(2, "c")); next != second+1 {
				t.Fatalf("next batch at %d, want %d", next, second+1)
			}
			if first != 0 {
				t.Fatalf("first batch at %d", first)
			}
		})
	}
}
