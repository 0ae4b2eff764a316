package agent_test

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/tiertest"
)

func withAdmin(c *agent.Config) { c.AdminListen = "127.0.0.1:0" }

// httpGet returns the status and body of an admin endpoint.
func httpGet(t *testing.T, addr, path string) (int, string) {
	t.Helper()
	cl := http.Client{Timeout: 10 * time.Second}
	resp, err := cl.Get("http://" + addr + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: read body: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// scrape reads /metrics (text format) into series → value, where a series
// is written as exposed: name{label="value",...}.
func scrape(t *testing.T, addr string) metrics {
	t.Helper()
	code, body := httpGet(t, addr, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: status %d: %s", code, body)
	}
	m := metrics{}
	sc := bufio.NewScanner(strings.NewReader(body))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("/metrics: bad line %q", line)
		}
		m[line[:i]] = v
	}
	return m
}

type metrics map[string]float64

// get sums the series of name that carry every label given as k="v";
// ok is false when there is none.
func (m metrics) get(name string, labels ...string) (sum float64, ok bool) {
	for series, v := range m {
		base, rest, _ := strings.Cut(series, "{")
		if base != name {
			continue
		}
		match := true
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				match = false
				break
			}
		}
		if match {
			sum += v
			ok = true
		}
	}
	return sum, ok
}

// positive fails the test unless the series exists and is above zero.
func (m metrics) positive(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := m.get(name, labels...)
	if !ok {
		t.Errorf("no series %s%v", name, labels)
	} else if v <= 0 {
		t.Errorf("%s%v = %v, want > 0", name, labels, v)
	}
	return v
}

// present fails the test unless the series exists.
func (m metrics) present(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	v, ok := m.get(name, labels...)
	if !ok {
		t.Errorf("no series %s%v", name, labels)
	}
	return v
}

