package rangecache

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"sync"
	"testing"
	"time"

	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/tiertest"
)

func setup(t *testing.T) (*tiertest.Faulty, []byte) {
	t.Helper()
	f := tiertest.NewFaulty(tier.NewMemBucket())
	obj := bytes.Repeat([]byte("0123456789"), 1000)
	if _, err := f.Put(context.Background(), "data/a", obj); err != nil {
		t.Fatal(err)
	}
	return f, obj
}

func TestGetCachesAndVerifies(t *testing.T) {
	f, obj := setup(t)
	c := New(f, 1<<20, nil)
	r := Range{Object: "data/a", Pos: 100, Len: 500, CRC: crc32.Checksum(obj[100:600], castagnoli)}
	for i := 0; i < 3; i++ {
		got, err := c.Get(context.Background(), r)
		if err != nil || !bytes.Equal(got, obj[100:600]) {
			t.Fatalf("get %d: %v", i, err)
		}
	}
	if n := f.Counts()[tiertest.OpGetRange]; n != 1 {
		t.Fatalf("%d ranged GETs for three reads of one range, want 1", n)
	}
	if s := c.Stats(); s.Hits != 2 || s.Misses != 1 || s.Bytes != 500 {
		t.Fatalf("stats %+v", s)
	}
	bad := Range{Object: "data/a", Pos: 0, Len: 10, CRC: 12345}
	if _, err := c.Get(context.Background(), bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("bad CRC: %v, want ErrCorrupt", err)
	}
	if _, err := c.Get(context.Background(), Range{Object: "data/missing", Pos: 0, Len: 10}); !errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("missing object: %v, want ErrNotFound", err)
	}
}

func TestConcurrentGetsShareOneLoad(t *testing.T) {
	f, obj := setup(t)
	f.SetLatency(tiertest.OpGetRange, 50*time.Millisecond)
	c := New(f, 1<<20, nil)
	r := Range{Object: "data/a", Pos: 0, Len: 1000}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got, err := c.Get(context.Background(), r)
			if err != nil || !bytes.Equal(got, obj[:1000]) {
				t.Errorf("get: %v", err)
			}
		}()
	}
	wg.Wait()
	if n := f.Counts()[tiertest.OpGetRange]; n != 1 {
		t.Fatalf("%d GETs for 20 concurrent readers, want 1", n)
	}
}

func TestEvictionBoundsMemory(t *testing.T) {
	f, _ := setup(t)
	c := New(f, 1000, nil)
	for i := int64(0); i < 5; i++ {
		if _, err := c.Get(context.Background(), Range{Object: "data/a", Pos: i * 400, Len: 400}); err != nil {
			t.Fatal(err)
		}
	}
	s := c.Stats()
	if s.Bytes > 1000 || s.Evictions != 3 {
		t.Fatalf("stats %+v: want at most 1000 bytes held and 3 evictions", s)
	}
	// The most recent range is still cached; the first is not.
	before := f.Counts()[tiertest.OpGetRange]
	c.Get(context.Background(), Range{Object: "data/a", Pos: 1600, Len: 400})
	c.Get(context.Background(), Range{Object: "data/a", Pos: 0, Len: 400})
	if got := f.Counts()[tiertest.OpGetRange] - before; got != 1 {
		t.Fatalf("%d GETs, want 1 (only the evicted range)", got)
	}
}

func TestPrefetch(t *testing.T) {
	f, _ := setup(t)
	c := New(f, 1<<20, nil)
	r := Range{Object: "data/a", Pos: 0, Len: 100}
	c.Prefetch(r)
	c.Prefetch(r)
	deadline := time.Now().Add(5 * time.Second)
	for c.Stats().Bytes == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if _, err := c.Get(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if n := f.Counts()[tiertest.OpGetRange]; n != 1 {
		t.Fatalf("%d GETs, want 1", n)
	}
	if s := c.Stats(); s.Prefetches != 1 || s.Hits != 1 {
		t.Fatalf("stats %+v", s)
	}
}

func TestCallerCancelDoesNotPoisonLoad(t *testing.T) {
	f, obj := setup(t)
	f.SetLatency(tiertest.OpGetRange, 100*time.Millisecond)
	c := New(f, 1<<20, nil)
	r := Range{Object: "data/a", Pos: 0, Len: 10}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := c.Get(ctx, r); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled get: %v", err)
	}
	got, err := c.Get(context.Background(), r)
	if err != nil || !bytes.Equal(got, obj[:10]) {
		t.Fatalf("get after a cancelled one: %v", err)
	}
}

// A released range is evicted before ones touched less recently.
func TestReleasedRangeEvictedFirst(t *testing.T) {
	f, _ := setup(t)
	c := New(f, 1000, nil)
	a := Range{Object: "data/a", Pos: 0, Len: 400}
	b := Range{Object: "data/a", Pos: 400, Len: 400}
	for _, r := range []Range{a, b, a} { // a is the most recent
		if _, err := c.Get(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	c.Release(a)
	if _, err := c.Get(context.Background(), Range{Object: "data/a", Pos: 800, Len: 400}); err != nil {
		t.Fatal(err)
	}
	before := f.Counts()[tiertest.OpGetRange]
	if _, err := c.Get(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if got := f.Counts()[tiertest.OpGetRange] - before; got != 0 {
		t.Fatalf("the unreleased range was evicted (%d GETs to read it again); the released one should have gone", got)
	}
	if s := c.Stats(); s.Evictions != 1 {
		t.Fatalf("stats %+v: want 1 eviction", s)
	}
}
