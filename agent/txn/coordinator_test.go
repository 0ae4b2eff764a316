package txn_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"github.com/tlog-io/tlog/agent/txn"
	"github.com/tlog-io/tlog/tier/batch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// harness is a coordinator over an in-memory partition, marker writes
// that are recorded (and can be made to fail), and a settable clock.
type harness struct {
	t *testing.T
	c *txn.Coordinator

	mu       sync.Mutex
	log      []batch.KV
	markers  []txn.Markers
	failMark bool
	nextPID  int64
	now      time.Time
}

func newHarness(t *testing.T, replay []batch.KV) *harness {
	h := &harness{t: t, nextPID: 100, now: time.Unix(1_700_000_000, 0)}
	h.c = txn.New(txn.Config{
		Write: func(recs []batch.KV, done func(error)) {
			h.mu.Lock()
			h.log = append(h.log, recs...)
			h.mu.Unlock()
			go done(nil) // completes later, as a replicated append does
		},
		WriteMarkers: func(_ context.Context, m txn.Markers) error {
			h.mu.Lock()
			defer h.mu.Unlock()
			if h.failMark {
				return errors.New("partition leader unreachable")
			}
			h.markers = append(h.markers, m)
			return nil
		},
		NewProducerID: func(context.Context) (int64, error) {
			h.mu.Lock()
			defer h.mu.Unlock()
			h.nextPID++
			return h.nextPID, nil
		},
		MaxTimeout:    time.Minute,
		CheckInterval: time.Hour, // tests call ExpireNow
		Now: func() time.Time {
			h.mu.Lock()
			defer h.mu.Unlock()
			return h.now
		},
	})
	for _, r := range replay {
		if err := h.c.Apply(r.Key, r.Value); err != nil {
			t.Fatal(err)
		}
	}
	h.c.Loaded()
	t.Cleanup(h.c.Close)
	return h
}

func (h *harness) init(id string, pid int64, epoch int16) (int64, int16, int16) {
	type res struct {
		pid   int64
		epoch int16
		code  int16
	}
	ch := make(chan res, 1)
	h.c.InitProducerID(context.Background(), id, 10*time.Second, pid, epoch, func(p int64, e int16, c int16) { ch <- res{p, e, c} })
	r := <-ch
	return r.pid, r.epoch, r.code
}

func (h *harness) add(id string, pid int64, epoch int16, tps ...txn.TP) int16 {
	ch := make(chan int16, 1)
	h.c.AddPartitions(id, pid, epoch, tps, func(c int16) { ch <- c })
	return <-ch
}

func (h *harness) end(id string, pid int64, epoch int16, commit bool) int16 {
	_, _, code := h.endTxn(id, pid, epoch, commit, false)
	return code
}

// endTxn is EndTxn (tv2: v5+), with the producer id and epoch answered.
func (h *harness) endTxn(id string, pid int64, epoch int16, commit, tv2 bool) (int64, int16, int16) {
	type res struct {
		pid   int64
		epoch int16
		code  int16
	}
	ch := make(chan res, 1)
	h.c.EndTxn(context.Background(), id, pid, epoch, commit, tv2, func(p int64, e int16, c int16) { ch <- res{p, e, c} })
	r := <-ch
	return r.pid, r.epoch, r.code
}

// waitState waits until id's transaction is in state want.
func (h *harness) waitState(id string, want kmsg.TransactionState) txn.Info {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		info, code := h.c.Describe(id)
		if code == 0 && info.State == want {
			return info
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: state %v (code %d), want %v", id, info.State, code, want)
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) markersSent() []txn.Markers {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.markers)
}

var a0, a1, b0 = txn.TP{Topic: "a", Partition: 0}, txn.TP{Topic: "a", Partition: 1}, txn.TP{Topic: "b", Partition: 0}

