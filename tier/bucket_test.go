package tier_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/buckettest"
	"github.com/tlog-io/tlog/tier/tiertest"
)

func TestMemBucket(t *testing.T) {
	buckettest.Run(t, func(*testing.T) tier.Bucket { return tier.NewMemBucket() })
}

func TestPrefixBucket(t *testing.T) {
	buckettest.Run(t, func(*testing.T) tier.Bucket { return tier.WithPrefix(tier.NewMemBucket(), "some/prefix") })
}

func TestFaultyBucket(t *testing.T) {
	buckettest.Run(t, func(*testing.T) tier.Bucket { return tiertest.NewFaulty(tier.NewMemBucket()) })
}

// --- Faulty ---

func TestFaultyLatency(t *testing.T) {
	f := tiertest.NewFaulty(tier.NewMemBucket())
	ctx := t.Context()
	// Upper bounds use an hour of latency against a generous ctx deadline
	// rather than wall-clock thresholds, which flake on loaded machines.
	bounded := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		t.Cleanup(cancel)
		return c
	}
	if _, err := f.Put(ctx, "k", []byte("x")); err != nil {
		t.Fatal(err)
	}
	f.SetLatency(tiertest.OpGet, 50*time.Millisecond)
	start := time.Now()
	if _, _, err := f.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("Get took %v, want >= 50ms", d)
	}

	f.SetLatency(tiertest.OpGet, time.Hour)
	if _, err := f.Stat(bounded(), "k"); err != nil {
		t.Fatalf("Stat delayed by Get's latency: %v", err)
	}

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, _, err := f.Get(short, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get under latency with short ctx: %v, want DeadlineExceeded", err)
	}

	f.SetLatency(tiertest.OpPut, time.Hour)
	cancelled, cancelNow := context.WithCancel(ctx)
	cancelNow()
	if _, err := f.Put(cancelled, "k", []byte("y")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put under latency with cancelled ctx: %v, want Canceled", err)
	}
	f.SetLatency(tiertest.OpGet, 0) // cleared: must answer well within the deadline
	if body, _, err := f.Get(bounded(), "k"); err != nil || string(body) != "x" {
		t.Fatalf("Get after clearing latency: %q, %v (a cancelled Put must not land)", body, err)
	}
}

func TestFaultyErrors(t *testing.T) {
	mem := tier.NewMemBucket()
	f := tiertest.NewFaulty(mem)
	ctx := t.Context()
	f.SetError(tiertest.OpPut, tiertest.ErrInjected)
	if _, err := f.Put(ctx, "k", []byte("x")); !errors.Is(err, tiertest.ErrInjected) {
		t.Fatalf("Put: %v, want ErrInjected", err)
	}
	if _, err := mem.Stat(ctx, "k"); !errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("failed Put reached the bucket: %v", err)
	}
	if _, err := f.PutIfAbsent(ctx, "k", []byte("x")); err != nil {
		t.Fatalf("PutIfAbsent affected by Put fault: %v", err)
	}
	f.SetError(tiertest.OpPut, nil)
	if _, err := f.Put(ctx, "k", []byte("y")); err != nil {
		t.Fatalf("Put after clearing: %v", err)
	}

	custom := errors.New("slow down")
	for _, tc := range []struct {
		op   tiertest.Op
		call func() error
	}{
		{tiertest.OpPut, func() error { _, err := f.Put(ctx, "k", nil); return err }},
		{tiertest.OpPutIfAbsent, func() error { _, err := f.PutIfAbsent(ctx, "k2", nil); return err }},
		{tiertest.OpPutIfMatch, func() error { _, err := f.PutIfMatch(ctx, "k", nil, "e"); return err }},
		{tiertest.OpGet, func() error { _, _, err := f.Get(ctx, "k"); return err }},
		{tiertest.OpGetRange, func() error { _, err := f.GetRange(ctx, "k", 0, 1); return err }},
		{tiertest.OpStat, func() error { _, err := f.Stat(ctx, "k"); return err }},
		{tiertest.OpList, func() error { _, err := f.List(ctx, ""); return err }},
		{tiertest.OpDelete, func() error { return f.Delete(ctx, "k") }},
	} {
		f.SetError(tc.op, custom)
		if err := tc.call(); !errors.Is(err, custom) {
			t.Fatalf("%s: %v, want injected error", tc.op, err)
		}
		f.SetError(tc.op, nil)
	}
}

