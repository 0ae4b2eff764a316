package s3_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/buckettest"
	"github.com/tlog-io/tlog/tier/bucketurl"
	"github.com/tlog-io/tlog/tier/miniotest"
	"github.com/tlog-io/tlog/tier/s3"
)

// minio is one MinIO server shared by the subtests of TestS3.
type minio struct {
	endpoint, key, secret string
	n                     atomic.Int64
}

// bucket creates a fresh, uniquely named bucket on the server.
func (m *minio) bucket(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("b%04d-%s", m.n.Add(1), strings.Trim(sanitize(t.Name()), "-"))
	if len(name) > 63 {
		name = strings.TrimRight(name[:63], "-")
	}
	miniotest.CreateBucket(t, m.endpoint, m.key, m.secret, name)
	return name
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			return r
		}
		if r >= 'A' && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return '-'
	}, s)
}

func (m *minio) config(bucket string) s3.Config {
	return s3.Config{
		Bucket:         bucket,
		Endpoint:       m.endpoint,
		PathStyle:      true,
		AccessKey:      m.key,
		SecretKey:      m.secret,
		RetryBaseDelay: 5 * time.Millisecond,
		RetryMaxDelay:  50 * time.Millisecond,
	}
}

func newS3(t *testing.T, cfg s3.Config) *s3.Bucket {
	t.Helper()
	b, err := s3.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func bounded(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestS3(t *testing.T) {
	start := time.Now()
	endpoint, key, secret := miniotest.Start(t)
	t.Logf("MinIO ready at %s in %v", endpoint, time.Since(start).Round(time.Millisecond))
	m := &minio{endpoint: endpoint, key: key, secret: secret}

	t.Run("Suite", func(t *testing.T) {
		buckettest.Run(t, func(t *testing.T) tier.Bucket { return newS3(t, m.config(m.bucket(t))) })
	})
	t.Run("SuitePrefixed", func(t *testing.T) {
		name := m.bucket(t)
		var n atomic.Int64
		buckettest.Run(t, func(t *testing.T) tier.Bucket {
			cfg := m.config(name)
			cfg.Prefix = fmt.Sprintf("/p/%d/", n.Add(1))
			return newS3(t, cfg)
		})
	})
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, m *minio)
	}{
		{"MinIOConditionalSemantics", testMinIOConditional},
		{"RetriesTransientErrors", testS3Retries},
		{"GivesUp", testS3GivesUp},
		{"PerAttemptTimeout", testS3AttemptTimeout},
		{"AmbiguousPutIfAbsent", testS3AmbiguousPutIfAbsent},
		{"AmbiguousPutIfMatch", testS3AmbiguousPutIfMatch},
		{"AmbiguousLoss", testS3AmbiguousLoss},
		{"AmbiguousUnknown", testS3AmbiguousUnknown},
		{"EmptyAndZeroRanges", testS3Ranges},
		{"OddKeys", testS3OddKeys},
		{"ListPagination", testS3ListPagination},
		{"ETagForms", testS3ETagForms},
		{"NoSuchBucket", testS3NoSuchBucket},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, m)
		})
	}
	// Not parallel: it sets the process environment.
	t.Run("Open", func(t *testing.T) { testS3Open(t, m) })
}

