package partition_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/wal"
	"github.com/tlog-io/tlog/tier/batch"
)

// ---- helpers ----

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type bopts struct {
	pid   int64
	epoch int16
	seq   int32
	ts    int64 // first timestamp; record i is at ts+i
	txn   bool  // transactional
}

var plain = bopts{pid: -1, epoch: -1, seq: -1, ts: 1000}

// mkBatch builds a sealed RecordBatch v2 of n records as a producer sends it.
func mkBatch(o bopts, n int) []byte {
	var recs []byte
	for i := range n {
		r := kmsg.NewRecord()
		r.TimestampDelta64 = int64(i)
		r.OffsetDelta = int32(i)
		r.Value = []byte(fmt.Sprintf("value-%d", i))
		body := r.AppendTo(nil)[1:]
		r.Length = int32(len(body))
		recs = r.AppendTo(recs)
	}
	rb := kmsg.NewRecordBatch()
	rb.PartitionLeaderEpoch = -1
	rb.Magic = 2
	rb.LastOffsetDelta = int32(n - 1)
	rb.FirstTimestamp = o.ts
	rb.MaxTimestamp = o.ts + int64(n-1)
	rb.ProducerID = o.pid
	rb.ProducerEpoch = o.epoch
	rb.FirstSequence = o.seq
	if o.txn {
		rb.Attributes |= 0x10
	}
	rb.NumRecords = int32(n)
	rb.Records = recs
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

func openWAL(t *testing.T, dir string) *wal.WAL {
	t.Helper()
	w, err := wal.Open(wal.Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

type fixture struct {
	t        *testing.T
	dir      string
	w        *wal.WAL
	key      wal.PartKey
	p        *partition.Partition
	advances atomic.Int64
}

func newFixture(t *testing.T, cfg partition.Config) *fixture {
	t.Helper()
	f := &fixture{t: t, dir: t.TempDir(), key: wal.NewPartKey([16]byte{1, 2, 3}, 4)}
	f.w = openWAL(t, f.dir)
	t.Cleanup(func() { f.w.Close() })
	f.p = f.open(cfg)
	return f
}

func (f *fixture) open(cfg partition.Config) *partition.Partition {
	cfg.Key, cfg.Topic, cfg.Index, cfg.WAL = f.key, "t", 4, f.w
	cfg.OnAdvance = func() { f.advances.Add(1) }
	p := partition.New(cfg)
	p.SetRole(soleLeader(cfg.LeaderEpoch))
	return p
}

// soleLeader is the role of a single-replica partition's leader.
func soleLeader(epoch int32) partition.Role {
	return partition.Role{Leader: true, Epoch: epoch, Self: 0, ISR: []int32{0}, Replicas: []int32{0}, MinISR: 1}
}

// append validates and appends b, returning the result and a channel that
// receives the completion.
func (f *fixture) append(b []byte) (partition.AppendResult, <-chan error, error) {
	f.t.Helper()
	h, err := batch.ValidateProduce(b, 1<<20)
	if err != nil {
		f.t.Fatalf("test batch invalid: %v", err)
	}
	done := make(chan error, 1)
	res, err := f.p.Append(b, h, -1, func(err error) { done <- err })
	return res, done, err
}

// mustAppend appends and waits for the batch to be durable.
func (f *fixture) mustAppend(b []byte) partition.AppendResult {
	f.t.Helper()
	res, done, err := f.append(b)
	if err != nil {
		f.t.Fatalf("append: %v", err)
	}
	if err := wait(f.t, done); err != nil {
		f.t.Fatalf("append completion: %v", err)
	}
	return res
}

func wait(t *testing.T, done <-chan error) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("append never completed")
		return nil
	}
}

// read returns the base offsets, leader epochs and sizes of the batches Read
// returns.
func (f *fixture) read(offset int64, maxBytes int, minOne bool) ([]int64, []int32, error) {
	f.t.Helper()
	data, _, err := f.p.Read(context.Background(), offset, maxBytes, minOne)
	if err != nil {
		return nil, nil, err
	}
	var bases []int64
	var epochs []int32
	if err := batch.Iterate(data, func(h batch.Header, b []byte) bool {
		bases = append(bases, h.BaseOffset)
		epochs = append(epochs, h.PartitionLeaderEpoch)
		return true
	}); err != nil {
		f.t.Fatalf("read returned broken batches: %v", err)
	}
	return bases, epochs, nil
}

// stallWAL parks the WAL's writer goroutine inside a completion callback
// until release is called, so later appends stay queued (not durable).
func stallWAL(t *testing.T, w *wal.WAL) (release func()) {
	t.Helper()
	entered, gate := make(chan struct{}), make(chan struct{})
	if err := w.Append(wal.NewPartKey([16]byte{0xff}, 0), 0, []byte("stall"), func(error) {
		close(entered)
		<-gate
	}); err != nil {
		t.Fatal(err)
	}
	<-entered
	release = sync.OnceFunc(func() { close(gate) })
	t.Cleanup(release)
	return release
}

// ---- offsets, high watermark, reads ----

func TestOffsetsDenseAcrossAppends(t *testing.T) {
	t.Parallel()
	f := newFixture(t, partition.Config{LeaderEpoch: 7})
	var want []int64
	next := int64(0)
	for _, n := range []int{1, 3, 2, 5, 1} {
		res := f.mustAppend(mkBatch(plain, n))
		if res.BaseOffset != next || res.Duplicate || res.LogStart != 0 {
			t.Fatalf("batch of %d: %+v, want base %d", n, res, next)
		}
		want = append(want, next)
		next += int64(n)
	}
	if o := f.p.Offsets(); o.LEO != next || o.HW != next || o.LogStart != 0 || o.Epoch != 7 {
		t.Fatalf("offsets %+v, want LEO = HW = %d", o, next)
	}
	bases, epochs, err := f.read(0, 1<<20, false)
	if err != nil || !slices.Equal(bases, want) {
		t.Fatalf("read from 0: %v %v, want bases %v", bases, err, want)
	}
	for i, e := range epochs {
		if e != 7 {
			t.Errorf("batch %d stamped with leader epoch %d, want 7", i, e)
		}
	}
	if st := f.p.Stats(); st.Batches != 5 || st.Producers != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestHighWatermarkWaitsForWAL(t *testing.T) {
	t.Parallel()
	f := newFixture(t, partition.Config{})
	f.mustAppend(mkBatch(plain, 2))
	adv := f.advances.Load()

	release := stallWAL(t, f.w)
	res, done, err := f.append(mkBatch(bopts{pid: -1, epoch: -1, seq: -1, ts: 5000}, 3))
	if err != nil || res.BaseOffset != 2 {
		t.Fatalf("append: %+v %v", res, err)
	}
	o := f.p.Offsets()
	if o.LEO != 5 || o.HW != 2 {
		t.Fatalf("before the WAL write: LEO %d HW %d, want 5 and 2", o.LEO, o.HW)
	}
	select {
	case err := <-done:
		t.Fatalf("append completed (%v) before the WAL wrote it", err)
	default:
	}
	// Nothing at or past the HW is served.
	if bases, _, err := f.read(2, 1<<20, true); err != nil || len(bases) != 0 {
		t.Fatalf("read at HW before durable: %v %v, want nothing", bases, err)
	}
	// Between the HW and the log end is in flight: nothing, not an error.
	if bases, _, err := f.read(3, 1<<20, true); err != nil || len(bases) != 0 {
		t.Fatalf("read between HW and LEO: %v %v, want nothing", bases, err)
	}
	if _, _, err := f.read(100, 1<<20, true); !errors.Is(err, partition.ErrOffsetOutOfRange) {
		t.Fatalf("read beyond LEO: %v, want ErrOffsetOutOfRange", err)
	}
	if bases, _, _ := f.read(0, 1<<20, true); !slices.Equal(bases, []int64{0}) {
		t.Fatalf("read from 0 before durable: %v, want only the durable batch", bases)
	}
	if _, ts, ok := f.p.WALOffsetForTimestamp(5000); ok {
		t.Fatalf("timestamp lookup found the undurable batch (ts %d)", ts)
	}
	if _, ts, _ := f.p.WALMaxTimestamp(); ts >= 5000 {
		t.Fatalf("max timestamp %d includes the undurable batch", ts)
	}
	if err := f.p.SetLogStart(4); !errors.Is(err, partition.ErrOffsetOutOfRange) {
		t.Fatalf("log start beyond HW: %v", err)
	}

	release()
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if o := f.p.Offsets(); o.HW != 5 {
		t.Fatalf("after the WAL write: HW %d, want 5", o.HW)
	}
	if f.advances.Load() <= adv {
		t.Errorf("OnAdvance not called when the HW moved")
	}
	if bases, _, _ := f.read(2, 1<<20, true); !slices.Equal(bases, []int64{2}) {
		t.Fatalf("read at 2 after durable: %v", bases)
	}
}

func TestReadMaxBytesAndMinOne(t *testing.T) {
	t.Parallel()
	f := newFixture(t, partition.Config{})
	var size int
	for range 5 {
		b := mkBatch(plain, 3) // offsets 0-2, 3-5, ...
		size = len(b)
		f.mustAppend(b)
	}
	for _, tc := range []struct {
		off    int64
		max    int
		minOne bool
		want   []int64
	}{
		{0, 1 << 20, false, []int64{0, 3, 6, 9, 12}},
		{0, 2 * size, false, []int64{0, 3}},
		{0, 2*size + size/2, false, []int64{0, 3}},
		{0, size - 1, false, nil},
		{0, size - 1, true, []int64{0}},
		{0, 0, true, []int64{0}},
		{4, size, false, []int64{3}}, // mid-batch offset: the whole batch holding it
		{5, 2 * size, true, []int64{3, 6}},
		{14, 1 << 20, false, []int64{12}},
		{15, 1 << 20, true, nil}, // HW
	} {
		bases, _, err := f.read(tc.off, tc.max, tc.minOne)
		if err != nil || !slices.Equal(bases, tc.want) {
			t.Errorf("Read(%d, %d, %v): %v %v, want %v", tc.off, tc.max, tc.minOne, bases, err, tc.want)
		}
	}
	for _, off := range []int64{16, -1} {
		if _, _, err := f.read(off, 1<<20, true); !errors.Is(err, partition.ErrOffsetOutOfRange) {
			t.Errorf("Read(%d): %v, want ErrOffsetOutOfRange", off, err)
		}
	}
	data, o, err := f.p.Read(context.Background(), 0, 1<<20, false)
	if err != nil || len(data) != 5*size || o.HW != 15 {
		t.Errorf("Read all: %d bytes, %+v, %v", len(data), o, err)
	}
}

func TestOffsetForTimestamp(t *testing.T) {
	t.Parallel()
	f := newFixture(t, partition.Config{})
	if off, ts, ok := f.p.WALOffsetForTimestamp(0); ok || off != 0 || ts != -1 {
		t.Errorf("empty log: %d %d %v", off, ts, ok)
	}
	if _, _, ok := f.p.WALMaxTimestamp(); ok {
		t.Errorf("empty log has a max timestamp")
	}
	// Record timestamps: 100 101 | 300 301 302 | 200 | 399 400 (batches
	// 0-1, 2-4, 5, 6-7). Answers are per record, as in Kafka.
	f.mustAppend(mkBatch(bopts{pid: -1, epoch: -1, seq: -1, ts: 100}, 2))
	f.mustAppend(mkBatch(bopts{pid: -1, epoch: -1, seq: -1, ts: 300}, 3))
	f.mustAppend(mkBatch(bopts{pid: -1, epoch: -1, seq: -1, ts: 200}, 1))
	f.mustAppend(mkBatch(bopts{pid: -1, epoch: -1, seq: -1, ts: 399}, 2))
	for _, tc := range []struct {
		ts, off, outTS int64
		ok             bool
	}{
		{0, 0, 100, true},
		{101, 1, 101, true},
		{102, 2, 300, true},
		{250, 2, 300, true}, // the first record at or after, not the closest
		{303, 6, 399, true},
		{400, 7, 400, true},
		{401, 8, -1, false}, // none: the HW
	} {
		off, ts, ok := f.p.WALOffsetForTimestamp(tc.ts)
		if off != tc.off || ts != tc.outTS || ok != tc.ok {
			t.Errorf("OffsetForTimestamp(%d) = %d, %d, %v; want %d, %d, %v", tc.ts, off, ts, ok, tc.off, tc.outTS, tc.ok)
		}
	}
	if off, ts, ok := f.p.WALMaxTimestamp(); !ok || ts != 400 || off != 7 {
		t.Errorf("MaxTimestamp = %d, %d, %v; want offset 7 (last of its batch), 400", off, ts, ok)
	}
	// Below the log start the answer is clamped to it.
	if err := f.p.SetLogStart(3); err != nil {
		t.Fatal(err)
	}
	if off, _, ok := f.p.WALOffsetForTimestamp(0); !ok || off != 3 {
		t.Errorf("after log start 3: OffsetForTimestamp(0) = %d, %v; want 3", off, ok)
	}
}

func TestEndOffsetForEpoch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, partition.Config{LeaderEpoch: 0})
	if e, off := f.p.EndOffsetForEpoch(0); e != 0 || off != 0 {
		t.Errorf("empty log, epoch 0: %d %d", e, off)
	}
	f.mustAppend(mkBatch(plain, 2)) // 0-1 in epoch 0
	f.p.SetRole(soleLeader(3))
	f.mustAppend(mkBatch(plain, 2)) // 2-3 in epoch 3
	f.p.SetRole(soleLeader(2))      // lower: ignored
	if got := f.p.Offsets().Epoch; got != 3 {
		t.Fatalf("SetEpoch(2) after 3: epoch %d", got)
	}
	f.mustAppend(mkBatch(plain, 1)) // 4 in epoch 3
	f.p.SetRole(soleLeader(5))
	f.mustAppend(mkBatch(plain, 3)) // 5-7 in epoch 5

	for _, tc := range []struct {
		req, epoch int32
		end        int64
	}{
		{0, 0, 2},
		{1, 0, 2},
		{2, 0, 2},
		{3, 3, 5},
		{4, 3, 5},
		{5, 5, 8},
	} {
		if e, off := f.p.EndOffsetForEpoch(tc.req); e != tc.epoch || off != tc.end {
			t.Errorf("EndOffsetForEpoch(%d) = %d, %d; want %d, %d", tc.req, e, off, tc.epoch, tc.end)
		}
	}
	_, epochs, _ := f.read(0, 1<<20, false)
	if !slices.Equal(epochs, []int32{0, 3, 3, 5}) {
		t.Errorf("stamped leader epochs %v", epochs)
	}
}

