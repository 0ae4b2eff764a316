package partition_test

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/wal"
	"github.com/tlog-io/tlog/agent/wal/waltest"
	"github.com/tlog-io/tlog/tier/batch"
)

// A produce whose WAL write fails is answered with ErrStorage, never
// acknowledged, and the high watermark stays below it; later produces to
// that partition, and to any other on the same WAL, fail too rather than
// land after a hole; what was acknowledged before still reads back.
func TestWALWriteFailure(t *testing.T) {
	t.Parallel()
	for _, acks := range []int16{1, -1} {
		t.Run(fmt.Sprintf("acks=%d", acks), func(t *testing.T) {
			t.Parallel()
			store := waltest.NewFaulty(wal.NewMemStore())
			w := wal.New(store, wal.Options{Logger: slog.New(slog.DiscardHandler)})
			t.Cleanup(func() { w.Close() })
			f := &fixture{t: t, w: w, key: wal.NewPartKey([16]byte{1, 2, 3}, 4)}
			f.p = f.open(partition.Config{})
			other := partition.New(partition.Config{Key: wal.NewPartKey([16]byte{5}, 0), Topic: "u", WAL: w})
			other.SetRole(soleLeader(0))

			appendAcks := func(p *partition.Partition, b []byte) (partition.AppendResult, <-chan error, error) {
				h, err := batch.ValidateProduce(b, 1<<20)
				if err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				res, err := p.Append(b, h, acks, func(err error) { done <- err })
				return res, done, err
			}
			var acked []int64
			for _, n := range []int{2, 3, 1} {
				res, done, err := appendAcks(f.p, mkBatch(plain, n))
				if err != nil {
					t.Fatal(err)
				}
				if err := wait(t, done); err != nil {
					t.Fatal(err)
				}
				acked = append(acked, res.BaseOffset)
			}
			before := f.p.Offsets()
			if before.HW != 6 {
				t.Fatalf("offsets before the failure: %+v", before)
			}
			applies := store.Count(waltest.OpApply)

			store.FailNth(waltest.OpApply, 1, waltest.ErrInjected)
			res, done, err := appendAcks(f.p, mkBatch(plain, 4))
			if err != nil {
				t.Fatalf("append queued before the failure: %v", err)
			}
			if res.BaseOffset != 6 {
				t.Fatalf("failing batch at %d, want 6", res.BaseOffset)
			}
			if err := wait(t, done); !errors.Is(err, partition.ErrStorage) {
				t.Fatalf("completion of the failed write: %v, want ErrStorage", err)
			}
			if o := f.p.Offsets(); o.HW != before.HW {
				t.Fatalf("HW moved to %d past a failed write (was %d)", o.HW, before.HW)
			}

			// Fail-stop: later produces here and on another partition
			// are refused, even though the store works again.
			for _, p := range []*partition.Partition{f.p, other} {
				for _, n := range []int{1, 2} {
					_, done, err := appendAcks(p, mkBatch(plain, n))
					if err == nil {
						err = wait(t, done)
					}
					if !errors.Is(err, partition.ErrStorage) {
						t.Fatalf("produce after the failure: %v, want ErrStorage", err)
					}
				}
			}
			if o := f.p.Offsets(); o.HW != before.HW {
				t.Fatalf("HW moved to %d after the failure (was %d)", o.HW, before.HW)
			}
			if o := other.Offsets(); o.HW != 0 {
				t.Fatalf("the other partition's HW moved to %d", o.HW)
			}
			if got := store.Count(waltest.OpApply) - applies; got != 1 {
				t.Errorf("%d writes reached the store after the acknowledged ones, want only the failed one", got)
			}

			// What was acknowledged reads back, and is all the WAL holds.
			bases, _, err := f.read(0, 1<<20, false)
			if err != nil || !slices.Equal(bases, acked) {
				t.Fatalf("read after the failure: %v %v, want %v", bases, err, acked)
			}
			if got := walBases(t, w, f.key); !slices.Equal(got, acked) {
				t.Errorf("the WAL holds %v, want the acknowledged %v", got, acked)
			}
		})
	}
}
