// Command suite runs tlog's benchmark suite (`task bench`): the same
// workloads against franz-go's kfake, tlog dev on MinIO (--wal-sync never
// and always), three tlog agents at RF=3, and NATS JetStream R1 and R3,
// side by side in interleaved rounds on one machine; then a cold replay of
// 1 GiB from MinIO against raw GETs of the same objects, produce with ten
// times more data retained in the bucket, and the metadata journal's
// simulation. It writes the figures as ratios into docs/benchmarks.md
// (between the suite's markers) and charts into docs/bench/.
//
// It is a module of its own so that kfake, the NATS client and the
// plotting library stay out of tlog's dependencies.
//
//	cd bench/suite && go run . -repo ../..
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"
)

type options struct {
	repo       string
	records    int           // per produce and read-back
	rounds     int           // interleaved rounds over the targets
	e2eRecords int           // at e2eRate
	e2eRate    int           // records a second
	coldBytes  int64         // cold replay size
	fill       int           // retained data, as a multiple of records
	skipNATS   bool          // no NATS targets (nats-server absent)
	only       string        // run only the targets whose names contain it
	write      bool          // write docs/benchmarks.md and charts
	timeout    time.Duration // the whole run
}

func main() {
	var o options
	flag.StringVar(&o.repo, "repo", "../..", "the tlog repository (built, and where docs/ is written)")
	flag.IntVar(&o.records, "records", 200_000, "records of 1 KiB per produce and read-back")
	flag.IntVar(&o.rounds, "rounds", 2, "interleaved rounds over the targets")
	flag.IntVar(&o.e2eRecords, "e2e-records", 20_000, "records in the end-to-end latency run")
	flag.IntVar(&o.e2eRate, "e2e-rate", 2000, "records a second in the end-to-end latency run")
	flag.Int64Var(&o.coldBytes, "cold-bytes", 1<<30, "bytes produced, then replayed from the bucket with the WAL deleted")
	flag.IntVar(&o.fill, "fill", 10, "data retained in the bucket before the second produce, as a multiple of -records")
	flag.BoolVar(&o.skipNATS, "skip-nats", false, "leave NATS JetStream out")
	flag.StringVar(&o.only, "only", "", "run only the targets whose names contain this, or \"scale\" or \"cold\" for that phase alone (and write nothing)")
	flag.BoolVar(&o.write, "write", true, "write docs/benchmarks.md and docs/bench/*.svg")
	flag.DurationVar(&o.timeout, "timeout", 25*time.Minute, "give up after this long")
	flag.Parse()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if err := run(ctx, log, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench suite:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, o options) error {
	repo, err := filepath.Abs(o.repo)
	if err != nil {
		return err
	}
	o.repo = repo
	tmp, err := os.MkdirTemp("", "tlog-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	env, err := setup(ctx, log, o, tmp)
	if err != nil {
		return err
	}
	defer env.close()

	res := &results{Started: time.Now().UTC(), Options: o}
	res.Commit, res.Machine = gitCommit(ctx, repo), machine()
	steal0 := readCPU()
	for round := 1; round <= o.rounds; round++ {
		for _, t := range env.targets(o) {
			if o.only != "" && !strings.Contains(t.name, o.only) {
				continue
			}
			log.Info("target", "round", round, "name", t.name)
			m, err := env.measure(ctx, t, round)
			if err != nil {
				return fmt.Errorf("round %d, %s: %w", round, t.name, err)
			}
			res.Runs = append(res.Runs, m)
		}
	}
	switch o.only { // one phase alone, to try it
	case "scale":
		sc, err := env.memoryAtScale(ctx, 1000, 1000)
		fmt.Printf("%+v\n", sc)
		return err
	case "cold":
		c, err := env.coldReplay(ctx)
		fmt.Printf("%+v\n", c)
		return err
	}
	if o.only != "" {
		for _, m := range res.Runs {
			fmt.Printf("%+v\n", m)
		}
		return nil
	}
	log.Info("cold replay")
	if res.Cold, err = env.coldReplay(ctx); err != nil {
		return fmt.Errorf("cold replay: %w", err)
	}
	log.Info("cold replay done", "replay_mib_s", res.Cold.ReplayMiB, "raw_get_mib_s", res.Cold.RawMiB)
	log.Info("produce with data retained")
	if res.Retained, err = env.retained(ctx); err != nil {
		return fmt.Errorf("retained: %w", err)
	}
	log.Info("memory with many partitions and connections")
	if res.Scale, err = env.memoryAtScale(ctx, 1000, 1000); err != nil {
		return fmt.Errorf("memory at scale: %w", err)
	}
	log.Info("metadata journal")
	if res.Journal, err = journal(ctx, repo); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	res.StealPct = readCPU().stealSince(steal0)
	res.Took = time.Since(res.Started)
	md := res.markdown()
	fmt.Println(md)
	if !o.write {
		return nil
	}
	if err := res.charts(filepath.Join(repo, "docs", "bench")); err != nil {
		return fmt.Errorf("charts: %w", err)
	}
	return writeSection(filepath.Join(repo, "docs", "benchmarks.md"), md)
}