func TestSetLogStart(t *testing.T) {
	t.Parallel()
	f := newFixture(t, partition.Config{})
	for range 5 {
		f.mustAppend(mkBatch(plain, 2)) // 0-1, 2-3, 4-5, 6-7, 8-9
	}
	if err := f.p.SetLogStart(3); err != nil {
		t.Fatal(err)
	}
	if o := f.p.Offsets(); o.LogStart != 3 || o.HW != 10 || o.LEO != 10 {
		t.Fatalf("offsets %+v", o)
	}
	for _, off := range []int64{0, 2} {
		if _, _, err := f.read(off, 1<<20, true); !errors.Is(err, partition.ErrOffsetOutOfRange) {
			t.Errorf("read at %d below log start: %v", off, err)
		}
	}
	if bases, _, err := f.read(3, 1<<20, false); err != nil || !slices.Equal(bases, []int64{2, 4, 6, 8}) {
		t.Errorf("read at the log start: %v %v (the batch holding 3 comes whole)", bases, err)
	}
	if st := f.p.Stats(); st.Batches != 4 {
		t.Errorf("%d batches indexed, want 4", st.Batches)
	}
	if got := walBases(t, f.w, f.key); !slices.Equal(got, []int64{2, 4, 6, 8}) {
		t.Errorf("WAL holds %v, want the batch below the log start dropped", got)
	}
	// Backwards is a no-op; beyond the HW an error.
	if err := f.p.SetLogStart(1); err != nil || f.p.Offsets().LogStart != 3 {
		t.Errorf("SetLogStart backwards: %v, log start %d", err, f.p.Offsets().LogStart)
	}
	if err := f.p.SetLogStart(11); !errors.Is(err, partition.ErrOffsetOutOfRange) {
		t.Errorf("SetLogStart beyond HW: %v", err)
	}
	// Up to the HW empties the log; offsets carry on.
	if err := f.p.SetLogStart(10); err != nil {
		t.Fatal(err)
	}
	if got := walBases(t, f.w, f.key); len(got) != 0 {
		t.Errorf("WAL holds %v after log start = HW", got)
	}
	if bases, _, err := f.read(10, 1<<20, true); err != nil || len(bases) != 0 {
		t.Errorf("read at HW of an emptied log: %v %v", bases, err)
	}
	if res := f.mustAppend(mkBatch(plain, 1)); res.BaseOffset != 10 || res.LogStart != 10 {
		t.Errorf("append after emptying: %+v", res)
	}
	if bases, _, _ := f.read(10, 1<<20, true); !slices.Equal(bases, []int64{10}) {
		t.Errorf("read after emptying and appending: %v", bases)
	}
}

