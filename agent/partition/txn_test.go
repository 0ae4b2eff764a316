package partition_test

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"testing"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/wal"
	"github.com/tlog-io/tlog/tier/batch"
)

func (f *fixture) marker(pid int64, epoch int16, commit bool) partition.AppendResult {
	f.t.Helper()
	done := make(chan error, 1)
	res, err := f.p.AppendMarker(pid, epoch, commit, 0, func(err error) { done <- err })
	if err != nil {
		f.t.Fatalf("marker: %v", err)
	}
	if err := wait(f.t, done); err != nil {
		f.t.Fatalf("marker completion: %v", err)
	}
	return res
}

// readCommitted returns the base offsets ReadCommitted returns from
// offset, and the aborted transactions it reports.
func readCommitted(t *testing.T, p *partition.Partition, offset int64) ([]int64, []partition.AbortedTxn) {
	t.Helper()
	data, _, aborted, err := p.ReadCommitted(context.Background(), offset, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	var bases []int64
	if err := batch.Iterate(data, func(h batch.Header, _ []byte) bool {
		bases = append(bases, h.BaseOffset)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	return bases, aborted
}

// The last stable offset stops at the first open transaction and moves on
// when its marker is in; read_committed reads stop there and carry the
// aborted transactions they overlap; all of it survives a restart.
func TestTransactionsLSOAndAborted(t *testing.T) {
	t.Parallel()
	f := newFixture(t, partition.Config{})
	lso := func() int64 { return f.p.Offsets().LSO }

	f.mustAppend(mkBatch(bopts{pid: 1, epoch: 0, seq: 0, ts: 100, txn: true}, 2)) // 0-1
	f.mustAppend(mkBatch(plain, 1))                                               // 2
	f.mustAppend(mkBatch(bopts{pid: 2, epoch: 0, seq: 0, ts: 100, txn: true}, 1)) // 3
	if got := lso(); got != 0 {
		t.Fatalf("LSO with producer 1's transaction open = %d, want 0", got)
	}
	if bases, _ := readCommitted(t, f.p, 0); len(bases) != 0 {
		t.Fatalf("read_committed below an open transaction returned %v", bases)
	}
	if r := f.marker(1, 0, true); r.BaseOffset != 4 {
		t.Fatalf("commit marker at %d, want 4", r.BaseOffset)
	}
	if got := lso(); got != 3 {
		t.Fatalf("LSO after producer 1 committed = %d, want 3 (producer 2 open)", got)
	}
	f.marker(2, 0, false) // 5
	if got, hw := lso(), f.p.Offsets().HW; got != 6 || hw != 6 {
		t.Fatalf("LSO after both ended = %d (HW %d), want 6", got, hw)
	}
	bases, aborted := readCommitted(t, f.p, 0)
	if !slices.Equal(bases, []int64{0, 2, 3, 4, 5}) {
		t.Fatalf("read_committed batches %v", bases)
	}
	want := []partition.AbortedTxn{{ProducerID: 2, FirstOffset: 3, LastOffset: 5}}
	if !slices.Equal(aborted, want) {
		t.Fatalf("aborted %v, want %v", aborted, want)
	}
	if _, aborted := readCommitted(t, f.p, 4); !slices.Equal(aborted, want) {
		t.Fatalf("aborted from 4: %v, want %v", aborted, want)
	}

	// A new transaction of producer 1, then a restart: the WAL replay
	// brings back the open transaction and the aborted one.
	f.mustAppend(mkBatch(bopts{pid: 1, epoch: 0, seq: 2, ts: 100, txn: true}, 1)) // 6
	f.p.Close()
	f.reopenWAL()
	p, _ := f.load(partition.Config{})
	defer p.Close()
	if o := p.Offsets(); o.LSO != 6 {
		t.Fatalf("LSO after restart = %d, want 6", o.LSO)
	}
	if _, got := readCommitted(t, p, 0); !slices.Equal(got, want) {
		t.Fatalf("aborted after restart %v, want %v", got, want)
	}

	// The snapshot a segment footer carries holds them too.
	q := f.open(partition.Config{})
	defer q.Close()
	if err := q.RestoreProducers(p.ProducerSnapshot(7)); err != nil {
		t.Fatal(err)
	}
	if got := q.Aborted(); !slices.Equal(got, want) {
		t.Fatalf("aborted from a snapshot %v, want %v", got, want)
	}
	if err := q.RestoreProducers(append(p.ProducerSnapshot(7), 0)); !errors.Is(err, batch.ErrCorrupt) {
		t.Fatalf("snapshot with a trailing byte: %v, want ErrCorrupt", err)
	}
}

// A marker from a newer epoch (the coordinator fenced the producer) fences
// the producer's older epoch here; a marker from an older epoch is
// refused.
func TestMarkerFencesOlderEpoch(t *testing.T) {
	t.Parallel()
	f := newFixture(t, partition.Config{})
	f.mustAppend(mkBatch(bopts{pid: 7, epoch: 0, seq: 0, ts: 100, txn: true}, 1))
	f.marker(7, 1, false) // the coordinator aborted it and bumped the epoch
	if _, _, err := f.append(mkBatch(bopts{pid: 7, epoch: 0, seq: 1, ts: 100, txn: true}, 1)); !errors.Is(err, partition.ErrInvalidProducerEpoch) {
		t.Fatalf("zombie write at the old epoch: %v, want ErrInvalidProducerEpoch", err)
	}
	if _, err := f.p.AppendMarker(7, 0, true, 0, func(error) {}); !errors.Is(err, partition.ErrInvalidProducerEpoch) {
		t.Fatalf("marker at an older epoch: %v, want ErrInvalidProducerEpoch", err)
	}
	if _, _, err := f.append(mkBatch(bopts{pid: 7, epoch: 1, seq: 5, ts: 100, txn: true}, 1)); !errors.Is(err, partition.ErrOutOfOrderSequence) {
		t.Fatalf("new epoch not starting at 0: %v", err)
	}
	f.mustAppend(mkBatch(bopts{pid: 7, epoch: 1, seq: 0, ts: 100, txn: true}, 1))
	if o := f.p.Offsets(); o.LSO != 2 {
		t.Fatalf("LSO = %d, want 2 (the new transaction)", o.LSO)
	}
}

// A marker for a producer this replica has no state for (its log starts
// after the producer's batches, or they expired) leaves it unknown: the
// producer's next batch, whatever its sequence, is taken, as Kafka takes
// an unknown producer's.
func TestMarkerForUnknownProducerKeepsItUnknown(t *testing.T) {
	t.Parallel()
	f := newFixture(t, partition.Config{})
	f.marker(9, 0, true)
	if _, _, err := f.append(mkBatch(bopts{pid: 9, epoch: 0, seq: 2890, ts: 100, txn: true}, 1)); err != nil {
		t.Fatalf("a batch of a producer known only from a marker: %v", err)
	}
}

// A follower that cuts its log below its high watermark (after a flush
// folded producer state) still learns of the transactions its new leader
// wrote there: the replacement batches reach producer state, and the
// aborted transaction is reported to read_committed readers. Producer
// state once folded up to the HW, so the replacements were skipped as
// "already counted" and the aborted records read as committed.
func TestTruncationKeepsTransactionState(t *testing.T) {
	rs := newReplicaSet(t)
	rs.elect(0, 1, 0, 1, 2)
	for range 2 {
		rs.put(0, mkBatch(plain, 1)) // 0, 1
	}
	for _, f := range []int{1, 2} {
		if err := rs.ship(0, f); err != nil {
			t.Fatal(err)
		}
	}
	rs.elect(0, 1, 0, 1) // replica 2 falls out of the ISR at 2
	rs.put(0, mkBatch(plain, 1))
	for range 2 { // the second round carries the HW
		if err := rs.ship(0, 1); err != nil {
			t.Fatal(err)
		}
	}
	if o := rs.ps[1].Offsets(); o.HW != 3 {
		t.Fatalf("follower offsets %+v, want HW 3", o)
	}
	if err := rs.ps[1].SetFlushedEnd(1); err != nil {
		t.Fatal(err)
	}
	// Replica 2 leads epoch 2 from offset 2: a transaction it aborts.
	rs.elect(2, 2, 2, 1)
	if _, _, err := rs.produce(2, mkBatch(bopts{pid: 7, epoch: 0, seq: 0, ts: 1, txn: true}, 1), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := rs.ps[2].AppendMarker(7, 0, false, 0, func(error) {}); err != nil {
		t.Fatal(err)
	}
	data, _, err := rs.ps[2].ReadForFollower(2, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.shipData(2, 1, data, 2, -1); err != nil {
		t.Fatal(err)
	}
	want := []partition.AbortedTxn{{ProducerID: 7, FirstOffset: 2, LastOffset: 3}}
	if got := rs.ps[1].Aborted(); !slices.Equal(got, want) {
		t.Fatalf("aborted after the cut: %v, want %v", got, want)
	}
}

// A follower reset to the flushed end (too far behind) has no producer
// state for what precedes it, also after a restart: the WAL's old
// snapshot must not pass for it. Until a footer supplies it, the LSO is
// unknown and read_committed readers get ErrProducersLoading, not records
// whose aborted transactions it does not know.
func TestResetFollowerWaitsForProducerState(t *testing.T) {
	rs := newReplicaSet(t)
	rs.elect(0, 1, 0, 1)
	rs.put(0, mkBatch(bopts{pid: 7, epoch: 0, seq: 0, ts: 1, txn: true}, 1)) // 0
	rs.put(0, mkBatch(plain, 1))                                             // 1
	for range 2 {
		if err := rs.ship(0, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := rs.ps[1].SetFlushedEnd(1); err != nil { // writes a WAL snapshot at 1
		t.Fatal(err)
	}
	if err := rs.ps[1].SetFlushedEnd(10); err != nil { // past its log end: reset
		t.Fatal(err)
	}
	check := func(p *partition.Partition, when string) {
		t.Helper()
		if at, missing := p.ProducersMissing(); !missing || at != 10 {
			t.Fatalf("%s: producers missing %v at %d, want at 10", when, missing, at)
		}
		if o := p.Offsets(); o.LSO != -1 {
			t.Fatalf("%s: LSO %d while producer state loads, want -1", when, o.LSO)
		}
	}
	check(rs.ps[1], "after the reset")
	rs.ps[1].Close()
	if err := rs.ws[1].Close(); err != nil {
		t.Fatal(err)
	}
	w := openWAL(t, rs.dirs[1])
	t.Cleanup(func() { w.Close() })
	p := partition.New(partition.Config{Key: rs.key, Topic: "r", WAL: w, FlushedEnd: 10, LeaderEpoch: 2})
	recoverFromWAL(t, w, rs.key, p)
	p.SetRole(partition.Role{Leader: true, Epoch: 2, Self: 1, ISR: []int32{1}, Replicas: []int32{0, 1, 2}, MinISR: 1})
	check(p, "after a restart")
	res, done, err := func() (partition.AppendResult, <-chan error, error) {
		b := mkBatch(plain, 1)
		h, _ := batch.ValidateProduce(b, 1<<20)
		done := make(chan error, 1)
		res, err := p.Append(b, h, 1, func(err error) { done <- err })
		return res, done, err
	}()
	if err != nil || res.BaseOffset != 10 {
		t.Fatalf("append at the flushed end: %+v %v", res, err)
	}
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := p.ReadCommitted(context.Background(), 10, 1<<20, true); !errors.Is(err, partition.ErrProducersLoading) {
		t.Fatalf("read_committed while producer state loads: %v, want ErrProducersLoading", err)
	}
}

// A WAL snapshot that ends before the log start, with no batches between,
// is a gap: recovery hands the partition to the bucket for its producer
// state instead of taking the snapshot as current.
func TestRecoveryGapLoadsProducersFromBucket(t *testing.T) {
	f := newFixture(t, partition.Config{})
	f.p.Close()
	empty := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, 3), 0)
	if err := f.w.PutProducerSnapshot(f.key, empty); err != nil {
		t.Fatal(err)
	}
	p, _ := f.load(partition.Config{FlushedEnd: 10})
	defer p.Close()
	if at, missing := p.ProducersMissing(); !missing || at != 10 {
		t.Fatalf("producers missing %v at %d, want at 10", missing, at)
	}
	var snaps int
	if err := f.w.ProducerSnapshots(func(wal.PartKey, []byte) error { snaps++; return nil }); err != nil || snaps != 0 {
		t.Fatalf("%d WAL snapshots left (%v), want the stale one gone", snaps, err)
	}
}

// A replica still loading producer state whose log start then moves (a
// flush drops the batches it would have replayed) needs the state from
// the later point: the missing point moves with it, and a snapshot for
// the old point is not adopted.
func TestMissingProducerStateFollowsTheLogStart(t *testing.T) {
	w := openWAL(t, t.TempDir())
	t.Cleanup(func() { w.Close() })
	p := partition.New(partition.Config{Key: wal.NewPartKey([16]byte{5}, 0), Topic: "m", FlushedEnd: 10, WAL: w})
	p.SetRole(soleLeader(0))
	for range 3 {
		b := mkBatch(plain, 1)
		h, _ := batch.ValidateProduce(b, 1<<20)
		done := make(chan error, 1)
		if _, err := p.Append(b, h, 1, func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		if err := wait(t, done); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.SetFlushedEnd(12); err != nil { // 10 and 11 leave the WAL
		t.Fatal(err)
	}
	if at, missing := p.ProducersMissing(); !missing || at != 12 {
		t.Fatalf("missing %v at %d after the flush, want at 12", missing, at)
	}
	old := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, 10), 0)
	if err := p.AdoptProducers(old, 10); err != nil {
		t.Fatal(err)
	}
	if at, missing := p.ProducersMissing(); !missing || at != 12 {
		t.Fatalf("a snapshot for the old point was adopted: missing %v at %d", missing, at)
	}
	if err := p.AdoptProducers(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, 12), 0), 12); err != nil {
		t.Fatal(err)
	}
	if _, missing := p.ProducersMissing(); missing {
		t.Fatal("still missing after adopting the state at 12")
	}
}
