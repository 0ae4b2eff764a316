// Package tests holds tlog's integration suites: real tlog processes driven
// by real Kafka clients.
package tests

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/tests/tlogtest"
)

func createTopics(t *testing.T, addr string, partitions int32, topics ...string) {
	t.Helper()
	adm := kadm.NewClient(tlogtest.NewClient(t, addr))
	resp, err := adm.CreateTopics(context.Background(), partitions, 1, nil, topics...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range resp.Sorted() {
		if r.Err != nil {
			t.Fatalf("create %s: %v", r.Topic, r.Err)
		}
	}
}

// A real `tlog dev` process: 200,000 records over 3 topics × 8 partitions,
// SIGKILL, restart, everything acknowledged reads back in order. Then a
// SIGKILL while an idempotent producer is mid-stream: its retries land on
// the restarted agent, which answers re-sent batches as duplicates, so every
// record is acknowledged once and appears once.
func TestDevSurvivesSIGKILL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the tlog binary")
	}
	bin := tlogtest.BuildTlog(t)
	data := t.TempDir()
	args := []string{"dev", "--data", data, "--wal-sync=always"}
	addr := tlogtest.FreeAddr(t)
	p := tlogtest.StartProc(t, bin, addr, append(args, "--listen", addr)...)
	if out := p.Output(); !strings.Contains(out, data) || !strings.Contains(out, addr) {
		t.Fatalf("start message should say where data lives and how to connect:\n%s", out)
	}

	topics := []string{"orders", "clicks", "payments"}
	createTopics(t, addr, 8, topics...)
	want := &tlogtest.Acked{}
	mk := func(base int) func(i int) *kgo.Record {
		return func(i int) *kgo.Record {
			i += base
			r := &kgo.Record{Topic: topics[i%3], Value: fmt.Appendf(nil, "v-%d", i)}
			if i%2 == 0 {
				r.Key = fmt.Appendf(nil, "key-%d", i%997)
			}
			return r
		}
	}
	prod := tlogtest.NewClient(t, addr, kgo.ProducerLinger(5*time.Millisecond))
	tlogtest.Produce(t, prod, want, 200_000, mk(0))
	tlogtest.VerifyAll(t, addr, want, false)

	p.Kill()
	p = tlogtest.StartProc(t, bin, addr, append(args, "--listen", addr)...)
	if rep := tlogtest.VerifyAll(t, addr, want, false); rep.Records != 200_000 {
		t.Fatalf("after SIGKILL: read %d records, want 200000", rep.Records)
	}

	// Kill mid-stream.
	prod2 := tlogtest.NewClient(t, addr, kgo.ProducerLinger(2*time.Millisecond),
		kgo.RecordDeliveryTimeout(90*time.Second), kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }))
	const more = 60_000
	var started atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := 0; i < more; i++ {
		wg.Add(1)
		prod2.Produce(context.Background(), mk(200_000)(i), func(r *kgo.Record, err error) {
			defer wg.Done()
			started.Add(1)
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			want.Add(r)
		})
		if i == more/3 {
			tlogtest.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
				if started.Load() < more/6 {
					return fmt.Errorf("only %d acknowledged", started.Load())
				}
				return nil
			})
			p.Kill()
			p = tlogtest.StartProc(t, bin, addr, append(args, "--listen", addr)...)
		}
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("%d produces failed across the restart, first: %v", len(errs), errs[0])
	}
	rep := tlogtest.VerifyAll(t, addr, want, false)
	if rep.Records != 200_000+more {
		t.Fatalf("read %d records, want %d", rep.Records, 200_000+more)
	}

	// SIGTERM shuts down cleanly.
	if err := p.Stop(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, p.Output())
	}
}
