package agent_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/tiertest"
)

var errSlowDown = errors.New("503 SlowDown (injected)")

// prefixFaults fails writes to keys under a prefix while on: a journal that
// refuses commits while data uploads work.
type prefixFaults struct {
	tier.Bucket
	prefix string
	on     atomic.Bool
	hits   atomic.Int64
}

func (p *prefixFaults) PutIfAbsent(ctx context.Context, key string, body []byte) (string, error) {
	if p.on.Load() && strings.HasPrefix(key, p.prefix) {
		p.hits.Add(1)
		return "", errSlowDown
	}
	return p.Bucket.PutIfAbsent(ctx, key, body)
}

// restartWithoutWAL stops the agent, deletes its WAL and starts a new one on
// the same bucket: what's readable afterwards came from the bucket.
func restartWithoutWAL(t *testing.T, close func() error, dir string, bucket tier.Bucket) string {
	t.Helper()
	if err := close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "wal")); err != nil {
		t.Fatal(err)
	}
	return tlogtest.StartAgent(t, dir, bucket, fastFlush, fastRetention).Addr()
}

// Intermittent 503s and slow responses on uploads and reads while producing:
// nothing acknowledged is lost, order is kept, and it all reaches the bucket.
func TestFlakyBucket(t *testing.T) {
	dir := t.TempDir()
	bucket := tiertest.NewFaulty(tier.NewMemBucket())
	a := tlogtest.StartAgent(t, dir, bucket, fastFlush, fastRetention)
	createTopic(t, dialRaw(t, a.Addr()), "flaky", 8, nil)
	prod := tlogtest.NewClient(t, a.Addr())
	want := &tlogtest.Acked{}
	tlogtest.Produce(t, prod, want, 1, func(int) *kgo.Record { return &kgo.Record{Topic: "flaky", Value: []byte("first")} })

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a fault every few flushes, on writes and reads
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			bucket.FailNext(tiertest.OpPutIfAbsent, 2, errSlowDown)
			bucket.FailNext(tiertest.OpGetRange, 1, errSlowDown)
			if i%3 == 0 {
				bucket.SetLatency(tiertest.OpPutIfAbsent, 30*time.Millisecond)
			} else {
				bucket.SetLatency(tiertest.OpPutIfAbsent, 0)
			}
		}
	}()
	tlogtest.Produce(t, prod, want, 20_000, func(i int) *kgo.Record {
		return &kgo.Record{Topic: "flaky", Key: fmt.Appendf(nil, "k%d", i%50), Value: fmt.Appendf(nil, "f-%d", i)}
	})
	close(stop)
	wg.Wait()
	bucket.SetLatency(tiertest.OpPutIfAbsent, 0)
	waitFlushed(t, a, "flaky", 8)
	tlogtest.VerifyAll(t, a.Addr(), want, false)
	addr := restartWithoutWAL(t, a.Close, dir, bucket)
	tlogtest.VerifyAll(t, addr, want, false)
}

