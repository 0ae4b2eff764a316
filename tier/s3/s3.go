// Package s3 is a tier.Bucket on S3 or an S3-compatible store (MinIO), on
// aws-sdk-go-v2. It is a package of its own so that importing tier does not
// pull in the SDK.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/tlog-io/tlog/tier"
)

// S3 defaults; see Config.
const (
	DefaultRegion         = "us-east-1"
	DefaultRequestTimeout = 10 * time.Second
	DefaultMaxAttempts    = 5
	DefaultRetryBaseDelay = 100 * time.Millisecond
	DefaultRetryMaxDelay  = 5 * time.Second
)

// Config configures New. Only Bucket is required.
type Config struct {
	Bucket string
	// Prefix keeps every key under PREFIX/ (as tier.WithPrefix does).
	Prefix string
	// Endpoint is the server's base URL, e.g. http://127.0.0.1:9000 for
	// MinIO; empty means AWS (or AWS_ENDPOINT_URL[_S3] if set).
	Endpoint string
	// Region defaults to the AWS config chain's region, then us-east-1.
	Region string
	// PathStyle addresses objects as ENDPOINT/BUCKET/KEY rather than
	// BUCKET.ENDPOINT/KEY; MinIO and most S3-compatible servers need it.
	PathStyle bool
	// AccessKey and SecretKey are static credentials. When both are empty
	// the standard AWS chain is used (AWS_ACCESS_KEY_ID and
	// AWS_SECRET_ACCESS_KEY, shared config files, web identity, IMDS...).
	AccessKey, SecretKey string
	// RequestTimeout bounds each attempt, including transferring the body,
	// so it must fit the largest object; the whole call can take up to
	// MaxAttempts times as long plus backoff. Default 10 s.
	RequestTimeout time.Duration
	// MaxAttempts is the number of tries per request (1 disables retries).
	// Default 5.
	MaxAttempts int
	// RetryBaseDelay and RetryMaxDelay shape the backoff: before retry n
	// (n = 1, 2, ...) the bucket sleeps a uniformly random time in
	// [0, min(RetryMaxDelay, RetryBaseDelay*2^(n-1))) ("full jitter").
	// Defaults 100 ms and 5 s.
	RetryBaseDelay, RetryMaxDelay time.Duration
	// HTTPClient overrides the HTTP client (tests, custom TLS). Its
	// per-request Timeout, if any, applies in addition to RequestTimeout.
	HTTPClient *http.Client
}

// Bucket is a tier.Bucket on S3 or an S3-compatible store (MinIO), using
// aws-sdk-go-v2. New makes no request, so a wrong bucket name or bad
// credentials show up on the first operation.
//
// Retries: the SDK's own retryer is disabled and each call runs its own
// loop, so that every attempt gets a fresh RequestTimeout and so that
// conditional writes know whether an earlier attempt may have landed. An
// attempt is retried (up to MaxAttempts, with full-jitter backoff) when the
// SDK's standard classifiers call its error retryable (5xx, 429, SlowDown and
// other throttling codes, connection errors) or when it hit RequestTimeout.
//
// Conditional writes after an ambiguous failure: if an attempt of
// PutIfAbsent/PutIfMatch failed without a definite answer (timeout, dropped
// connection, 5xx other than throttling), S3 may have committed it, and the
// retry would then lose against the caller's own write with 412. So when a
// retry gets 412 (or 409) after such an attempt, the bucket reads the object
// back and, if its body equals what this call wrote, reports success with the
// object's current ETag. The cost is one GET on that rare path, and two
// caveats: a different writer storing byte-identical content in between is
// indistinguishable from our own write (both callers then see success, which
// is harmless when identical bytes mean the same logical write, as for tlog's
// epoch-stamped metadata); and if our write landed but was overwritten
// before the read-back, the call reports tier.ErrPreconditionFailed — a
// false loss, never a false win over different content. If the read-back
// itself fails, the error is not tier.ErrPreconditionFailed: the outcome is
// unknown.
//
// ETags are returned as S3 sends them, double quotes included, identically
// from Put*, Get, Stat and List. PutIfMatch accepts an unquoted ETag too.
//
// A HEAD request (Stat) cannot tell a missing bucket from a missing key, so
// Stat on a missing bucket reports tier.ErrNotFound; Get, GetRange and List
// report NoSuchBucket as a plain error.
type Bucket struct {
	client      *awss3.Client
	httpClient  *http.Client
	bucket      string
	prefix      string // "" or ends in "/"
	timeout     time.Duration
	maxAttempts int
	baseDelay   time.Duration
	maxDelay    time.Duration
	listPage    int32 // ListObjectsV2 max-keys; 0 is the server's default (1000)
	closed      atomic.Bool
}

