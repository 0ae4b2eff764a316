// Command tailread measures a consumer keeping up at the tail: it creates
// a fresh topic, starts a consumer on it, then produces -n records (as fast
// as allowed, or at -rate bytes per second) and reports produce and consume
// throughput over the same window, how far behind the consumer finished,
// and end-to-end latency (produce call to record consumed). One JSON line.
//
//	tailread -brokers 127.0.0.1:9092 -topic tail -partitions 16 -n 262144 [-rate 20971520]
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

type result struct {
	Records         int64   `json:"records"`
	MiB             float64 `json:"mib"`
	RateLimit       int     `json:"rate_limit_bytes_per_sec,omitempty"`
	ProduceSeconds  float64 `json:"produce_seconds"`
	ProduceMiBSec   float64 `json:"produce_mib_per_sec"`
	ConsumeSeconds  float64 `json:"consume_seconds"`
	ConsumeMiBSec   float64 `json:"consume_mib_per_sec"`
	ConsumeRecSec   float64 `json:"consume_records_per_sec"`
	FinishedAfterMs float64 `json:"consumer_done_after_last_ack_ms"`
	P50Ms           float64 `json:"e2e_p50_ms"`
	P99Ms           float64 `json:"e2e_p99_ms"`
	MaxMs           float64 `json:"e2e_max_ms"`
}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "tlog agent")
	topic := flag.String("topic", "tail", "topic (must be new: the consumer starts at offset 0)")
	parts := flag.Int("partitions", 16, "partitions")
	n := flag.Int("n", 262_144, "records")
	size := flag.Int("record-size", 1024, "value bytes per record")
	rate := flag.Int("rate", 0, "bytes per second to produce at (0: as fast as allowed)")
	flag.Parse()
	res, err := run(*brokers, *topic, *parts, *n, *size, *rate)
	if err != nil {
		fmt.Fprintln(os.Stderr, "tailread:", err)
		os.Exit(1)
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
}

func run(brokers, topic string, parts, n, size, rate int) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	prod, err := kgo.NewClient(
		kgo.SeedBrokers(brokers),
		kgo.DefaultProduceTopic(topic),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.MaxBufferedRecords(10_000),
		kgo.ProducerBatchMaxBytes(1<<20),
	)
	if err != nil {
		return result{}, err
	}
	defer prod.Close()
	resp, err := kadm.NewClient(prod).CreateTopic(ctx, int32(parts), 1, nil, topic)
	if err != nil {
		return result{}, err
	}
	if resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
		return result{}, resp.Err
	}
	cons, err := kgo.NewClient(
		kgo.SeedBrokers(brokers),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxBytes(64<<20),
		kgo.FetchMaxPartitionBytes(8<<20),
	)
	if err != nil {
		return result{}, err
	}
	defer cons.Close()

	// The consumer: latency of every record, and when the first and last
	// arrived.
	lat := make([]time.Duration, 0, n)
	var lastRead time.Time
	var readBytes int64
	consumed := make(chan error, 1)
	go func() {
		for len(lat) < n {
			fs := cons.PollFetches(ctx)
			if ctx.Err() != nil {
				consumed <- fmt.Errorf("read %d of %d records: %w", len(lat), n, ctx.Err())
				return
			}
			if errs := fs.Errors(); len(errs) > 0 {
				consumed <- fmt.Errorf("fetch %s/%d: %w", errs[0].Topic, errs[0].Partition, errs[0].Err)
				return
			}
			now := time.Now()
			fs.EachRecord(func(r *kgo.Record) {
				lat = append(lat, now.Sub(r.Timestamp))
				readBytes += int64(len(r.Value))
			})
			lastRead = now
		}
		consumed <- nil
	}()
	// Let the consumer find the topic and issue its first fetch.
	time.Sleep(time.Second)

	pool := make([]byte, 64<<20+size)
	rand.Read(pool)
	var wg sync.WaitGroup
	var errs atomic.Int64
	var lastAck atomic.Int64
	start := time.Now()
	for i := 0; i < n; i++ {
		if rate > 0 {
			if d := time.Duration(float64(i*size) / float64(rate) * float64(time.Second)); time.Since(start) < d {
				time.Sleep(d - time.Since(start))
			}
		}
		off := (i * size) % (len(pool) - size)
		wg.Add(1)
		prod.Produce(ctx, &kgo.Record{Value: pool[off : off+size : off+size]}, func(_ *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				errs.Add(1)
			}
			lastAck.Store(time.Now().UnixNano())
		})
	}
	wg.Wait()
	produced := time.Since(start)
	if errs.Load() > 0 {
		return result{}, fmt.Errorf("%d produce errors", errs.Load())
	}
	if err := <-consumed; err != nil {
		return result{}, err
	}
	slices.Sort(lat)
	pct := func(p float64) float64 { return float64(lat[int(float64(len(lat)-1)*p)].Microseconds()) / 1000 }
	mib := float64(readBytes) / (1 << 20)
	consumeSecs := lastRead.Sub(start).Seconds()
	return result{
		Records: int64(len(lat)), MiB: mib, RateLimit: rate,
		ProduceSeconds: produced.Seconds(), ProduceMiBSec: float64(n*size) / (1 << 20) / produced.Seconds(),
		ConsumeSeconds: consumeSecs, ConsumeMiBSec: mib / consumeSecs, ConsumeRecSec: float64(len(lat)) / consumeSecs,
		FinishedAfterMs: float64(lastRead.UnixNano()-lastAck.Load()) / 1e6,
		P50Ms:           pct(0.5), P99Ms: pct(0.99), MaxMs: pct(1),
	}, nil
}
