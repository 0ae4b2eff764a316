package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tlog-io/tlog/consumer"
	"github.com/tlog-io/tlog/producer"
)

var errBoom = errors.New("boom")

func collect(s *seen) consumer.Handler {
	return func(_ context.Context, r *consumer.Record) error { s.add(r); return nil }
}

func TestStartPositions(t *testing.T) {
	addr := startTlog(t)
	createTopic(t, addr, "pos", 1)
	p, err := producer.New([]string{addr})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	base := time.UnixMilli(1_700_000_000_000)
	for i := range 10 {
		if _, err := p.Send(ctx10(t), producer.Record{Topic: "pos", Value: fmt.Appendf(nil, "%d", i), Timestamp: base.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	tp := consumer.TopicPartition{Topic: "pos", Partition: 0}
	for _, c := range []struct {
		name  string
		start consumer.Offset
		first int64
	}{
		{"earliest", consumer.Earliest(), 0},
		{"zero value is earliest", consumer.Offset{}, 0},
		{"at 3", consumer.At(3), 3},
		{"time of record 5", consumer.AtTime(base.Add(5 * time.Second)), 5},
		{"between records 5 and 6", consumer.AtTime(base.Add(5500 * time.Millisecond)), 6},
		{"before everything", consumer.AtTime(base.Add(-time.Hour)), 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := newSeen()
			cons := newConsumer(t, addr, consumer.WithAssignment("pos", []int32{0}, c.start))
			err := runUntil(t, cons, collect(s), func() bool { return s.distinct() == int(10-c.first) })
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("Run: %v", err)
			}
			for i, r := range s.order {
				if r.Offset != c.first+int64(i) {
					t.Fatalf("record %d has offset %d, want %d", i, r.Offset, c.first+int64(i))
				}
				if want := base.Add(time.Duration(r.Offset) * time.Second); !r.Timestamp.Equal(want) {
					t.Fatalf("offset %d: timestamp %v, want %v", r.Offset, r.Timestamp, want)
				}
			}
			if got := cons.Positions()[tp]; got != 10 {
				t.Fatalf("position %d after reading everything, want 10", got)
			}
		})
	}
	// Latest, and a time after every record, start at the end: only new
	// records are read.
	for _, start := range []consumer.Offset{consumer.Latest(), consumer.AtTime(time.Now().Add(24 * time.Hour))} {
		t.Run(start.String(), func(t *testing.T) {
			s := newSeen()
			assigned := make(chan struct{})
			cons := newConsumer(t, addr, consumer.WithAssignment("pos", []int32{0}, start),
				consumer.WithOnAssigned(func(context.Context, []consumer.TopicPartition) { close(assigned) }))
			errc := make(chan error, 1)
			go func() {
				errc <- runUntil(t, cons, collect(s), func() bool { return s.distinct() == 1 })
			}()
			<-assigned // the start is resolved before the assignment is announced
			if got := cons.Positions()[tp]; got < 10 {
				t.Fatalf("start resolved to %d, want the end (≥ 10)", got)
			}
			res, err := p.Send(ctx10(t), producer.Record{Topic: "pos", Value: []byte("new-" + start.String())})
			if err != nil {
				t.Fatal(err)
			}
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Fatalf("Run: %v", err)
			}
			if len(s.order) != 1 || s.order[0].Offset != res.Offset {
				t.Fatalf("read %d records, first at %d; want only the new one at %d", len(s.order), s.order[0].Offset, res.Offset)
			}
		})
	}
}

func TestAssignAllPartitions(t *testing.T) {
	addr := startTlog(t)
	createTopic(t, addr, "all", 3)
	acked := produce(t, addr, "all", 90, 9)
	s := newSeen()
	c := newConsumer(t, addr, consumer.WithAssignment("all", nil, consumer.Earliest()))
	if err := runUntil(t, c, collect(s), func() bool { return s.distinct() == 90 }); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if got := c.Assignment(); len(got) != 3 || got[0].Partition != 0 || got[2].Partition != 2 {
		t.Fatalf("assignment %v, want all/0..2", got)
	}
	next := map[int32]int64{}
	for _, r := range s.order {
		want := acked[string(r.Value)]
		if r.Partition != want.Partition || r.Offset != want.Offset {
			t.Fatalf("%s read at %d@%d, acknowledged at %d@%d", r.Value, r.Partition, r.Offset, want.Partition, want.Offset)
		}
		if r.Offset != next[r.Partition] {
			t.Fatalf("partition %d: offset %d after %d", r.Partition, r.Offset, next[r.Partition]-1)
		}
		next[r.Partition]++
	}
}