var _ tier.Bucket = (*Bucket)(nil)

// New returns a Bucket for cfg. ctx only bounds loading the AWS
// configuration.
func New(ctx context.Context, cfg Config) (*Bucket, error) {
	if cfg.Bucket == "" {
		return nil, errors.New("s3 bucket: no bucket name")
	}
	if (cfg.AccessKey == "") != (cfg.SecretKey == "") {
		return nil, fmt.Errorf("s3 bucket %s: AccessKey and SecretKey must be set together", cfg.Bucket)
	}
	if cfg.Endpoint != "" {
		if err := checkEndpoint(cfg.Endpoint); err != nil {
			return nil, fmt.Errorf("s3 bucket %s: %w", cfg.Bucket, err)
		}
	}
	if cfg.RequestTimeout < 0 || cfg.MaxAttempts < 0 || cfg.RetryBaseDelay < 0 || cfg.RetryMaxDelay < 0 {
		return nil, fmt.Errorf("s3 bucket %s: negative timeout, attempts or delay", cfg.Bucket)
	}
	b := &Bucket{
		bucket:      cfg.Bucket,
		prefix:      strings.Trim(cfg.Prefix, "/"),
		timeout:     orDefault(cfg.RequestTimeout, DefaultRequestTimeout),
		maxAttempts: orDefault(cfg.MaxAttempts, DefaultMaxAttempts),
		baseDelay:   orDefault(cfg.RetryBaseDelay, DefaultRetryBaseDelay),
		maxDelay:    orDefault(cfg.RetryMaxDelay, DefaultRetryMaxDelay),
		httpClient:  cfg.HTTPClient,
	}
	if b.prefix != "" {
		b.prefix += "/"
	}
	if b.httpClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// The default of 2 idle connections per host would make every
		// burst of parallel uploads reconnect.
		tr.MaxIdleConns = 256
		tr.MaxIdleConnsPerHost = 64
		b.httpClient = &http.Client{Transport: tr}
	}

	var opts []func(*config.LoadOptions) error
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKey != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKey, cfg.SecretKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("s3 bucket %s: load AWS config: %w", cfg.Bucket, err)
	}
	if awsCfg.Region == "" {
		awsCfg.Region = DefaultRegion
	}
	b.client = awss3.NewFromConfig(awsCfg, func(o *awss3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		o.HTTPClient = b.httpClient
		o.Retryer = aws.NopRetryer{} // our loop retries; see Bucket
		// Flexible checksums (the SDK default since 2025) are not
		// implemented by every S3-compatible store; SigV4 already signs
		// the payload hash, and TLS protects it on https.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	return b, nil
}

func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

func checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", endpoint, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("endpoint %q: want http://HOST[:PORT] or https://HOST[:PORT]", endpoint)
	}
	if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("endpoint %q: want http://HOST[:PORT] or https://HOST[:PORT] without credentials, query or fragment", endpoint)
	}
	return nil
}

// Bucket returns the S3 bucket name.
func (b *Bucket) Bucket() string { return b.bucket }

// Client returns the underlying SDK client, e.g. for administrative calls.
func (b *Bucket) Client() *awss3.Client { return b.client }

// objectKey validates key and returns the S3 key it is stored under.
func (b *Bucket) objectKey(ctx context.Context, op, key string) (string, error) {
	if b.closed.Load() {
		return "", fmt.Errorf("s3 bucket %s: %s %q: bucket closed", b.bucket, op, key)
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("s3 bucket %s: %s %q: %w", b.bucket, op, key, err)
	}
	if err := tier.ValidateKey(key); err != nil {
		return "", fmt.Errorf("s3 bucket %s: %s: %w", b.bucket, op, err)
	}
	full := b.prefix + key
	if len(full) > tier.MaxKeyLen {
		return "", fmt.Errorf("s3 bucket %s: %s: %w %q: longer than %d bytes with prefix %q",
			b.bucket, op, tier.ErrInvalidKey, key, tier.MaxKeyLen, b.prefix)
	}
	return full, nil
}

