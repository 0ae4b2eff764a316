// Package s3bench holds what the tiered-storage benchmarks share: an S3
// client for a local MinIO, counting tlog's segment objects in a bucket,
// waiting for a flusher to go quiet, and reading MinIO's request counters.
package s3bench

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Target names a bucket and key prefix on an S3 endpoint; credentials come
// from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, as they do for tlog.
type Target struct {
	Endpoint string
	Bucket   string
	Prefix   string // tlog's keys are under Prefix/ ("" for none)
	client   *s3.Client
}

// Flags registers -endpoint, -bucket and -prefix on fs.
func (t *Target) Flags(fs *flag.FlagSet) {
	fs.StringVar(&t.Endpoint, "endpoint", "http://127.0.0.1:9000", "S3 endpoint (MinIO)")
	fs.StringVar(&t.Bucket, "bucket", "tlog", "bucket")
	fs.StringVar(&t.Prefix, "prefix", "", "the prefix of tlog's --bucket s3://BUCKET/PREFIX URL")
}

// Client returns the S3 client for t.
func (t *Target) Client() *s3.Client {
	if t.client == nil {
		t.client = s3.New(s3.Options{
			BaseEndpoint: aws.String(t.Endpoint),
			Region:       "us-east-1",
			UsePathStyle: true,
			Credentials: credentials.NewStaticCredentialsProvider(
				os.Getenv("AWS_ACCESS_KEY_ID"), os.Getenv("AWS_SECRET_ACCESS_KEY"), ""),
			// As tier/s3.Bucket sets it up, so raw GETs cost what tlog's do.
			HTTPClient:                                &http.Client{Transport: transport()},
			RequestChecksumCalculation:                aws.RequestChecksumCalculationWhenRequired,
			ResponseChecksumValidation:                aws.ResponseChecksumValidationWhenRequired,
			DisableLogOutputChecksumValidationSkipped: true,
		})
	}
	return t.client
}

func transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 64
	return tr
}

// Key returns the full key of tlog key k.
func (t *Target) Key(k string) string {
	if p := strings.Trim(t.Prefix, "/"); p != "" {
		return p + "/" + k
	}
	return k
}

// EnsureBucket creates the bucket unless it exists.
func (t *Target) EnsureBucket(ctx context.Context) error {
	_, err := t.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(t.Bucket)})
	var owned *types.BucketAlreadyOwnedByYou
	if err != nil && !errors.As(err, &owned) {
		return fmt.Errorf("create bucket %s: %w", t.Bucket, err)
	}
	return nil
}

// Object is one listed object.
type Object struct {
	Key  string
	Size int64
}

// Segments lists tlog's segment objects (data/): the flush outputs, and
// compaction outputs (.c.seg) separately.
func (t *Target) Segments(ctx context.Context) (flushed, compacted []Object, err error) {
	pg := s3.NewListObjectsV2Paginator(t.Client(), &s3.ListObjectsV2Input{
		Bucket: aws.String(t.Bucket), Prefix: aws.String(t.Key("data/")),
	})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return nil, nil, err
		}
		for _, o := range page.Contents {
			obj := Object{Key: aws.ToString(o.Key), Size: aws.ToInt64(o.Size)}
			if strings.HasSuffix(obj.Key, ".c.seg") {
				compacted = append(compacted, obj)
			} else {
				flushed = append(flushed, obj)
			}
		}
	}
	return flushed, compacted, nil
}

// WaitFlushed waits until no new flush object has appeared for quiet: the
// flusher writes one every flush interval while anything is unflushed, so
// everything acknowledged before the call is then in the bucket. It returns
// the number of flush objects.
func (t *Target) WaitFlushed(ctx context.Context, quiet time.Duration) (int, error) {
	last, since := -1, time.Now()
	for {
		flushed, _, err := t.Segments(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			return 0, err
		case err != nil:
		case len(flushed) != last:
			last, since = len(flushed), time.Now()
		case time.Since(since) >= quiet:
			return last, nil
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("flush objects still appearing: %w", ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Requests returns MinIO's count of S3 requests by API name ("PutObject",
// "GetObject", ...) from its v3 metrics endpoint, which the bench scripts
// start MinIO with public access to (MINIO_PROMETHEUS_AUTH_TYPE=public).
func (t *Target) Requests(ctx context.Context) (map[string]float64, error) {
	samples, err := Scrape(ctx, strings.TrimRight(t.Endpoint, "/")+"/minio/metrics/v3/api/requests")
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, s := range samples {
		if s.Name == "minio_api_requests_total" && s.Labels["name"] != "" {
			out[s.Labels["name"]] += s.Value
		}
	}
	return out, nil
}

// Sample is one line of a Prometheus text exposition.
type Sample struct {
	Name   string
	Labels map[string]string
	Value  float64
}

// Scrape reads a Prometheus text exposition (MinIO's, or tlog's
// --admin-listen /metrics). Label values must not contain commas or
// escaped quotes, which holds for the metrics the benchmarks read.
func Scrape(ctx context.Context, url string) ([]Sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", url, resp.Status)
	}
	var out []Sample
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		s := Sample{Labels: map[string]string{}}
		var value string
		if name, rest, ok := strings.Cut(line, "{"); ok {
			labels, v, ok := strings.Cut(rest, "} ")
			if !ok {
				continue
			}
			s.Name, value = name, v
			for _, l := range strings.Split(labels, ",") {
				if k, v, ok := strings.Cut(l, "="); ok {
					s.Labels[k] = strings.Trim(v, `"`)
				}
			}
		} else if name, v, ok := strings.Cut(line, " "); ok {
			s.Name, value = name, v
		} else {
			continue
		}
		value, _, _ = strings.Cut(strings.TrimSpace(value), " ") // drop a timestamp
		f, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue
		}
		s.Value = f
		out = append(out, s)
	}
	return out, sc.Err()
}

// Sum adds the samples called name whose labels match (nil: all).
func Sum(samples []Sample, name string, match func(labels map[string]string) bool) float64 {
	var n float64
	for _, s := range samples {
		if s.Name == name && (match == nil || match(s.Labels)) {
			n += s.Value
		}
	}
	return n
}