func walBases(t *testing.T, w *wal.WAL, k wal.PartKey) []int64 {
	t.Helper()
	var bases []int64
	if err := w.Read(k, 0, func(base int64, _ []byte) bool {
		bases = append(bases, base)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return bases
}

// ---- idempotent producers ----

func TestIdempotentProducerRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t, partition.Config{})
	const pid = 42
	idem := func(epoch int16, seq int32, n int) []byte {
		return mkBatch(bopts{pid: pid, epoch: epoch, seq: seq, ts: 1}, n)
	}
	// seq 0-1 @0-1, then single records seq 2..6 @2..6.
	f.mustAppend(idem(0, 0, 2))
	for s := int32(2); s <= 6; s++ {
		if res := f.mustAppend(idem(0, s, 1)); res.BaseOffset != int64(s) {
			t.Fatalf("seq %d at %d", s, res.BaseOffset)
		}
	}
	leo := f.p.Offsets().LEO

	// Duplicates within the last five batches: original offset, no append.
	for _, s := range []int32{6, 4, 2} {
		res, done, err := f.append(idem(0, s, 1))
		if err != nil || !res.Duplicate || res.BaseOffset != int64(s) {
			t.Errorf("duplicate of seq %d: %+v %v", s, res, err)
			continue
		}
		if err := wait(t, done); err != nil {
			t.Errorf("duplicate completion: %v", err)
		}
	}
	if got := f.p.Offsets().LEO; got != leo {
		t.Fatalf("duplicates moved the log end from %d to %d", leo, got)
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"duplicate older than the window", idem(0, 0, 2), partition.ErrOutOfOrderSequence},
		{"gap", idem(0, 8, 1), partition.ErrOutOfOrderSequence},
		{"overlap", idem(0, 6, 2), partition.ErrOutOfOrderSequence},
		{"new epoch not at 0", idem(1, 7, 1), partition.ErrOutOfOrderSequence},
	} {
		if _, _, err := f.append(tc.b); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if got := f.p.Offsets().LEO; got != leo {
		t.Fatalf("refused batches moved the log end from %d to %d", leo, got)
	}
	// In sequence still works after the refusals.
	if res := f.mustAppend(idem(0, 7, 1)); res.BaseOffset != leo || res.Duplicate {
		t.Fatalf("seq 7: %+v", res)
	}
	// Epoch bump: starts at 0, fences the old epoch (duplicates too).
	if res := f.mustAppend(idem(1, 0, 1)); res.BaseOffset != leo+1 {
		t.Fatalf("epoch 1 seq 0: %+v", res)
	}
	for _, b := range [][]byte{idem(0, 8, 1), idem(0, 7, 1)} {
		if _, _, err := f.append(b); !errors.Is(err, partition.ErrInvalidProducerEpoch) {
			t.Errorf("old epoch: %v, want ErrInvalidProducerEpoch", err)
		}
	}
	if res, _, err := f.append(idem(1, 0, 1)); err != nil || !res.Duplicate || res.BaseOffset != leo+1 {
		t.Errorf("duplicate in the new epoch: %+v %v", res, err)
	}
	if st := f.p.Stats(); st.Producers != 1 {
		t.Errorf("%d producers tracked, want 1 (the refused one is not)", st.Producers)
	}
	// A new producer starting at 0 is fine; non-idempotent batches skip all of this.
	f.mustAppend(mkBatch(bopts{pid: pid + 1, epoch: 0, seq: 0, ts: 1}, 1))
	f.mustAppend(mkBatch(plain, 1))
	f.mustAppend(mkBatch(plain, 1))
}

