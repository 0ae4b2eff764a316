package wal_test

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/tlog-io/tlog/agent/wal"
)

var quietLog = slog.New(slog.DiscardHandler)

// openDir opens a WAL on Badger in dir (wal.Open).
func openDir(t *testing.T, dir string, mod ...func(*wal.Options)) *wal.WAL {
	t.Helper()
	o := wal.Options{Dir: dir, Logger: quietLog}
	for _, m := range mod {
		m(&o)
	}
	w, err := wal.Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// openOn starts a WAL on store (wal.New).
func openOn(t *testing.T, store wal.Store, mod ...func(*wal.Options)) *wal.WAL {
	t.Helper()
	o := wal.Options{Logger: quietLog}
	for _, m := range mod {
		m(&o)
	}
	w := wal.New(store, o)
	t.Cleanup(func() { w.Close() })
	return w
}

// stores are the Store implementations the WAL's behavioural tests run on.
var stores = []struct {
	name string
	new  func(t *testing.T) wal.Store
}{
	{"badger", func(t *testing.T) wal.Store {
		s, err := wal.OpenBadger(t.TempDir(), quietLog)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
	{"files", func(t *testing.T) wal.Store {
		s, err := wal.OpenFileStore(t.TempDir(), quietLog)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}},
	{"mem", func(*testing.T) wal.Store { return wal.NewMemStore() }},
}

// opener opens a fresh WAL on the store under test.
type opener func(mod ...func(*wal.Options)) *wal.WAL

// eachStore runs test once per Store implementation, in parallel.
func eachStore(t *testing.T, test func(t *testing.T, open opener)) {
	t.Parallel()
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			test(t, func(mod ...func(*wal.Options)) *wal.WAL { return openOn(t, s.new(t), mod...) })
		})
	}
}

var (
	keyA = wal.NewPartKey([16]byte{1}, 0)
	keyB = wal.NewPartKey([16]byte{1}, 1)
	keyC = wal.NewPartKey([16]byte{2}, 0)
)

func value(k wal.PartKey, base int64, size int) []byte {
	v := fmt.Appendf(nil, "%x@%d:", k[:1], base)
	for len(v) < size {
		v = append(v, byte('a'+len(v)%26))
	}
	return v
}

