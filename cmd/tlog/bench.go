package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
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
					&cli.IntFlag{Name: "txn-records", Value: 0, Usage: "transactional producer committing every `N` records (0: not transactional)"},
					&cli.StringFlag{Name: "compression", Value: "none", Usage: "none, gzip, snappy, lz4 or zstd"},
					&cli.StringFlag{Name: "payload", Value: "random", Usage: "random (incompressible) or text (JSON-like, compresses about 5x)"},
				}, common...),
				Action: benchProduce,
			},
			{
				Name:  "e2e",
				Usage: "produce at a fixed rate while a consumer reads; report ack and end-to-end latency",
				Flags: append([]cli.Flag{
					&cli.IntFlag{Name: "records", Aliases: []string{"n"}, Value: 50_000, Usage: "records to send"},
					&cli.IntFlag{Name: "record-size", Value: 1024, Usage: "value bytes per record (at least 8: the send time)"},
					&cli.IntFlag{Name: "rate", Value: 5000, Usage: "records per second (0: as fast as --max-buffered allows)"},
					&cli.DurationFlag{Name: "linger", Value: 0, Usage: "producer linger"},
					&cli.IntFlag{Name: "max-buffered", Value: 10_000, Usage: "records in flight at most"},
				}, common...),
				Action: benchE2E,
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
	if errors.Is(err, kerr.TopicAlreadyExists) {
		return nil
	}
	if err != nil {
		seeds, _ := cl.OptValue(kgo.SeedBrokers).([]string)
		return fail(1, "cannot reach a tlog agent at %s (set --brokers or TLOG_BROKERS): %v", strings.Join(seeds, ","), err)
	}
	if resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
		return fail(1, "create topic %s: %v", topic, resp.Err)
	}
	return nil
}

