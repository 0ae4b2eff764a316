// Command compaction measures what compaction does to a partition manifest
// under a steady trickle: it runs one in-process agent on a directory
// bucket, produces at a fixed record rate spread over many partitions, and
// every interval prints the manifest entries per partition, the metadata
// snapshot size and the objects a replay of one partition reads, against
// the number of flushes (what a replay would read without compaction).
//
//	go run ./bench/compaction -partitions 100 -rate 100 -duration 10m
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tier/fs"
)

func main() {
	parts := flag.Int("partitions", 100, "partitions")
	rate := flag.Int("rate", 100, "records per second, spread round-robin")
	dur := flag.Duration("duration", 10*time.Minute, "how long to produce")
	every := flag.Duration("report", 30*time.Second, "report interval")
	compact := flag.Duration("compact-interval", 30*time.Second, "compaction interval")
	flag.Parse()
	if err := run(*parts, *rate, *dur, *every, *compact); err != nil {
		fmt.Fprintln(os.Stderr, "compaction:", err)
		os.Exit(1)
	}
}

func run(parts, rate int, dur, every, compact time.Duration) error {
	dir, err := os.MkdirTemp("", "tlog-compaction-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bucket, err := fs.New(dir + "/bucket")
	if err != nil {
		return err
	}
	ctx := context.Background()
	a, err := agent.Start(ctx, agent.Config{
		DataDir: dir, Listen: "127.0.0.1:0", Bucket: bucket, AutoCreateTopics: true,
		CompactInterval: compact, RetentionInterval: compact, OrphanGrace: time.Minute,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return err
	}
	defer a.Close()
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	if err != nil {
		return err
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, int32(parts), 1, nil, "trickle"); err != nil {
		return err
	}
	fmt.Printf("%d partitions, %d records/s, %v, compaction every %v, flush every 250 ms\n\n", parts, rate, dur, compact)
	fmt.Println("| elapsed | records | flushes | manifest entries/partition (max / mean) | objects a replay of partition 0 reads (now / without compaction) | metadata snapshot |")
	fmt.Println("|---|---|---|---|---|---|")
	tick := time.NewTicker(time.Second / time.Duration(rate))
	defer tick.Stop()
	report := time.NewTicker(every)
	defer report.Stop()
	start := time.Now()
	// flushesWith counts, for partition 0, the flushes that held it: what a
	// replay of it reads with no compaction.
	seen := map[string]bool{}
	flushesWith := 0
	track := func() {
		for _, o := range a.Manifest("trickle")[0] {
			if !seen[o] && !strings.HasSuffix(o, ".c.seg") {
				seen[o] = true
				flushesWith++
			}
		}
	}
	n := 0
	for time.Since(start) < dur {
		select {
		case <-tick.C:
			cl.Produce(ctx, &kgo.Record{Topic: "trickle", Partition: int32(n % parts), Value: fmt.Appendf(nil, "r-%d", n)}, nil)
			n++
		case <-report.C:
			track()
			printRow(a, start, n, flushesWith)
		}
		if n%(rate/4+1) == 0 {
			track()
		}
	}
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	time.Sleep(compact + 2*time.Second)
	track()
	printRow(a, start, n, flushesWith)
	return nil
}

func printRow(a *agent.Agent, start time.Time, n, flushesWith int) {
	m := a.Manifest("trickle")
	maxE, total := 0, 0
	for _, p := range m {
		maxE = max(maxE, len(p))
		total += len(p)
	}
	size, _ := a.MetadataBytes()
	st := a.Stats()
	fmt.Printf("| %v | %d | %d | %d / %.1f | %d / %d | %.1f KiB |\n",
		time.Since(start).Round(time.Second), n, st.Flushes, maxE, float64(total)/float64(len(m)), len(m[0]), flushesWith, float64(size)/1024)
}
