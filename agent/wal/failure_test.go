package wal_test

// The WAL's failure paths, driven through waltest.Faulty wrapped around each
// Store: a group write that fails, an fsync that fails, and the fail-stop
// that keeps the store a prefix of what was queued.

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tlog-io/tlog/agent/wal"
	"github.com/tlog-io/tlog/agent/wal/waltest"
)

// eachFaulty runs test once per Store implementation, on a WAL over a
// Faulty wrapping it.
func eachFaulty(t *testing.T, mod func(*wal.Options), test func(t *testing.T, f *waltest.Faulty, w *wal.WAL)) {
	t.Parallel()
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			f := waltest.NewFaulty(s.new(t))
			var mods []func(*wal.Options)
			if mod != nil {
				mods = append(mods, mod)
			}
			test(t, f, openOn(t, f, mods...))
		})
	}
}

// queue appends without waiting; the returned channel receives the
// completion. An append refused outright is reported on it as well, marked
// with errRefused.
func queue(t *testing.T, w *wal.WAL, k wal.PartKey, base int64) <-chan error {
	t.Helper()
	done := make(chan error, 1)
	if err := w.Append(k, base, value(k, base, 64), func(err error) { done <- err }); err != nil {
		done <- refused{err}
	}
	return done
}

// refused marks an error Append returned itself (done is then never called).
type refused struct{ err error }

func (r refused) Error() string { return "refused: " + r.err.Error() }
func (r refused) Unwrap() error { return r.err }

func result(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("append never completed")
		return nil
	}
}

// hold parks the next call of op and returns once it is parked, with the
// function that lets it go (also run at cleanup, before the WAL closes).
func hold(t *testing.T, f *waltest.Faulty, op waltest.Op) (wait func(), release func()) {
	entered, release := f.Hold(op)
	t.Cleanup(release)
	return func() {
		t.Helper()
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatalf("no %s call to hold", op)
		}
	}, release
}

// failedGroup lines up a group {keyA@4, keyB@0} behind an acknowledged
// group {keyA@3} and lets inject make it fail; keyC@0 is queued while it
// commits and keyA@5 after it failed. It checks what every one of them is
// told and returns the failing group's error.
func failedGroup(t *testing.T, f *waltest.Faulty, w *wal.WAL, inject func()) error {
	t.Helper()
	wait1, release1 := hold(t, f, waltest.OpApply)
	s := queue(t, w, keyA, 3) // group 1, parked in Apply
	wait1()
	a := queue(t, w, keyA, 4) // queued behind it: group 2
	b := queue(t, w, keyB, 0)
	wait2, release2 := hold(t, f, waltest.OpApply)
	inject()
	release1()
	wait2() // group 2 is in Apply
	c := queue(t, w, keyC, 0)
	release2()

	if err := result(t, s); err != nil {
		t.Fatalf("the group before the failure: %v", err)
	}
	errA, errB := result(t, a), result(t, b)
	for _, err := range []error{errA, errB} {
		if !errors.Is(err, waltest.ErrInjected) {
			t.Fatalf("a batch of the failed group completed with %v, want the injected error", err)
		}
		var r refused
		if errors.As(err, &r) {
			t.Fatalf("a batch of the failed group was refused (%v), want it queued and failed", err)
		}
	}
	if errA.Error() != errB.Error() {
		t.Errorf("one group, two errors: %v; %v", errA, errB)
	}
	// Queued before the failure was known: the writer refuses it with the
	// same sticky error rather than write it after a hole.
	if err := result(t, c); !errors.Is(err, waltest.ErrInjected) {
		t.Fatalf("an append queued behind the failed group: %v, want the sticky error", err)
	}
	// Appended after: refused at once, done never called.
	called := false
	err := w.Append(keyA, 5, value(keyA, 5, 64), func(error) { called = true })
	if !errors.Is(err, waltest.ErrInjected) || called {
		t.Fatalf("append after the failure: %v (done called: %v), want the sticky error", err, called)
	}
	if err := w.Reserve(); err != nil {
		t.Fatal(err)
	}
	err = w.AppendAllReserved(keyB, []int64{1, 2}, [][]byte{value(keyB, 1, 8), value(keyB, 2, 8)}, func(error) { called = true })
	if !errors.Is(err, waltest.ErrInjected) || called {
		t.Fatalf("AppendAllReserved after the failure: %v (done called: %v), want the sticky error", err, called)
	}
	return errA
}