// Put implements tier.Bucket.
func (b *Bucket) Put(ctx context.Context, key string, body []byte) (string, error) {
	return b.put(ctx, "put", key, body, nil, nil)
}

// PutIfAbsent implements tier.Bucket with If-None-Match: *. See Bucket for
// how an ambiguous first attempt is resolved.
func (b *Bucket) PutIfAbsent(ctx context.Context, key string, body []byte) (string, error) {
	return b.put(ctx, "put-if-absent", key, body, aws.String("*"), nil)
}

// PutIfMatch implements tier.Bucket with If-Match: etag. See Bucket for how
// an ambiguous first attempt is resolved.
func (b *Bucket) PutIfMatch(ctx context.Context, key string, body []byte, etag string) (string, error) {
	if etag == "" {
		// The SDK omits an empty If-Match header, which would make this an
		// unconditional put.
		if _, err := b.objectKey(ctx, "put-if-match", key); err != nil {
			return "", err
		}
		return "", fmt.Errorf("s3 bucket %s: put-if-match %q: empty etag: %w", b.bucket, key, tier.ErrPreconditionFailed)
	}
	if !strings.HasPrefix(etag, `"`) && !strings.HasPrefix(etag, `W/"`) {
		etag = `"` + etag + `"`
	}
	return b.put(ctx, "put-if-match", key, body, nil, aws.String(etag))
}

func (b *Bucket) put(ctx context.Context, op, key string, body []byte, ifNoneMatch, ifMatch *string) (string, error) {
	full, err := b.objectKey(ctx, op, key)
	if err != nil {
		return "", err
	}
	var etag string
	ambiguous, err := b.retry(ctx, func(ctx context.Context) error {
		out, err := b.client.PutObject(ctx, &awss3.PutObjectInput{
			Bucket:        aws.String(b.bucket),
			Key:           aws.String(full),
			Body:          bytes.NewReader(body),
			ContentLength: aws.Int64(int64(len(body))),
			IfNoneMatch:   ifNoneMatch,
			IfMatch:       ifMatch,
		})
		if err != nil {
			return err
		}
		etag = aws.ToString(out.ETag)
		return nil
	})
	if err == nil {
		if etag == "" {
			return "", fmt.Errorf("s3 bucket %s: %s %q: response has no ETag", b.bucket, op, full)
		}
		return etag, nil
	}
	conditional := ifNoneMatch != nil || ifMatch != nil
	lost := conditional && (isPreconditionFailed(err) || (ifMatch != nil && isNoSuchKey(err)))
	if !lost {
		return "", b.wrapErr(op, full, err)
	}
	if ambiguous {
		// An earlier attempt may have committed, and the 412 is then our own
		// write's doing. Check whether the stored object is what we wrote.
		got, info, gerr := b.get(ctx, full, nil)
		switch {
		case gerr == nil && bytes.Equal(got, body):
			slog.Info("s3 bucket: conditional write succeeded on an attempt whose response was lost",
				"bucket", b.bucket, "op", op, "key", full, "etag", info.etag)
			return info.etag, nil
		case gerr != nil && !isNoSuchKey(gerr):
			return "", fmt.Errorf("s3 bucket %s: %s %q: outcome unknown: an attempt failed ambiguously, a retry got %s, and reading the object back failed: %w",
				b.bucket, op, full, s3ErrorCode(err), gerr)
		}
	}
	return "", fmt.Errorf("s3 bucket %s: %s %q: %w (%s)", b.bucket, op, full, tier.ErrPreconditionFailed, s3ErrorCode(err))
}

// Get implements tier.Bucket.
func (b *Bucket) Get(ctx context.Context, key string) ([]byte, tier.ObjectInfo, error) {
	full, err := b.objectKey(ctx, "get", key)
	if err != nil {
		return nil, tier.ObjectInfo{}, err
	}
	body, m, err := b.get(ctx, full, nil)
	if err != nil {
		return nil, tier.ObjectInfo{}, b.wrapErr("get", full, err)
	}
	return body, tier.ObjectInfo{Key: key, Size: int64(len(body)), ETag: m.etag, Modified: m.modified}, nil
}

