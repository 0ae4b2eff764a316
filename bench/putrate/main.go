// Command putrate measures how many PUTs one tlog agent makes to its bucket
// at a fixed byte rate spread round-robin over N partitions. The flusher
// seals all partitions into one segment object per flush, so the figure
// should not depend on N. It counts segment objects (one PUT each) by
// listing the bucket before and after the measured window, and every
// PutObject (segments, journal entries, lease renewals) from MinIO's own
// request counter; with -admin, it also reads the agent's own count of
// flushes and bucket writes from its /metrics. It prints one JSON line.
//
//	putrate -brokers 127.0.0.1:9092 -partitions 100 -rate 4194304 -duration 20s \
//	  -endpoint http://127.0.0.1:9000 -bucket bench -prefix putrate-100 [-admin http://127.0.0.1:9644]
//
// bench/put-rate.sh runs it for 1, 100 and 1,000 partitions.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/bench/internal/s3bench"
)

type result struct {
	Partitions       int     `json:"partitions"`
	Seconds          float64 `json:"seconds"`
	Records          int64   `json:"records"`
	MiBPerSec        float64 `json:"mib_per_sec"`
	SegmentPUTs      int     `json:"segment_puts"`
	SegmentPUTsSec   float64 `json:"segment_puts_per_sec"`
	SegmentMeanBytes float64 `json:"segment_mean_bytes"`
	PutObject        float64 `json:"put_object"`
	PutObjectSec     float64 `json:"put_object_per_sec"`
	Flushes          float64 `json:"tlog_flushes,omitempty"`
	FlushesSec       float64 `json:"tlog_flushes_per_sec,omitempty"`
	BucketWrites     float64 `json:"tlog_bucket_writes,omitempty"`
	BucketWritesSec  float64 `json:"tlog_bucket_writes_per_sec,omitempty"`
	Errors           int64   `json:"errors"`
}

func main() {
	var tgt s3bench.Target
	tgt.Flags(flag.CommandLine)
	brokers := flag.String("brokers", "127.0.0.1:9092", "tlog agent")
	topic := flag.String("topic", "putrate", "topic (created with -partitions)")
	parts := flag.Int("partitions", 1, "partitions, written round-robin")
	rate := flag.Int("rate", 4<<20, "bytes per second (record values)")
	size := flag.Int("record-size", 1024, "value bytes per record")
	warmup := flag.Duration("warmup", 3*time.Second, "produce this long before measuring")
	dur := flag.Duration("duration", 20*time.Second, "measured window")
	admin := flag.String("admin", "", "the agent's admin URL (tlog dev --admin-listen), for its /metrics")
	flag.Parse()
	res, err := run(&tgt, *brokers, *admin, *topic, *parts, *rate, *size, *warmup, *dur)
	if err != nil {
		fmt.Fprintln(os.Stderr, "putrate:", err)
		os.Exit(1)
	}
	b, _ := json.Marshal(res)
	fmt.Println(string(b))
}

func run(tgt *s3bench.Target, brokers, admin, topic string, parts, rate, size int, warmup, dur time.Duration) (result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), warmup+dur+2*time.Minute)
	defer cancel()
	cl, err := kgo.NewClient(
		kgo.SeedBrokers(brokers),
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchCompression(kgo.NoCompression()),
		kgo.RecordDeliveryTimeout(time.Minute),
	)
	if err != nil {
		return result{}, err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).CreateTopic(ctx, int32(parts), 1, nil, topic)
	if err != nil {
		return result{}, err
	}
	if resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
		return result{}, resp.Err
	}

	value := make([]byte, size) // content is irrelevant to PUT counts
	var sent, acked, errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	// produceUntil keeps the byte rate from start: every 10 ms it sends
	// what is due, round-robin over the partitions.
	produceUntil := func(end time.Time) {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for now := time.Now(); now.Before(end); now = <-tick.C {
			due := int64(now.Sub(start).Seconds() * float64(rate) / float64(size))
			for n := sent.Load(); n < due; n++ {
				wg.Add(1)
				cl.Produce(ctx, &kgo.Record{Partition: int32(n % int64(parts)), Value: value}, func(_ *kgo.Record, err error) {
					defer wg.Done()
					if err != nil {
						errs.Add(1)
						return
					}
					acked.Add(1)
				})
				sent.Add(1)
			}
		}
	}
	type snap struct {
		at       time.Time
		segments map[string]int64
		puts     float64
		sent     int64
		flushes  float64
		writes   float64
	}
	take := func() (snap, error) {
		s := snap{at: time.Now(), sent: sent.Load(), segments: map[string]int64{}}
		flushed, _, err := tgt.Segments(ctx)
		if err != nil {
			return s, err
		}
		for _, o := range flushed {
			s.segments[o.Key] = o.Size
		}
		reqs, err := tgt.Requests(ctx)
		if err != nil {
			return s, err
		}
		s.puts = reqs["PutObject"]
		if admin != "" {
			m, err := s3bench.Scrape(ctx, admin+"/metrics")
			if err != nil {
				return s, err
			}
			s.flushes = s3bench.Sum(m, "tlog_flush_duration_seconds_count", nil)
			s.writes = s3bench.Sum(m, "tlog_bucket_requests_total", func(l map[string]string) bool {
				return strings.HasPrefix(l["op"], "put")
			})
		}
		return s, nil
	}

	produceUntil(start.Add(warmup))
	s0, err := take()
	if err != nil {
		return result{}, err
	}
	produceUntil(s0.at.Add(dur))
	s1, err := take()
	if err != nil {
		return result{}, err
	}
	wg.Wait()

	secs := s1.at.Sub(s0.at).Seconds()
	res := result{Partitions: parts, Seconds: secs, Records: s1.sent - s0.sent, Errors: errs.Load()}
	res.MiBPerSec = float64(res.Records*int64(size)) / (1 << 20) / secs
	var newBytes int64
	for k, sz := range s1.segments {
		if _, ok := s0.segments[k]; !ok {
			res.SegmentPUTs++
			newBytes += sz
		}
	}
	res.SegmentPUTsSec = float64(res.SegmentPUTs) / secs
	if res.SegmentPUTs > 0 {
		res.SegmentMeanBytes = float64(newBytes) / float64(res.SegmentPUTs)
	}
	res.PutObject = s1.puts - s0.puts
	res.PutObjectSec = res.PutObject / secs
	res.Flushes, res.BucketWrites = s1.flushes-s0.flushes, s1.writes-s0.writes
	res.FlushesSec, res.BucketWritesSec = res.Flushes/secs, res.BucketWrites/secs
	if res.Errors > 0 {
		return res, fmt.Errorf("%d produce errors", res.Errors)
	}
	return res, nil
}