func TestFaultyErrorUnder(t *testing.T) {
	f := tiertest.NewFaulty(tier.NewMemBucket())
	ctx := t.Context()
	f.SetErrorUnder(tiertest.OpPutIfAbsent, "data/", tiertest.ErrInjected)
	if _, err := f.PutIfAbsent(ctx, "data/1", []byte("x")); !errors.Is(err, tiertest.ErrInjected) {
		t.Fatalf("PutIfAbsent under data/: %v, want ErrInjected", err)
	}
	if _, err := f.PutIfAbsent(ctx, "journal/1", []byte("x")); err != nil {
		t.Fatalf("PutIfAbsent outside the prefix: %v", err)
	}
	if _, err := f.Put(ctx, "data/2", []byte("x")); err != nil {
		t.Fatalf("Put under data/ (another op): %v", err)
	}
	f.SetErrorUnder(tiertest.OpPutIfAbsent, "data/", nil)
	if _, err := f.PutIfAbsent(ctx, "data/1", []byte("x")); err != nil {
		t.Fatalf("PutIfAbsent after clearing: %v", err)
	}
}

func TestFaultyFailNext(t *testing.T) {
	f := tiertest.NewFaulty(tier.NewMemBucket())
	ctx := t.Context()
	f.FailNext(tiertest.OpPut, 2, tiertest.ErrInjected)
	for i := range 2 {
		if _, err := f.Put(ctx, "k", []byte("x")); !errors.Is(err, tiertest.ErrInjected) {
			t.Fatalf("Put %d: %v, want ErrInjected", i, err)
		}
	}
	if _, err := f.Put(ctx, "k", []byte("x")); err != nil {
		t.Fatalf("third Put: %v", err)
	}

	// FailNextAfter: the write lands, the caller still sees an error.
	f.FailNextAfter(tiertest.OpPutIfAbsent, 1, tiertest.ErrInjected)
	if _, err := f.PutIfAbsent(ctx, "j", []byte("landed")); !errors.Is(err, tiertest.ErrInjected) {
		t.Fatalf("PutIfAbsent: %v, want ErrInjected", err)
	}
	if body, _, err := f.Get(ctx, "j"); err != nil || string(body) != "landed" {
		t.Fatalf("Get after FailNextAfter: %q, %v", body, err)
	}
	if _, err := f.PutIfAbsent(ctx, "j", nil); !errors.Is(err, tier.ErrPreconditionFailed) {
		t.Fatalf("retried PutIfAbsent: %v, want ErrPreconditionFailed", err)
	}
}

func TestFaultyOutage(t *testing.T) {
	f := tiertest.NewFaulty(tier.NewMemBucket())
	ctx := t.Context()
	if _, err := f.Put(ctx, "k", []byte("x")); err != nil {
		t.Fatal(err)
	}
	f.SetOutage(tiertest.ErrInjected)
	if _, _, err := f.Get(ctx, "k"); !errors.Is(err, tiertest.ErrInjected) {
		t.Fatalf("Get in outage: %v", err)
	}
	if _, err := f.List(ctx, ""); !errors.Is(err, tiertest.ErrInjected) {
		t.Fatalf("List in outage: %v", err)
	}
	if err := f.Delete(ctx, "k"); !errors.Is(err, tiertest.ErrInjected) {
		t.Fatalf("Delete in outage: %v", err)
	}
	f.SetOutage(nil)
	if body, _, err := f.Get(ctx, "k"); err != nil || string(body) != "x" {
		t.Fatalf("Get after outage: %q, %v", body, err)
	}
}

func TestFaultyCounts(t *testing.T) {
	f := tiertest.NewFaulty(tier.NewMemBucket())
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() { _, _ = f.Put(ctx, fmt.Sprint("k", i), nil) })
	}
	wg.Wait()
	f.SetError(tiertest.OpGet, tiertest.ErrInjected)
	_, _, _ = f.Get(ctx, "k1") // failed calls count too
	_, _ = f.List(ctx, "")
	_, _ = f.List(ctx, "k")
	c := f.Counts()
	if c[tiertest.OpPut] != 10 || c[tiertest.OpGet] != 1 || c[tiertest.OpList] != 2 || c[tiertest.OpStat] != 0 {
		t.Fatalf("Counts = %v", c)
	}
	c[tiertest.OpPut] = 99 // a copy
	if f.Counts()[tiertest.OpPut] != 10 {
		t.Fatal("Counts returned internal map")
	}
}