// GetRange implements tier.Bucket with a Range request; S3 itself truncates
// a range that runs past the end and answers 416 for one that starts there.
func (b *Bucket) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	full, err := b.objectKey(ctx, "get-range", key)
	if err != nil {
		return nil, err
	}
	if offset < 0 || length < 0 {
		return nil, fmt.Errorf("s3 bucket %s: get-range %q: %w: offset %d length %d", b.bucket, full, tier.ErrInvalidRange, offset, length)
	}
	if length == 0 {
		// A Range header cannot ask for zero bytes; the size decides
		// whether the (empty) range is valid.
		return b.rangeBySize(ctx, full, offset, length)
	}
	last := int64(math.MaxInt64)
	if length-1 <= math.MaxInt64-offset {
		last = offset + length - 1
	}
	body, m, err := b.get(ctx, full, &[2]int64{offset, last})
	switch {
	case isInvalidRange(err) && offset == 0:
		// S3 answers 416 for any range of an empty object, which the
		// interface allows to read as empty.
		return b.rangeBySize(ctx, full, offset, length)
	case err != nil:
		return nil, b.wrapErr("get-range", full, err)
	case !m.partial:
		// The server ignored Range and sent the whole object.
		start, end, err := tier.RangeBounds(offset, length, int64(len(body)))
		if err != nil {
			return nil, fmt.Errorf("s3 bucket %s: get-range %q: %w", b.bucket, full, err)
		}
		return body[start:end:end], nil
	}
	return body, nil
}

func (b *Bucket) rangeBySize(ctx context.Context, full string, offset, length int64) ([]byte, error) {
	info, err := b.stat(ctx, full)
	if err != nil {
		return nil, b.wrapErr("get-range", full, err)
	}
	if _, _, err := tier.RangeBounds(offset, length, info.Size); err != nil {
		return nil, fmt.Errorf("s3 bucket %s: get-range %q: %w", b.bucket, full, err)
	}
	if info.Size == 0 || length == 0 {
		return []byte{}, nil
	}
	// The object was replaced between the two requests: read it again,
	// once (a third answer would only race again).
	body, _, err := b.get(ctx, full, &[2]int64{offset, offset + min(length, info.Size-offset) - 1})
	if err != nil {
		return nil, b.wrapErr("get-range", full, err)
	}
	return body, nil
}

type s3Meta struct {
	etag     string
	modified time.Time
	partial  bool // a 206 answer to a Range request
}

// get reads an object, or the inclusive byte range rng of it, retrying as a
// whole (body included) on retryable errors.
func (b *Bucket) get(ctx context.Context, full string, rng *[2]int64) ([]byte, s3Meta, error) {
	in := &awss3.GetObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(full)}
	if rng != nil {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", rng[0], rng[1]))
	}
	var (
		body []byte
		m    s3Meta
	)
	_, err := b.retry(ctx, func(ctx context.Context) error {
		out, err := b.client.GetObject(ctx, in)
		if err != nil {
			return err
		}
		defer out.Body.Close()
		n := aws.ToInt64(out.ContentLength)
		buf := bytes.NewBuffer(make([]byte, 0, max(0, min(n, 64<<20))+bytes.MinRead))
		if _, err := buf.ReadFrom(out.Body); err != nil {
			return &bodyReadError{err}
		}
		if out.ContentLength != nil && int64(buf.Len()) != n {
			return &bodyReadError{fmt.Errorf("read %d bytes, Content-Length %d", buf.Len(), n)}
		}
		body = buf.Bytes()
		m = s3Meta{etag: aws.ToString(out.ETag), modified: aws.ToTime(out.LastModified), partial: out.ContentRange != nil}
		return nil
	})
	if err != nil {
		return nil, s3Meta{}, err
	}
	if body == nil {
		body = []byte{}
	}
	return body, m, nil
}

// bodyReadError is a failure while streaming a response body: the
// connection broke mid-transfer, so the request is worth retrying.
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string { return "reading response body: " + e.err.Error() }
func (e *bodyReadError) Unwrap() error { return e.err }

