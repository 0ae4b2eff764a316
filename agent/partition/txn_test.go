package partition_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/tlog-io/tlog/agent/partition"
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
