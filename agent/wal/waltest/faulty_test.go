package waltest_test

import (
	"errors"
	"testing"

	"github.com/tlog-io/tlog/agent/wal"
	"github.com/tlog-io/tlog/agent/wal/waltest"
)

func set(k string) []wal.KV { return []wal.KV{{Key: []byte(k), Value: []byte("v")}} }

func keys(t *testing.T, s wal.Store) []string {
	t.Helper()
	var out []string
	err := s.Iterate(nil, nil, false, func(it wal.Item) (bool, error) {
		out = append(out, string(it.Key()))
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestFaulty(t *testing.T) {
	t.Parallel()
	mem := wal.NewMemStore()
	f := waltest.NewFaulty(mem)
	mine := errors.New("mine")

	// FailNth: only the nth call from now, and it never reaches the store.
	f.FailNth(waltest.OpApply, 2, mine)
	for i, k := range []string{"a1", "a2", "a3"} {
		err := f.Apply(set(k))
		if (i == 1) != errors.Is(err, mine) {
			t.Fatalf("apply %d: %v", i+1, err)
		}
	}
	if got := keys(t, mem); len(got) != 2 || got[0] != "a1" || got[1] != "a3" {
		t.Fatalf("stored %v, want a1 a3", got)
	}

	// SetErrorUnder fails the whole call when any key matches.
	f.SetErrorUnder(waltest.OpApply, []byte("b"), waltest.ErrInjected)
	if err := f.Apply(append(set("c1"), set("b1")...)); !errors.Is(err, waltest.ErrInjected) {
		t.Fatalf("apply under b: %v", err)
	}
	if err := f.Apply(set("c2")); err != nil {
		t.Fatalf("apply outside b: %v", err)
	}
	f.SetErrorUnder(waltest.OpApply, []byte("b"), nil)
	if err := f.Apply(set("b2")); err != nil {
		t.Fatalf("apply under a cleared prefix: %v", err)
	}

	// SetError, then clear.
	f.SetError(waltest.OpSync, waltest.ErrInjected)
	if err := f.Sync(); !errors.Is(err, waltest.ErrInjected) {
		t.Fatalf("sync: %v", err)
	}
	f.SetError(waltest.OpSync, nil)
	if err := f.Sync(); err != nil {
		t.Fatalf("sync after clearing: %v", err)
	}

	// Hold parks a call until released.
	entered, release := f.Hold(waltest.OpDelete)
	done := make(chan error)
	go func() { done <- f.Delete([][]byte{[]byte("a1")}) }()
	<-entered
	select {
	case err := <-done:
		t.Fatalf("held delete returned %v", err)
	default:
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// Fail-stop mode: the first injected fault stops everything.
	f.SetFailStop(true)
	f.FailNth(waltest.OpDelete, 1, waltest.ErrInjected)
	if err := f.Delete([][]byte{[]byte("a3")}); !errors.Is(err, waltest.ErrInjected) {
		t.Fatalf("delete: %v", err)
	}
	for op, err := range map[waltest.Op]error{
		waltest.OpApply:   f.Apply(set("d")),
		waltest.OpSync:    f.Sync(),
		waltest.OpIterate: f.Iterate(nil, nil, false, func(wal.Item) (bool, error) { return true, nil }),
	} {
		if !errors.Is(err, waltest.ErrInjected) {
			t.Errorf("%s on a stopped store: %v", op, err)
		}
	}
	f.SetFailStop(false)
	if got := keys(t, f); len(got) != 3 {
		t.Errorf("after fail-stop cleared: %v, want a3 b2 c2 (a1 deleted) and nothing more", got)
	}

	want := map[waltest.Op]int64{waltest.OpApply: 7, waltest.OpSync: 3, waltest.OpDelete: 2, waltest.OpIterate: 2}
	for op, n := range want {
		if got := f.Count(op); got != n {
			t.Errorf("%s called %d times, want %d", op, got, n)
		}
	}
	if err := f.Close(); err != nil || f.Count(waltest.OpClose) != 1 {
		t.Errorf("close: %v", err)
	}
}