// Stat implements tier.Bucket.
func (b *Bucket) Stat(ctx context.Context, key string) (tier.ObjectInfo, error) {
	full, err := b.objectKey(ctx, "stat", key)
	if err != nil {
		return tier.ObjectInfo{}, err
	}
	info, err := b.stat(ctx, full)
	if err != nil {
		return tier.ObjectInfo{}, b.wrapErr("stat", full, err)
	}
	info.Key = key
	return info, nil
}

func (b *Bucket) stat(ctx context.Context, full string) (tier.ObjectInfo, error) {
	var info tier.ObjectInfo
	_, err := b.retry(ctx, func(ctx context.Context) error {
		out, err := b.client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(full)})
		if err != nil {
			return err
		}
		info = tier.ObjectInfo{Key: full, Size: aws.ToInt64(out.ContentLength), ETag: aws.ToString(out.ETag), Modified: aws.ToTime(out.LastModified)}
		return nil
	})
	return info, err
}

// List implements tier.Bucket with ListObjectsV2, one retried request per
// page.
func (b *Bucket) List(ctx context.Context, prefix string) ([]tier.ObjectInfo, error) {
	if b.closed.Load() {
		return nil, fmt.Errorf("s3 bucket %s: list %q: bucket closed", b.bucket, prefix)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("s3 bucket %s: list %q: %w", b.bucket, prefix, err)
	}
	full := b.prefix + prefix
	out := make([]tier.ObjectInfo, 0)
	// URL-encoded keys: a key with a character XML 1.0 cannot carry
	// (tier.ValidateKey allows e.g. U+0001) would otherwise make every
	// listing of its prefix fail to parse.
	in := &awss3.ListObjectsV2Input{Bucket: aws.String(b.bucket), Prefix: aws.String(full), EncodingType: types.EncodingTypeUrl}
	if b.listPage > 0 {
		in.MaxKeys = aws.Int32(b.listPage)
	}
	for page := 1; ; page++ {
		var res *awss3.ListObjectsV2Output
		_, err := b.retry(ctx, func(ctx context.Context) error {
			var err error
			res, err = b.client.ListObjectsV2(ctx, in)
			return err
		})
		if err != nil {
			return nil, b.wrapErr("list", full, fmt.Errorf("page %d: %w", page, err))
		}
		for _, o := range res.Contents {
			k := aws.ToString(o.Key)
			if res.EncodingType == types.EncodingTypeUrl {
				// S3 encodes like a form (space as "+"); the SDK leaves it.
				if k, err = url.QueryUnescape(k); err != nil {
					return nil, fmt.Errorf("s3 bucket %s: list %q: bad url-encoded key %q: %w", b.bucket, full, aws.ToString(o.Key), err)
				}
			}
			if !strings.HasPrefix(k, full) {
				continue // never expected; keeps a misbehaving server from leaking other keys
			}
			out = append(out, tier.ObjectInfo{
				Key:      strings.TrimPrefix(k, b.prefix),
				Size:     aws.ToInt64(o.Size),
				ETag:     aws.ToString(o.ETag),
				Modified: aws.ToTime(o.LastModified),
			})
		}
		if !aws.ToBool(res.IsTruncated) {
			break
		}
		if aws.ToString(res.NextContinuationToken) == "" {
			return nil, fmt.Errorf("s3 bucket %s: list %q: truncated page %d without a continuation token", b.bucket, full, page)
		}
		in.ContinuationToken = res.NextContinuationToken
	}
	// S3 lists in UTF-8 byte order already; S3-compatible stores may not.
	slices.SortFunc(out, func(x, y tier.ObjectInfo) int { return strings.Compare(x.Key, y.Key) })
	return out, nil
}

// Delete implements tier.Bucket. S3 answers 204 for a missing key too.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	full, err := b.objectKey(ctx, "delete", key)
	if err != nil {
		return err
	}
	_, err = b.retry(ctx, func(ctx context.Context) error {
		_, err := b.client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(b.bucket), Key: aws.String(full)})
		return err
	})
	if err != nil && !isNoSuchKey(err) {
		return b.wrapErr("delete", full, err)
	}
	return nil
}

// Close implements tier.Bucket: later calls fail and idle connections close.
func (b *Bucket) Close() error {
	if !b.closed.Swap(true) {
		b.httpClient.CloseIdleConnections()
	}
	return nil
}