// testMinIOConditional pins down how this MinIO answers conditional
// PutObject requests, with the bare SDK client (no mapping of ours).
func testMinIOConditional(t *testing.T, m *minio) {
	ctx := bounded(t, 20*time.Second)
	name := m.bucket(t)
	c := miniotest.Client(m.endpoint, m.key, m.secret)
	put := func(key, body string, ifNoneMatch, ifMatch *string) (string, int, string) {
		out, err := c.PutObject(ctx, &awss3.PutObjectInput{
			Bucket: aws.String(name), Key: aws.String(key), Body: strings.NewReader(body),
			IfNoneMatch: ifNoneMatch, IfMatch: ifMatch,
		})
		if err != nil {
			var re interface{ HTTPStatusCode() int }
			var ae interface{ ErrorCode() string }
			if !errors.As(err, &re) || !errors.As(err, &ae) {
				t.Fatalf("PutObject(%q): %v", key, err)
			}
			return "", re.HTTPStatusCode(), ae.ErrorCode()
		}
		return aws.ToString(out.ETag), 200, ""
	}
	e1, st, code := put("k", "one", aws.String("*"), nil)
	if st != 200 {
		t.Fatalf("If-None-Match: * on a new key: %d %s", st, code)
	}
	if _, st, code = put("k", "two", aws.String("*"), nil); st != 412 || code != "PreconditionFailed" {
		t.Fatalf("If-None-Match: * on an existing key: %d %s, want 412 PreconditionFailed", st, code)
	}
	if _, st, code = put("k", "two", nil, aws.String(`"0123456789abcdef0123456789abcdef"`)); st != 412 {
		t.Fatalf("If-Match with a wrong etag: %d %s, want 412", st, code)
	}
	e2, st, code := put("k", "two", nil, aws.String(e1))
	if st != 200 || e2 == e1 {
		t.Fatalf("If-Match with the current etag: %d %s (etag %s, old %s)", st, code, e2, e1)
	}
	unquoted := strings.Trim(e2, `"`)
	_, st, code = put("k", "three", nil, aws.String(unquoted))
	t.Logf("If-Match with the current etag unquoted: %d %s", st, code)
	_, st, code = put("missing", "x", nil, aws.String(e1))
	t.Logf("If-Match on a missing key: %d %s", st, code)
	if st == 200 {
		t.Fatal("If-Match on a missing key created it")
	}
	got, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(name), Key: aws.String("k")})
	if err != nil {
		t.Fatal(err)
	}
	defer got.Body.Close()
	body, _ := io.ReadAll(got.Body)
	t.Logf("MinIO conditional PutObject: If-None-Match:* → 200 then 412 PreconditionFailed; If-Match stale → 412; current → 200; body now %q", body)
}

// --- fault-injecting proxy ---

// proxy sits between a Bucket and MinIO. hook sees every request and
// either handles it itself (returning true) or lets it through.
type proxy struct {
	srv  *httptest.Server
	fwd  *httputil.ReverseProxy
	hook func(w http.ResponseWriter, r *http.Request) bool
}

func newProxy(t *testing.T, target string, hook func(p *proxy, w http.ResponseWriter, r *http.Request) bool) *proxy {
	t.Helper()
	tu, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{fwd: &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(tu)
		r.Out.Host = r.In.Host // SigV4 signed the proxy's host
	}}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hook != nil && hook(p, w, r) {
			return
		}
		p.fwd.ServeHTTP(w, r)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

// forwardAndDrop lets the request reach MinIO, then closes the client's
// connection instead of answering: the write happened, the client can't
// know. It returns MinIO's status.
func (p *proxy) forwardAndDrop(w http.ResponseWriter, r *http.Request) int {
	rec := httptest.NewRecorder()
	p.fwd.ServeHTTP(rec, r)
	if conn, _, err := http.NewResponseController(w).Hijack(); err == nil {
		_ = conn.Close()
	}
	return rec.Code
}

// forwardAndStall lets the request reach MinIO, then answers nothing until
// the client gives up.
func (p *proxy) forwardAndStall(w http.ResponseWriter, r *http.Request) int {
	rec := httptest.NewRecorder()
	p.fwd.ServeHTTP(rec, r)
	select {
	case <-r.Context().Done():
	case <-time.After(30 * time.Second):
	}
	return rec.Code
}

