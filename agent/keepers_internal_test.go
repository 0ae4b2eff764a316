package agent

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/wal"
	"github.com/tlog-io/tlog/agent/wal/waltest"
	"github.com/tlog-io/tlog/tier/batch"
)

// A coordinator's state writer reports each write once, in the order the
// writes were issued, whether it committed, timed out, or was still in
// flight when the writer stopped; and its goroutine is gone once it stops
// (no completion runs on a goroutine nobody waits for).
func TestStateWriterReportsInOrderAndStops(t *testing.T) {
	store := waltest.NewFaulty(wal.NewMemStore())
	w := wal.New(store, wal.Options{Logger: slog.New(slog.DiscardHandler)})
	defer w.Close()
	p := partition.New(partition.Config{Key: wal.NewPartKey([16]byte{1}, 0), Topic: "__consumer_offsets", WAL: w})
	defer p.Close()
	p.SetRole(partition.Role{Leader: true, Self: 0, ISR: []int32{0}, Replicas: []int32{0}, MinISR: 1})

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a := &Agent{ctx: ctx, cfg: Config{GroupWriteTimeout: 200 * time.Millisecond}}
	stop := make(chan struct{})
	sw := newStateWriter(a, p, stop)

	type report struct {
		name string
		err  error
	}
	reports := make(chan report, 10)
	write := func(name string) {
		sw.write([]batch.KV{{Key: []byte(name), Value: []byte("v")}}, func(err error) { reports <- report{name, err} })
	}
	next := func() report {
		t.Helper()
		select {
		case r := <-reports:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no report")
			return report{}
		}
	}

	// Committed.
	write("a")
	if r := next(); r.name != "a" || r.err != nil {
		t.Fatalf("first write: %+v", r)
	}
	// The WAL stalls: two writes time out, reported in order.
	entered, release := store.Hold(waltest.OpApply)
	write("b")
	<-entered
	write("c")
	for _, want := range []string{"b", "c"} {
		if r := next(); r.name != want || !errors.Is(r.err, kerr.RequestTimedOut) {
			t.Fatalf("stalled write: %+v, want %s timed out", r, want)
		}
	}
	release()
	// The late completions of b and c are not reported again; d commits.
	write("d")
	if r := next(); r.name != "d" || r.err != nil {
		t.Fatalf("write after the stall: %+v", r)
	}

	// Stalled again, then stopped: the write in flight and the one queued
	// after it are answered at once, in order, before the timeout.
	entered, release = store.Hold(waltest.OpApply)
	defer release()
	write("e")
	<-entered
	a.cfg.GroupWriteTimeout = time.Hour
	close(stop)
	a.wg.Wait()
	write("f") // after the stop
	for _, want := range []string{"e", "f"} {
		if r := next(); r.name != want || !errors.Is(r.err, kerr.NotLeaderForPartition) {
			t.Fatalf("write in flight at the stop: %+v, want %s not leader", r, want)
		}
	}
	release()
	select {
	case r := <-reports:
		t.Fatalf("reported after the stop: %+v", r)
	case <-time.After(300 * time.Millisecond):
	}

	// A write after the stop is not answered on the caller's goroutine:
	// the coordinator writes holding its lock, and the answer takes it
	// (a coordinator closing during a commit deadlocked on this).
	var coordMu sync.Mutex
	answered := make(chan error, 1)
	returned := make(chan struct{})
	go func() {
		coordMu.Lock()
		defer coordMu.Unlock()
		sw.write([]batch.KV{{Key: []byte("g"), Value: []byte("g")}}, func(err error) {
			coordMu.Lock()
			defer coordMu.Unlock()
			answered <- err
		})
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(5 * time.Second):
		t.Fatal("a write after the stop answered on the caller's goroutine, under the caller's lock")
	}
	sw.waitLate()
	if err := <-answered; !errors.Is(err, kerr.NotLeaderForPartition) {
		t.Fatalf("write after the stop: %v", err)
	}
}
