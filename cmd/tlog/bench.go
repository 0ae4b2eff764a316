package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"
)

func benchCommand() *cli.Command {
	common := []cli.Flag{
		&cli.StringFlag{Name: "topic", Value: "tlog-bench", Usage: "topic to use (created if missing)"},
		&cli.IntFlag{Name: "partitions", Value: 8, Usage: "partitions when creating the topic"},
		&cli.IntFlag{Name: "replication-factor", Value: -1, Usage: "replication factor when creating the topic (-1: cluster default)"},
		&cli.StringFlag{Name: "format", Value: "text", Usage: "text or json"},
	}
	return &cli.Command{
		Name:  "bench",
		Usage: "measure produce, consume and end-to-end throughput and latency",
		Subcommands: []*cli.Command{
			{
				Name:  "produce",
				Usage: "produce records as fast as allowed and report throughput and ack latency",
				Flags: append([]cli.Flag{
					&cli.IntFlag{Name: "records", Aliases: []string{"n"}, Value: 200_000, Usage: "records to send"},
					&cli.IntFlag{Name: "record-size", Value: 1024, Usage: "value bytes per record"},
					&cli.StringFlag{Name: "acks", Value: "all", Usage: "all, 1 or 0"},
					&cli.DurationFlag{Name: "linger", Value: 5 * time.Millisecond, Usage: "producer linger"},
					&cli.IntFlag{Name: "max-buffered", Value: 10_000, Usage: "records in flight at most (bounds queueing in the latency figures)"},
					&cli.BoolFlag{Name: "idempotent", Value: true, Usage: "idempotent producer (needs acks=all)"},
					&cli.StringFlag{Name: "compression", Value: "none", Usage: "none, gzip, snappy, lz4 or zstd"},
				}, common...),
				Action: benchProduce,
			},
			{
				Name:   "consume",
				Usage:  "read the topic from the start and report throughput",
				Flags:  append([]cli.Flag{&cli.IntFlag{Name: "records", Aliases: []string{"n"}, Value: 200_000, Usage: "records to read"}}, common...),
				Action: benchConsume,
			},
		},
	}
}

type benchResult struct {
	Mode       string  `json:"mode"`
	Records    int64   `json:"records"`
	Bytes      int64   `json:"bytes"`
	Seconds    float64 `json:"seconds"`
	RecordsSec float64 `json:"records_per_sec"`
	MiBSec     float64 `json:"mib_per_sec"`
	P50Ms      float64 `json:"p50_ms,omitempty"`
	P99Ms      float64 `json:"p99_ms,omitempty"`
	P999Ms     float64 `json:"p999_ms,omitempty"`
	MaxMs      float64 `json:"max_ms,omitempty"`
	Errors     int64   `json:"errors"`
}

func (r benchResult) print(w io.Writer, format string) {
	if format == "json" {
		b, _ := json.Marshal(r)
		fmt.Fprintln(w, string(b))
		return
	}
	fmt.Fprintf(w, "%s: %d records, %.1f MiB in %.2fs: %.0f records/s, %.1f MiB/s",
		r.Mode, r.Records, float64(r.Bytes)/(1<<20), r.Seconds, r.RecordsSec, r.MiBSec)
	if r.P50Ms > 0 {
		fmt.Fprintf(w, "; latency p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms", r.P50Ms, r.P99Ms, r.P999Ms, r.MaxMs)
	}
	if r.Errors > 0 {
		fmt.Fprintf(w, "; %d errors", r.Errors)
	}
	fmt.Fprintln(w)
}

func brokers(c *cli.Context) []string {
	var out []string
	for _, b := range strings.Split(c.String("brokers"), ",") {
		if b = strings.TrimSpace(b); b != "" {
			out = append(out, b)
		}
	}
	return out
}

