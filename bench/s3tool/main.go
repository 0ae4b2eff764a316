// Command s3tool is the bucket side of the tiered-storage benchmarks,
// against a local MinIO (credentials from AWS_ACCESS_KEY_ID and
// AWS_SECRET_ACCESS_KEY):
//
//	s3tool mkbucket     -endpoint URL -bucket B
//	s3tool wait-flushed -endpoint URL -bucket B -prefix P [-quiet 2s] [-timeout 5m]
//	s3tool segments     -endpoint URL -bucket B -prefix P
//	s3tool requests     -endpoint URL
//	s3tool rawget       -endpoint URL -bucket B -prefix P [-concurrency N]
//
// wait-flushed returns once no new segment object has appeared for -quiet;
// rawget GETs every flush object under P/data/ whole, discarding the bytes,
// and reports the time: the floor for a replay of the same data. Each
// prints one JSON line.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tlog-io/tlog/bench/internal/s3bench"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: s3tool mkbucket|wait-flushed|segments|requests|rawget [flags]")
		os.Exit(2)
	}
	fs := flag.NewFlagSet(os.Args[1], flag.ExitOnError)
	var tgt s3bench.Target
	tgt.Flags(fs)
	quiet := fs.Duration("quiet", 2*time.Second, "wait-flushed: no new segment object for this long")
	timeout := fs.Duration("timeout", 5*time.Minute, "give up after this long")
	conc := fs.Int("concurrency", 1, "rawget: GETs in flight")
	fs.Parse(os.Args[2:])
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	var out any
	var err error
	switch os.Args[1] {
	case "mkbucket":
		err = tgt.EnsureBucket(ctx)
		out = map[string]string{"bucket": tgt.Bucket}
	case "wait-flushed":
		var n int
		start := time.Now()
		n, err = tgt.WaitFlushed(ctx, *quiet)
		out = map[string]any{"flush_objects": n, "seconds": time.Since(start).Seconds()}
	case "segments":
		var flushed, compacted []s3bench.Object
		flushed, compacted, err = tgt.Segments(ctx)
		out = map[string]any{"flush_objects": len(flushed), "flush_bytes": sum(flushed),
			"compacted_objects": len(compacted), "compacted_bytes": sum(compacted)}
	case "requests":
		out, err = tgt.Requests(ctx)
	case "rawget":
		out, err = rawGet(ctx, &tgt, *conc)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "s3tool:", err)
		os.Exit(1)
	}
	b, _ := json.Marshal(out)
	fmt.Println(string(b))
}

func sum(objs []s3bench.Object) int64 {
	var n int64
	for _, o := range objs {
		n += o.Size
	}
	return n
}

type rawResult struct {
	Objects     int     `json:"objects"`
	Bytes       int64   `json:"bytes"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	MiBPerSec   float64 `json:"mib_per_sec"`
}

func rawGet(ctx context.Context, tgt *s3bench.Target, conc int) (rawResult, error) {
	flushed, _, err := tgt.Segments(ctx)
	if err != nil {
		return rawResult{}, err
	}
	res := rawResult{Objects: len(flushed), Concurrency: conc}
	work := make(chan s3bench.Object)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for range max(conc, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				resp, err := tgt.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(tgt.Bucket), Key: aws.String(o.Key)})
				var n int64
				if err == nil {
					n, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				mu.Lock()
				res.Bytes += n
				if err != nil && firstErr == nil {
					firstErr = fmt.Errorf("get %s: %w", o.Key, err)
				}
				mu.Unlock()
			}
		}()
	}
	for _, o := range flushed {
		work <- o
	}
	close(work)
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	res.MiBPerSec = float64(res.Bytes) / (1 << 20) / res.Seconds
	return res, firstErr
}