// appendSync appends and waits for durability.
func appendSync(t *testing.T, w *wal.WAL, k wal.PartKey, base int64, v []byte) {
	t.Helper()
	done := make(chan error, 1)
	if err := w.Append(k, base, v, func(err error) { done <- err }); err != nil {
		t.Fatalf("append %d: %v", base, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("append %d: %v", base, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("append %d never completed", base)
	}
}

type entry struct {
	k    wal.PartKey
	base int64
	v    string
}

func readAll(t *testing.T, w *wal.WAL, k wal.PartKey, from int64) []entry {
	t.Helper()
	var out []entry
	if err := w.Read(k, from, func(base int64, b []byte) bool {
		out = append(out, entry{k, base, string(b)})
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func bases(es []entry) []int64 {
	var out []int64
	for _, e := range es {
		out = append(out, e.base)
	}
	return out
}

func scanAll(t *testing.T, w *wal.WAL) []entry {
	t.Helper()
	var out []entry
	if err := w.Scan(func(k wal.PartKey, base int64, b []byte) error {
		out = append(out, entry{k, base, string(b)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestPartKey(t *testing.T) {
	t.Parallel()
	id := [16]byte{0xde, 0xad, 15: 0xff}
	k := wal.NewPartKey(id, 70000)
	if k.TopicID() != id || k.Partition() != 70000 {
		t.Fatalf("round trip: %x %d", k.TopicID(), k.Partition())
	}
}

// Appends from many goroutines complete in the order they were queued, and
// the writer commits them in groups.
func TestGroupCommitInOrder(t *testing.T) { eachStore(t, testGroupCommitInOrder) }

func testGroupCommitInOrder(t *testing.T, open opener) {
	w := open()
	const writers, per = 16, 150
	var (
		qmu       sync.Mutex // serialises queueing so the order is known
		queued    []int
		completed []int // appended by the writer goroutine only
		cmu       sync.Mutex
		wg        sync.WaitGroup
		next      = map[int]int64{}
	)
	wg.Add(writers * per)
	for g := range writers {
		go func() {
			for i := range per {
				qmu.Lock()
				n := len(queued)
				queued = append(queued, n)
				k := wal.NewPartKey([16]byte{byte(g % 4)}, 0)
				base := next[g%4]
				next[g%4]++
				err := w.Append(k, base, value(k, base, 100+i), func(err error) {
					if err != nil {
						t.Errorf("append %d: %v", n, err)
					}
					cmu.Lock()
					completed = append(completed, n)
					cmu.Unlock()
					wg.Done()
				})
				if err != nil {
					t.Errorf("append %d: %v", n, err)
					wg.Done()
				}
				qmu.Unlock()
			}
		}()
	}
	wg.Wait()
	cmu.Lock()
	defer cmu.Unlock()
	if !slices.Equal(completed, queued) {
		i := 0
		for i < len(completed) && completed[i] == queued[i] {
			i++
		}
		t.Fatalf("completions out of queue order from position %d", i)
	}
	st := w.Stats()
	if st.Batches != writers*per {
		t.Errorf("stats: %d batches, want %d", st.Batches, writers*per)
	}
	if st.Groups >= st.Batches || st.Groups < 1 {
		t.Errorf("stats: %d groups for %d batches: no group commit", st.Groups, st.Batches)
	}
	if st.Syncs != 0 {
		t.Errorf("%d fsyncs without Sync", st.Syncs)
	}
	// Each partition's batches are all there, dense and in order.
	for p := range 4 {
		k := wal.NewPartKey([16]byte{byte(p)}, 0)
		got := bases(readAll(t, w, k, 0))
		if int64(len(got)) != next[p] {
			t.Fatalf("partition %d: %d batches, want %d", p, len(got), next[p])
		}
		for i, b := range got {
			if b != int64(i) {
				t.Fatalf("partition %d: batch %d has base %d", p, i, b)
			}
		}
	}
}

// A burst queued faster than the writer commits shares groups.
func TestGroupCommitBurst(t *testing.T) { eachStore(t, testGroupCommitBurst) }

func testGroupCommitBurst(t *testing.T, open opener) {
	w := open()
	const n = 1000
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		err := w.Append(keyA, int64(i), value(keyA, int64(i), 200), func(err error) {
			if err != nil {
				t.Error(err)
			}
			wg.Done()
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if st := w.Stats(); st.Batches != n || st.Groups >= n/2 {
		t.Errorf("burst of %d: %+v", n, st)
	}
}

// MaxGroupBytes bounds a group: with a 1-byte bound every write is alone.
func TestMaxGroupBytes(t *testing.T) { eachStore(t, testMaxGroupBytes) }

func testMaxGroupBytes(t *testing.T, open opener) {
	w := open(func(o *wal.Options) { o.MaxGroupBytes = 1 })
	const n = 200
	var wg sync.WaitGroup
	wg.Add(n)
	for i := range n {
		if err := w.Append(keyA, int64(i), value(keyA, int64(i), 50), func(error) { wg.Done() }); err != nil {
			t.Fatal(err)
		}
	}
	wg.Wait()
	if st := w.Stats(); st.Groups != n {
		t.Errorf("MaxGroupBytes 1: %d groups for %d batches", st.Groups, n)
	}
}

func TestReadScanDelete(t *testing.T) { eachStore(t, testReadScanDelete) }

func testReadScanDelete(t *testing.T, open opener) {
	w := open()
	for _, b := range []int64{0, 10, 20, 30} {
		appendSync(t, w, keyA, b, value(keyA, b, 64))
	}
	appendSync(t, w, keyB, 0, value(keyB, 0, 64))
	appendSync(t, w, keyB, 5, value(keyB, 5, 8<<10)) // above the value-log threshold
	appendSync(t, w, keyC, 100, value(keyC, 100, 64))

	a := readAll(t, w, keyA, 10)
	if !slices.Equal(bases(a), []int64{10, 20, 30}) {
		t.Fatalf("read A from 10: %v", bases(a))
	}
	if a[0].v != string(value(keyA, 10, 64)) {
		t.Fatalf("read A@10: %q", a[0].v)
	}
	if got := bases(readAll(t, w, keyA, 15)); !slices.Equal(got, []int64{20, 30}) {
		t.Errorf("read A from 15 (no batch there): %v", got)
	}
	if got := bases(readAll(t, w, keyA, 31)); len(got) != 0 {
		t.Errorf("read A past the end: %v", got)
	}
	if got := readAll(t, w, keyB, 0); len(got) != 2 || got[1].v != string(value(keyB, 5, 8<<10)) {
		t.Errorf("read B: %d batches", len(got))
	}
	// fn returning false stops; the slices handed out are copies.
	var seen []int64
	var first []byte
	w.Read(keyA, 0, func(base int64, b []byte) bool {
		seen = append(seen, base)
		first = b
		return len(seen) < 2
	})
	if !slices.Equal(seen, []int64{0, 10}) {
		t.Errorf("early stop: %v", seen)
	}
	for i := range first {
		first[i] = 'X'
	}
	if got := readAll(t, w, keyA, 10)[0].v; got != string(value(keyA, 10, 64)) {
		t.Errorf("modifying a read slice changed the stored batch: %q", got)
	}

	// Scan: partition order (topic id, then index), then offset.
	var order []string
	for _, e := range scanAll(t, w) {
		order = append(order, fmt.Sprintf("%d/%d@%d", e.k.TopicID()[0], e.k.Partition(), e.base))
	}
	want := []string{"1/0@0", "1/0@10", "1/0@20", "1/0@30", "1/1@0", "1/1@5", "2/0@100"}
	if !slices.Equal(order, want) {
		t.Fatalf("scan order %v, want %v", order, want)
	}
	wantErr := errors.New("stop")
	if err := w.Scan(func(wal.PartKey, int64, []byte) error { return wantErr }); !errors.Is(err, wantErr) {
		t.Errorf("scan did not return fn's error: %v", err)
	}

	if err := w.DeleteBefore(keyA, 20); err != nil {
		t.Fatal(err)
	}
	if got := bases(readAll(t, w, keyA, 0)); !slices.Equal(got, []int64{20, 30}) {
		t.Errorf("after DeleteBefore(20): %v", got)
	}
	if err := w.DeleteBefore(keyA, 25); err != nil { // between batches
		t.Fatal(err)
	}
	if got := bases(readAll(t, w, keyA, 0)); !slices.Equal(got, []int64{30}) {
		t.Errorf("after DeleteBefore(25): %v", got)
	}
	appendSync(t, w, keyA, 40, value(keyA, 40, 64))
	appendSync(t, w, keyA, 50, value(keyA, 50, 64))
	if err := w.DeleteFrom(keyA, 40); err != nil {
		t.Fatal(err)
	}
	if got := bases(readAll(t, w, keyA, 0)); !slices.Equal(got, []int64{30}) {
		t.Errorf("after DeleteFrom(40): %v", got)
	}
	if err := w.DropPartition(keyB); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, w, keyB, 0); len(got) != 0 {
		t.Errorf("after DropPartition(B): %v", bases(got))
	}
	// Other partitions untouched, and deleting nothing is fine.
	if got := bases(readAll(t, w, keyC, 0)); !slices.Equal(got, []int64{100}) {
		t.Errorf("C after deletes elsewhere: %v", got)
	}
	for _, err := range []error{w.DropPartition(keyB), w.DeleteBefore(keyB, 100), w.DeleteFrom(wal.NewPartKey([16]byte{9}, 9), 0)} {
		if err != nil {
			t.Errorf("delete of nothing: %v", err)
		}
	}
	if got := len(scanAll(t, w)); got != 2 {
		t.Errorf("scan after deletes: %d batches, want 2", got)
	}
}

func TestReopenKeepsData(t *testing.T) {
	t.Parallel()
	for _, files := range []bool{false, true} {
		t.Run(fmt.Sprintf("files=%v", files), func(t *testing.T) {
			t.Parallel()
			testReopenKeepsData(t, func(o *wal.Options) { o.Files = files })
		})
	}
}

func testReopenKeepsData(t *testing.T, mod func(*wal.Options)) {
	dir := t.TempDir()
	w := openDir(t, dir, mod)
	for i := range int64(20) {
		appendSync(t, w, keyA, i, value(keyA, i, 100+int(i)*600)) // some in the value log
	}
	appendSync(t, w, keyC, 7, value(keyC, 7, 10))
	if err := w.DeleteBefore(keyA, 5); err != nil {
		t.Fatal(err)
	}
	before := scanAll(t, w)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}

	w = openDir(t, dir, mod)
	after := scanAll(t, w)
	if !slices.Equal(before, after) {
		t.Fatalf("after reopen: %d batches, before %d", len(after), len(before))
	}
	if len(after) != 16 || after[0].base != 5 {
		t.Fatalf("after reopen: %d batches from %d", len(after), after[0].base)
	}
	if st := w.Stats(); st != (wal.Stats{}) {
		t.Errorf("stats of a reopened WAL: %+v", st)
	}
	appendSync(t, w, keyA, 20, value(keyA, 20, 10))
	if got := bases(readAll(t, w, keyA, 19)); !slices.Equal(got, []int64{19, 20}) {
		t.Errorf("append after reopen: %v", got)
	}
}

// Close completes every write queued before it, durably.
func TestCloseDrainsQueue(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	w := openDir(t, dir)
	const n = 500
	errs := make(chan error, n)
	for i := range n {
		if err := w.Append(keyA, int64(i), value(keyA, int64(i), 300), func(err error) { errs <- err }); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatalf("queued write %d failed at close: %v", i, err)
			}
		default:
			t.Fatalf("only %d of %d queued writes completed by Close", i, n)
		}
	}
	w = openDir(t, dir)
	if got := readAll(t, w, keyA, 0); len(got) != n {
		t.Fatalf("after reopen: %d of %d batches", len(got), n)
	}
}

func TestSyncMode(t *testing.T) { eachStore(t, testSyncMode) }

func testSyncMode(t *testing.T, open opener) {
	w := open(func(o *wal.Options) { o.Sync = true })
	for i := range int64(10) {
		appendSync(t, w, keyA, i, value(keyA, i, 100))
	}
	st := w.Stats()
	if st.Syncs == 0 || st.Syncs != st.Groups {
		t.Errorf("sync mode: %d fsyncs for %d groups", st.Syncs, st.Groups)
	}
	if st.Batches != 10 || st.Bytes != 1000 {
		t.Errorf("stats %+v", st)
	}
}

func TestAppendAfterClose(t *testing.T) { eachStore(t, testAppendAfterClose) }

func testAppendAfterClose(t *testing.T, open opener) {
	w := open()
	appendSync(t, w, keyA, 0, []byte("x"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	called := false
	err := w.Append(keyA, 1, []byte("y"), func(error) { called = true })
	if !errors.Is(err, wal.ErrClosed) {
		t.Fatalf("append after close: %v, want ErrClosed", err)
	}
	if called {
		t.Fatal("append after close called done (callers hold locks done takes)")
	}
}

func TestConcurrentAppendAndClose(t *testing.T) { eachStore(t, testConcurrentAppendAndClose) }

func testConcurrentAppendAndClose(t *testing.T, open opener) {
	w := open()
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok, refused := 0, 0
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := wal.NewPartKey([16]byte{byte(g)}, 0)
			for i := range 200 {
				err := w.Append(k, int64(i), []byte("v"), func(err error) {
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						t.Errorf("queued append failed: %v", err)
					}
					ok++
				})
				if err != nil {
					if !errors.Is(err, wal.ErrClosed) {
						t.Errorf("append: %v", err)
					}
					mu.Lock()
					refused++
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(time.Millisecond)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	// Everything queued before Close completed; everything after was refused.
	if ok+refused != 8*200 {
		t.Errorf("%d completed, %d refused, want %d in all", ok, refused, 8*200)
	}
	if w.Stats().Batches != int64(ok) {
		t.Errorf("stats count %d batches, %d acknowledged", w.Stats().Batches, ok)
	}
}