func TestIdempotentSequenceWraps(t *testing.T) {
	t.Parallel()
	f := newFixture(t, partition.Config{})
	const maxSeq = 1<<31 - 1
	// A live producer cannot get near MaxInt32 cheaply; recovery takes
	// the batches as they are, so load one ending exactly at MaxInt32.
	b := mkBatch(bopts{pid: 1, epoch: 0, seq: maxSeq - 1, ts: 1}, 2)
	if _, err := f.p.Load(b); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.append(mkBatch(bopts{pid: 1, epoch: 0, seq: 2, ts: 1}, 1)); !errors.Is(err, partition.ErrOutOfOrderSequence) {
		t.Errorf("seq 2 after MaxInt32: %v, want ErrOutOfOrderSequence", err)
	}
	if res := f.mustAppend(mkBatch(bopts{pid: 1, epoch: 0, seq: 0, ts: 1}, 3)); res.BaseOffset != 2 {
		t.Errorf("seq 0 after MaxInt32 (wrap): %+v", res)
	}
	if res := f.mustAppend(mkBatch(bopts{pid: 1, epoch: 0, seq: 3, ts: 1}, 1)); res.BaseOffset != 5 {
		t.Errorf("seq 3 after the wrap: %+v", res)
	}
}

// A duplicate of a batch that is not durable yet completes only when the
// original does.
func TestDuplicateWaitsForOriginal(t *testing.T) {
	t.Parallel()
	f := newFixture(t, partition.Config{})
	release := stallWAL(t, f.w)
	b := mkBatch(bopts{pid: 3, epoch: 0, seq: 0, ts: 1}, 2)
	res1, done1, err := f.append(b)
	if err != nil || res1.BaseOffset != 0 {
		t.Fatal(res1, err)
	}
	res2, done2, err := f.append(mkBatch(bopts{pid: 3, epoch: 0, seq: 0, ts: 1}, 2))
	if err != nil || !res2.Duplicate || res2.BaseOffset != 0 {
		t.Fatalf("duplicate of an in-flight batch: %+v %v", res2, err)
	}
	select {
	case <-done2:
		t.Fatal("duplicate acknowledged before the original is durable")
	case <-time.After(50 * time.Millisecond):
	}
	release()
	if err := wait(t, done1); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, done2); err != nil {
		t.Fatal(err)
	}
	if got := f.p.Offsets().LEO; got != 2 {
		t.Errorf("log end %d, want 2", got)
	}
}