// A producer id, a transaction over three partitions, its commit: the
// markers name every partition with the producer's id and epoch, and a
// retried EndTxn is answered as done.
func TestCommit(t *testing.T) {
	h := newHarness(t, nil)
	pid, epoch, code := h.init("t1", -1, -1)
	if code != 0 || pid != 101 || epoch != 0 {
		t.Fatalf("init: pid %d epoch %d code %d", pid, epoch, code)
	}
	if c := h.add("t1", pid, epoch, a0, a1); c != 0 {
		t.Fatalf("add: %d", c)
	}
	if c := h.add("t1", pid, epoch, b0, a0); c != 0 {
		t.Fatalf("add again: %d", c)
	}
	if c := h.c.Includes("t1", pid, epoch, b0); c != 0 {
		t.Fatalf("b-0 not in the transaction: %d", c)
	}
	if c := h.c.Includes("t1", pid, epoch, txn.TP{Topic: "b", Partition: 9}); c != kerr.InvalidTxnState.Code {
		t.Fatalf("b-9 in the transaction: %d", c)
	}
	if c := h.end("t1", pid, epoch, true); c != 0 {
		t.Fatalf("end: %d", c)
	}
	h.waitState("t1", kmsg.TransactionStateCompleteCommit)
	got := h.markersSent()
	want := []txn.Markers{{TransactionalID: "t1", ProducerID: pid, Epoch: epoch, Commit: true, Partitions: []txn.TP{a0, a1, b0}}}
	if !slices.EqualFunc(got, want, func(x, y txn.Markers) bool {
		return x.TransactionalID == y.TransactionalID && x.ProducerID == y.ProducerID && x.Epoch == y.Epoch && x.Commit == y.Commit && slices.Equal(x.Partitions, y.Partitions)
	}) {
		t.Fatalf("markers %+v, want %+v", got, want)
	}
	if c := h.end("t1", pid, epoch, true); c != 0 {
		t.Fatalf("retried end: %d", c)
	}
	if c := h.end("t1", pid, epoch, false); c != kerr.InvalidTxnState.Code {
		t.Fatalf("abort after commit: %d", c)
	}
}

// A second InitProducerID fences the first producer: its epoch is refused
// everywhere; one that finds a transaction open aborts it (at a bumped
// epoch) and asks the client to retry.
func TestInitFences(t *testing.T) {
	h := newHarness(t, nil)
	pid, e0, _ := h.init("t", -1, -1)
	_, e1, code := h.init("t", -1, -1)
	if code != 0 || e1 != e0+1 {
		t.Fatalf("second init: epoch %d code %d", e1, code)
	}
	if c := h.add("t", pid, e0, a0); c != kerr.ProducerFenced.Code {
		t.Fatalf("add at the fenced epoch: %d", c)
	}
	if c := h.end("t", pid, e0, true); c != kerr.ProducerFenced.Code {
		t.Fatalf("end at the fenced epoch: %d", c)
	}
	if c := h.add("t", pid, e1, a0); c != 0 {
		t.Fatal(c)
	}
	if _, _, code := h.init("t", -1, -1); code != kerr.ConcurrentTransactions.Code {
		t.Fatalf("init over an open transaction: %d", code)
	}
	h.waitState("t", kmsg.TransactionStateCompleteAbort)
	m := h.markersSent()
	if len(m) != 1 || m[0].Commit || m[0].Epoch != e1+1 || !slices.Equal(m[0].Partitions, []txn.TP{a0}) {
		t.Fatalf("abort markers %+v", m)
	}
	_, e3, code := h.init("t", -1, -1)
	if code != 0 || e3 != e1+2 {
		t.Fatalf("retried init: epoch %d code %d", e3, code)
	}
	if _, _, code := h.init("t", pid, e1); code != kerr.ProducerFenced.Code {
		t.Fatalf("KIP-360 init from a fenced epoch: %d", code)
	}
	if _, _, code := h.init("t", -1, -1); code != 0 {
		t.Fatal(code)
	}
	if _, _, code := func() (int64, int16, int16) {
		ch := make(chan int16, 1)
		h.c.InitProducerID(context.Background(), "x", 2*time.Minute, -1, -1, func(_ int64, _ int16, c int16) { ch <- c })
		return 0, 0, <-ch
	}(); code != kerr.InvalidTransactionTimeout.Code {
		t.Fatalf("timeout past the max: %d", code)
	}
}