// retry runs attempt until it succeeds, fails for good, or MaxAttempts run
// out; each attempt gets its own RequestTimeout. ambiguous reports whether a
// failed attempt before the last one may have taken effect on the server.
func (b *Bucket) retry(ctx context.Context, attempt func(ctx context.Context) error) (ambiguous bool, err error) {
	for n := 1; ; n++ {
		actx, cancel := context.WithTimeout(ctx, b.timeout)
		err = attempt(actx)
		timedOut := err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded)
		cancel()
		if err == nil {
			return ambiguous, nil
		}
		if cerr := ctx.Err(); cerr != nil {
			if !errors.Is(err, cerr) {
				err = fmt.Errorf("%w (attempt %d: %v)", cerr, n, err)
			}
			return ambiguous, err
		}
		if timedOut {
			err = fmt.Errorf("attempt %d timed out after %v: %w", n, b.timeout, err)
		}
		retryable, amb := classifyS3Error(err, timedOut)
		if !retryable {
			return ambiguous, err
		}
		ambiguous = ambiguous || amb
		if n >= b.maxAttempts {
			return ambiguous, fmt.Errorf("giving up after %d attempts: %w", n, err)
		}
		d := b.backoff(n)
		slog.Debug("s3 bucket: retrying", "bucket", b.bucket, "attempt", n, "delay", d, "err", err)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ambiguous, fmt.Errorf("%w (waiting to retry after: %v)", ctx.Err(), err)
		case <-t.C:
		}
	}
}

// backoff is "full jitter": uniform in [0, min(max, base*2^(n-1))).
func (b *Bucket) backoff(n int) time.Duration {
	ceil := b.maxDelay
	if n-1 < 30 && b.baseDelay<<(n-1) < ceil {
		ceil = b.baseDelay << (n - 1)
	}
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil)
}

var (
	s3Retryables = retry.IsErrorRetryables(append([]retry.IsErrorRetryable{
		retry.RetryableHTTPStatusCode{Codes: map[int]struct{}{429: {}}},
	}, retry.DefaultRetryables...))
	s3Throttles = retry.IsErrorThrottles(retry.DefaultThrottles)
)

// classifyS3Error says whether a failed attempt is worth retrying and, if
// so, whether a write attempt may nevertheless have been applied. Only a
// throttling answer or a connection never made proves it was not.
func classifyS3Error(err error, timedOut bool) (retryable, ambiguous bool) {
	if timedOut {
		return true, true
	}
	var bre *bodyReadError
	if errors.As(err, &bre) {
		return true, false
	}
	if s3Retryables.IsErrorRetryable(err) != aws.TrueTernary {
		return false, false
	}
	if s3Throttles.IsErrorThrottle(err) == aws.TrueTernary {
		return true, false
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return true, false
	}
	return true, true
}

func s3Status(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	return 0
}

func s3ErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return fmt.Sprintf("%d %s", s3Status(err), ae.ErrorCode())
	}
	return err.Error()
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func isNoSuchKey(err error) bool {
	if err == nil {
		return false
	}
	switch apiCode(err) {
	case "NoSuchKey", "NotFound":
		return true
	case "NoSuchBucket":
		return false
	}
	return s3Status(err) == http.StatusNotFound && apiCode(err) == ""
}

func isPreconditionFailed(err error) bool {
	if err == nil {
		return false
	}
	switch apiCode(err) {
	case "PreconditionFailed", "ConditionalRequestConflict":
		return true
	}
	return s3Status(err) == http.StatusPreconditionFailed && apiCode(err) == ""
}

func isInvalidRange(err error) bool {
	return err != nil && (apiCode(err) == "InvalidRange" || s3Status(err) == http.StatusRequestedRangeNotSatisfiable)
}

// wrapErr adds context and maps S3 answers onto tier's sentinels.
func (b *Bucket) wrapErr(op, full string, err error) error {
	var sentinel error
	switch {
	case isNoSuchKey(err):
		sentinel = tier.ErrNotFound
	case isInvalidRange(err):
		sentinel = tier.ErrInvalidRange
	case isPreconditionFailed(err):
		sentinel = tier.ErrPreconditionFailed
	}
	if sentinel != nil {
		return fmt.Errorf("s3 bucket %s: %s %q: %w (%s)", b.bucket, op, full, sentinel, s3ErrorCode(err))
	}
	return fmt.Errorf("s3 bucket %s: %s %q: %w", b.bucket, op, full, err)
}