// Close refuses appends and fails duplicates still waiting.
func TestCloseFailsWaiters(t *testing.T) {
	t.Parallel()
	f := newFixture(t, partition.Config{})
	release := stallWAL(t, f.w)
	_, done1, _ := f.append(mkBatch(bopts{pid: 3, epoch: 0, seq: 0, ts: 1}, 1))
	_, done2, _ := f.append(mkBatch(bopts{pid: 3, epoch: 0, seq: 0, ts: 1}, 1))
	f.p.Close()
	if err := wait(t, done2); !errors.Is(err, partition.ErrClosed) {
		t.Errorf("waiting duplicate after Close: %v, want ErrClosed", err)
	}
	if _, _, err := f.append(mkBatch(plain, 1)); !errors.Is(err, partition.ErrClosed) {
		t.Errorf("append after Close: %v, want ErrClosed", err)
	}
	release()
	if err := wait(t, done1); err != nil {
		t.Errorf("in-flight append after Close: %v", err)
	}
}

// ---- recovery ----

// load rebuilds a partition from the WAL the way the agent does.
func (f *fixture) load(cfg partition.Config) (*partition.Partition, int) {
	f.t.Helper()
	p := f.open(cfg)
	stale := recoverFromWAL(f.t, f.w, f.key, p)
	p.SetRole(soleLeader(cfg.LeaderEpoch)) // as the agent does once loaded
	return p, stale
}

