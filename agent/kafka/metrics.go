package kafka

// Request metrics, recorded where requests are answered. They register on
// the agent's registry (one per agent, so agents in one process each
// report their own); docs/architecture.md ("Observability") lists them.

import (
	"reflect"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metrics are the front end's series. Its methods accept a nil receiver.
type metrics struct {
	requests       *prometheus.CounterVec   // api, error
	requestSeconds *prometheus.HistogramVec // api
	produceBytes   prometheus.Counter
	produceRecords prometheus.Counter
	produceSeconds prometheus.Histogram
	fetchBytes     prometheus.Counter
}

// newMetrics registers the front end's series on reg; a nil reg records
// nothing.
func newMetrics(reg prometheus.Registerer) *metrics {
	if reg == nil {
		return nil
	}
	o := &metrics{}
	f := promauto.With(reg)
	o.requests = f.NewCounterVec(prometheus.CounterOpts{
		Name: "tlog_kafka_requests_total",
		Help: "Kafka requests answered, by API and error (the response's top-level error code, else its first per-partition one; none when all succeeded).",
	}, []string{"api", "error"})
	o.requestSeconds = f.NewHistogramVec(prometheus.HistogramOpts{
		Name: "tlog_kafka_request_duration_seconds",
		Help: "Time from reading a Kafka request to its response being ready to send, by API (Fetch includes its long poll).",
		// 100 µs to 26 s: fetch long polls and produce timeouts are seconds.
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 19),
	}, []string{"api"})
	o.produceBytes = f.NewCounter(prometheus.CounterOpts{
		Name: "tlog_produce_bytes_total",
		Help: "Record batch bytes accepted by Produce (duplicates of an idempotent producer not counted).",
	})
	o.produceRecords = f.NewCounter(prometheus.CounterOpts{
		Name: "tlog_produce_records_total",
		Help: "Records accepted by Produce (duplicates not counted).",
	})
	o.produceSeconds = f.NewHistogram(prometheus.HistogramOpts{
		Name: "tlog_produce_duration_seconds",
		Help: "Time from the Produce handler taking a request (acks 1 or all) to its answer being ready: the WAL group commit and, with --wal-sync=always, its fsync.",
		// 100 µs to 6.5 s.
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 17),
	})
	o.fetchBytes = f.NewCounter(prometheus.CounterOpts{
		Name: "tlog_fetch_bytes_total",
		Help: "Record batch bytes sent in Fetch responses.",
	})
	return o
}

// request counts one answered request. resp is nil for acks=0 produce.
func (o *metrics) request(key int16, resp kmsg.Response, d time.Duration) {
	if o == nil {
		return
	}
	api := kmsg.NameForKey(key)
	o.requestSeconds.WithLabelValues(api).Observe(d.Seconds())
	var code int16
	switch r := resp.(type) {
	case nil:
	case *kmsg.FetchResponse:
		// Fetch is the hot path: no reflection, and its bytes are
		// counted here, where the response that is really sent is known.
		code = r.ErrorCode
		var n int
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				n += len(p.RecordBatches)
				if code == 0 {
					code = p.ErrorCode
				}
			}
		}
		o.fetchBytes.Add(float64(n))
	case *kmsg.ProduceResponse:
		for _, t := range r.Topics {
			for _, p := range t.Partitions {
				if code == 0 {
					code = p.ErrorCode
				}
			}
		}
	default:
		code = firstErrorCode(reflect.ValueOf(resp).Elem())
	}
	o.requests.WithLabelValues(api, errorName(code)).Inc()
}

// firstErrorCode returns v's own ErrorCode if set, else the first non-zero
// one in its nested structs, depth first. Every kmsg response names its
// error fields ErrorCode, so this covers APIs added later without edits.
func firstErrorCode(v reflect.Value) int16 {
	if v.Kind() != reflect.Struct {
		return 0
	}
	if f := v.FieldByName("ErrorCode"); f.IsValid() && f.Kind() == reflect.Int16 && f.Int() != 0 {
		return int16(f.Int())
	}
	for i := range v.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Struct:
			if c := firstErrorCode(f); c != 0 {
				return c
			}
		case reflect.Slice:
			if f.Type().Elem().Kind() != reflect.Struct {
				continue
			}
			for j := range f.Len() {
				if c := firstErrorCode(f.Index(j)); c != 0 {
					return c
				}
			}
		}
	}
	return 0
}

var errorNames sync.Map // int16 → string

// errorName is the Kafka name of code (NOT_LEADER_OR_FOLLOWER, …), "none"
// for 0, or the number for codes kerr does not know.
func errorName(code int16) string {
	if code == 0 {
		return "none"
	}
	if s, ok := errorNames.Load(code); ok {
		return s.(string)
	}
	s := strconv.Itoa(int(code))
	if ke, ok := kerr.ErrorForCode(code).(*kerr.Error); ok && ke.Code == code {
		s = ke.Message
	}
	errorNames.Store(code, s)
	return s
}

// produced counts a batch Produce accepted into the WAL.
func (o *metrics) produced(duplicate bool, bytes int, records int32) {
	if o == nil || duplicate {
		return
	}
	o.produceBytes.Add(float64(bytes))
	o.produceRecords.Add(float64(records))
}

// produceDone records a Produce answer's latency from start.
func (o *metrics) produceDone(start time.Time) {
	if o == nil {
		return
	}
	o.produceSeconds.Observe(time.Since(start).Seconds())
}
