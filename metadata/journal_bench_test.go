package metadata

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/tiertest"
)

// BenchmarkJournalCommits simulates a cluster's flush commits against the
// controller's journal: each of N agents leads a partition of its own and
// commits a segment range every 250 ms (the flush interval), one at a
// time as the flusher does, for 3 s, over a bucket that charges S3-like
// latency (PUT 20 ms; GET, HEAD and LIST 10 ms). It reports the commits made
// per second, journal PUTs per second, and the commit latency p50/p99, in
// three modes: group commit with flush commits held to one write per
// FlushCommitInterval (the default), group commit alone, and one entry per
// commit. Run it once:
//
//	go test ./metadata -run '^$' -bench JournalCommits -benchtime 1x
func BenchmarkJournalCommits(b *testing.B) {
	for _, agents := range []int{10, 100, 1000} {
		for _, mode := range []string{"interval", "grouped", "single"} {
			name := fmt.Sprintf("agents=%d/%s", agents, mode)
			b.Run(name, func(b *testing.B) {
				for range b.N {
					r := simulateCommits(b, agents, mode, 3*time.Second, 250*time.Millisecond)
					b.ReportMetric(r.commitsPerSec, "commits/s")
					b.ReportMetric(r.putsPerSec, "journal-PUT/s")
					b.ReportMetric(float64(r.p50.Microseconds())/1000, "p50-ms")
					b.ReportMetric(float64(r.p99.Microseconds())/1000, "p99-ms")
				}
			})
		}
	}
}

type commitSim struct {
	commitsPerSec, putsPerSec float64
	p50, p99                  time.Duration
}

func simulateCommits(b *testing.B, agents int, mode string, run, every time.Duration) commitSim {
	b.Helper()
	mem := tier.NewMemBucket()
	bucket := tiertest.NewFaulty(mem)
	cfg := Config{
		Bucket: bucket, AgentID: 0, LeaseTTL: time.Hour, PollInterval: time.Hour,
		Logger: slog.New(slog.DiscardHandler),
	}
	switch mode {
	case "grouped":
		cfg.FlushCommitInterval = -1
	case "single":
		cfg.NoGroupCommit = true
	}
	ctrl, err := Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer ctrl.Close()
	if ok, err := ctrl.Campaign(context.Background()); err != nil || !ok {
		b.Fatalf("campaign: %v %v", ok, err)
	}
	// The cluster: the agents, and a topic of one partition per agent,
	// each led by its agent.
	topic := uuid.New()
	specs := make([]PartitionSpec, agents)
	var setup []Command
	for i := range agents {
		id := int32(i + 1)
		setup = append(setup, RegisterAgent{Agent: AgentInfo{ID: id, Addr: fmt.Sprintf("a%d:9092", id)}})
		specs[i] = PartitionSpec{Replicas: []int32{id}, Leader: id}
	}
	setup = append(setup, CreateTopic{ID: topic, Name: "sim", Partitions: specs})
	if _, err := ctrl.Propose(context.Background(), setup...); err != nil {
		b.Fatal(err)
	}
	st := ctrl.State()
	epochs := make([]int32, agents)
	for i := range agents {
		p, _ := st.Partition(topic, int32(i))
		epochs[i] = p.LeaderEpoch
	}
	bucket.SetLatency(tiertest.OpPut, 20*time.Millisecond)
	bucket.SetLatency(tiertest.OpPutIfAbsent, 20*time.Millisecond)
	bucket.SetLatency(tiertest.OpPutIfMatch, 20*time.Millisecond)
	bucket.SetLatency(tiertest.OpGet, 10*time.Millisecond)
	bucket.SetLatency(tiertest.OpList, 10*time.Millisecond)
	bucket.SetLatency(tiertest.OpStat, 10*time.Millisecond) // each commit's object is checked
	puts0 := bucket.Counts()[tiertest.OpPutIfAbsent]

	var (
		mu        sync.Mutex
		latencies []time.Duration
		wg        sync.WaitGroup
	)
	start := time.Now()
	stop := start.Add(run)
	for i := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Spread the agents' flush ticks over the interval.
			time.Sleep(time.Duration(i) * every / time.Duration(agents))
			next := int64(0)
			for n := 0; time.Now().Before(stop); n++ {
				// The upload is the flusher's, not the journal's: it
				// goes to the bucket uncharged.
				key := fmt.Sprintf("data/%d/%d.seg", i, n)
				if _, err := mem.Put(context.Background(), key, make([]byte, 4096)); err != nil {
					b.Error(err)
					return
				}
				t0 := time.Now()
				_, err := ctrl.Propose(context.Background(), CommitSegments{Commits: []CommitSegment{{
					TopicID: topic, Partition: int32(i), LeaderEpoch: epochs[i],
					Ref: SegmentRef{Object: key, Length: 4096,
						FirstOffset: next, LastOffset: next + 99, LeaderEpoch: epochs[i]},
				}}})
				if err != nil {
					b.Errorf("agent %d commit %d: %v", i, n, err)
					return
				}
				next += 100
				mu.Lock()
				latencies = append(latencies, time.Since(t0))
				mu.Unlock()
				if wait := every - time.Since(t0); wait > 0 {
					time.Sleep(wait)
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	slices.Sort(latencies)
	q := func(f float64) time.Duration {
		if len(latencies) == 0 {
			return 0
		}
		return latencies[min(len(latencies)-1, int(f*float64(len(latencies))))]
	}
	return commitSim{
		commitsPerSec: float64(len(latencies)) / elapsed.Seconds(),
		putsPerSec:    float64(bucket.Counts()[tiertest.OpPutIfAbsent]-puts0) / elapsed.Seconds(),
		p50:           q(0.50), p99: q(0.99),
	}
}