// A group write that fails fails every batch in the group, and everything
// queued after it, for good: the store stays exactly the acknowledged
// prefix, even once it works again.
func TestGroupWriteFails(t *testing.T) {
	eachFaulty(t, nil, func(t *testing.T, f *waltest.Faulty, w *wal.WAL) {
		for i := range int64(3) {
			appendSync(t, w, keyA, i, value(keyA, i, 64))
		}
		applies := f.Count(waltest.OpApply)
		err := failedGroup(t, f, w, func() { f.FailNth(waltest.OpApply, 1, waltest.ErrInjected) })
		t.Logf("group error: %v", err)

		// The store works again (FailNth fired once); the WAL still
		// writes nothing.
		for i := range int64(3) {
			if err := w.Append(keyC, 10+i, value(keyC, 10+i, 8), func(error) { t.Error("done called for a refused append") }); !errors.Is(err, waltest.ErrInjected) {
				t.Fatalf("append %d after the failure: %v", i, err)
			}
		}
		if got := f.Count(waltest.OpApply) - applies; got != 2 {
			t.Errorf("%d group writes reached the store after the acknowledged ones, want 2 (the last good one and the failed one)", got)
		}
		if got := bases(readAll(t, w, keyA, 0)); !slices.Equal(got, []int64{0, 1, 2, 3}) {
			t.Errorf("read A: %v, want the acknowledged 0-3", got)
		}
		if got := scanAll(t, w); len(got) != 4 {
			t.Errorf("scan: %d batches, want the 4 acknowledged", len(got))
		}
		if st := w.Stats(); st.Groups != 4 || st.Batches != 4 {
			t.Errorf("stats after a failed group: %+v, want 4 groups, 4 batches", st)
		}
	})
}

// With Options.Sync an fsync that fails after the group was written fails
// the group as a write failure does: nothing in it is acknowledged, and
// nothing after it reaches the store. The group itself may be in the store
// (written, not synced), still a prefix of what was queued.
func TestSyncFails(t *testing.T) {
	eachFaulty(t, func(o *wal.Options) { o.Sync = true }, func(t *testing.T, f *waltest.Faulty, w *wal.WAL) {
		for i := range int64(3) {
			appendSync(t, w, keyA, i, value(keyA, i, 64))
		}
		applies, syncs := f.Count(waltest.OpApply), f.Count(waltest.OpSync)
		err := failedGroup(t, f, w, func() { f.FailNth(waltest.OpSync, 2, waltest.ErrInjected) })
		t.Logf("group error: %v", err)

		if got := f.Count(waltest.OpApply) - applies; got != 2 {
			t.Errorf("%d group writes after the acknowledged ones, want 2", got)
		}
		if got := f.Count(waltest.OpSync) - syncs; got != 2 {
			t.Errorf("%d fsyncs after the acknowledged ones, want 2", got)
		}
		// Written but not synced: there, and never acknowledged.
		if got := bases(readAll(t, w, keyA, 0)); !slices.Equal(got, []int64{0, 1, 2, 3, 4}) {
			t.Errorf("read A: %v, want 0-3 and the unacknowledged 4", got)
		}
		if got := bases(readAll(t, w, keyC, 0)); len(got) != 0 {
			t.Errorf("read C: %v, want nothing written after the failed group", got)
		}
		if st := w.Stats(); st.Groups != 4 || st.Syncs != 4 {
			t.Errorf("stats after a failed fsync: %+v, want 4 groups and 4 fsyncs", st)
		}
	})
}