func TestAdminMetricsAfterProduceFetchFlush(t *testing.T) {
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket(), fastFlush, withAdmin, func(c *agent.Config) { c.WALSync, c.AdminPprof = true, true })
	addr := a.AdminAddr()
	if addr == "" {
		t.Fatal("AdminAddr is empty with AdminListen set")
	}
	if code, body := httpGet(t, addr, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	if code, body := httpGet(t, addr, "/debug/pprof/goroutine?debug=1"); code != http.StatusOK || !strings.Contains(body, "goroutine profile") {
		t.Fatalf("/debug/pprof/goroutine: %d %.200s", code, body)
	}
	if code, body := httpGet(t, addr, "/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz on a controller: %d %s", code, body)
	}

	const n = 200
	prod := tlogtest.NewClient(t, a.Addr(), kgo.AllowAutoTopicCreation())
	want := &tlogtest.Acked{}
	tlogtest.Produce(t, prod, want, n, func(i int) *kgo.Record {
		return &kgo.Record{Topic: "obs", Value: fmt.Appendf(nil, "v-%d", i)}
	})
	waitFlushed(t, a, "obs", 1)
	// Everything is flushed, so this read is served from the bucket
	// through the range cache.
	tlogtest.VerifyAll(t, a.Addr(), want, false)

	// Flush metrics follow the commit that waitFlushed watches.
	tlogtest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if v, _ := scrape(t, addr).get("tlog_flush_duration_seconds_count"); v == 0 {
			return fmt.Errorf("no flush timed yet")
		}
		return nil
	})
	m := scrape(t, addr)
	m.positive(t, "tlog_kafka_requests_total", `api="Produce"`, `error="none"`)
	m.positive(t, "tlog_kafka_requests_total", `api="Fetch"`, `error="none"`)
	m.positive(t, "tlog_kafka_requests_total", `api="ApiVersions"`)
	m.positive(t, "tlog_kafka_request_duration_seconds_count", `api="Produce"`)
	m.positive(t, "tlog_kafka_request_duration_seconds_count", `api="Fetch"`)
	if got := m.present(t, "tlog_produce_records_total"); got != n {
		t.Errorf("tlog_produce_records_total = %v, want %d", got, n)
	}
	produced := m.positive(t, "tlog_produce_bytes_total")
	m.positive(t, "tlog_produce_duration_seconds_count")
	if fetched := m.positive(t, "tlog_fetch_bytes_total"); fetched < produced {
		t.Errorf("fetched %v bytes, produced %v: the full read sent less than was written", fetched, produced)
	}

	m.positive(t, "tlog_wal_group_commits_total")
	m.positive(t, "tlog_wal_fsyncs_total") // WALSync is on
	m.positive(t, "tlog_wal_written_bytes_total")
	m.positive(t, "tlog_wal_batches_total")
	m.present(t, "tlog_wal_unflushed_bytes")

	m.positive(t, "tlog_flush_segments_total")
	m.positive(t, "tlog_flush_bytes_total")
	m.positive(t, "tlog_flush_duration_seconds_count")
	m.present(t, "tlog_flush_failures_total")
	m.present(t, "tlog_retention_log_start_moves_total")
	m.present(t, "tlog_retention_deleted_objects_total")
	m.present(t, "tlog_compactions_total")

	// The fetch asks for the range ahead of reading it (a prefetch), so
	// the read that follows may wait on that GET rather than miss.
	if m.present(t, "tlog_cache_misses_total")+m.present(t, "tlog_cache_prefetches_total") == 0 {
		t.Error("no range read from the bucket: no cache miss and no prefetch")
	}
	m.positive(t, "tlog_cache_bytes")
	m.present(t, "tlog_cache_hits_total")
	m.present(t, "tlog_cache_evictions_total")

	if got := m.present(t, "tlog_partitions_led"); got != 1 {
		t.Errorf("tlog_partitions_led = %v, want 1", got)
	}
	if got := m.present(t, "tlog_controller"); got != 1 {
		t.Errorf("tlog_controller = %v, want 1", got)
	}

	m.positive(t, "tlog_bucket_requests_total", `op="put_if_absent"`, `result="ok"`)
	m.positive(t, "tlog_bucket_written_bytes_total", `op="put_if_absent"`)
	m.positive(t, "tlog_bucket_requests_total", `op="get_range"`, `result="ok"`)
	m.positive(t, "tlog_bucket_read_bytes_total", `op="get_range"`)
	m.positive(t, "tlog_bucket_request_duration_seconds_count", `op="put_if_absent"`)
	if v, _ := m.get("tlog_bucket_requests_total", `result="error"`); v != 0 {
		t.Errorf("bucket errors = %v with a healthy bucket", v)
	}

	m.positive(t, "go_goroutines")
	m.present(t, "process_cpu_seconds_total")

	// Close shuts the listener down.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	cl := http.Client{Timeout: 2 * time.Second}
	if resp, err := cl.Get("http://" + addr + "/healthz"); err == nil {
		resp.Body.Close()
		t.Fatalf("/healthz still answers after Close: %d", resp.StatusCode)
	}
}

// Two agents in one process keep separate registries.
func TestAdminMetricsPerAgent(t *testing.T) {
	a1 := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket(), quiet, withAdmin)
	a2 := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket(), quiet, withAdmin)
	tlogtest.Produce(t, tlogtest.NewClient(t, a1.Addr(), kgo.AllowAutoTopicCreation()), &tlogtest.Acked{}, 10, func(i int) *kgo.Record {
		return &kgo.Record{Topic: "one", Value: []byte("x")}
	})
	if got := scrape(t, a1.AdminAddr()).present(t, "tlog_produce_records_total"); got != 10 {
		t.Errorf("agent 1 records = %v, want 10", got)
	}
	if got := scrape(t, a2.AdminAddr()).present(t, "tlog_produce_records_total"); got != 0 {
		t.Errorf("agent 2 records = %v, want 0", got)
	}
}

func TestAdminOff(t *testing.T) {
	a := startAgent(t)
	if got := a.AdminAddr(); got != "" {
		t.Fatalf("AdminAddr = %q with AdminListen empty", got)
	}
}