func s3Fail(w http.ResponseWriter, r *http.Request, status int, code string) {
	_, _ = io.Copy(io.Discard, r.Body)
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>injected by test proxy</Message><RequestId>test</RequestId></Error>`, code)
}

func isObjectPut(r *http.Request) bool {
	return r.Method == http.MethodPut && strings.Count(r.URL.Path, "/") >= 2
}
func isObjectGet(r *http.Request) bool {
	return r.Method == http.MethodGet && strings.Count(r.URL.Path, "/") >= 2 && strings.Trim(r.URL.Path, "/") != ""
}
func isList(r *http.Request) bool {
	return r.Method == http.MethodGet && r.URL.Query().Get("list-type") == "2"
}

// counter counts requests by kind.
type counter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *counter) add(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[string]int{}
	}
	c.n[kind]++
	return c.n[kind]
}

func (c *counter) get(kind string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[kind]
}

func kind(r *http.Request) string {
	switch {
	case isList(r):
		return "list"
	case isObjectPut(r):
		return "put"
	case isObjectGet(r):
		return "get"
	}
	return r.Method
}

func testS3Retries(t *testing.T, m *minio) {
	ctx := bounded(t, 20*time.Second)
	var c counter
	p := newProxy(t, m.endpoint, func(_ *proxy, w http.ResponseWriter, r *http.Request) bool {
		switch n := c.add(kind(r)); {
		case kind(r) == "put" && n <= 3:
			s3Fail(w, r, http.StatusServiceUnavailable, "SlowDown")
		case kind(r) == "get" && n <= 2:
			s3Fail(w, r, http.StatusInternalServerError, "InternalError")
		case kind(r) == "list" && n <= 1:
			s3Fail(w, r, http.StatusServiceUnavailable, "ServiceUnavailable")
		case r.Method == http.MethodHead && n <= 1:
			w.WriteHeader(http.StatusBadGateway)
		case r.Method == http.MethodDelete && n <= 1:
			s3Fail(w, r, http.StatusTooManyRequests, "TooManyRequests")
		default:
			return false
		}
		return true
	})
	cfg := m.config(m.bucket(t))
	cfg.Endpoint = p.srv.URL
	b := newS3(t, cfg)
	etag, err := b.Put(ctx, "k", []byte("survived"))
	if err != nil {
		t.Fatalf("Put through 3 SlowDowns: %v", err)
	}
	body, info, err := b.Get(ctx, "k")
	if err != nil || string(body) != "survived" || info.ETag != etag {
		t.Fatalf("Get through 2 InternalErrors: %q %+v %v", body, info, err)
	}
	if infos, err := b.List(ctx, ""); err != nil || len(infos) != 1 {
		t.Fatalf("List through a 503: %+v %v", infos, err)
	}
	if _, err := b.Stat(ctx, "k"); err != nil {
		t.Fatalf("Stat through a 502: %v", err)
	}
	if err := b.Delete(ctx, "k"); err != nil {
		t.Fatalf("Delete through a 429: %v", err)
	}
	for k, want := range map[string]int{"put": 4, "get": 3, "list": 2, "HEAD": 2, "DELETE": 2} {
		if got := c.get(k); got != want {
			t.Errorf("%s requests: %d, want %d", k, got, want)
		}
	}
}

func testS3GivesUp(t *testing.T, m *minio) {
	ctx := bounded(t, 20*time.Second)
	var c counter
	p := newProxy(t, m.endpoint, func(_ *proxy, w http.ResponseWriter, r *http.Request) bool {
		switch c.add(kind(r)); kind(r) {
		case "put":
			s3Fail(w, r, http.StatusServiceUnavailable, "SlowDown")
		case "get":
			s3Fail(w, r, http.StatusForbidden, "AccessDenied")
		default:
			return false
		}
		return true
	})
	cfg := m.config(m.bucket(t))
	cfg.Endpoint = p.srv.URL
	cfg.MaxAttempts = 3
	b := newS3(t, cfg)
	_, err := b.Put(ctx, "k", []byte("x"))
	if err == nil || !strings.Contains(err.Error(), "SlowDown") || !strings.Contains(err.Error(), "3 attempts") {
		t.Fatalf("Put against permanent SlowDown: %v", err)
	}
	if errors.Is(err, tier.ErrPreconditionFailed) || errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("SlowDown mapped to a sentinel: %v", err)
	}
	if n := c.get("put"); n != 3 {
		t.Fatalf("PUT attempts: %d, want MaxAttempts=3", n)
	}
	if _, _, err := b.Get(ctx, "k"); err == nil || !strings.Contains(err.Error(), "AccessDenied") {
		t.Fatalf("Get against AccessDenied: %v", err)
	}
	if n := c.get("get"); n != 1 {
		t.Fatalf("AccessDenied retried: %d GETs", n)
	}
	t.Logf("give-up error: %v", err)
}

// Each attempt has its own deadline: a stalled first attempt is abandoned
// after RequestTimeout and the second one succeeds, within one call.
func testS3AttemptTimeout(t *testing.T, m *minio) {
	ctx := bounded(t, 20*time.Second)
	var c counter
	p := newProxy(t, m.endpoint, func(_ *proxy, w http.ResponseWriter, r *http.Request) bool {
		if kind(r) == "get" && c.add("get") == 1 {
			<-r.Context().Done() // never answer
			return true
		}
		return false
	})
	cfg := m.config(m.bucket(t))
	cfg.Endpoint = p.srv.URL
	cfg.RequestTimeout = 300 * time.Millisecond
	b := newS3(t, cfg)
	if _, err := b.Put(ctx, "k", []byte("slow")); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	body, _, err := b.Get(ctx, "k")
	if err != nil || string(body) != "slow" {
		t.Fatalf("Get after a stalled attempt: %q %v", body, err)
	}
	// Usually 2 attempts; a loaded machine can make a later one time out too.
	if d := time.Since(start); d < 300*time.Millisecond || c.get("get") < 2 {
		t.Fatalf("Get took %v with %d attempts; want one abandoned after 300ms, then another", d, c.get("get"))
	}
	// A caller's deadline shorter than the attempt's still wins.
	c.mu.Lock()
	c.n["get"] = 0
	c.mu.Unlock()
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, _, err := b.Get(short, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get with a 100ms caller deadline: %v, want DeadlineExceeded", err)
	}
}

// The first PutIfAbsent attempt lands but its response is lost (or never
// comes); the retry then gets 412 against our own object. The bucket must
// notice and report success with the stored ETag.
func testS3AmbiguousPutIfAbsent(t *testing.T, m *minio) {
	for _, mode := range []string{"drop", "stall"} {
		t.Run(mode, func(t *testing.T) {
			ctx := bounded(t, 20*time.Second)
			var c counter
			var firstStatus atomic.Int64
			p := newProxy(t, m.endpoint, func(p *proxy, w http.ResponseWriter, r *http.Request) bool {
				if kind(r) != "put" || c.add("put") != 1 {
					c.add(kind(r) + "-other")
					return false
				}
				if mode == "drop" {
					firstStatus.Store(int64(p.forwardAndDrop(w, r)))
				} else {
					firstStatus.Store(int64(p.forwardAndStall(w, r)))
				}
				return true
			})
			cfg := m.config(m.bucket(t))
			cfg.Endpoint = p.srv.URL
			cfg.RequestTimeout = 500 * time.Millisecond
			b := newS3(t, cfg)
			etag, err := b.PutIfAbsent(ctx, "seg/0001", []byte("mine"))
			if err != nil {
				t.Fatalf("PutIfAbsent whose first response was lost: %v", err)
			}
			if firstStatus.Load() != 200 {
				t.Fatalf("first attempt reached MinIO with status %d, want 200", firstStatus.Load())
			}
			// Usually 2; a loaded machine can make a retry time out too.
			if n := c.get("put"); n < 2 {
				t.Fatalf("PUT attempts: %d, want at least 2", n)
			}
			info, err := b.Stat(ctx, "seg/0001")
			if err != nil || info.ETag != etag {
				t.Fatalf("Stat = %+v, %v; want etag %q", info, err, etag)
			}
			// A second writer still loses normally.
			if _, err := b.PutIfAbsent(ctx, "seg/0001", []byte("mine")); !errors.Is(err, tier.ErrPreconditionFailed) {
				t.Fatalf("later PutIfAbsent: %v, want ErrPreconditionFailed", err)
			}
		})
	}
}

func testS3AmbiguousPutIfMatch(t *testing.T, m *minio) {
	ctx := bounded(t, 20*time.Second)
	var armed atomic.Bool
	p := newProxy(t, m.endpoint, func(p *proxy, w http.ResponseWriter, r *http.Request) bool {
		if kind(r) == "put" && armed.CompareAndSwap(true, false) {
			p.forwardAndDrop(w, r)
			return true
		}
		return false
	})
	cfg := m.config(m.bucket(t))
	cfg.Endpoint = p.srv.URL
	b := newS3(t, cfg)
	e1, err := b.Put(ctx, "meta/lease", []byte("epoch 1"))
	if err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	e2, err := b.PutIfMatch(ctx, "meta/lease", []byte("epoch 2"), e1)
	if err != nil {
		t.Fatalf("PutIfMatch whose first response was lost: %v", err)
	}
	body, info, err := b.Get(ctx, "meta/lease")
	if err != nil || string(body) != "epoch 2" || info.ETag != e2 || e2 == e1 {
		t.Fatalf("after PutIfMatch: %q %+v %v; want etag %q (old %q)", body, info, err, e2, e1)
	}
}

// An ambiguous attempt followed by 412 is still a loss when the stored
// object is somebody else's.
func testS3AmbiguousLoss(t *testing.T, m *minio) {
	ctx := bounded(t, 20*time.Second)
	var armed atomic.Bool
	var first atomic.Int64
	p := newProxy(t, m.endpoint, func(p *proxy, w http.ResponseWriter, r *http.Request) bool {
		if kind(r) == "put" && armed.CompareAndSwap(true, false) {
			first.Store(int64(p.forwardAndDrop(w, r)))
			return true
		}
		return false
	})
	cfg := m.config(m.bucket(t))
	cfg.Endpoint = p.srv.URL
	b := newS3(t, cfg)
	theirs, err := b.Put(ctx, "k", []byte("theirs"))
	if err != nil {
		t.Fatal(err)
	}
	armed.Store(true)
	if _, err := b.PutIfAbsent(ctx, "k", []byte("mine")); !errors.Is(err, tier.ErrPreconditionFailed) {
		t.Fatalf("PutIfAbsent on someone else's key after an ambiguous attempt: %v, want ErrPreconditionFailed", err)
	}
	if first.Load() != http.StatusPreconditionFailed {
		t.Fatalf("dropped attempt had status %d, want 412", first.Load())
	}
	armed.Store(true)
	if _, err := b.PutIfMatch(ctx, "k", []byte("mine"), `"0123456789abcdef0123456789abcdef"`); !errors.Is(err, tier.ErrPreconditionFailed) {
		t.Fatalf("stale PutIfMatch after an ambiguous attempt: %v, want ErrPreconditionFailed", err)
	}
	if body, info, err := b.Get(ctx, "k"); err != nil || string(body) != "theirs" || info.ETag != theirs {
		t.Fatalf("object changed: %q %+v %v", body, info, err)
	}
}

// If the read-back fails too, the caller must not be told it lost.
func testS3AmbiguousUnknown(t *testing.T, m *minio) {
	ctx := bounded(t, 20*time.Second)
	var puts atomic.Int64
	p := newProxy(t, m.endpoint, func(p *proxy, w http.ResponseWriter, r *http.Request) bool {
		switch kind(r) {
		case "put":
			if puts.Add(1) == 1 {
				p.forwardAndDrop(w, r)
				return true
			}
		case "get":
			s3Fail(w, r, http.StatusForbidden, "AccessDenied")
			return true
		}
		return false
	})
	cfg := m.config(m.bucket(t))
	cfg.Endpoint = p.srv.URL
	b := newS3(t, cfg)
	_, err := b.PutIfAbsent(ctx, "k", []byte("mine"))
	if err == nil || errors.Is(err, tier.ErrPreconditionFailed) || !strings.Contains(err.Error(), "outcome unknown") {
		t.Fatalf("PutIfAbsent with an unverifiable outcome: %v, want an 'outcome unknown' error", err)
	}
	t.Logf("unverifiable outcome: %v", err)
}

func testS3Ranges(t *testing.T, m *minio) {
	ctx := bounded(t, 20*time.Second)
	b := newS3(t, m.config(m.bucket(t)))
	if _, err := b.Put(ctx, "empty", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Put(ctx, "k", []byte("0123")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key     string
		off, n  int64
		want    string
		invalid bool
	}{
		{"empty", 0, 5, "", false},
		{"empty", 0, 0, "", false},
		{"empty", 1, 1, "", true},
		{"empty", 1, 0, "", true},
		{"k", 2, 0, "", false},
		{"k", 4, 0, "", false},
		{"k", 5, 0, "", true},
		{"k", 4, 1, "", true},
		{"k", 3, 1 << 62, "3", false},
		{"k", 1, 1<<63 - 1, "123", false},
	} {
		got, err := b.GetRange(ctx, tc.key, tc.off, tc.n)
		if tc.invalid {
			if !errors.Is(err, tier.ErrInvalidRange) {
				t.Errorf("GetRange(%s, %d, %d): %q %v, want ErrInvalidRange", tc.key, tc.off, tc.n, got, err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("GetRange(%s, %d, %d) = %q, %v; want %q", tc.key, tc.off, tc.n, got, err, tc.want)
		}
	}
	if _, err := b.GetRange(ctx, "missing", 0, 0); !errors.Is(err, tier.ErrNotFound) {
		t.Errorf("zero-length GetRange of a missing key: %v", err)
	}
}

// Keys that need escaping in URLs and XML survive Put, Get and List.
func testS3OddKeys(t *testing.T, m *minio) {
	ctx := bounded(t, 20*time.Second)
	b := newS3(t, m.config(m.bucket(t)))
	keys := []string{"odd/a b", "odd/a+b", "odd/100%", "odd/ü/ñ", "odd/q?x=1&y", "odd/#frag", "odd/<tag>&'\"", "odd/~tilde", "odd/tab\there", "odd/ctl\x01\x1f\x7f", "odd/\u2028\ufffe", "odd/%2F%zz+%20"}
	for _, k := range keys {
		if _, err := b.Put(ctx, k, []byte(k)); err != nil {
			t.Fatalf("Put(%q): %v", k, err)
		}
		if got, _, err := b.Get(ctx, k); err != nil || string(got) != k {
			t.Fatalf("Get(%q) = %q, %v", k, got, err)
		}
	}
	infos, err := b.List(ctx, "odd/")
	if err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(keys)
	slices.Sort(want)
	if got := keysOf(infos); !slices.Equal(got, want) {
		t.Fatalf("List = %q, want %q", got, want)
	}
}

func keysOf(infos []tier.ObjectInfo) []string {
	var keys []string
	for _, in := range infos {
		keys = append(keys, in.Key)
	}
	return keys
}

// Several ListObjectsV2 pages, including one ending exactly at a boundary.
func testS3ListPagination(t *testing.T, m *minio) {
	ctx := bounded(t, 20*time.Second)
	var c counter
	p := newProxy(t, m.endpoint, func(_ *proxy, _ http.ResponseWriter, r *http.Request) bool {
		c.add(kind(r))
		return false
	})
	cfg := m.config(m.bucket(t))
	cfg.Endpoint = p.srv.URL
	b := newS3(t, cfg)
	s3.SetListPageSize(b, 3)
	const n = 9
	for i := range n {
		if _, err := b.Put(ctx, fmt.Sprintf("many/%02d", n-1-i), nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Put(ctx, "more/x", nil); err != nil {
		t.Fatal(err)
	}
	infos, err := b.List(ctx, "many/")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != n {
		t.Fatalf("List returned %d keys, want %d: %q", len(infos), n, keysOf(infos))
	}
	for i, in := range infos {
		if want := fmt.Sprintf("many/%02d", i); in.Key != want {
			t.Fatalf("List[%d] = %q, want %q", i, in.Key, want)
		}
	}
	if got := c.get("list"); got < 3 {
		t.Fatalf("%d ListObjectsV2 requests for %d keys at 3 per page", got, n)
	}
}

func testS3ETagForms(t *testing.T, m *minio) {
	ctx := bounded(t, 20*time.Second)
	b := newS3(t, m.config(m.bucket(t)))
	etag, err := b.Put(ctx, "k", []byte("v1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) {
		t.Fatalf("ETag %s is not quoted", etag)
	}
	infos, err := b.List(ctx, "")
	if err != nil || len(infos) != 1 || infos[0].ETag != etag {
		t.Fatalf("List ETag = %+v, %v; Put gave %s", infos, err, etag)
	}
	// Unquoted works too.
	e2, err := b.PutIfMatch(ctx, "k", []byte("v2"), strings.Trim(etag, `"`))
	if err != nil {
		t.Fatalf("PutIfMatch with unquoted etag: %v", err)
	}
	if _, err := b.PutIfMatch(ctx, "k", []byte("v3"), "*"); !errors.Is(err, tier.ErrPreconditionFailed) {
		t.Fatalf(`PutIfMatch with etag "*": %v, want ErrPreconditionFailed`, err)
	}
	if _, err := b.PutIfMatch(ctx, "k", []byte("v3"), e2); err != nil {
		t.Fatal(err)
	}
}