// Under concurrent appends, the first failed group write is the last write
// that reaches the store: every batch acknowledged is stored, every batch
// after a failed one in its partition failed, and nothing else is written.
func TestFailStop(t *testing.T) {
	// One batch per group, so the failing write is a known one.
	eachFaulty(t, func(o *wal.Options) { o.MaxGroupBytes = 1 }, func(t *testing.T, f *waltest.Faulty, w *wal.WAL) {
		const failAt = 20
		f.FailNth(waltest.OpApply, failAt, waltest.ErrInjected)
		const writers, per = 8, 50
		var (
			mu    sync.Mutex
			acked = map[wal.PartKey][]int64{}
			outc  = map[wal.PartKey][]bool{} // per partition, in queue order: acknowledged?
		)
		var wg sync.WaitGroup
		for g := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				k := wal.NewPartKey([16]byte{byte(g)}, 0)
				dones := make([]<-chan error, per)
				for i := range per {
					dones[i] = queue(t, w, k, int64(i))
				}
				for i, d := range dones {
					err := result(t, d)
					if err != nil && !errors.Is(err, waltest.ErrInjected) {
						t.Errorf("%d@%d: %v", g, i, err)
					}
					mu.Lock()
					outc[k] = append(outc[k], err == nil)
					if err == nil {
						acked[k] = append(acked[k], int64(i))
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if got := f.Count(waltest.OpApply); got != failAt {
			t.Fatalf("%d group writes reached the store, want %d: none after the failed one", got, failAt)
		}
		if err := w.Append(keyA, 0, []byte("late"), func(error) {}); !errors.Is(err, waltest.ErrInjected) {
			t.Fatalf("append after all that: %v", err)
		}
		if got := f.Count(waltest.OpApply); got != failAt {
			t.Fatalf("a late append reached the store (%d writes)", got)
		}
		total := 0
		for k, oks := range outc {
			if i := slices.Index(oks, false); i >= 0 && slices.Contains(oks[i:], true) {
				t.Errorf("partition %x: acknowledged after a failure: %v", k[:1], oks)
			}
			stored := bases(readAll(t, w, k, 0))
			if !slices.Equal(stored, acked[k]) {
				t.Errorf("partition %x: stored %v, acknowledged %v", k[:1], stored, acked[k])
			}
			total += len(acked[k])
		}
		if total != failAt-1 {
			t.Errorf("%d batches acknowledged, want the %d written before the failure", total, failAt-1)
		}
	})
}

// A failure in one partition's write stops the WAL for all of them: the
// other partitions' later groups would otherwise be written after a hole in
// the WAL's queue order.
func TestOnePartitionFailsAll(t *testing.T) {
	eachFaulty(t, nil, func(t *testing.T, f *waltest.Faulty, w *wal.WAL) {
		f.SetErrorUnder(waltest.OpApply, keyB.BatchPrefix(), waltest.ErrInjected)
		appendSync(t, w, keyA, 0, value(keyA, 0, 64))
		appendSync(t, w, keyC, 0, value(keyC, 0, 64))
		if err := result(t, queue(t, w, keyB, 0)); !errors.Is(err, waltest.ErrInjected) {
			t.Fatalf("append to the failing partition: %v", err)
		}
		f.SetErrorUnder(waltest.OpApply, keyB.BatchPrefix(), nil)
		if err := result(t, queue(t, w, keyA, 1)); !errors.Is(err, waltest.ErrInjected) {
			t.Fatalf("append to another partition after the failure: %v", err)
		}
		if got := len(scanAll(t, w)); got != 2 {
			t.Errorf("scan: %d batches, want the 2 acknowledged", got)
		}
	})
}

// A store that dies (waltest's fail-stop mode: a failed fsync takes the
// disk with it) fails the WAL's writes and reads, and Close still returns.
func TestDeadStore(t *testing.T) {
	eachFaulty(t, func(o *wal.Options) { o.Sync = true }, func(t *testing.T, f *waltest.Faulty, w *wal.WAL) {
		appendSync(t, w, keyA, 0, value(keyA, 0, 64))
		f.SetFailStop(true)
		f.FailNth(waltest.OpSync, 1, waltest.ErrInjected)
		if err := result(t, queue(t, w, keyA, 1)); !errors.Is(err, waltest.ErrInjected) {
			t.Fatalf("append as the store dies: %v", err)
		}
		if f.Stopped() == nil {
			t.Fatal("fail-stop mode did not stop the store")
		}
		err := w.Read(keyA, 0, func(int64, []byte) bool { return true })
		if !errors.Is(err, waltest.ErrInjected) {
			t.Errorf("read from a dead store: %v", err)
		}
		if err := w.DeleteBefore(keyA, 1); !errors.Is(err, waltest.ErrInjected) {
			t.Errorf("delete on a dead store: %v", err)
		}
		if err := w.PutProducerSnapshot(keyA, []byte("s")); !errors.Is(err, waltest.ErrInjected) {
			t.Errorf("producer snapshot on a dead store: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
		if got := f.Count(waltest.OpClose); got != 1 {
			t.Errorf("the inner store was closed %d times, want once", got)
		}
	})
}