// Segment uploads succeed but their journal commits fail for a while: the
// data stays in the WAL, acknowledged, and is committed once the journal
// accepts writes again; the uploads that never got committed are collected.
func TestJournalCommitFailures(t *testing.T) {
	dir := t.TempDir()
	mem := tier.NewMemBucket()
	bucket := &prefixFaults{Bucket: mem, prefix: "meta/journal/"}
	a := tlogtest.StartAgent(t, dir, bucket, fastFlush, fastRetention)
	createTopic(t, dialRaw(t, a.Addr()), "jfail", 4, nil)
	prod := tlogtest.NewClient(t, a.Addr())
	want := &tlogtest.Acked{}
	tlogtest.Produce(t, prod, want, 1, func(int) *kgo.Record { return &kgo.Record{Topic: "jfail", Value: []byte("first")} })

	bucket.on.Store(true)
	tlogtest.Produce(t, prod, want, 5_000, func(i int) *kgo.Record {
		return &kgo.Record{Topic: "jfail", Value: fmt.Appendf(nil, "j-%d", i)}
	})
	tlogtest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if bucket.hits.Load() < 3 {
			return fmt.Errorf("%d journal writes refused so far", bucket.hits.Load())
		}
		return nil
	})
	// Metadata changes cannot commit: clients get a retriable code, and
	// nothing changes.
	c := dialRaw(t, a.Addr())
	ct := do[*kmsg.CreateTopicsResponse](c, 7, createTopicsReq(false, topicSpec{"jfail-new", 1, 1, nil}))
	if code := ct.Topics[0].ErrorCode; code != kerr.RequestTimedOut.Code {
		t.Errorf("CreateTopics with the journal failing: error %d, want REQUEST_TIMED_OUT", code)
	}
	var part int32 // one that holds records
	for latest(c, "jfail", part) == 0 {
		part++
	}
	dr := kmsg.NewPtrDeleteRecordsRequest()
	drt := kmsg.NewDeleteRecordsRequestTopic()
	drt.Topic = "jfail"
	drp := kmsg.NewDeleteRecordsRequestTopicPartition()
	drp.Partition, drp.Offset = part, -1
	drt.Partitions = append(drt.Partitions, drp)
	dr.Topics = append(dr.Topics, drt)
	dr.TimeoutMillis = 5000
	if code := do[*kmsg.DeleteRecordsResponse](c, 2, dr).Topics[0].Partitions[0].ErrorCode; code != kerr.RequestTimedOut.Code {
		t.Errorf("DeleteRecords with the journal failing: error %d, want REQUEST_TIMED_OUT", code)
	}
	if lo := listOffset(c, "jfail", part, -2); lo.Offset != 0 {
		t.Errorf("log start %d after a refused DeleteRecords", lo.Offset)
	}
	bucket.on.Store(false)
	waitFlushed(t, a, "jfail", 4)
	tlogtest.VerifyAll(t, a.Addr(), want, false)
	// Orphaned uploads (uploaded, commit refused) leave after the grace.
	tlogtest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		objs, err := mem.List(context.Background(), "data/")
		if err != nil {
			return err
		}
		if refs := countReferenced(a.Manifest("jfail")); len(objs) != refs {
			return fmt.Errorf("%d objects, %d referenced", len(objs), refs)
		}
		return nil
	})
	addr := restartWithoutWAL(t, a.Close, dir, bucket)
	tlogtest.VerifyAll(t, addr, want, false)
}

func countReferenced(m [][]string) int {
	seen := map[string]bool{}
	for _, p := range m {
		for _, o := range p {
			seen[o] = true
		}
	}
	return len(seen)
}

// A 30-second total bucket outage while producing at a steady rate: every
// record is acknowledged from the WAL, then flushed when the bucket returns.
// TLOG_HEAVY=1 (set by .ci/run) runs it; it takes over 30 seconds.
func TestBucketOutage30s(t *testing.T) {
	if os.Getenv("TLOG_HEAVY") == "" {
		t.Skip("a 30-second outage: set TLOG_HEAVY=1 (.ci/run does)")
	}
	dir := t.TempDir()
	bucket := tiertest.NewFaulty(tier.NewMemBucket())
	a := tlogtest.StartAgent(t, dir, bucket, fastFlush, fastRetention)
	createTopic(t, dialRaw(t, a.Addr()), "long", 4, nil)
	prod := tlogtest.NewClient(t, a.Addr())
	want := &tlogtest.Acked{}
	tlogtest.Produce(t, prod, want, 1, func(int) *kgo.Record { return &kgo.Record{Topic: "long", Value: []byte("first")} })
	bucket.SetOutage(tiertest.ErrInjected)
	start := time.Now()
	for i := 0; time.Since(start) < 30*time.Second; i++ {
		tlogtest.Produce(t, prod, want, 100, func(j int) *kgo.Record {
			return &kgo.Record{Topic: "long", Value: fmt.Appendf(nil, "l-%d-%d", i, j)}
		})
		time.Sleep(100 * time.Millisecond)
	}
	bucket.SetOutage(nil)
	t.Logf("acknowledged %d records during a %v outage", want.N, time.Since(start).Round(time.Second))
	waitFlushed(t, a, "long", 4)
	addr := restartWithoutWAL(t, a.Close, dir, bucket)
	tlogtest.VerifyAll(t, addr, want, false)
}