// A bucket outage shows as bucket errors and failed flushes, and /readyz
// turns 503 once the controller lease lapses, then 200 again after.
func TestAdminBucketOutage(t *testing.T) {
	bucket := tiertest.NewFaulty(tier.NewMemBucket())
	a := tlogtest.StartAgent(t, t.TempDir(), bucket, fastFlush, withAdmin)
	addr := a.AdminAddr()
	prod := tlogtest.NewClient(t, a.Addr(), kgo.AllowAutoTopicCreation())
	// The producer id is a metadata write: take it before the outage.
	tlogtest.Produce(t, prod, &tlogtest.Acked{}, 1, func(int) *kgo.Record {
		return &kgo.Record{Topic: "down", Value: []byte("before")}
	})
	before := scrape(t, addr)
	errsBefore, _ := before.get("tlog_bucket_requests_total", `result="error"`)

	bucket.SetOutage(tiertest.ErrInjected)
	tlogtest.Produce(t, prod, &tlogtest.Acked{}, 100, func(i int) *kgo.Record {
		return &kgo.Record{Topic: "down", Value: fmt.Appendf(nil, "o-%d", i)}
	})
	tlogtest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		m := scrape(t, addr)
		if v, _ := m.get("tlog_bucket_requests_total", `result="error"`); v <= errsBefore {
			return fmt.Errorf("bucket errors %v, before the outage %v", v, errsBefore)
		}
		if v, _ := m.get("tlog_bucket_requests_total", `op="put_if_absent"`, `result="error"`); v == 0 {
			return fmt.Errorf("no failed segment upload counted")
		}
		if v, _ := m.get("tlog_flush_failures_total"); v == 0 {
			return fmt.Errorf("no flush failure counted")
		}
		if v, _ := m.get("tlog_wal_unflushed_bytes"); v == 0 {
			return fmt.Errorf("nothing unflushed during the outage")
		}
		return nil
	})
	// The lease (2 s in tests) cannot be renewed: the agent stops being
	// the controller and says so.
	tlogtest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		code, body := httpGet(t, addr, "/readyz")
		if code != http.StatusServiceUnavailable {
			return fmt.Errorf("/readyz %d %q during the outage", code, body)
		}
		if !strings.Contains(body, "controller") {
			t.Errorf("/readyz reason %q does not mention the controller", body)
		}
		return nil
	})
	if code, _ := httpGet(t, addr, "/healthz"); code != http.StatusOK {
		t.Fatalf("/healthz %d during a bucket outage: the process is alive", code)
	}
	bucket.SetOutage(nil)
	tlogtest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		if code, body := httpGet(t, addr, "/readyz"); code != http.StatusOK {
			return fmt.Errorf("/readyz %d %q after the outage", code, body)
		}
		if v, _ := scrape(t, addr).get("tlog_controller"); v != 1 {
			return fmt.Errorf("tlog_controller = %v after the outage", v)
		}
		return nil
	})
	waitFlushed(t, a, "down", 1)
}

// The admin listener with a token: every path but the probes needs it;
// without --admin-pprof there are no profiles at all.
func TestAdminToken(t *testing.T) {
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket(), withAdmin, func(c *agent.Config) { c.AdminToken = "t0ken" })
	addr := a.AdminAddr()
	for path, want := range map[string]int{"/healthz": http.StatusOK, "/readyz": http.StatusOK, "/metrics": http.StatusUnauthorized, "/debug/pprof/": http.StatusUnauthorized} {
		if code, body := httpGet(t, addr, path); code != want {
			t.Fatalf("%s without the token: %d %.100s, want %d", path, code, body, want)
		}
	}
	get := func(path, auth string) int {
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
		req.Header.Set("Authorization", auth)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get("/metrics", "Bearer t0ken"); code != http.StatusOK {
		t.Fatalf("/metrics with the token: %d", code)
	}
	if code := get("/metrics", "Bearer wrong"); code != http.StatusUnauthorized {
		t.Fatalf("/metrics with a wrong token: %d", code)
	}
	if code := get("/debug/pprof/", "Bearer t0ken"); code != http.StatusNotFound {
		t.Fatalf("/debug/pprof/ without --admin-pprof: %d, want 404", code)
	}
}
