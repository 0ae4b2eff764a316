package clocktest_test

import (
	"sync"
	"testing"
	"time"

	"github.com/tlog-io/tlog/metadata/clock"
	"github.com/tlog-io/tlog/metadata/clock/clocktest"
)

var _ clock.Clock = (*clocktest.Fake)(nil)

func TestFakeMovesOnlyForward(t *testing.T) {
	start := time.Now()
	f := clocktest.NewFake(start)
	if !f.Now().Equal(start) || !f.Now().Equal(f.Now()) {
		t.Fatalf("a fake clock moved by itself: %v, start %v", f.Now(), start)
	}
	deadline := f.Now().Add(time.Second)
	f.Advance(time.Second - time.Nanosecond)
	if !f.Now().Before(deadline) {
		t.Fatal("deadline passed early")
	}
	if got := f.Advance(time.Nanosecond); !got.Equal(deadline) || f.Now().Before(deadline) || f.Now().Sub(start) != time.Second {
		t.Fatalf("after a second: %v, Sub %v", got, f.Now().Sub(start))
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Advance(-1) did not panic")
		}
	}()
	f.Advance(-1)
}

func TestFakeConcurrentAdvance(t *testing.T) {
	f := clocktest.NewFake(time.Unix(0, 0))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prev := f.Now()
			for range 1000 {
				f.Advance(time.Millisecond)
				now := f.Now()
				if now.Before(prev) {
					t.Errorf("went backwards: %v after %v", now, prev)
					return
				}
				prev = now
			}
		}()
	}
	wg.Wait()
	if got := f.Now().Sub(time.Unix(0, 0)); got != 8*time.Second {
		t.Fatalf("advanced %v, want 8s", got)
	}
}

func TestOrDefaultsToReal(t *testing.T) {
	if _, ok := clock.Or(nil).(clock.Real); !ok {
		t.Fatal("Or(nil) is not Real")
	}
	f := clocktest.NewFake(time.Now())
	if clock.Or(f) != clock.Clock(f) {
		t.Fatal("Or replaced a clock")
	}
	before := time.Now()
	if now := (clock.Real{}).Now(); now.Before(before) {
		t.Fatalf("Real.Now %v before time.Now %v", now, before)
	}
}
