package partition_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/wal"
	"github.com/tlog-io/tlog/metadata/clock"
	"github.com/tlog-io/tlog/metadata/clock/clocktest"
	"github.com/tlog-io/tlog/tier/batch"
)

// replicaSet is one partition on three agents (ids 0, 1, 2), each with
// its own WAL, with the test carrying batches between them.
type replicaSet struct {
	t    *testing.T
	key  wal.PartKey
	ws   [3]*wal.WAL
	dirs [3]string
	ps   [3]*partition.Partition
}

func newReplicaSet(t *testing.T) *replicaSet { return newReplicaSetOn(t, nil) }

// fakeStart is where the tests' fake clocks begin: far from the real
// time, so an instant read from the real clock where the fake one should
// be stands out.
var fakeStart = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)

// newReplicaSetOn is newReplicaSet with every replica on clk (nil: real).
func newReplicaSetOn(t *testing.T, clk clock.Clock) *replicaSet {
	t.Helper()
	rs := &replicaSet{t: t, key: wal.NewPartKey([16]byte{7}, 0)}
	for i := range rs.ws {
		rs.dirs[i] = t.TempDir()
		rs.ws[i] = openWAL(t, rs.dirs[i])
		w := rs.ws[i]
		t.Cleanup(func() { w.Close() })
		rs.ps[i] = partition.New(partition.Config{Key: rs.key, Topic: "r", WAL: w, Clock: clk})
	}
	return rs
}

func roleOf(self, leader int32, epoch int32, isr ...int32) partition.Role {
	return partition.Role{Leader: self == leader, Epoch: epoch, Self: self, ISR: isr, Replicas: []int32{0, 1, 2}, MinISR: 2}
}

// elect installs leader at epoch with isr on every replica.
func (rs *replicaSet) elect(leader, epoch int32, isr ...int32) {
	for i, p := range rs.ps {
		p.SetRole(roleOf(int32(i), leader, epoch, isr...))
	}
}

func (rs *replicaSet) produce(leader int, b []byte, acks int16) (partition.AppendResult, <-chan error, error) {
	rs.t.Helper()
	h, err := batch.ValidateProduce(b, 1<<20)
	if err != nil {
		rs.t.Fatal(err)
	}
	done := make(chan error, 1)
	res, err := rs.ps[leader].Append(b, h, acks, func(err error) { done <- err })
	return res, done, err
}

// put produces with acks=1 and waits until the leader's WAL has it.
func (rs *replicaSet) put(leader int, b []byte) partition.AppendResult {
	rs.t.Helper()
	res, done, err := rs.produce(leader, b, 1)
	if err != nil {
		rs.t.Fatal(err)
	}
	if err := wait(rs.t, done); err != nil {
		rs.t.Fatal(err)
	}
	return res
}

// ship sends follower everything the leader has from the follower's log
// end and reports the follower's acknowledgement back.
func (rs *replicaSet) ship(leader, f int) error {
	rs.t.Helper()
	from, _ := rs.ps[f].FollowerEnd()
	data, _, err := rs.ps[leader].ReadForFollower(from, 1<<20)
	if err != nil {
		return err
	}
	return rs.shipData(leader, f, data, -1, -1)
}

func (rs *replicaSet) shipData(leader, f int, data []byte, truncate, reset int64) error {
	rs.t.Helper()
	acked := make(chan error, 1)
	hw := rs.ps[leader].Offsets().HW
	err := rs.ps[f].AppendReplicated(data, truncate, reset, hw, func(leo int64, err error) {
		if err == nil {
			rs.ps[leader].FollowerAck(int32(f), leo)
		}
		acked <- err
	})
	if err != nil {
		return err
	}
	select {
	case err := <-acked:
		return err
	case <-time.After(5 * time.Second):
		rs.t.Fatal("follower never acknowledged")
		return nil
	}
}

func pending(ch <-chan error) bool {
	select {
	case <-ch:
		return false
	case <-time.After(20 * time.Millisecond):
		return true
	}
}