// A transaction open past its timeout is aborted and its producer fenced.
func TestTimeoutAborts(t *testing.T) {
	h := newHarness(t, nil)
	pid, epoch, _ := h.init("slow", -1, -1)
	h.add("slow", pid, epoch, a0)
	h.c.ExpireNow()
	if info, _ := h.c.Describe("slow"); info.State != kmsg.TransactionStateOngoing {
		t.Fatalf("aborted before its timeout: %v", info.State)
	}
	h.mu.Lock()
	h.now = h.now.Add(11 * time.Second)
	h.mu.Unlock()
	h.c.ExpireNow()
	info := h.waitState("slow", kmsg.TransactionStateCompleteAbort)
	if info.Epoch != epoch+1 {
		t.Fatalf("epoch after the abort %d, want %d", info.Epoch, epoch+1)
	}
	if c := h.end("slow", pid, epoch, true); c != kerr.ProducerFenced.Code {
		t.Fatalf("commit after the timeout: %d", c)
	}
}

// A coordinator replaying the partition finds a transaction that was
// preparing to commit when its predecessor died, and finishes it: the
// markers go out again.
func TestReplayResumesPrepared(t *testing.T) {
	h := newHarness(t, nil)
	pid, epoch, _ := h.init("t", -1, -1)
	h.add("t", pid, epoch, a0, b0)
	h.mu.Lock()
	h.failMark = true // the markers never get out: the agent dies
	h.mu.Unlock()
	if c := h.end("t", pid, epoch, true); c != 0 {
		t.Fatal(c)
	}
	h.c.Close()
	h.mu.Lock()
	log := slices.Clone(h.log)
	h.mu.Unlock()

	h2 := newHarness(t, log)
	h2.waitState("t", kmsg.TransactionStateCompleteCommit)
	m := h2.markersSent()
	if len(m) != 1 || !m[0].Commit || m[0].ProducerID != pid || !slices.Equal(m[0].Partitions, []txn.TP{a0, b0}) {
		t.Fatalf("resumed markers %+v", m)
	}
	// The completion record may still be in flight: a client retries
	// CONCURRENT_TRANSACTIONS.
	var e, code int16
	for range 100 {
		if _, e, code = h2.init("t", -1, -1); code != kerr.ConcurrentTransactions.Code {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code != 0 || e != epoch+1 {
		t.Fatalf("init after the replay: epoch %d code %d", e, code)
	}
}

func TestPartitionMatchesKafka(t *testing.T) {
	// Kafka: Utils.abs("my-txn".hashCode()) % 50, where the hash code is
	// -1061187895 and Utils.abs masks the sign bit.
	for _, c := range []struct {
		id   string
		want int32
	}{{"", 0}, {"a", 47}, {"my-txn", 3}} {
		if got := txn.Partition(c.id, 50); got != c.want {
			t.Errorf("Partition(%q) = %d, want %d", c.id, got, c.want)
		}
	}
}

// Transactions version 2 (EndTxn v5): each decision bumps the epoch and
// the markers carry the new one; a retry at the old epoch is answered
// with the new one; an abort with nothing open bumps too; a write from
// the old epoch is fenced; at the last epoch the producer moves to a new
// id, and a retry naming the old id is still recognised.
func TestTransactionsVersion2(t *testing.T) {
	h := newHarness(t, nil)
	pid, _, _ := h.init("v2", -1, -1)
	if c := h.add("v2", pid, 0, a0); c != 0 {
		t.Fatalf("add: %d", c)
	}
	gotPID, gotEpoch, code := h.endTxn("v2", pid, 0, true, true)
	if code != 0 || gotPID != pid || gotEpoch != 1 {
		t.Fatalf("commit: pid %d epoch %d code %d, want %d 1 0", gotPID, gotEpoch, code, pid)
	}
	h.waitState("v2", kmsg.TransactionStateCompleteCommit)
	if m := h.markersSent(); len(m) != 1 || m[0].ProducerID != pid || m[0].Epoch != 1 || !m[0].Commit {
		t.Fatalf("markers %+v, want one COMMIT at epoch 1", m)
	}
	if p, e, c := h.endTxn("v2", pid, 0, true, true); c != 0 || p != pid || e != 1 {
		t.Fatalf("retried commit: pid %d epoch %d code %d", p, e, c)
	}
	if _, _, c := h.endTxn("v2", pid, 0, false, true); c != kerr.InvalidTxnState.Code {
		t.Fatalf("abort retried after commit: %d, want INVALID_TXN_STATE", c)
	}
	if c := h.add("v2", pid, 0, a1); c != kerr.ProducerFenced.Code {
		t.Fatalf("add at the epoch before the bump: %d, want PRODUCER_FENCED", c)
	}
	if _, _, c := h.endTxn("v2", pid, 1, true, true); c != kerr.InvalidTxnState.Code {
		t.Fatalf("commit with nothing open: %d, want INVALID_TXN_STATE", c)
	}
	// An abort with nothing open (no write got in) bumps the epoch.
	if p, e, c := h.endTxn("v2", pid, 1, false, true); c != 0 || p != pid || e != 2 {
		t.Fatalf("empty abort: pid %d epoch %d code %d, want epoch 2", p, e, c)
	}
	h.waitState("v2", kmsg.TransactionStateCompleteAbort)

	// At the last epoch: a new producer id, at epoch 0.
	key := kmsg.NewTxnMetadataKey()
	key.TransactionalID = "old"
	val := kmsg.NewTxnMetadataValue()
	val.ProducerID, val.ProducerEpoch, val.TimeoutMillis, val.State = 500, 1<<15-2, 10_000, kmsg.TransactionStateOngoing
	vt := kmsg.NewTxnMetadataValueTopic()
	vt.Topic, vt.Partitions = "a", []int32{0}
	val.Topics = append(val.Topics, vt)
	h2 := newHarness(t, []batch.KV{{Key: key.AppendTo(nil), Value: val.AppendTo(nil)}})
	p, e, c := h2.endTxn("old", 500, 1<<15-2, true, true)
	if c != 0 || p == 500 || e != 0 {
		t.Fatalf("commit at the last epoch: pid %d epoch %d code %d, want a new id at epoch 0", p, e, c)
	}
	info := h2.waitState("old", kmsg.TransactionStateCompleteCommit)
	if info.ProducerID != p || info.Epoch != 0 {
		t.Fatalf("after the overflow: %+v", info)
	}
	if m := h2.markersSent(); len(m) != 1 || m[0].ProducerID != 500 || m[0].Epoch != 1<<15-1 {
		t.Fatalf("markers %+v, want the old id at the last epoch", m)
	}
	if rp, re, rc := h2.endTxn("old", 500, 1<<15-2, true, true); rc != 0 || rp != p || re != 0 {
		t.Fatalf("retry naming the old id: pid %d epoch %d code %d", rp, re, rc)
	}
	// All of it is in the log: a new coordinator replays it.
	h2.mu.Lock()
	replay := slices.Clone(h2.log)
	h2.mu.Unlock()
	h3 := newHarness(t, append([]batch.KV{{Key: key.AppendTo(nil), Value: val.AppendTo(nil)}}, replay...))
	if rp, re, rc := h3.endTxn("old", 500, 1<<15-2, true, true); rc != 0 || rp != p || re != 0 {
		t.Fatalf("retry after replay: pid %d epoch %d code %d", rp, re, rc)
	}
}
