package tier_test

import (
	"context"
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/buckettest"
	"github.com/tlog-io/tlog/tier/tiertest"
)

func TestMetricsBucket(t *testing.T) {
	// One registry for every subtest: wrappers must share its metrics.
	reg := prometheus.NewRegistry()
	buckettest.Run(t, func(*testing.T) tier.Bucket { return tier.WithMetrics(tier.NewMemBucket(), reg) })
}

// metricValue finds the counter or histogram sample count of name whose
// labels include want.
func metricValue(t *testing.T, g prometheus.Gatherer, name string, want map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for k, v := range want {
				if !hasLabel(m, k, v) {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			}
		}
	}
	t.Fatalf("no series %s%v", name, want)
	return 0
}

func hasLabel(m *dto.Metric, k, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetName() == k && l.GetValue() == v {
			return true
		}
	}
	return false
}

func TestMetricsCountsByResult(t *testing.T) {
	ctx := context.Background()
	reg := prometheus.NewRegistry()
	f := tiertest.NewFaulty(tier.NewMemBucket())
	b := tier.WithMetrics(f, reg)

	body := []byte("0123456789")
	etag, err := b.PutIfAbsent(ctx, "a/1", body)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutIfAbsent(ctx, "a/1", body); !errors.Is(err, tier.ErrPreconditionFailed) {
		t.Fatalf("second PutIfAbsent: %v", err)
	}
	if _, err := b.PutIfMatch(ctx, "a/1", body[:4], etag); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "a/2", body); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Get(ctx, "a/2"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Get(ctx, "missing"); !errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("Get missing: %v", err)
	}
	if _, err := b.GetRange(ctx, "a/2", 2, 3); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(ctx, "a/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.List(ctx, "a/"); err != nil {
		t.Fatal(err)
	}
	if err := b.Delete(ctx, "a/2"); err != nil {
		t.Fatal(err)
	}
	f.SetOutage(tiertest.ErrInjected)
	for range 3 {
		if _, err := b.List(ctx, "a/"); err == nil {
			t.Fatal("List succeeded during an outage")
		}
	}
	f.SetOutage(nil)

	req := func(op, result string) float64 {
		return metricValue(t, reg, "tlog_bucket_requests_total", map[string]string{"op": op, "result": result})
	}
	for _, c := range []struct {
		op, result string
		want       float64
	}{
		{"put_if_absent", "ok", 1},
		{"put_if_absent", "precondition_failed", 1},
		{"put_if_match", "ok", 1},
		{"put", "ok", 1},
		{"get", "ok", 1},
		{"get", "not_found", 1},
		{"get_range", "ok", 1},
		{"stat", "ok", 1},
		{"list", "ok", 1},
		{"list", "error", 3},
		{"delete", "ok", 1},
		{"delete", "error", 0},
	} {
		if got := req(c.op, c.result); got != c.want {
			t.Errorf("requests{op=%s,result=%s} = %v, want %v", c.op, c.result, got, c.want)
		}
	}
	if got := metricValue(t, reg, "tlog_bucket_request_duration_seconds", map[string]string{"op": "list"}); got != 4 {
		t.Errorf("list latency samples = %v, want 4", got)
	}
	if got := metricValue(t, reg, "tlog_bucket_written_bytes_total", map[string]string{"op": "put_if_absent"}); got != 10 {
		t.Errorf("put_if_absent bytes = %v, want 10 (the refused write moves nothing)", got)
	}
	if got := metricValue(t, reg, "tlog_bucket_written_bytes_total", map[string]string{"op": "put_if_match"}); got != 4 {
		t.Errorf("put_if_match bytes = %v, want 4", got)
	}
	if got := metricValue(t, reg, "tlog_bucket_read_bytes_total", map[string]string{"op": "get"}); got != 10 {
		t.Errorf("get bytes = %v, want 10", got)
	}
	if got := metricValue(t, reg, "tlog_bucket_read_bytes_total", map[string]string{"op": "get_range"}); got != 3 {
		t.Errorf("get_range bytes = %v, want 3", got)
	}

	// A second wrapper on the same registry adds to the same series.
	b2 := tier.WithMetrics(tier.NewMemBucket(), reg)
	if _, err := b2.Stat(ctx, "nope"); !errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("Stat missing: %v", err)
	}
	if got := req("stat", "not_found"); got != 1 {
		t.Errorf("shared registry: stat not_found = %v, want 1", got)
	}
}