// A handler error stops Run after saving everything processed before it;
// a new consumer on the same store resumes at the failed record.
func TestAtLeastOnceHandlerError(t *testing.T) {
	addr := startTlog(t)
	createTopic(t, addr, "alo", 3)
	produce(t, addr, "alo", 300, 30)
	store := consumer.NewMemoryStore()

	a := newSeen()
	var failed *consumer.Record
	ca := newConsumer(t, addr, consumer.WithAssignment("alo", nil, consumer.Earliest()),
		consumer.WithOffsetStore(store), consumer.WithMaxPollRecords(40))
	err := ca.Run(ctx10(t), func(_ context.Context, r *consumer.Record) error {
		if len(a.order) == 137 {
			failed = r
			return errBoom
		}
		a.add(r)
		return nil
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Run: %v, want errBoom", err)
	}
	saved := store.Offsets()
	for tp, pos := range ca.Positions() {
		if s, ok := saved[tp]; ok && s != pos || !ok && pos != 0 {
			t.Fatalf("saved %v, but processed up to %v", saved, ca.Positions())
		}
	}
	if saved[failed.TopicPartition()] != failed.Offset {
		t.Fatalf("saved %d for %s, want the failed record's offset %d", saved[failed.TopicPartition()], failed.TopicPartition(), failed.Offset)
	}
	ca.Close(ctx10(t))

	b := newSeen()
	cb := newConsumer(t, addr, consumer.WithAssignment("alo", nil, consumer.Earliest()), consumer.WithOffsetStore(store))
	if err := runUntil(t, cb, collect(b), func() bool { return b.distinct()+a.distinct() >= 300 }); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if !b.has(string(failed.Value)) {
		t.Fatalf("failed record %s not delivered again", failed.Value)
	}
	for v := range b.count {
		if a.has(v) {
			t.Errorf("%s processed twice though its position was saved", v)
		}
	}
	if a.distinct()+b.distinct() != 300 {
		t.Fatalf("processed %d+%d distinct records, want 300", a.distinct(), b.distinct())
	}
}

// Run again on the same consumer after an error redelivers the failed
// record first: the partitions were rewound, not left past the batch.
func TestRunAgainAfterErrorRedelivers(t *testing.T) {
	addr := startTlog(t)
	createTopic(t, addr, "again", 2)
	produce(t, addr, "again", 100, 10)
	s := newSeen()
	c := newConsumer(t, addr, consumer.WithAssignment("again", nil, consumer.Earliest()))
	fails := 0
	h := func(_ context.Context, r *consumer.Record) error {
		if r.Offset%17 == 5 && fails < 3 && !s.has("failed:"+string(r.Value)) {
			fails++
			s.mu.Lock()
			s.count["failed:"+string(r.Value)]++
			s.mu.Unlock()
			return errBoom
		}
		s.add(r)
		return nil
	}
	for fails < 3 {
		before := fails
		err := runUntil(t, c, h, func() bool { return s.distinct()-fails >= 100 })
		if fails == before {
			break
		}
		if !errors.Is(err, errBoom) {
			t.Fatalf("Run: %v", err)
		}
	}
	if err := runUntil(t, c, h, func() bool { return s.distinct()-fails >= 100 }); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	for v, n := range s.count {
		if n != 1 {
			t.Errorf("%s processed %d times", v, n)
		}
	}
	if fails != 3 {
		t.Fatalf("%d failures, want 3", fails)
	}
}

func TestAtLeastOncePanic(t *testing.T) {
	addr := startTlog(t)
	createTopic(t, addr, "panic", 2)
	produce(t, addr, "panic", 100, 10)
	store := consumer.NewMemoryStore()
	a := newSeen()
	ca := newConsumer(t, addr, consumer.WithAssignment("panic", nil, consumer.Earliest()), consumer.WithOffsetStore(store), consumer.WithMaxPollRecords(30))
	err := ca.Run(ctx10(t), func(_ context.Context, r *consumer.Record) error {
		if len(a.order) == 42 {
			panic("handler bug")
		}
		a.add(r)
		return nil
	})
	var pe *consumer.PanicError
	if !errors.As(err, &pe) || pe.Value != "handler bug" || len(pe.Stack) == 0 {
		t.Fatalf("Run: %v, want a PanicError", err)
	}
	b := newSeen()
	cb := newConsumer(t, addr, consumer.WithAssignment("panic", nil, consumer.Earliest()), consumer.WithOffsetStore(store))
	if err := runUntil(t, cb, collect(b), func() bool { return a.distinct()+b.distinct() >= 100 }); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	for v := range b.count {
		if a.has(v) {
			t.Errorf("%s processed twice", v)
		}
	}
	if a.distinct()+b.distinct() != 100 {
		t.Fatalf("%d+%d distinct, want 100", a.distinct(), b.distinct())
	}
}

// crashStore stops persisting once crashed, as if the process died: nothing
// after the crash reaches the file.
type crashStore struct {
	consumer.OffsetStore
	crashed atomic.Bool
}

func (s *crashStore) Save(ctx context.Context, m map[consumer.TopicPartition]int64) error {
	if s.crashed.Load() {
		return errors.New("process is dead")
	}
	return s.OffsetStore.Save(ctx, m)
}

// A consumer that dies mid-batch loses nothing: a new one resumes from the
// file, and the only records processed twice are those after the last save
// (the uncommitted tail).
func TestAtLeastOnceCrashMidBatch(t *testing.T) {
	addr := startTlog(t)
	createTopic(t, addr, "crash", 3)
	produce(t, addr, "crash", 300, 30)
	path := filepath.Join(t.TempDir(), "offsets.json")
	fs, err := consumer.NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	store := &crashStore{OffsetStore: fs}

	a := newSeen()
	hang := make(chan struct{})
	crashed := make(chan struct{})
	var crashAt *consumer.Record
	ca := newConsumer(t, addr, consumer.WithAssignment("crash", nil, consumer.Earliest()),
		consumer.WithOffsetStore(store), consumer.WithMaxPollRecords(25))
	runA := make(chan error, 1)
	go func() {
		runA <- ca.Run(t.Context(), func(_ context.Context, r *consumer.Record) error {
			if a.add(r) == 110 {
				// Dies after processing this record, before returning.
				store.crashed.Store(true)
				crashAt = r
				close(crashed)
				<-hang
				return errors.New("dead")
			}
			return nil
		})
	}()
	<-crashed
	// What A processed: its positions, plus the record it died in.
	processedA := ca.Positions()
	processedA[crashAt.TopicPartition()] = crashAt.Offset + 1

	// A new process: a new FileStore read from the file.
	fsB, err := consumer.NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	saved := fsB.Offsets()
	if len(saved) == 0 {
		t.Fatal("nothing was saved before the crash")
	}
	b := newSeen()
	cb := newConsumer(t, addr, consumer.WithAssignment("crash", nil, consumer.Earliest()), consumer.WithOffsetStore(fsB))
	if err := runUntil(t, cb, collect(b), func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		n := 0
		b.mu.Lock()
		for v := range b.count {
			if a.count[v] == 0 {
				n++
			}
		}
		b.mu.Unlock()
		return len(a.count)+n >= 300
	}); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	close(hang)
	<-runA

	wantDup := 0
	for tp, pos := range processedA {
		wantDup += int(pos - saved[tp])
	}
	dups := 0
	for _, r := range b.order {
		if !a.has(string(r.Value)) {
			continue
		}
		dups++
		tp := r.TopicPartition()
		if r.Offset < saved[tp] || r.Offset >= processedA[tp] {
			t.Errorf("%s at %s@%d processed twice, outside the uncommitted tail [%d, %d)", r.Value, tp, r.Offset, saved[tp], processedA[tp])
		}
	}
	if dups != wantDup || wantDup == 0 {
		t.Errorf("%d duplicates, want exactly the uncommitted tail of %d (saved %v, processed %v)", dups, wantDup, saved, processedA)
	}
	all := map[string]bool{}
	for v := range a.count {
		all[v] = true
	}
	for v := range b.count {
		all[v] = true
	}
	if len(all) != 300 {
		t.Fatalf("%d distinct records processed, want 300: records lost", len(all))
	}
	t.Logf("crash after %d records: saved %v, processed %v, %d replayed", 110, saved, processedA, dups)
}