// acks=all completes only when every ISR member has the batch; acks=1
// once the leader's WAL has it; the HW is the smallest log end in the ISR.
func TestHighWatermarkFollowsTheISR(t *testing.T) {
	rs := newReplicaSet(t)
	rs.elect(0, 1, 0, 1, 2)

	_, all, err := rs.produce(0, mkBatch(plain, 3), -1)
	if err != nil {
		t.Fatal(err)
	}
	_, one, err := rs.produce(0, mkBatch(plain, 2), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(t, one); err != nil {
		t.Fatalf("acks=1: %v", err)
	}
	if !pending(all) {
		t.Fatal("acks=all completed before any follower had the batch")
	}
	if o := rs.ps[0].Offsets(); o.HW != 0 || o.LEO != 5 {
		t.Fatalf("leader before replication: %+v", o)
	}
	if err := rs.ship(0, 1); err != nil {
		t.Fatal(err)
	}
	if !pending(all) || rs.ps[0].Offsets().HW != 0 {
		t.Fatal("HW moved with one of two followers")
	}
	if err := rs.ship(0, 2); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, all); err != nil {
		t.Fatalf("acks=all: %v", err)
	}
	if o := rs.ps[0].Offsets(); o.HW != 5 {
		t.Fatalf("leader HW %d, want 5", o.HW)
	}
	// Followers learn the HW with the next message.
	if err := rs.shipData(0, 1, nil, -1, -1); err != nil {
		t.Fatal(err)
	}
	if o := rs.ps[1].Offsets(); o.HW != 5 || o.LEO != 5 {
		t.Fatalf("follower 1: %+v", o)
	}
	// The followers' copies are the leader's bytes.
	want, _, _ := rs.ps[0].Read(context.Background(), 0, 1<<20, true)
	rs.elect(1, 2, 0, 1, 2) // let follower 1 serve reads
	got, _, _ := rs.ps[1].Read(context.Background(), 0, 1<<20, true)
	if string(got) != string(want) {
		t.Fatal("follower's log differs from the leader's")
	}
}