// recoverFromWAL replays what w holds for key into p as the agent's
// recovery does: the producer snapshot, the batches, the check that they
// meet, then dropping stale batches. It returns how many were stale.
func recoverFromWAL(t *testing.T, w *wal.WAL, key wal.PartKey, p *partition.Partition) int {
	t.Helper()
	err := w.ProducerSnapshots(func(k wal.PartKey, snap []byte) error {
		if k != key {
			return nil
		}
		return p.RestoreProducers(snap)
	})
	if err != nil {
		t.Fatalf("restore producers: %v", err)
	}
	stale := 0
	err = w.Scan(func(k wal.PartKey, _ int64, b []byte) error {
		if k != key {
			return nil
		}
		s, err := p.Load(b)
		if s {
			stale++
		}
		return err
	})
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	if err := p.Recovered(); err != nil {
		t.Fatalf("recovered: %v", err)
	}
	if stale > 0 {
		if err := p.DropStale(); err != nil {
			t.Fatalf("drop stale: %v", err)
		}
	}
	return stale
}

func (f *fixture) reopenWAL() {
	f.t.Helper()
	if err := f.w.Close(); err != nil {
		f.t.Fatal(err)
	}
	f.w = openWAL(f.t, f.dir)
	f.t.Cleanup(func() { f.w.Close() })
}

func TestLoadAfterReopen(t *testing.T) {
	t.Parallel()
	f := newFixture(t, partition.Config{LeaderEpoch: 1})
	const pid = 9
	f.mustAppend(mkBatch(bopts{pid: pid, epoch: 0, seq: 0, ts: 100}, 2))  // 0-1, epoch 1
	f.mustAppend(mkBatch(bopts{pid: -1, epoch: -1, seq: -1, ts: 300}, 3)) // 2-4
	f.p.SetRole(soleLeader(4))
	f.mustAppend(mkBatch(bopts{pid: pid, epoch: 0, seq: 2, ts: 500}, 1)) // 5, epoch 4
	f.mustAppend(mkBatch(bopts{pid: pid, epoch: 0, seq: 3, ts: 200}, 2)) // 6-7
	before := f.p.Offsets()
	f.p.Close()

	f.reopenWAL()
	p, stale := f.load(partition.Config{LeaderEpoch: 4})
	f.p = p
	if stale != 0 {
		t.Errorf("%d stale batches", stale)
	}
	if o := p.Offsets(); o.LEO != 8 || o.HW != 8 || o.LogStart != 0 || o.Epoch != 4 {
		t.Fatalf("after reload: %+v (before %+v)", o, before)
	}
	if bases, epochs, _ := f.read(0, 1<<20, false); !slices.Equal(bases, []int64{0, 2, 5, 6}) || !slices.Equal(epochs, []int32{1, 1, 4, 4}) {
		t.Errorf("reloaded batches %v epochs %v", bases, epochs)
	}
	for _, tc := range []struct {
		req, epoch int32
		end        int64
	}{{1, 1, 5}, {3, 1, 5}, {4, 4, 8}} {
		if e, off := p.EndOffsetForEpoch(tc.req); e != tc.epoch || off != tc.end {
			t.Errorf("reloaded EndOffsetForEpoch(%d) = %d, %d; want %d, %d", tc.req, e, off, tc.epoch, tc.end)
		}
	}
	if off, ts, ok := p.WALMaxTimestamp(); !ok || off != 5 || ts != 500 {
		t.Errorf("reloaded MaxTimestamp = %d, %d, %v", off, ts, ok)
	}
	// Producer state: duplicates recognised, gaps and old epochs refused.
	if res, done, err := f.append(mkBatch(bopts{pid: pid, epoch: 0, seq: 3, ts: 200}, 2)); err != nil || !res.Duplicate || res.BaseOffset != 6 {
		t.Errorf("duplicate after reload: %+v %v", res, err)
	} else if err := wait(t, done); err != nil {
		t.Errorf("duplicate completion after reload: %v", err)
	}
	if res, _, err := f.append(mkBatch(bopts{pid: pid, epoch: 0, seq: 0, ts: 100}, 2)); err != nil || !res.Duplicate || res.BaseOffset != 0 {
		t.Errorf("duplicate of the first batch after reload: %+v %v", res, err)
	}
	if _, _, err := f.append(mkBatch(bopts{pid: pid, epoch: 0, seq: 9, ts: 1}, 1)); !errors.Is(err, partition.ErrOutOfOrderSequence) {
		t.Errorf("gap after reload: %v", err)
	}
	if res := f.mustAppend(mkBatch(bopts{pid: pid, epoch: 0, seq: 5, ts: 1}, 1)); res.BaseOffset != 8 {
		t.Errorf("next in sequence after reload at %d, want 8", res.BaseOffset)
	}
	if res := f.mustAppend(mkBatch(bopts{pid: pid, epoch: 1, seq: 0, ts: 1}, 1)); res.BaseOffset != 9 {
		t.Errorf("epoch bump after reload at %d", res.BaseOffset)
	}
	if _, _, err := f.append(mkBatch(bopts{pid: pid, epoch: 0, seq: 6, ts: 1}, 1)); !errors.Is(err, partition.ErrInvalidProducerEpoch) {
		t.Errorf("old epoch after reload: %v", err)
	}

	// Reload again, this time with a log start inside the second batch.
	p.Close()
	f.reopenWAL()
	p, stale = f.load(partition.Config{LeaderEpoch: 4, LogStart: 3})
	f.p = p
	if stale != 1 {
		t.Errorf("%d stale batches below log start 3, want 1", stale)
	}
	if o := p.Offsets(); o.LogStart != 3 || o.LEO != 10 || o.HW != 10 {
		t.Errorf("reload with log start 3: %+v", o)
	}
	if bases, _, err := f.read(3, 1<<20, false); err != nil || bases[0] != 2 {
		t.Errorf("read at the log start after reload: %v %v", bases, err)
	}
	if _, _, err := f.read(1, 1<<20, false); !errors.Is(err, partition.ErrOffsetOutOfRange) {
		t.Errorf("read below the log start after reload: %v", err)
	}
}