// endOffsets lists the end offset of every partition of topic, asking
// again for up to 30 s while the answer carries an error: a topic created
// a moment ago may not have reached the agent asked yet, or a partition
// may still be without a leader.
func endOffsets(ctx context.Context, adm *kadm.Client, topic string) (map[int32]int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			out := map[int32]int64{}
			ends.Each(func(o kadm.ListedOffset) { out[o.Partition] = o.Offset })
			if len(out) > 0 {
				return out, nil
			}
			err = fmt.Errorf("no partitions listed")
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(100 * time.Millisecond):
		}
	}
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
	sec, err := securityOpts(c)
	if err != nil {
		return err
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(brokers(c)...),
		kgo.DefaultProduceTopic(c.String("topic")),
		kgo.ProducerLinger(c.Duration("linger")),
		kgo.MaxBufferedRecords(c.Int("max-buffered")),
		kgo.ProducerBatchMaxBytes(1 << 20),
	}
	opts = append(opts, sec...)
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
	txnRecords := c.Int("txn-records")
	switch {
	case txnRecords < 0:
		return fail(2, "bad --txn-records %d: give 0 (not transactional) or more", txnRecords)
	case txnRecords > 0 && (c.String("acks") != "all" || !c.Bool("idempotent")):
		return fail(2, "--txn-records needs --acks all and --idempotent")
	case txnRecords > 0:
		var id [8]byte
		rand.Read(id[:])
		opts = append(opts, kgo.TransactionalID(fmt.Sprintf("tlog-bench-%x", id)))
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
	// compression can't flatter the figures; or text that compresses as
	// JSON events do, to measure what compression costs.
	pool := make([]byte, 64<<20+size)
	switch c.String("payload") {
	case "random":
		rand.Read(pool)
	case "text":
		words := []string{"order", "customer", "paid", "shipped", "sku", "qty", "price", "EUR", "warehouse", "status", "true", "false"}
		var r [8]byte
		for i := 0; i < len(pool); {
			rand.Read(r[:])
			w := fmt.Sprintf(`"%s":%d,`, words[int(r[0])%len(words)], binary.LittleEndian.Uint16(r[1:])%1000)
			i += copy(pool[i:], w)
		}
	default:
		return fail(2, "bad --payload %q: use random or text", c.String("payload"))
	}
	valueAt := func(i int) []byte {
		off := (i * size) % (len(pool) - size)
		return pool[off : off+size : off+size]
	}
	lat := make([]time.Duration, n)
	var acked, errs atomic.Int64
	var wg sync.WaitGroup
	stopProgress := liveRate(isTTY(os.Stderr), "produce", &acked, int64(n))
	start := time.Now()
	var txnErr error
	for i := 0; i < n && ctx.Err() == nil && txnErr == nil; i++ {
		i := i
		if txnRecords > 0 && i%txnRecords == 0 {
			if i > 0 {
				txnErr = endTxn(ctx, cl)
			}
			if txnErr == nil {
				txnErr = cl.BeginTransaction()
			}
		}
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
	if txnRecords > 0 && txnErr == nil {
		txnErr = endTxn(ctx, cl)
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	if txnErr != nil {
		return fail(1, "transaction: %v", txnErr)
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	mode := fmt.Sprintf("produce acks=%s", c.String("acks"))
	if txnRecords > 0 {
		mode += fmt.Sprintf(" txn=%d", txnRecords)
	}
	res := benchResult{
		Mode: mode, Records: acked.Load(),
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

// endTxn flushes what the transaction produced and commits it.
func endTxn(ctx context.Context, cl *kgo.Client) error {
	if err := cl.Flush(ctx); err != nil {
		return err
	}
	return cl.EndTransaction(ctx, kgo.TryCommit)
}

func benchConsume(c *cli.Context) error {
	n := int64(c.Int("records"))
	sec, err := securityOpts(c)
	if err != nil {
		return err
	}
	cl, err := kgo.NewClient(append(sec,
		kgo.SeedBrokers(brokers(c)...),
		kgo.ConsumeTopics(c.String("topic")),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20),
		kgo.FetchMaxPartitionBytes(8<<20),
	)...)
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
	stopProgress := liveRate(isTTY(os.Stderr), "consume", &count, n)
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

// benchE2E produces at a fixed rate while a consumer reads from the end
// of the topic, each value carrying its send time, and reports produce
// acknowledgement latency and end-to-end latency (send to receipt).
func benchE2E(c *cli.Context) error {
	n, size, rate := c.Int("records"), c.Int("record-size"), c.Int("rate")
	if n <= 0 || size < 8 || rate < 0 {
		return fail(2, "--records must be positive, --record-size at least 8 and --rate not negative")
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	topic := c.String("topic")
	sec, err := securityOpts(c)
	if err != nil {
		return err
	}
	prod, err := kgo.NewClient(append(sec, kgo.SeedBrokers(brokers(c)...), kgo.DefaultProduceTopic(topic),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.ProducerLinger(c.Duration("linger")),
		kgo.MaxBufferedRecords(c.Int("max-buffered")))...)
	if err != nil {
		return fail(2, "%v", err)
	}
	defer prod.Close()
	if err := ensureTopic(ctx, prod, topic, c.Int("partitions"), c.Int("replication-factor")); err != nil {
		return err
	}
	// Start the consumer at the current end of every partition.
	ends, err := endOffsets(ctx, kadm.NewClient(prod), topic)
	if err != nil {
		return fail(1, "list offsets of %s: %v", topic, err)
	}
	from := map[int32]kgo.Offset{}
	for p, o := range ends {
		from[p] = kgo.NewOffset().At(o)
	}
	cons, err := kgo.NewClient(append(sec, kgo.SeedBrokers(brokers(c)...),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: from}), kgo.FetchMaxWait(100*time.Millisecond))...)
	if err != nil {
		return fail(2, "%v", err)
	}
	defer cons.Close()

	e2e := make([]time.Duration, 0, n)
	var got atomic.Int64
	consumed := make(chan error, 1)
	go func() {
		for got.Load() < int64(n) {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				consumed <- ctx.Err()
				return
			}
			if errs := fs.Errors(); len(errs) > 0 {
				consumed <- fmt.Errorf("fetch %s/%d: %v", errs[0].Topic, errs[0].Partition, errs[0].Err)
				return
			}
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				if len(r.Value) >= 8 {
					e2e = append(e2e, now.Sub(time.Unix(0, int64(binary.BigEndian.Uint64(r.Value)))))
					got.Add(1)
				}
			})
		}
		consumed <- nil
	}()

	ack := make([]time.Duration, n)
	var acked, errs atomic.Int64
	var wg sync.WaitGroup
	stopProgress := liveRate(isTTY(os.Stderr), "e2e", &got, int64(n))
	start := time.Now()
	for i := 0; i < n && ctx.Err() == nil; i++ {
		if rate > 0 {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(rate))); d > 0 {
				time.Sleep(d)
			}
		}
		v := make([]byte, size)
		rand.Read(v[8:])
		sent := time.Now()
		binary.BigEndian.PutUint64(v, uint64(sent.UnixNano()))
		wg.Add(1)
		prod.Produce(ctx, &kgo.Record{Value: v}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			ack[i] = time.Since(sent)
			if err != nil {
				errs.Add(1)
				return
			}
			acked.Add(1)
		})
	}
	wg.Wait()
	produced := time.Since(start)
	cerr := <-consumed
	stopProgress()
	if cerr != nil {
		return fail(1, "consumer: %v (read %d of %d)", cerr, got.Load(), n)
	}
	sort.Slice(ack, func(i, j int) bool { return ack[i] < ack[j] })
	sort.Slice(e2e, func(i, j int) bool { return e2e[i] < e2e[j] })
	res := e2eResult{
		benchResult: benchResult{
			Mode: "e2e", Records: acked.Load(), Bytes: acked.Load() * int64(size), Seconds: produced.Seconds(), Errors: errs.Load(),
			P50Ms: percentile(ack, 0.50), P99Ms: percentile(ack, 0.99), P999Ms: percentile(ack, 0.999), MaxMs: percentile(ack, 1),
		},
		E2EP50Ms: percentile(e2e, 0.50), E2EP99Ms: percentile(e2e, 0.99), E2EP999Ms: percentile(e2e, 0.999), E2EMaxMs: percentile(e2e, 1),
	}
	for _, q := range curveQuantiles {
		res.E2ECurve = append(res.E2ECurve, [2]float64{q, percentile(e2e, q)})
	}
	res.RecordsSec = float64(res.Records) / res.Seconds
	res.MiBSec = float64(res.Bytes) / (1 << 20) / res.Seconds
	if c.String("format") == "json" {
		b, _ := json.Marshal(res)
		fmt.Fprintln(c.App.Writer, string(b))
	} else {
		res.benchResult.print(c.App.Writer, "text")
		fmt.Fprintf(c.App.Writer, "end to end: p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms, max %.2f ms\n", res.E2EP50Ms, res.E2EP99Ms, res.E2EP999Ms, res.E2EMaxMs)
	}
	if res.Errors > 0 {
		return fail(1, "%d produce errors", res.Errors)
	}
	return nil
}

type e2eResult struct {
	benchResult
	E2EP50Ms  float64 `json:"e2e_p50_ms"`
	E2EP99Ms  float64 `json:"e2e_p99_ms"`
	E2EP999Ms float64 `json:"e2e_p999_ms"`
	E2EMaxMs  float64 `json:"e2e_max_ms"`
	// E2ECurve is the end-to-end latency at curveQuantiles: [quantile, ms].
	E2ECurve [][2]float64 `json:"e2e_curve"`
}

// curveQuantiles are where e2e reports its latency curve (for charts).
var curveQuantiles = []float64{0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 1}

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