func testS3NoSuchBucket(t *testing.T, m *minio) {
	ctx := bounded(t, 20*time.Second)
	b := newS3(t, m.config("never-created"))
	_, _, err := b.Get(ctx, "k")
	if err == nil || errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("Get on a missing bucket: %v; must not be ErrNotFound", err)
	}
	if _, err := b.List(ctx, ""); err == nil {
		t.Fatal("List on a missing bucket succeeded")
	}
	if _, err := b.PutIfAbsent(ctx, "k", nil); err == nil || errors.Is(err, tier.ErrPreconditionFailed) {
		t.Fatalf("PutIfAbsent on a missing bucket: %v", err)
	}
	if _, err := b.PutIfMatch(ctx, "k", nil, `"x"`); err == nil || errors.Is(err, tier.ErrPreconditionFailed) {
		t.Fatalf("PutIfMatch on a missing bucket: %v", err)
	}
	if err := b.Delete(ctx, "k"); err == nil {
		t.Fatal("Delete on a missing bucket succeeded")
	}
	t.Logf("Get on a missing bucket: %v", err)
}

func testS3Open(t *testing.T, m *minio) {
	ctx := bounded(t, 20*time.Second)
	name := m.bucket(t)
	t.Setenv("AWS_ACCESS_KEY_ID", m.key)
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.secret)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	u := fmt.Sprintf("s3://%s/clusters/one?endpoint=%s&region=us-east-1", name, url.QueryEscape(m.endpoint))
	b, err := bucketurl.Open(ctx, u)
	if err != nil {
		t.Fatalf("Open(%q): %v", u, err)
	}
	defer b.Close()
	etag, err := b.PutIfAbsent(ctx, "meta/snapshot/1", []byte("snap"))
	if err != nil {
		t.Fatal(err)
	}
	infos, err := b.List(ctx, "meta/")
	if err != nil || len(infos) != 1 || infos[0].Key != "meta/snapshot/1" || infos[0].ETag != etag {
		t.Fatalf("List through Open = %+v, %v", infos, err)
	}
	// Stored under the URL's prefix in the real bucket.
	raw := miniotest.Client(m.endpoint, m.key, m.secret)
	out, err := raw.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(name), Key: aws.String("clusters/one/meta/snapshot/1")})
	if err != nil {
		t.Fatalf("object not under the URL's prefix: %v", err)
	}
	got, _ := io.ReadAll(out.Body)
	_ = out.Body.Close()
	if !bytes.Equal(got, []byte("snap")) {
		t.Fatalf("raw object = %q", got)
	}
	// Unprefixed, with an explicit path_style, sees the full key.
	u2 := fmt.Sprintf("s3://%s?endpoint=%s&path_style=true", name, m.endpoint)
	b2, err := bucketurl.Open(ctx, u2)
	if err != nil {
		t.Fatalf("Open(%q): %v", u2, err)
	}
	defer b2.Close()
	if body, _, err := b2.Get(ctx, "clusters/one/meta/snapshot/1"); err != nil || string(body) != "snap" {
		t.Fatalf("unprefixed Get = %q, %v", body, err)
	}
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b2.Get(ctx, "clusters/one/meta/snapshot/1"); err == nil {
		t.Fatal("Get after Close succeeded")
	}
}