// Cancelling the context from a handler stops after that record, saves it,
// and a new consumer resumes right after it: no duplicates.
func TestCancelMidBatch(t *testing.T) {
	addr := startTlog(t)
	createTopic(t, addr, "cancel", 2)
	produce(t, addr, "cancel", 100, 10)
	store := consumer.NewMemoryStore()
	a := newSeen()
	ca := newConsumer(t, addr, consumer.WithAssignment("cancel", nil, consumer.Earliest()), consumer.WithOffsetStore(store))
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	err := ca.Run(ctx, func(_ context.Context, r *consumer.Record) error {
		if a.add(r) == 33 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if a.distinct() != 33 {
		t.Fatalf("processed %d records after cancel at 33", a.distinct())
	}
	b := newSeen()
	cb := newConsumer(t, addr, consumer.WithAssignment("cancel", nil, consumer.Earliest()), consumer.WithOffsetStore(store))
	if err := runUntil(t, cb, collect(b), func() bool { return a.distinct()+b.distinct() >= 100 }); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	for v := range b.count {
		if a.has(v) {
			t.Errorf("%s processed twice", v)
		}
	}
}

// At most once: the positions past the whole batch are stored before the
// handler sees its first record; a failure skips the rest of the batch.
func TestAtMostOnce(t *testing.T) {
	addr := startTlog(t)
	createTopic(t, addr, "amo", 1)
	produce(t, addr, "amo", 100, 0)
	store := consumer.NewMemoryStore()
	tp := consumer.TopicPartition{Topic: "amo", Partition: 0}
	a := newSeen()
	ca := newConsumer(t, addr, consumer.WithAssignment("amo", nil, consumer.Earliest()),
		consumer.WithOffsetStore(store), consumer.WithAtMostOnce(), consumer.WithMaxPollRecords(20))
	var batchEnd int64
	err := ca.Run(ctx10(t), func(ctx context.Context, r *consumer.Record) error {
		stored, err := store.Load(ctx, []consumer.TopicPartition{tp})
		if err != nil {
			return err
		}
		if stored[tp] <= r.Offset {
			t.Errorf("handler runs on offset %d, stored position only %d", r.Offset, stored[tp])
		}
		if a.add(r) == 30 {
			batchEnd = stored[tp]
			return errBoom
		}
		return nil
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Run: %v", err)
	}
	if batchEnd <= 30 {
		t.Fatalf("stored %d when record 30 failed: not past the batch", batchEnd)
	}
	b := newSeen()
	cb := newConsumer(t, addr, consumer.WithAssignment("amo", nil, consumer.Earliest()), consumer.WithOffsetStore(store), consumer.WithAtMostOnce())
	if err := runUntil(t, cb, collect(b), func() bool { return b.distinct() >= int(100-batchEnd) }); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if first := b.order[0].Offset; first != batchEnd {
		t.Fatalf("resumed at %d, want the stored batch end %d", first, batchEnd)
	}
	for v := range b.count {
		if a.has(v) {
			t.Errorf("%s processed twice under at-most-once", v)
		}
	}
}

func TestSeekReplay(t *testing.T) {
	addr := startTlog(t)
	createTopic(t, addr, "seek", 1)
	p, err := producer.New([]string{addr})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	base := time.UnixMilli(1_700_000_000_000)
	for i := range 10 {
		if _, err := p.Send(ctx10(t), producer.Record{Topic: "seek", Value: fmt.Appendf(nil, "%d", i), Timestamp: base.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatal(err)
		}
	}
	tp := consumer.TopicPartition{Topic: "seek", Partition: 0}
	offsets := func(rs []*consumer.Record) []int64 {
		var out []int64
		for _, r := range rs {
			out = append(out, r.Offset)
		}
		return out
	}

	t.Run("replay from the handler", func(t *testing.T) {
		c := newConsumer(t, addr, consumer.WithAssignment("seek", nil, consumer.Earliest()))
		var got []*consumer.Record
		replayed := false
		err := runUntil(t, c, func(_ context.Context, r *consumer.Record) error {
			got = append(got, r)
			if r.Offset == 9 && !replayed {
				replayed = true
				return c.Seek(tp, consumer.Earliest())
			}
			return nil
		}, func() bool { return len(got) == 20 })
		if !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		want := "[0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9]"
		if fmt.Sprint(offsets(got)) != want {
			t.Fatalf("offsets %v, want %s", offsets(got), want)
		}
	})

	t.Run("skip ahead drops what was fetched", func(t *testing.T) {
		c := newConsumer(t, addr, consumer.WithAssignment("seek", nil, consumer.Earliest()))
		var got []*consumer.Record
		err := runUntil(t, c, func(_ context.Context, r *consumer.Record) error {
			got = append(got, r)
			if r.Offset == 2 {
				return c.Seek(tp, consumer.At(7))
			}
			return nil
		}, func() bool { return got[len(got)-1].Offset == 9 })
		if !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		if fmt.Sprint(offsets(got)) != "[0 1 2 7 8 9]" {
			t.Fatalf("offsets %v, want [0 1 2 7 8 9]", offsets(got))
		}
	})

	t.Run("seek all to a time from another goroutine", func(t *testing.T) {
		c := newConsumer(t, addr, consumer.WithAssignment("seek", nil, consumer.Earliest()))
		var mu sync.Mutex
		var got []*consumer.Record
		caughtUp := make(chan struct{})
		go func() {
			<-caughtUp
			// Run is parked in a poll at the end of the partition.
			time.Sleep(100 * time.Millisecond)
			if err := c.SeekAll(consumer.AtTime(base.Add(6 * time.Second))); err != nil {
				t.Error(err)
			}
		}()
		err := runUntil(t, c, func(_ context.Context, r *consumer.Record) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, r)
			if len(got) == 10 {
				close(caughtUp)
			}
			return nil
		}, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 14 })
		if !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		if fmt.Sprint(offsets(got[10:])) != "[6 7 8 9]" {
			t.Fatalf("after the seek: offsets %v, want [6 7 8 9]", offsets(got[10:]))
		}
		if got := c.Positions()[tp]; got != 10 {
			t.Fatalf("position %d, want 10", got)
		}
	})

	t.Run("seek before run", func(t *testing.T) {
		c := newConsumer(t, addr, consumer.WithAssignment("seek", nil, consumer.Earliest()))
		if err := c.Seek(tp, consumer.At(8)); err != nil {
			t.Fatal(err)
		}
		var got []*consumer.Record
		if err := runUntil(t, c, func(_ context.Context, r *consumer.Record) error {
			got = append(got, r)
			return nil
		}, func() bool { return got[len(got)-1].Offset == 9 }); !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		if fmt.Sprint(offsets(got)) != "[8 9]" {
			t.Fatalf("offsets %v, want [8 9]", offsets(got))
		}
	})

	t.Run("errors", func(t *testing.T) {
		c := newConsumer(t, addr, consumer.WithAssignment("seek", []int32{0}, consumer.Earliest()))
		if err := c.Seek(consumer.TopicPartition{Topic: "seek", Partition: 1}, consumer.Earliest()); !errors.Is(err, consumer.ErrNotAssigned) {
			t.Fatalf("seek of an unassigned partition: %v", err)
		}
		if err := c.Seek(consumer.TopicPartition{Topic: "other", Partition: 0}, consumer.Earliest()); !errors.Is(err, consumer.ErrNotAssigned) {
			t.Fatalf("seek of another topic: %v", err)
		}
		if err := c.Seek(tp, consumer.At(-4)); err == nil {
			t.Fatal("seek to offset -4 accepted")
		}
		if err := c.Seek(tp, consumer.AtTime(time.Time{})); err == nil {
			t.Fatal("seek to the zero time accepted")
		}
		c.Close(ctx10(t))
		if err := c.Seek(tp, consumer.Earliest()); !errors.Is(err, consumer.ErrClosed) {
			t.Fatalf("seek after close: %v", err)
		}
	})
}

func TestRunLifecycle(t *testing.T) {
	addr := startTlog(t)
	createTopic(t, addr, "life", 1)
	produce(t, addr, "life", 5, 0)
	c := newConsumer(t, addr, consumer.WithAssignment("life", nil, consumer.Earliest()))
	if err := c.Run(t.Context(), nil); err == nil {
		t.Fatal("nil handler accepted")
	}
	started := make(chan struct{})
	var once sync.Once
	errc := make(chan error, 1)
	go func() {
		errc <- c.Run(context.Background(), func(context.Context, *consumer.Record) error {
			once.Do(func() { close(started) })
			return nil
		})
	}()
	<-started
	if err := c.Run(t.Context(), collect(newSeen())); !errors.Is(err, consumer.ErrRunning) {
		t.Fatalf("second Run: %v, want ErrRunning", err)
	}
	if err := c.Close(ctx10(t)); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, consumer.ErrClosed) {
		t.Fatalf("Run after Close: %v, want ErrClosed", err)
	}
	if err := c.Run(t.Context(), collect(newSeen())); !errors.Is(err, consumer.ErrClosed) {
		t.Fatalf("Run on a closed consumer: %v", err)
	}
	if err := c.Close(ctx10(t)); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestNewValidation(t *testing.T) {
	b := []string{"127.0.0.1:1"}
	for name, opts := range map[string][]consumer.Option{
		"no mode":             nil,
		"both modes":          {consumer.WithGroup("g", "t"), consumer.WithAssignment("t", nil, consumer.Earliest())},
		"group without topic": {consumer.WithGroup("g")},
		"group with store":    {consumer.WithGroup("g", "t"), consumer.WithOffsetStore(consumer.NewMemoryStore())},
		"empty topic":         {consumer.WithAssignment("", nil, consumer.Earliest())},
		"negative partition":  {consumer.WithAssignment("t", []int32{-1}, consumer.Earliest())},
		"negative offset":     {consumer.WithAssignment("t", nil, consumer.At(-1))},
		"negative max poll":   {consumer.WithAssignment("t", nil, consumer.Earliest()), consumer.WithMaxPollRecords(-1)},
	} {
		if _, err := consumer.New(b, opts...); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := consumer.New(nil, consumer.WithAssignment("t", nil, consumer.Earliest())); err == nil {
		t.Error("no brokers: accepted")
	}
}

func TestSupportsGroupsOnTlog(t *testing.T) {
	addr := startTlog(t)
	ok, err := consumer.SupportsGroups(ctx10(t), []string{addr})
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatal("tlog does not advertise the group APIs")
	}
}

// A start past the end, or before the log start, is out of range: the
// partition restarts at the reset offset.
func TestOutOfRangeReset(t *testing.T) {
	addr := startTlog(t)
	createTopic(t, addr, "oor", 1)
	produce(t, addr, "oor", 10, 0)
	tp := consumer.TopicPartition{Topic: "oor", Partition: 0}

	s := newSeen()
	c := newConsumer(t, addr, consumer.WithAssignment("oor", nil, consumer.At(1000)))
	if err := runUntil(t, c, collect(s), func() bool { return s.distinct() == 10 }); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if s.order[0].Offset != 0 {
		t.Fatalf("reset to %d, want 0 (earliest)", s.order[0].Offset)
	}

	// Records below 4 deleted: Earliest is the new log start, and a stored
	// position below it resets there.
	deleteRecords(t, addr, tp, 4)
	store := consumer.NewMemoryStore()
	store.Save(t.Context(), map[consumer.TopicPartition]int64{tp: 1})
	for name, start := range map[string]consumer.Offset{"earliest": consumer.Earliest(), "stored below log start": consumer.At(0)} {
		s := newSeen()
		opts := []consumer.Option{consumer.WithAssignment("oor", nil, start)}
		if name != "earliest" {
			opts = append(opts, consumer.WithOffsetStore(store))
		}
		c := newConsumer(t, addr, opts...)
		if err := runUntil(t, c, collect(s), func() bool { return s.distinct() == 6 }); !errors.Is(err, context.Canceled) {
			t.Fatal(err)
		}
		if s.order[0].Offset != 4 {
			t.Fatalf("%s: first offset %d, want the log start 4", name, s.order[0].Offset)
		}
	}
}