// A recovered log with a hole is corrupt, not silently renumbered.
func TestLoadRejectsGap(t *testing.T) {
	t.Parallel()
	f := newFixture(t, partition.Config{})
	p := f.open(partition.Config{})
	b0 := mkBatch(plain, 2)
	b1 := mkBatch(plain, 1)
	batch.SetBaseOffset(b1, 5)
	if _, err := p.Load(b0); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Load(b1); !errors.Is(err, batch.ErrCorrupt) {
		t.Fatalf("load of a batch at 5 after log end 2: %v, want ErrCorrupt", err)
	}
	if _, err := p.Load([]byte("short")); err == nil {
		t.Fatal("load of garbage succeeded")
	}
}

// Appending to a partition whose WAL is closed must fail, not deadlock.
// wal.WAL.Append calls done synchronously on a closed WAL, and
// Partition.Append calls WAL.Append while holding p.mu; the done callback
// (Partition.durable) locks p.mu again.
func TestAppendAfterWALCloseDoesNotDeadlock(t *testing.T) {
	t.Parallel()
	// Not the fixture: its cleanup closes the WAL again, and WAL.Close
	// would wait forever for the read lock the wedged Append holds.
	w := openWAL(t, t.TempDir())
	p := partition.New(partition.Config{Key: wal.NewPartKey([16]byte{9}, 0), Topic: "t", WAL: w})
	p.SetRole(soleLeader(0))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	result := make(chan error, 2)
	go func() {
		b := mkBatch(plain, 1)
		h, _ := batch.ValidateProduce(b, 1<<20)
		_, err := p.Append(b, h, -1, func(err error) { result <- err })
		if err != nil {
			result <- err
		}
	}()
	select {
	case err := <-result:
		if err == nil {
			t.Fatal("append on a closed WAL succeeded")
		}
	case <-time.After(3 * time.Second):
		t.Fatal("BUG: Partition.Append deadlocks when the WAL is closed: WAL.Append runs done " +
			"synchronously (holding w.mu.RLock) and Partition.durable re-locks p.mu, which Append still holds")
	}
}

// copyDir copies a directory's regular files (a WAL directory is flat),
// keeping holes: Badger preallocates sparse files of gigabytes.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	ents, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Type().IsRegular() {
			copySparse(t, filepath.Join(from, e.Name()), filepath.Join(to, e.Name()))
		}
	}
}

func copySparse(t *testing.T, from, to string) {
	t.Helper()
	const seekData, seekHole = 3, 4 // Linux lseek whence values
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	fi, err := in.Stat()
	if err != nil {
		t.Fatal(err)
	}
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := out.Truncate(fi.Size()); err != nil {
		t.Fatal(err)
	}
	for off := int64(0); off < fi.Size(); {
		data, err := in.Seek(off, seekData)
		if err != nil {
			break // no data after off (ENXIO)
		}
		hole, err := in.Seek(data, seekHole)
		if err != nil {
			hole = fi.Size()
		}
		buf := make([]byte, hole-data)
		if _, err := in.ReadAt(buf, data); err != nil {
			t.Fatal(err)
		}
		if _, err := out.WriteAt(buf, data); err != nil {
			t.Fatal(err)
		}
		off = hole
	}
}

