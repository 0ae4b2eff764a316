// Package tlogtest holds helpers shared by tlog's tests: starting agents in
// process or as real processes, and checking what consumers read against
// what producers were told.
package tlogtest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tier"
)

// StartAgent runs a single agent (the tlog dev shape) on a free loopback port
// and closes it when the test ends (Close is idempotent, so tests may close
// it earlier to restart).
func StartAgent(t testing.TB, dir string, bucket tier.Bucket, mod ...func(*agent.Config)) *agent.Agent {
	t.Helper()
	cfg := agent.Config{
		DataDir:          dir,
		Listen:           "127.0.0.1:0",
		Bucket:           bucket,
		AutoCreateTopics: true,
		LeaseTTL:         2 * time.Second,
	}
	for _, m := range mod {
		m(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := agent.Start(ctx, cfg)
	if err != nil {
		t.Fatalf("start agent: %v", err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// NewClient is a franz-go client on addr, closed when the test ends.
func NewClient(t testing.TB, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// FreeAddr returns a loopback address with a port that was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	// Below Linux's ephemeral range (32768-60999): a port the kernel
	// hands out for ":0" can be taken by any outgoing connection between
	// this check and the agent binding it (or while a killed agent is
	// down, before it restarts on the same port).
	freeMu.Lock()
	defer freeMu.Unlock()
	for range 1000 {
		port := 20000 + rand.IntN(12000)
		if freeGiven[port] {
			continue
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue
		}
		l.Close()
		freeGiven[port] = true
		return l.Addr().String()
	}
	t.Fatal("no free port below 32768")
	return ""
}

var (
	freeMu    sync.Mutex
	freeGiven = map[int]bool{} // ports handed out by this process
)

// CheckFor polls fn every poll until it returns nil or timeout passes.
func CheckFor(t testing.TB, timeout, poll time.Duration, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var err error
	for time.Now().Before(deadline) {
		if err = fn(); err == nil {
			return
		}
		time.Sleep(poll)
	}
	t.Fatalf("condition not met after %v: %v", timeout, err)
}

// Acked records what producers were told: topic → partition → offset → value.
// Values must be unique across a test so duplicates can be told apart.
type Acked struct {
	mu sync.Mutex
	M  map[string]map[int32]map[int64]string
	N  int
}

// Add records an acknowledged record.
func (a *Acked) Add(r *kgo.Record) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.M == nil {
		a.M = map[string]map[int32]map[int64]string{}
	}
	if a.M[r.Topic] == nil {
		a.M[r.Topic] = map[int32]map[int64]string{}
	}
	if a.M[r.Topic][r.Partition] == nil {
		a.M[r.Topic][r.Partition] = map[int64]string{}
	}
	a.M[r.Topic][r.Partition][r.Offset] = string(r.Value)
	a.N++
}

// Produce sends n records made by mk through cl and records every
// acknowledgement; it fails the test on the first produce error.
func Produce(t testing.TB, cl *kgo.Client, acked *Acked, n int, mk func(i int) *kgo.Record) {
	t.Helper()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	for i := 0; i < n; i++ {
		wg.Add(1)
		cl.Produce(context.Background(), mk(i), func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				mu.Unlock()
				return
			}
			acked.Add(r)
		})
	}
	wg.Wait()
	if firstErr != nil {
		t.Fatalf("produce: %v", firstErr)
	}
}

// VerifyReport is what a full read found.
type VerifyReport struct {
	Records int // records read
	Extra   int // records present but never acknowledged (allowed only if asked)
}

// VerifyAll reads every partition that has acknowledged records from offset
// 0 and checks: offsets are dense from 0 (no gaps), each acknowledged record
// is at the offset it was acknowledged with, and no value appears twice. If
// allowExtra, records that were written but never acknowledged (in flight at
// a crash) may be present, each at most once.
func VerifyAll(t testing.TB, addr string, want *Acked, allowExtra bool) VerifyReport {
	t.Helper()
	parts := map[string]map[int32]kgo.Offset{}
	for topic, ps := range want.M {
		parts[topic] = map[int32]kgo.Offset{}
		for p := range ps {
			parts[topic][p] = kgo.NewOffset().AtStart()
		}
	}
	// The end of each partition, so we know when we're done.
	cl := NewClient(t, addr, kgo.ConsumePartitions(parts), kgo.FetchMaxWait(200*time.Millisecond))
	ends := endOffsets(t, addr, want)
	next := map[string]map[int32]int64{}
	seen := map[string]bool{}
	var rep VerifyReport
	remaining := 0
	for _, ps := range ends {
		for _, e := range ps {
			remaining += int(e)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for remaining > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d records, %d still missing, before timeout", rep.Records, remaining)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if next[r.Topic] == nil {
				next[r.Topic] = map[int32]int64{}
			}
			if exp := next[r.Topic][r.Partition]; r.Offset != exp {
				t.Fatalf("%s/%d: read offset %d, want %d (gap or reorder)", r.Topic, r.Partition, r.Offset, exp)
			}
			next[r.Topic][r.Partition] = r.Offset + 1
			if seen[string(r.Value)] {
				t.Fatalf("%s/%d@%d: value %q appears twice", r.Topic, r.Partition, r.Offset, r.Value)
			}
			seen[string(r.Value)] = true
			v, ok := want.M[r.Topic][r.Partition][r.Offset]
			switch {
			case !ok && !allowExtra:
				t.Fatalf("%s/%d@%d: record %q was never acknowledged", r.Topic, r.Partition, r.Offset, r.Value)
			case !ok:
				rep.Extra++
			case v != string(r.Value):
				t.Fatalf("%s/%d@%d: read %q, acknowledged %q", r.Topic, r.Partition, r.Offset, r.Value, v)
			}
			rep.Records++
			if r.Offset < ends[r.Topic][r.Partition] {
				remaining--
			}
		})
	}
	for topic, ps := range want.M {
		for p, offs := range ps {
			for off := range offs {
				if off >= next[topic][p] {
					t.Fatalf("%s/%d: acknowledged offset %d not read (read up to %d)", topic, p, off, next[topic][p])
				}
			}
		}
	}
	return rep
}

func endOffsets(t testing.TB, addr string, want *Acked) map[string]map[int32]int64 {
	t.Helper()
	cl := NewClient(t, addr)
	ends := map[string]map[int32]int64{}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for topic, ps := range want.M {
		ends[topic] = map[int32]int64{}
		for p := range ps {
			off, err := listEnd(ctx, cl, topic, p)
			if err != nil {
				t.Fatalf("end offset of %s/%d: %v", topic, p, err)
			}
			ends[topic][p] = off
		}
	}
	return ends
}

func listEnd(ctx context.Context, cl *kgo.Client, topic string, p int32) (int64, error) {
	req := newListOffsets(topic, p, -1)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return 0, fmt.Errorf("malformed ListOffsets response")
	}
	rp := resp.Topics[0].Partitions[0]
	if rp.ErrorCode != 0 {
		return 0, fmt.Errorf("ListOffsets error code %d", rp.ErrorCode)
	}
	return rp.Offset, nil
}