func ensureTopic(ctx context.Context, cl *kgo.Client, topic string, partitions, rf int) error {
	adm := kadm.NewClient(cl)
	resp, err := adm.CreateTopic(ctx, int32(partitions), int16(rf), nil, topic)
	if err != nil {
		return fail(1, "cannot reach a broker at %v: %v", cl.OptValue(kgo.SeedBrokers), err)
	}
	if resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
		return fail(1, "create topic %s: %v", topic, resp.Err)
	}
	return nil
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progress prints a live rate line on stderr while work runs, if stderr is
// a terminal.
func progress(ctx context.Context, label string, count *atomic.Int64, total int64) func() {
	if !isTerminal(os.Stderr) {
		return func() {}
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		last, lastT := int64(0), time.Now()
		for {
			select {
			case <-done:
				fmt.Fprint(os.Stderr, "\r\033[K")
				return
			case <-ctx.Done():
				return
			case now := <-t.C:
				n := count.Load()
				rate := float64(n-last) / now.Sub(lastT).Seconds()
				last, lastT = n, now
				fmt.Fprintf(os.Stderr, "\r\033[K%s %d/%d (%.0f%%) %.0f records/s", label, n, total, 100*float64(n)/float64(total), rate)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p)
	return float64(sorted[i].Microseconds()) / 1000
}

func benchProduce(c *cli.Context) error {
	n := c.Int("records")
	size := c.Int("record-size")
	if n <= 0 || size < 0 {
		return fail(2, "--records must be positive and --record-size not negative")
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers(c)...),
		kgo.DefaultProduceTopic(c.String("topic")),
		kgo.ProducerLinger(c.Duration("linger")),
		kgo.MaxBufferedRecords(c.Int("max-buffered")),
		kgo.ProducerBatchMaxBytes(1 << 20),
	}
	codec, err := compressionCodec(c.String("compression"))
	if err != nil {
		return err
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec))
	switch c.String("acks") {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return fail(2, "bad --acks %q: use all, 1 or 0", c.String("acks"))
	}
	if !c.Bool("idempotent") {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return fail(2, "%v", err)
	}
	defer cl.Close()
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt)
	defer stop()
	if err := ensureTopic(ctx, cl, c.String("topic"), c.Int("partitions"), c.Int("replication-factor")); err != nil {
		return err
	}

	// Distinct random values from a pool larger than any batch, so
	// compression can't flatter the figures.
	pool := make([]byte, 64<<20+size)
	rand.Read(pool)
	valueAt := func(i int) []byte {
		off := (i * size) % (len(pool) - size)
		return pool[off : off+size : off+size]
	}
	lat := make([]time.Duration, n)
	var acked, errs atomic.Int64
	var wg sync.WaitGroup
	stopProgress := progress(ctx, "produce", &acked, int64(n))
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		i := i
		sent := time.Now()
		wg.Add(1)
		cl.Produce(ctx, &kgo.Record{Value: valueAt(i)}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			lat[i] = time.Since(sent)
			if err != nil {
				errs.Add(1)
				return
			}
			acked.Add(1)
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	res := benchResult{
		Mode: fmt.Sprintf("produce acks=%s", c.String("acks")), Records: acked.Load(),
		Bytes: acked.Load() * int64(size), Seconds: elapsed.Seconds(), Errors: errs.Load(),
		P50Ms: percentile(lat, 0.50), P99Ms: percentile(lat, 0.99), P999Ms: percentile(lat, 0.999), MaxMs: percentile(lat, 1),
	}
	res.RecordsSec = float64(res.Records) / res.Seconds
	res.MiBSec = float64(res.Bytes) / (1 << 20) / res.Seconds
	res.print(c.App.Writer, c.String("format"))
	if res.Errors > 0 {
		return fail(1, "%d produce errors", res.Errors)
	}
	return nil
}

func benchConsume(c *cli.Context) error {
	n := int64(c.Int("records"))
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers(c)...),
		kgo.ConsumeTopics(c.String("topic")),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20),
		kgo.FetchMaxPartitionBytes(8<<20),
	)
	if err != nil {
		return fail(2, "%v", err)
	}
	defer cl.Close()
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	var count atomic.Int64
	var bytes int64
	stopProgress := progress(ctx, "consume", &count, n)
	start := time.Now()
	for count.Load() < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			break
		}
		if errs := fs.Errors(); len(errs) > 0 {
			stopProgress()
			return fail(1, "fetch %s/%d: %v", errs[0].Topic, errs[0].Partition, errs[0].Err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			count.Add(1)
			bytes += int64(len(r.Value) + len(r.Key))
		})
	}
	elapsed := time.Since(start)
	stopProgress()
	res := benchResult{Mode: "consume", Records: count.Load(), Bytes: bytes, Seconds: elapsed.Seconds()}
	res.RecordsSec = float64(res.Records) / res.Seconds
	res.MiBSec = float64(res.Bytes) / (1 << 20) / res.Seconds
	res.print(c.App.Writer, c.String("format"))
	if res.Records < n {
		return fail(1, "read %d of %d records before the time limit", res.Records, n)
	}
	return nil
}

func compressionCodec(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none", "":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.NoCompression(), fail(2, "bad --compression %q: use none, gzip, snappy, lz4 or zstd", name)
}