// Producer state survives SetLogStart through a snapshot. The snapshot must
// describe only what is durable: if it includes a batch still queued to the
// WAL and the agent dies before that batch is written, recovery restores a
// sequence the log never got. The producer's retry of that batch is then
// taken for a duplicate and acknowledged at an offset that holds other data
// (or nothing), and later appends below the snapshot's end do not update
// producer state at all.
func TestProducerSnapshotCoversOnlyDurableBatches(t *testing.T) {
	t.Parallel()
	f := newFixture(t, partition.Config{})
	const pid = 5
	idem := func(seq int32) []byte { return mkBatch(bopts{pid: pid, epoch: 0, seq: seq, ts: 1}, 1) }
	f.mustAppend(idem(0)) // offset 0, durable

	release := stallWAL(t, f.w)
	if _, _, err := f.append(idem(1)); err != nil { // offset 1, queued only
		t.Fatal(err)
	}
	// DeleteRecords up to the HW (1): snapshots producer state, drops batch 0.
	if err := f.p.SetLogStart(1); err != nil {
		t.Fatal(err)
	}
	// "Crash" now: copy the WAL directory while batch 1 is still queued.
	crashed := t.TempDir()
	copyDir(t, f.dir, crashed)
	release()

	w := openWAL(t, crashed)
	t.Cleanup(func() { w.Close() })
	p := partition.New(partition.Config{Key: f.key, Topic: "t", Index: 4, LogStart: 1, WAL: w})
	p.SetRole(soleLeader(0))
	if err := w.ProducerSnapshots(func(k wal.PartKey, snap []byte) error {
		if k == f.key {
			return p.RestoreProducers(snap)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := w.Scan(func(k wal.PartKey, _ int64, b []byte) error {
		if k == f.key {
			_, err := p.Load(b)
			return err
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if o := p.Offsets(); o.LEO != 1 || o.HW != 1 {
		t.Fatalf("after the crash: %+v, want an empty log at 1 (batch 1 was never written)", o)
	}

	// The producer retries seq 1, which the log does not hold.
	b := idem(1)
	h, _ := batch.ValidateProduce(b, 1<<20)
	done := make(chan error, 1)
	res, err := p.Append(b, h, -1, func(err error) { done <- err })
	if err != nil {
		t.Fatal(err)
	}
	if res.Duplicate {
		t.Fatalf("BUG: retry of a batch that was never written is taken for a duplicate at offset %d: "+
			"the producer snapshot (Partition.dropBelowLogStartAndUnlock/encodeProducersLocked) includes "+
			"batches above the high watermark and records the log end, not the HW, as its end", res.BaseOffset)
	}
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if res.BaseOffset != 1 || p.Offsets().HW != 2 {
		t.Fatalf("retry at %d, HW %d", res.BaseOffset, p.Offsets().HW)
	}
}

// A deleted topic's partition is closed and its WAL batches dropped while
// the flusher may be reading them: the flusher is told the partition is
// closed, not that storage failed.
func TestUnflushedOfDroppedPartition(t *testing.T) {
	t.Parallel()
	f := newFixture(t, partition.Config{})
	f.mustAppend(mkBatch(plain, 3))
	f.p.Close()
	if err := f.w.DropPartition(f.key); err != nil {
		t.Fatal(err)
	}
	_, _, _, err := f.p.Unflushed(1 << 20)
	if !errors.Is(err, partition.ErrClosed) || errors.Is(err, partition.ErrStorage) {
		t.Fatalf("Unflushed after the drop: %v, want ErrClosed", err)
	}
}

// onReadStore runs hook once, at the start of the first Iterate that reads
// from a given key (a WAL read, not a scan for deletion).
type onReadStore struct {
	wal.Store
	hook func()
}

func (s *onReadStore) Iterate(prefix, from []byte, prefetch bool, fn func(wal.Item) (bool, error)) error {
	if h := s.hook; h != nil && from != nil {
		s.hook = nil
		h()
	}
	return s.Store.Iterate(prefix, from, prefetch, fn)
}

// A flush that commits between a read's look at the index and its WAL
// read drops the batches the read is after: the read must not return the
// later batches in their place (a consumer takes the gap for compaction
// and skips those records), nor a follower get a storage error.
func TestReadOvertakenByFlushHasNoGap(t *testing.T) {
	t.Parallel()
	store := &onReadStore{Store: wal.NewMemStore()}
	w := wal.New(store, wal.Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { w.Close() })
	f := &fixture{t: t, w: w, key: wal.NewPartKey([16]byte{9}, 4)}
	f.p = f.open(partition.Config{})
	for range 3 {
		f.mustAppend(mkBatch(plain, 1)) // offsets 0, 1, 2
	}
	flushTo := func(end int64) func() {
		return func() {
			if err := f.p.SetFlushedEnd(end); err != nil {
				t.Errorf("SetFlushedEnd(%d): %v", end, err)
			}
		}
	}

	store.hook = flushTo(2)
	// The read goes to the bucket for offset 0, which this partition
	// has none of: out of range, where a gap would be offset 2's batch.
	data, _, err := f.p.Read(context.Background(), 0, 1<<20, true)
	if err == nil {
		t.Fatalf("Read(0) overtaken by a flush returned batches from %v, want it to go to the bucket", offsetsOf(t, data))
	}
	if !errors.Is(err, partition.ErrOffsetOutOfRange) || !strings.Contains(err.Error(), "is flushed") {
		t.Fatalf("Read(0) overtaken by a flush: %v, want the bucket's turn", err)
	}

	store.hook = flushTo(3)
	if _, _, err := f.p.ReadForFollower(2, 1<<20); !errors.Is(err, partition.ErrFlushed) {
		t.Fatalf("ReadForFollower(2) overtaken by a flush: %v, want ErrFlushed", err)
	}
}