func TestNewBadConfig(t *testing.T) {
	for _, cfg := range []s3.Config{
		{},
		{Bucket: "b", AccessKey: "k"},
		{Bucket: "b", Endpoint: "localhost:9000"},
		{Bucket: "b", MaxAttempts: -1},
	} {
		if b, err := s3.New(t.Context(), cfg); err == nil {
			_ = b.Close()
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
}

// A MinIO crash (SIGKILL) and restart on the same directory: calls fail
// while it is down, without hanging or turning into sentinels, and acked
// writes are there afterwards.
func TestS3ServerRestart(t *testing.T) {
	p := miniotest.StartProcess(t)
	m := &minio{endpoint: p.Endpoint(), key: p.AccessKey(), secret: p.SecretKey()}
	cfg := m.config(m.bucket(t))
	cfg.MaxAttempts = 3
	b := newS3(t, cfg)
	ctx := bounded(t, 25*time.Second)
	etag, err := b.PutIfAbsent(ctx, "k", []byte("durable"))
	if err != nil {
		t.Fatal(err)
	}
	p.Stop()
	start := time.Now()
	_, _, err = b.Get(ctx, "k")
	if err == nil || errors.Is(err, tier.ErrNotFound) || !strings.Contains(err.Error(), "3 attempts") {
		t.Fatalf("Get while MinIO is down: %v", err)
	}
	if _, err := b.PutIfAbsent(ctx, "k", []byte("other")); err == nil || errors.Is(err, tier.ErrPreconditionFailed) {
		t.Fatalf("PutIfAbsent while MinIO is down: %v", err)
	}
	t.Logf("down: failed in %v: %v", time.Since(start).Round(time.Millisecond), err)
	start = time.Now()
	p.Restart()
	t.Logf("restarted in %v", time.Since(start).Round(time.Millisecond))
	body, info, err := b.Get(ctx, "k")
	if err != nil || string(body) != "durable" || info.ETag != etag {
		t.Fatalf("after restart: %q %+v %v", body, info, err)
	}
	if _, err := b.PutIfAbsent(ctx, "k", []byte("other")); !errors.Is(err, tier.ErrPreconditionFailed) {
		t.Fatalf("PutIfAbsent after restart: %v", err)
	}
}
