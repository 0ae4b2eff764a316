package tier

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Operation label values of the bucket metrics.
const (
	mPut         = "put"
	mPutIfAbsent = "put_if_absent"
	mPutIfMatch  = "put_if_match"
	mGet         = "get"
	mGetRange    = "get_range"
	mStat        = "stat"
	mList        = "list"
	mDelete      = "delete"
)

// Result label values: the outcomes callers act on differently.
const (
	resultOK                 = "ok"
	resultNotFound           = "not_found"
	resultPreconditionFailed = "precondition_failed"
	resultError              = "error"
)

// bucketMetrics is shared by every decorator on one registry.
type bucketMetrics struct {
	duration *prometheus.HistogramVec // op
	requests *prometheus.CounterVec   // op, result
	read     *prometheus.CounterVec   // op
	written  *prometheus.CounterVec   // op
}

// metered decorates a Bucket with Prometheus metrics.
type metered struct {
	inner Bucket
	m     *bucketMetrics
}

var _ Bucket = (*metered)(nil)

// WithMetrics wraps b so that every operation is timed and counted by
// result, with the bytes it moved, in metrics registered on reg:
//
//	tlog_bucket_requests_total{op,result}     calls; result is ok, not_found, precondition_failed or error
//	tlog_bucket_request_duration_seconds{op}  latency, whatever the result
//	tlog_bucket_read_bytes_total{op}          bytes returned by get and get_range
//	tlog_bucket_written_bytes_total{op}       bytes sent by put, put_if_absent and put_if_match
//
// Several buckets wrapped on one registry share the metrics. A nil reg
// registers nothing (the counts are kept but not exported).
func WithMetrics(b Bucket, reg prometheus.Registerer) Bucket {
	m := &bucketMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "tlog_bucket_request_duration_seconds",
			Help: "Latency of bucket operations, by operation.",
			// 1 ms to 16 s: S3 first-byte latency is tens of ms, a
			// retried multi-MiB PUT seconds.
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
		}, []string{"op"}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlog_bucket_requests_total",
			Help: "Bucket operations by operation and result (ok, not_found, precondition_failed, error).",
		}, []string{"op", "result"}),
		read: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlog_bucket_read_bytes_total",
			Help: "Object bytes read from the bucket, by operation.",
		}, []string{"op"}),
		written: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tlog_bucket_written_bytes_total",
			Help: "Object bytes written to the bucket, by operation.",
		}, []string{"op"}),
	}
	if reg != nil {
		m.duration = register(reg, m.duration)
		m.requests = register(reg, m.requests)
		m.read = register(reg, m.read)
		m.written = register(reg, m.written)
	}
	// Pre-create the series so dashboards see zeros, not gaps, before the
	// first failure.
	for _, op := range []string{mPut, mPutIfAbsent, mPutIfMatch, mGet, mGetRange, mStat, mList, mDelete} {
		m.duration.WithLabelValues(op)
		for _, r := range []string{resultOK, resultNotFound, resultPreconditionFailed, resultError} {
			m.requests.WithLabelValues(op, r)
		}
	}
	for _, op := range []string{mGet, mGetRange} {
		m.read.WithLabelValues(op)
	}
	for _, op := range []string{mPut, mPutIfAbsent, mPutIfMatch} {
		m.written.WithLabelValues(op)
	}
	return &metered{inner: b, m: m}
}

// register registers c, or returns the identical collector already there
// (a second bucket wrapped on the same registry).
func register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	if err := reg.Register(c); err != nil {
		var are prometheus.AlreadyRegisteredError
		if errors.As(err, &are) {
			if existing, ok := are.ExistingCollector.(C); ok {
				return existing
			}
		}
		// Only a conflicting definition of the same name gets here: a bug.
		panic("tier: register bucket metrics: " + err.Error())
	}
	return c
}

func resultOf(err error) string {
	switch {
	case err == nil:
		return resultOK
	case errors.Is(err, ErrNotFound):
		return resultNotFound
	case errors.Is(err, ErrPreconditionFailed):
		return resultPreconditionFailed
	default:
		return resultError
	}
}

func (b *metered) done(op string, start time.Time, err error) {
	b.m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	b.m.requests.WithLabelValues(op, resultOf(err)).Inc()
}

// Put implements Bucket.
func (b *metered) Put(ctx context.Context, key string, body []byte) (string, error) {
	start := time.Now()
	etag, err := b.inner.Put(ctx, key, body)
	b.done(mPut, start, err)
	if err == nil {
		b.m.written.WithLabelValues(mPut).Add(float64(len(body)))
	}
	return etag, err
}

// PutIfAbsent implements Bucket.
func (b *metered) PutIfAbsent(ctx context.Context, key string, body []byte) (string, error) {
	start := time.Now()
	etag, err := b.inner.PutIfAbsent(ctx, key, body)
	b.done(mPutIfAbsent, start, err)
	if err == nil {
		b.m.written.WithLabelValues(mPutIfAbsent).Add(float64(len(body)))
	}
	return etag, err
}

// PutIfMatch implements Bucket.
func (b *metered) PutIfMatch(ctx context.Context, key string, body []byte, etag string) (string, error) {
	start := time.Now()
	newETag, err := b.inner.PutIfMatch(ctx, key, body, etag)
	b.done(mPutIfMatch, start, err)
	if err == nil {
		b.m.written.WithLabelValues(mPutIfMatch).Add(float64(len(body)))
	}
	return newETag, err
}

// Get implements Bucket.
func (b *metered) Get(ctx context.Context, key string) ([]byte, ObjectInfo, error) {
	start := time.Now()
	body, info, err := b.inner.Get(ctx, key)
	b.done(mGet, start, err)
	b.m.read.WithLabelValues(mGet).Add(float64(len(body)))
	return body, info, err
}

// GetRange implements Bucket.
func (b *metered) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	start := time.Now()
	body, err := b.inner.GetRange(ctx, key, offset, length)
	b.done(mGetRange, start, err)
	b.m.read.WithLabelValues(mGetRange).Add(float64(len(body)))
	return body, err
}

// Stat implements Bucket.
func (b *metered) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	start := time.Now()
	info, err := b.inner.Stat(ctx, key)
	b.done(mStat, start, err)
	return info, err
}

// List implements Bucket.
func (b *metered) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	start := time.Now()
	infos, err := b.inner.List(ctx, prefix)
	b.done(mList, start, err)
	return infos, err
}

// Delete implements Bucket.
func (b *metered) Delete(ctx context.Context, key string) error {
	start := time.Now()
	err := b.inner.Delete(ctx, key)
	b.done(mDelete, start, err)
	return err
}

// Close implements Bucket; it is not measured.
func (b *metered) Close() error { return b.inner.Close() }