func TestMinInsyncReplicas(t *testing.T) {
	rs := newReplicaSet(t)
	rs.elect(0, 1, 0) // only the leader in sync, min.insync.replicas 2
	if _, _, err := rs.produce(0, mkBatch(plain, 1), -1); !errors.Is(err, partition.ErrNotEnoughReplicas) {
		t.Fatalf("acks=all with ISR 1 < 2: %v", err)
	}
	_, one, err := rs.produce(0, mkBatch(plain, 1), 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := wait(t, one); err != nil {
		t.Fatal(err)
	}
	// Written, but invisible: fewer than min.insync.replicas copies.
	if o := rs.ps[0].Offsets(); o.HW != 0 || o.LEO != 1 {
		t.Fatalf("%+v", o)
	}
	if _, _, err := rs.produce(1, mkBatch(plain, 1), 1); !errors.Is(err, partition.ErrNotLeader) {
		t.Fatalf("produce on a follower: %v", err)
	}
}

// A pending ISR addition holds the HW back to what the new member has.
func TestPendingISRMemberHoldsTheHW(t *testing.T) {
	rs := newReplicaSet(t)
	rs.elect(0, 1, 0, 1)
	rs.put(0, mkBatch(plain, 2))
	if err := rs.ship(0, 1); err != nil {
		t.Fatal(err)
	}
	if hw := rs.ps[0].Offsets().HW; hw != 2 {
		t.Fatalf("HW %d", hw)
	}
	rs.ps[0].AddPending(2)
	rs.put(0, mkBatch(plain, 2))
	if err := rs.ship(0, 1); err != nil {
		t.Fatal(err)
	}
	if hw := rs.ps[0].Offsets().HW; hw != 2 {
		t.Fatalf("HW %d passed the pending member (which has nothing)", hw)
	}
	if err := rs.ship(0, 2); err != nil {
		t.Fatal(err)
	}
	if hw := rs.ps[0].Offsets().HW; hw != 4 {
		t.Fatalf("HW %d, want 4", hw)
	}
}

// A new epoch fails what the old leader was waiting for, and a replica
// that is no longer leader refuses produce.
func TestLeadershipLossFailsWaiters(t *testing.T) {
	rs := newReplicaSet(t)
	rs.elect(0, 1, 0, 1, 2)
	_, all, err := rs.produce(0, mkBatch(plain, 1), -1)
	if err != nil {
		t.Fatal(err)
	}
	rs.elect(1, 2, 1, 2)
	if err := wait(t, all); !errors.Is(err, partition.ErrNotLeader) {
		t.Fatalf("waiting produce after losing the lead: %v", err)
	}
	if _, _, err := rs.produce(0, mkBatch(plain, 1), -1); !errors.Is(err, partition.ErrNotLeader) {
		t.Fatalf("produce on the old leader: %v", err)
	}
	if err := rs.ps[0].AppendReplicated(nil, -1, -1, 0, func(int64, error) {}); err != nil {
		t.Fatalf("the old leader must now accept replication: %v", err)
	}
	if err := rs.ps[1].AppendReplicated(nil, -1, -1, 0, func(int64, error) {}); !errors.Is(err, partition.ErrNotFollower) {
		t.Fatalf("the new leader accepted replication: %v", err)
	}
}

// After a leader change the old leader's unreplicated suffix is cut where
// the new leader's log for that epoch ends; producer state follows.
func TestFollowerTruncatesDivergentSuffix(t *testing.T) {
	rs := newReplicaSet(t)
	rs.elect(0, 1, 0, 1, 2)
	idem := func(seq int32, n int) []byte { return mkBatch(bopts{pid: 4, epoch: 0, seq: seq, ts: 1}, n) }
	rs.put(0, idem(0, 2)) // 0-1
	for _, f := range []int{1, 2} {
		if err := rs.ship(0, f); err != nil {
			t.Fatal(err)
		}
	}
	// 2-4 reach the old leader only.
	rs.put(0, idem(2, 3))
	time.Sleep(50 * time.Millisecond)

	rs.elect(1, 2, 1, 2)
	res := rs.put(1, idem(2, 1)) // the producer's retry lands at 2
	if res.BaseOffset != 2 || res.Duplicate {
		t.Fatalf("new leader: %+v", res)
	}
	if err := rs.ship(1, 2); err != nil {
		t.Fatal(err)
	}
	// The old leader probes: its last epoch 1, log end 5.
	leo, last := rs.ps[0].FollowerEnd()
	if leo != 5 || last != 1 {
		t.Fatalf("old leader ends at %d epoch %d", leo, last)
	}
	_, end := rs.ps[1].EndOffsetForEpoch(last)
	if end != 2 {
		t.Fatalf("new leader's end of epoch 1: %d, want 2", end)
	}
	data, _, err := rs.ps[1].ReadForFollower(end, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := rs.shipData(1, 0, data, min(leo, end), -1); err != nil {
		t.Fatal(err)
	}
	if o := rs.ps[0].Offsets(); o.LEO != 3 {
		t.Fatalf("old leader after truncation: %+v", o)
	}
	if e, _ := rs.ps[0].EndOffsetForEpoch(2); e != 2 {
		t.Fatalf("epoch cache after truncation: %d", e)
	}
	// Everyone holds the same bytes (once the follower hears the HW).
	if err := rs.shipData(1, 0, nil, -1, -1); err != nil {
		t.Fatal(err)
	}
	rs.elect(0, 3, 0, 1, 2)
	if err := rs.ps[0].AppendReplicated(nil, -1, -1, 3, func(int64, error) {}); err == nil {
		t.Fatal("leader accepted replication")
	}
	a, _, _ := rs.ps[0].Read(context.Background(), 0, 1<<20, true)
	rs.elect(1, 4, 0, 1, 2)
	b, _, _ := rs.ps[1].Read(context.Background(), 0, 1<<20, true)
	if len(a) == 0 || string(a) != string(b) {
		t.Fatalf("logs differ after truncation: %d vs %d bytes", len(a), len(b))
	}
	// Producer state was cut too: seq 3 follows the retried seq 2.
	rs.elect(0, 5, 0, 1, 2)
	for _, f := range []int{1, 2} {
		if err := rs.ship(0, f); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := rs.produce(0, idem(3, 1), -1); err != nil {
		t.Fatalf("next sequence after truncation: %v", err)
	}
	if _, _, err := rs.produce(0, idem(5, 1), -1); !errors.Is(err, partition.ErrOutOfOrderSequence) {
		t.Fatalf("gap after truncation: %v", err)
	}
}

// Replication input is checked: wrong start, broken bytes.
func TestAppendReplicatedChecksInput(t *testing.T) {
	rs := newReplicaSet(t)
	rs.elect(0, 1, 0, 1, 2)
	rs.put(0, mkBatch(plain, 2))
	rs.put(0, mkBatch(plain, 2))
	data, _, err := rs.ps[0].ReadForFollower(0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	second := data[len(data)/2:]
	if err := rs.ps[1].AppendReplicated(second, -1, -1, 0, func(int64, error) {}); !errors.Is(err, partition.ErrLogMismatch) {
		t.Fatalf("batch past the log end: %v", err)
	}
	bad := append([]byte(nil), data...)
	bad[len(bad)-1] ^= 1
	if err := rs.ps[1].AppendReplicated(bad, -1, -1, 0, func(int64, error) {}); !errors.Is(err, batch.ErrCorrupt) {
		t.Fatalf("corrupt batch: %v", err)
	}
	if err := rs.ps[1].AppendReplicated(data[:20], -1, -1, 0, func(int64, error) {}); !errors.Is(err, batch.ErrCorrupt) {
		t.Fatalf("truncated batch: %v", err)
	}
	if o := rs.ps[1].Offsets(); o.LEO != 0 {
		t.Fatalf("refused input changed the log: %+v", o)
	}
	if err := rs.shipData(0, 1, data, -1, -1); err != nil {
		t.Fatal(err)
	}
}

// A follower behind what the leader's WAL holds restarts at the flushed
// end instead of copying history (it is in the bucket).
func TestFollowerResetToFlushedEnd(t *testing.T) {
	rs := newReplicaSet(t)
	rs.elect(0, 1, 0, 1)
	for i := 0; i < 4; i++ {
		rs.put(0, mkBatch(plain, 2))
		if err := rs.ship(0, 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := rs.ps[0].SetFlushedEnd(6); err != nil {
		t.Fatal(err)
	}
	if _, _, err := rs.ps[0].ReadForFollower(0, 1<<20); !errors.Is(err, partition.ErrFlushed) {
		t.Fatalf("read below the flushed end: %v", err)
	}
	data, next, err := rs.ps[0].ReadForFollower(6, 1<<20)
	if err != nil || next != 8 {
		t.Fatalf("from 6: next %d, %v", next, err)
	}
	if err := rs.shipData(0, 2, data, -1, 6); err != nil {
		t.Fatal(err)
	}
	if o := rs.ps[2].Offsets(); o.LEO != 8 || o.FlushedEnd != 6 {
		t.Fatalf("reset follower: %+v", o)
	}
	// A follower's flushed end may pass its log end: it restarts there.
	if err := rs.ps[1].SetFlushedEnd(8); err != nil {
		t.Fatal(err)
	}
	if err := rs.ps[2].SetFlushedEnd(8); err != nil {
		t.Fatal(err)
	}
	if o := rs.ps[2].Offsets(); o.LEO != 8 || o.HW != 8 {
		t.Fatalf("after flushed end 8: %+v", o)
	}
	rs.put(0, mkBatch(plain, 1))
	if err := rs.ps[2].SetFlushedEnd(20); err != nil {
		t.Fatal(err)
	}
	if o := rs.ps[2].Offsets(); o.LEO != 20 || o.HW != 20 {
		t.Fatalf("flushed end beyond the follower's log: %+v", o)
	}
}

// The leader's view of followers: lag grows while a follower misses data;
// one never heard from in this epoch lags since the epoch began.
func TestReplicationStateLag(t *testing.T) {
	clk := clocktest.NewFake(fakeStart)
	rs := newReplicaSetOn(t, clk)
	rs.elect(0, 1, 0, 1, 2)
	rs.put(0, mkBatch(plain, 1))
	if err := rs.ship(0, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(30 * time.Millisecond)
	st, ok := rs.ps[0].ReplicationState()
	if !ok || len(st.Followers) != 2 {
		t.Fatalf("%+v %v", st, ok)
	}
	f1, f2 := st.Followers[0], st.Followers[1]
	if f1.ID != 1 || f1.LEO != 1 || f1.Lag != 0 || !f1.InISR {
		t.Fatalf("caught-up follower: %+v", f1)
	}
	if f2.ID != 2 || f2.LEO != -1 || f2.Lag != 30*time.Millisecond {
		t.Fatalf("silent follower: %+v, want lag 30ms", f2)
	}
	if _, ok := rs.ps[1].ReplicationState(); ok {
		t.Fatal("a follower reported replication state")
	}
}

// A follower that stops acknowledging lags by the leader's clock: by the
// age of the oldest batch it lacks, which crosses a threshold (the ISR
// upkeep's replica.lag.time.max.ms) when the clock moves past it, with no
// sleep. A caught-up follower does not lag however far the clock moves.
func TestFollowerLagFollowsTheClock(t *testing.T) {
	const lagMax = 10 * time.Second
	clk := clocktest.NewFake(fakeStart)
	rs := newReplicaSetOn(t, clk)
	rs.elect(0, 1, 0, 1, 2)
	lag := func() (time.Duration, time.Duration) {
		t.Helper()
		st, ok := rs.ps[0].ReplicationState()
		if !ok || len(st.Followers) != 2 {
			t.Fatalf("%+v %v", st, ok)
		}
		return st.Followers[0].Lag, st.Followers[1].Lag
	}
	rs.put(0, mkBatch(plain, 1))
	for f := 1; f <= 2; f++ {
		if err := rs.ship(0, f); err != nil {
			t.Fatal(err)
		}
	}
	clk.Advance(time.Hour)
	if l1, l2 := lag(); l1 != 0 || l2 != 0 {
		t.Fatalf("caught-up followers lag %v, %v", l1, l2)
	}

	// Follower 2 stops acknowledging: the batch it lacks arrived now.
	rs.put(0, mkBatch(plain, 1))
	if err := rs.ship(0, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(4 * time.Second)
	if l1, l2 := lag(); l1 != 0 || l2 != 4*time.Second {
		t.Fatalf("after 4s: lags %v, %v; want 0, 4s", l1, l2)
	}
	// A newer batch it also lacks does not reset its lag.
	rs.put(0, mkBatch(plain, 1))
	if err := rs.ship(0, 1); err != nil {
		t.Fatal(err)
	}
	clk.Advance(lagMax - 4*time.Second)
	if _, l2 := lag(); l2 != lagMax {
		t.Fatalf("at the threshold: lag %v, want %v (not past it)", l2, lagMax)
	}
	clk.Advance(time.Millisecond)
	if l1, l2 := lag(); l1 != 0 || l2 <= lagMax {
		t.Fatalf("past the threshold: lags %v, %v; want 0 and more than %v", l1, l2, lagMax)
	}
	// Once it acknowledges everything, it lags no more.
	if err := rs.ship(0, 2); err != nil {
		t.Fatal(err)
	}
	if _, l2 := lag(); l2 != 0 {
		t.Fatalf("caught up again: lag %v", l2)
	}
}

// A leader whose log starts without producer state refuses idempotent
// batches (retriably) until it is adopted, and non-idempotent ones go on.
func TestProducerStateMissingHoldsIdempotentAppends(t *testing.T) {
	w := openWAL(t, t.TempDir())
	t.Cleanup(func() { w.Close() })
	p := partition.New(partition.Config{Key: wal.NewPartKey([16]byte{3}, 0), Topic: "m", FlushedEnd: 10, WAL: w})
	p.SetRole(soleLeader(0))
	if at, missing := p.ProducersMissing(); !missing || at != 10 {
		t.Fatalf("missing %v at %d", missing, at)
	}
	b := mkBatch(bopts{pid: 7, epoch: 0, seq: 3, ts: 1}, 1)
	h, _ := batch.ValidateProduce(b, 1<<20)
	if _, err := p.Append(b, h, -1, func(error) {}); !errors.Is(err, partition.ErrProducersLoading) {
		t.Fatalf("idempotent append while loading: %v", err)
	}
	pb := mkBatch(plain, 1)
	ph, _ := batch.ValidateProduce(pb, 1<<20)
	if _, err := p.Append(pb, ph, -1, func(error) {}); err != nil {
		t.Fatalf("plain append while loading: %v", err)
	}
	// A snapshot from past the log start is refused; one at it is taken.
	if err := p.AdoptProducers(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, 99), 0), 10); err == nil {
		t.Fatal("adopted a snapshot from beyond the log start")
	}
	if err := p.AdoptProducers(binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(nil, 10), 0), 10); err != nil {
		t.Fatal(err)
	}
	if _, missing := p.ProducersMissing(); missing {
		t.Fatal("still missing after adoption")
	}
	if _, err := p.Append(b, h, -1, func(error) {}); err != nil {
		t.Fatalf("idempotent append after adoption: %v", err)
	}
}

// With no snapshot in the bucket at all (every range expired, say), the
// producers start fresh: idempotent appends are taken, and the batches the
// log already holds count.
func TestProducerStateAdoptNothing(t *testing.T) {
	w := openWAL(t, t.TempDir())
	t.Cleanup(func() { w.Close() })
	p := partition.New(partition.Config{Key: wal.NewPartKey([16]byte{4}, 0), Topic: "m", FlushedEnd: 10, WAL: w})
	p.SetRole(soleLeader(0))
	pb := mkBatch(plain, 1)
	ph, _ := batch.ValidateProduce(pb, 1<<20)
	if _, err := p.Append(pb, ph, -1, func(error) {}); err != nil {
		t.Fatalf("plain append while loading: %v", err)
	}
	if err := p.AdoptProducers(nil, 10); err != nil {
		t.Fatalf("adopt nothing: %v", err)
	}
	if _, missing := p.ProducersMissing(); missing {
		t.Fatal("still missing after adopting nothing")
	}
	b := mkBatch(bopts{pid: 7, epoch: 0, seq: 3, ts: 1}, 1)
	h, _ := batch.ValidateProduce(b, 1<<20)
	first, err := p.Append(b, h, -1, func(error) {})
	if err != nil {
		t.Fatalf("idempotent append of an unknown producer: %v", err)
	}
	again, err := p.Append(bytes.Clone(b), h, -1, func(error) {})
	if err != nil || again.BaseOffset != first.BaseOffset {
		t.Fatalf("duplicate after adopting nothing: %+v, %v; want offset %d", again, err, first.BaseOffset)
	}
}

// Producer state survives flushes that run past the last snapshot point:
// a flush drops batches from the WAL, and the state they carried must be
// folded into the base state first. Otherwise a replica that later cuts
// its log (a deposed leader rejoining) rebuilds the state without them
// and, leading again, answers the producer's next batch with
// OUT_OF_ORDER_SEQUENCE_NUMBER, which makes clients reset their sequence
// numbers and resend (duplicates, reordering).
func TestProducerStateSurvivesFlushThenTruncate(t *testing.T) {
	f := newFixture(t, partition.Config{LeaderEpoch: 1})
	p := f.p
	p.SetRole(soleLeader(1))
	idem := func(seq int32) []byte { return mkBatch(bopts{pid: 9, epoch: 0, seq: seq, ts: 1}, 1) }
	f.mustAppend(idem(0)) // 0
	f.mustAppend(idem(1)) // 1
	if err := p.SetFlushedEnd(1); err != nil {
		t.Fatal(err)
	}
	f.mustAppend(idem(2))                      // 2
	if err := p.SetFlushedEnd(3); err != nil { // past the snapshot point 2
		t.Fatal(err)
	}
	f.mustAppend(idem(3)) // 3: will be cut
	// Deposed: a follower at epoch 2 whose leader's log ends at 3.
	p.SetRole(partition.Role{Leader: false, Epoch: 2, Self: 0, ISR: []int32{1}, Replicas: []int32{0, 1}, MinISR: 1})
	done := make(chan error, 1)
	if err := p.AppendReplicated(nil, 3, -1, 3, func(_ int64, err error) { done <- err }); err != nil {
		t.Fatal(err)
	}
	if err := wait(t, done); err != nil {
		t.Fatal(err)
	}
	if o := p.Offsets(); o.LEO != 3 {
		t.Fatalf("after truncation: %+v", o)
	}
	// Leading again: the producer retries seq 3 (it never heard of it).
	p.SetRole(soleLeader(3))
	res, d, err := f.append(idem(3))
	if err != nil {
		t.Fatalf("the next sequence after flush and truncation: %v", err)
	}
	if err := wait(t, d); err != nil || res.BaseOffset != 3 || res.Duplicate {
		t.Fatalf("append: %+v %v", res, err)
	}
	// And seq 2, already at offset 2, is a duplicate, not a new record.
	if res, _, err := f.append(idem(2)); err != nil || !res.Duplicate || res.BaseOffset != 2 {
		t.Fatalf("retry of seq 2: %+v %v", res, err)
	}
}

// A leader whose session may have ended takes only what its in-sync
// followers guard; one a follower has refused as deposed takes nothing
// and fails what waits, until a newer role arrives.
func TestLapsedAndDeposedLeader(t *testing.T) {
	rs := newReplicaSet(t)
	rs.elect(0, 1, 0, 1, 2)
	_, waiting, err := rs.produce(0, mkBatch(plain, 1), -1) // never shipped: waits for the ISR
	if err != nil {
		t.Fatal(err)
	}
	rs.ps[0].SetSessionLapsed(true)
	if _, _, err := rs.produce(0, mkBatch(plain, 1), 1); !errors.Is(err, partition.ErrNotLeader) {
		t.Fatalf("acks=1 while lapsed: %v", err)
	}
	if _, _, err := rs.produce(0, mkBatch(plain, 1), -1); err != nil {
		t.Fatalf("acks=all with followers in sync while lapsed: %v", err)
	}
	select {
	case err := <-waiting:
		t.Fatalf("a guarded acks=all produce failed on the lapse: %v", err)
	default:
	}
	rs.ps[0].Deposed(0) // another epoch: ignored
	rs.ps[0].Deposed(1)
	if err := wait(t, waiting); !errors.Is(err, partition.ErrNotLeader) {
		t.Fatalf("waiting produce after deposition: %v", err)
	}
	if _, _, err := rs.produce(0, mkBatch(plain, 1), -1); !errors.Is(err, partition.ErrNotLeader) {
		t.Fatalf("acks=all after deposition: %v", err)
	}
	// Alone in the ISR nothing guards acks=all either.
	rs.ps[0].SetSessionLapsed(false)
	rs.elect(0, 2, 0)
	rs.ps[0].SetSessionLapsed(true)
	if _, _, err := rs.produce(0, mkBatch(plain, 1), -1); !errors.Is(err, partition.ErrNotLeader) {
		t.Fatalf("acks=all alone in the ISR while lapsed: %v", err)
	}
	rs.ps[0].SetSessionLapsed(false)
	if _, done, err := rs.produce(0, mkBatch(plain, 1), 1); err != nil || wait(t, done) != nil {
		t.Fatalf("acks=1 after the session is live again: %v", err)
	}
}

// A leader whose session may have ended answers a sequence it does not
// expect with ErrNotLeader: the producer may have moved on with a new
// leader, and a sequence error would make it renumber and resend.
func TestLapsedLeaderSequenceGapIsNotLeader(t *testing.T) {
	rs := newReplicaSet(t)
	rs.elect(0, 1, 0, 1, 2)
	idem := func(seq int32) []byte { return mkBatch(bopts{pid: 3, epoch: 0, seq: seq, ts: 1}, 1) }
	rs.put(0, idem(0))
	if _, _, err := rs.produce(0, idem(5), -1); !errors.Is(err, partition.ErrOutOfOrderSequence) {
		t.Fatalf("gap while live: %v", err)
	}
	rs.ps[0].SetSessionLapsed(true)
	_, _, err := rs.produce(0, idem(5), -1)
	if !errors.Is(err, partition.ErrNotLeader) || errors.Is(err, partition.ErrOutOfOrderSequence) {
		t.Fatalf("gap while lapsed: %v", err)
	}
	if _, _, err := rs.produce(0, idem(1), -1); err != nil {
		t.Fatalf("the next sequence while lapsed (followers guard it): %v", err)
	}
}
