// Package txn is the transaction coordinator of one __transaction_state
// partition, in the style of the group coordinator: transactional ids hash
// onto the partitions of __transaction_state, and whichever agent leads a
// partition coordinates its ids.
//
// Every state change (a producer id handed out or fenced, partitions
// added, a transaction preparing to commit or abort, and completed) is
// written to the partition as a record (kmsg's TxnMetadataKey and
// TxnMetadataValue, the layout Kafka uses) through Config.Write, and a
// request is answered only once its record is committed there (acks=all).
// A new coordinator rebuilds the transactions by replaying the partition
// (Apply) and, once Loaded, finishes every transaction it finds preparing:
// it writes the markers again, which partitions take idempotently enough
// (a second marker for a transaction already ended changes nothing a
// reader sees).
//
// States follow Kafka's: Empty, Ongoing, PrepareCommit, PrepareAbort,
// CompleteCommit, CompleteAbort. A transaction older than its timeout is
// aborted with the producer's epoch bumped, which fences the producer.
// Under transactions version 1 the epoch changes only then (and at
// InitProducerId); under version 2 (KIP-890) every EndTxn bumps it
// (endTxnV2AndUnlock), so a late write of a finished transaction is
// fenced.
package txn

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/tier/batch"
)

// Topic is the internal topic transactions are kept in.
const Topic = "__transaction_state"

// Partition is Kafka's choice of __transaction_state partition for a
// transactional id: the same hash as a group's offsets partition.
func Partition(txnID string, partitions int) int32 {
	return group.CoordinatorPartition(txnID, partitions)
}

// TP is a topic partition in a transaction.
type TP struct {
	Topic     string
	Partition int32
}

// Markers is one marker write: end producer PID's transaction at Epoch on
// each of Partitions, committing or aborting it.
type Markers struct {
	TransactionalID string
	ProducerID      int64
	Epoch           int16
	Commit          bool
	Partitions      []TP
}

// Config is what a coordinator needs of the agent.
type Config struct {
	// Write appends records to the partition and calls done once they are
	// committed (or failed). It must not block; writes complete in the
	// order they were issued.
	Write func(recs []batch.KV, done func(error))
	// WriteMarkers writes the markers to every partition, returning once
	// all are committed; it is retried (with backoff) until it succeeds or
	// the coordinator closes.
	WriteMarkers func(ctx context.Context, m Markers) error
	// NewProducerID hands out a producer id never used before.
	NewProducerID func(ctx context.Context) (int64, error)
	// MaxTimeout is transaction.max.timeout.ms (default 15 minutes).
	MaxTimeout time.Duration
	// CheckInterval is how often timed-out transactions are looked for
	// (transaction.abort.timed.out.transaction.cleanup.interval.ms,
	// default 10 s).
	CheckInterval time.Duration
	Logger        *slog.Logger
	Now           func() time.Time
}

// State is a transaction's state (kmsg.TransactionState values).
type State = kmsg.TransactionState

type txn struct {
	id         string
	pid        int64
	epoch      int16
	timeout    time.Duration
	state      State
	partitions map[TP]struct{}
	started    time.Time // when the transaction began (Ongoing)
	updated    time.Time
	busy       bool // a write or marker round is in flight: others wait
	// tv2: the client ends transactions with EndTxn v5+ (transactions
	// version 2, KIP-890 part 2), which bumps the epoch every time.
	tv2 bool
	// prevPID is the producer id before the last one ran out of epochs
	// (a TV2 retry may still name it); nextPID the one the transaction
	// being completed moves to (-1: none).
	prevPID, nextPID int64
}

// maxEpoch is the last epoch a producer id has; a TV2 bump that would
// reach it moves the transactional id to a new producer id.
const maxEpoch = 1<<15 - 1

// Coordinator coordinates the transactional ids of one partition.
type Coordinator struct {
	cfg  Config
	log  *slog.Logger
	stop chan struct{}
	ctx  context.Context
	end  context.CancelFunc
	wg   sync.WaitGroup

	mu     sync.Mutex
	txns   map[string]*txn
	loaded bool
	closed bool
}

// New returns a coordinator that answers COORDINATOR_LOAD_IN_PROGRESS
// until Loaded.
func New(cfg Config) *Coordinator {
	if cfg.MaxTimeout <= 0 {
		cfg.MaxTimeout = 15 * time.Minute
	}
	if cfg.CheckInterval <= 0 {
		cfg.CheckInterval = 10 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Coordinator{cfg: cfg, log: cfg.Logger, stop: make(chan struct{}), ctx: ctx, end: cancel, txns: map[string]*txn{}}
}

// Loaded marks the replay done: requests are served, transactions found
// preparing are finished, and timed-out ones are aborted from now on.
func (c *Coordinator) Loaded() {
	c.mu.Lock()
	c.loaded = true
	var resume []*txn
	for _, t := range c.txns {
		if t.state == kmsg.TransactionStatePrepareCommit || t.state == kmsg.TransactionStatePrepareAbort {
			t.busy = true
			resume = append(resume, t)
		}
	}
	for _, t := range resume {
		c.sendMarkersLocked(t, nil)
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		c.expireLoop()
	}()
}

// Close stops the coordinator and waits for its goroutines; marker rounds
// in flight are abandoned (the next coordinator resumes them).
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	close(c.stop)
	c.end()
	c.wg.Wait()
}

// availableLocked is the error code for a request now, or 0.
func (c *Coordinator) availableLocked() int16 {
	switch {
	case c.closed:
		return kerr.NotCoordinator.Code
	case !c.loaded:
		return kerr.CoordinatorLoadInProgress.Code
	}
	return 0
}

// writeLocked persists t's current state and calls done with the outcome,
// outside the lock. t stays busy until then.
func (c *Coordinator) writeLocked(t *txn, done func(error)) {
	t.busy = true
	t.updated = c.cfg.Now()
	rec := encode(t)
	c.cfg.Write([]batch.KV{rec}, func(err error) {
		c.mu.Lock()
		t.busy = false
		c.mu.Unlock()
		done(err)
	})
}

// InitProducerID gives txnID a producer id and epoch: a new id the first
// time, else the next epoch of its id, which fences the previous producer.
// An open transaction is aborted first (the client retries meanwhile with
// CONCURRENT_TRANSACTIONS). With pid/epoch ≥ 0 (KIP-360) the caller must
// be the current producer.
func (c *Coordinator) InitProducerID(ctx context.Context, txnID string, timeout time.Duration, pid int64, epoch int16, done func(pid int64, epoch int16, code int16)) {
	if timeout <= 0 || timeout > c.cfg.MaxTimeout {
		done(-1, -1, kerr.InvalidTransactionTimeout.Code)
		return
	}
	c.mu.Lock()
	if code := c.availableLocked(); code != 0 {
		c.mu.Unlock()
		done(-1, -1, code)
		return
	}
	t := c.txns[txnID]
	if t == nil {
		c.mu.Unlock()
		id, err := c.cfg.NewProducerID(ctx)
		if err != nil {
			done(-1, -1, kerr.CoordinatorNotAvailable.Code)
			return
		}
		c.mu.Lock()
		if c.txns[txnID] != nil { // raced with another init: start over
			c.mu.Unlock()
			c.InitProducerID(ctx, txnID, timeout, pid, epoch, done)
			return
		}
		t = &txn{id: txnID, pid: id, epoch: -1, state: kmsg.TransactionStateEmpty, partitions: map[TP]struct{}{}, prevPID: -1, nextPID: -1}
		c.txns[txnID] = t
	}
	switch {
	case t.busy:
		c.mu.Unlock()
		done(-1, -1, kerr.ConcurrentTransactions.Code)
		return
	case t.state == kmsg.TransactionStatePrepareCommit || t.state == kmsg.TransactionStatePrepareAbort:
		c.mu.Unlock()
		done(-1, -1, kerr.ConcurrentTransactions.Code)
		return
	case pid >= 0 && (pid != t.pid || epoch != t.epoch):
		c.mu.Unlock()
		done(-1, -1, kerr.ProducerFenced.Code)
		return
	case t.state == kmsg.TransactionStateOngoing:
		// Abort what the previous producer left open, fencing it.
		c.abortLocked(t, true)
		c.mu.Unlock()
		done(-1, -1, kerr.ConcurrentTransactions.Code)
		return
	}
	if t.epoch >= 1<<15-2 {
		// Epochs are exhausted: a new producer id at epoch 0.
		c.mu.Unlock()
		id, err := c.cfg.NewProducerID(ctx)
		if err != nil {
			done(-1, -1, kerr.CoordinatorNotAvailable.Code)
			return
		}
		c.mu.Lock()
		t.prevPID, t.pid, t.epoch = t.pid, id, -1
	}
	t.epoch++
	t.nextPID = -1 // a move to a new id left over from a failed EndTxn
	t.timeout = timeout
	t.state = kmsg.TransactionStateEmpty
	t.partitions = map[TP]struct{}{}
	gotPID, gotEpoch := t.pid, t.epoch
	c.writeLocked(t, func(err error) {
		if err != nil {
			done(-1, -1, writeErrCode(err))
			return
		}
		done(gotPID, gotEpoch, 0)
	})
	c.mu.Unlock()
}

// checkProducerLocked is the error for a request from pid/epoch on t.
func checkProducerLocked(t *txn, pid int64, epoch int16) int16 {
	switch {
	case t != nil && (t.busy || t.state == kmsg.TransactionStatePrepareCommit || t.state == kmsg.TransactionStatePrepareAbort):
		// First, as Kafka does: the producer may already hold the epoch
		// (or producer id) the transaction completing moves to.
		return kerr.ConcurrentTransactions.Code
	case t == nil || t.pid != pid:
		return kerr.InvalidProducerIDMapping.Code
	case epoch < t.epoch:
		return kerr.ProducerFenced.Code
	case epoch > t.epoch:
		return kerr.InvalidProducerEpoch.Code
	}
	return 0
}

// AddPartitions adds partitions to txnID's transaction, beginning it if
// none is open. done gets one code for all of them.
func (c *Coordinator) AddPartitions(txnID string, pid int64, epoch int16, tps []TP, done func(code int16)) {
	c.mu.Lock()
	if code := c.availableLocked(); code != 0 {
		c.mu.Unlock()
		done(code)
		return
	}
	t := c.txns[txnID]
	if code := checkProducerLocked(t, pid, epoch); code != 0 {
		c.mu.Unlock()
		done(code)
		return
	}
	added := false
	for _, tp := range tps {
		if _, ok := t.partitions[tp]; !ok {
			added = true
		}
	}
	if !added && t.state == kmsg.TransactionStateOngoing {
		c.mu.Unlock()
		done(0)
		return
	}
	prevState, prevStart := t.state, t.started
	var undo []TP
	for _, tp := range tps {
		if _, ok := t.partitions[tp]; !ok {
			t.partitions[tp] = struct{}{}
			undo = append(undo, tp)
		}
	}
	if t.state != kmsg.TransactionStateOngoing {
		t.state = kmsg.TransactionStateOngoing
		t.started = c.cfg.Now()
	}
	c.writeLocked(t, func(err error) {
		if err != nil {
			c.mu.Lock()
			for _, tp := range undo {
				delete(t.partitions, tp)
			}
			t.state, t.started = prevState, prevStart
			c.mu.Unlock()
			done(writeErrCode(err))
			return
		}
		done(0)
	})
	c.mu.Unlock()
}

// Includes reports whether tp is in the transaction pid/epoch has open
// (KIP-890: a transactional produce is accepted only then).
func (c *Coordinator) Includes(txnID string, pid int64, epoch int16, tp TP) int16 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if code := c.availableLocked(); code != 0 {
		return code
	}
	t := c.txns[txnID]
	switch {
	case t == nil || t.pid != pid:
		return kerr.InvalidProducerIDMapping.Code
	case epoch != t.epoch:
		return kerr.InvalidProducerEpoch.Code
	case t.state != kmsg.TransactionStateOngoing:
		return kerr.InvalidTxnState.Code
	}
	if _, ok := t.partitions[tp]; !ok {
		return kerr.InvalidTxnState.Code
	}
	return 0
}

// EndTxn commits or aborts txnID's open transaction: the decision is
// written, then the markers to every partition in it; the transaction is
// complete once they all are, and done is answered then (or completeWait
// after the decision) with the producer id and epoch the producer goes on
// with. tv2 (EndTxn v5+, KIP-890 part 2) bumps the epoch with every
// decision, so the markers fence any late write of the transaction.
func (c *Coordinator) EndTxn(ctx context.Context, txnID string, pid int64, epoch int16, commit, tv2 bool, done func(pid int64, epoch int16, code int16)) {
	fail := func(code int16) { done(-1, -1, code) }
	c.mu.Lock()
	if code := c.availableLocked(); code != 0 {
		c.mu.Unlock()
		fail(code)
		return
	}
	t := c.txns[txnID]
	if tv2 {
		c.endTxnV2AndUnlock(ctx, t, txnID, pid, epoch, commit, done)
		return
	}
	if t != nil && t.pid == pid && t.epoch == epoch && !t.busy {
		// A retry of an EndTxn already done is answered as done.
		switch t.state {
		case kmsg.TransactionStateCompleteCommit, kmsg.TransactionStateCompleteAbort:
			c.mu.Unlock()
			if (t.state == kmsg.TransactionStateCompleteCommit) == commit {
				done(t.pid, t.epoch, 0)
			} else {
				fail(kerr.InvalidTxnState.Code)
			}
			return
		case kmsg.TransactionStateEmpty:
			c.mu.Unlock()
			fail(kerr.InvalidTxnState.Code)
			return
		}
	}
	if t != nil && t.pid == pid && t.epoch == epoch && (t.state == kmsg.TransactionStatePrepareCommit || t.state == kmsg.TransactionStatePrepareAbort) {
		same := (t.state == kmsg.TransactionStatePrepareCommit) == commit
		c.mu.Unlock()
		if same {
			fail(kerr.ConcurrentTransactions.Code)
		} else {
			fail(kerr.InvalidTxnState.Code)
		}
		return
	}
	if code := checkProducerLocked(t, pid, epoch); code != 0 {
		c.mu.Unlock()
		fail(code)
		return
	}
	t.state = prepared(commit)
	c.prepareLocked(t, kmsg.TransactionStateOngoing, func(code int16) { done(pid, epoch, code) })
	c.mu.Unlock()
}

func prepared(commit bool) State {
	if commit {
		return kmsg.TransactionStatePrepareCommit
	}
	return kmsg.TransactionStatePrepareAbort
}

// endTxnV2AndUnlock is EndTxn for transactions version 2 (Kafka's rules):
// a retry names the epoch before the bump (or the producer id before an
// epoch overflow) and is answered with what the producer goes on with; an
// abort with nothing open still bumps the epoch (the client aborts when
// none of its writes got in). Called with c.mu held; releases it (hence
// the name, as partition's …AndUnlock functions).
func (c *Coordinator) endTxnV2AndUnlock(ctx context.Context, t *txn, txnID string, pid int64, epoch int16, commit bool, done func(pid int64, epoch int16, code int16)) {
	fail := func(code int16) {
		c.mu.Unlock()
		done(-1, -1, code)
	}
	if t == nil {
		fail(kerr.InvalidProducerIDMapping.Code)
		return
	}
	if t.busy {
		fail(kerr.ConcurrentTransactions.Code)
		return
	}
	retryOnBump := t.pid == pid && epoch >= 0 && t.epoch == epoch+1
	retryOnOverflow := t.prevPID == pid && epoch == maxEpoch-1 && t.epoch == 0
	retry := retryOnBump || retryOnOverflow
	if t.pid != pid && !retryOnOverflow {
		fail(kerr.InvalidProducerIDMapping.Code)
		return
	}
	if !retry && epoch != t.epoch {
		fail(kerr.ProducerFenced.Code)
		return
	}
	switch t.state {
	case kmsg.TransactionStatePrepareCommit, kmsg.TransactionStatePrepareAbort:
		if (t.state == kmsg.TransactionStatePrepareCommit) == commit {
			fail(kerr.ConcurrentTransactions.Code)
		} else {
			fail(kerr.InvalidTxnState.Code)
		}
		return
	case kmsg.TransactionStateCompleteCommit, kmsg.TransactionStateCompleteAbort:
		if retry {
			if (t.state == kmsg.TransactionStateCompleteCommit) != commit {
				fail(kerr.InvalidTxnState.Code)
				return
			}
			c.mu.Unlock()
			done(t.pid, t.epoch, 0)
			return
		}
		if commit {
			fail(kerr.InvalidTxnState.Code)
			return
		}
	case kmsg.TransactionStateEmpty:
		if retry {
			fail(kerr.ProducerFenced.Code)
			return
		}
		if commit {
			fail(kerr.InvalidTxnState.Code)
			return
		}
	case kmsg.TransactionStateOngoing:
		if retry {
			fail(kerr.ProducerFenced.Code)
			return
		}
	}
	// Decide, bumping the epoch; at the last epoch the producer moves to
	// a new id (allocated first, outside the lock).
	if t.epoch >= maxEpoch-1 && t.nextPID < 0 {
		c.mu.Unlock()
		id, err := c.cfg.NewProducerID(ctx)
		if err != nil {
			done(-1, -1, kerr.CoordinatorNotAvailable.Code)
			return
		}
		c.mu.Lock()
		if c.txns[txnID] == t && t.nextPID < 0 {
			t.nextPID = id
		}
		c.mu.Unlock()
		c.EndTxn(ctx, txnID, pid, epoch, commit, true, done)
		return
	}
	prevState, prevEpoch, prevTV2 := t.state, t.epoch, t.tv2
	prevStarted, prevParts := t.started, t.partitions
	if t.state != kmsg.TransactionStateOngoing {
		// Nothing open (an abort of a transaction none of whose writes
		// got in): an empty one, so the bump is recorded like any.
		t.started = c.cfg.Now()
		t.partitions = map[TP]struct{}{}
	}
	if t.epoch < maxEpoch { // a fence may already have used the last one
		t.epoch++
	}
	t.tv2 = true
	t.state = prepared(commit)
	nextPID, nextEpoch := t.pid, t.epoch
	if t.nextPID >= 0 {
		nextPID, nextEpoch = t.nextPID, 0
	}
	c.prepareRevertLocked(t, prevState, func() {
		t.epoch, t.tv2, t.started, t.partitions = prevEpoch, prevTV2, prevStarted, prevParts
	}, func(code int16) {
		if code != 0 {
			done(-1, -1, code)
			return
		}
		done(nextPID, nextEpoch, 0)
	})
	c.mu.Unlock()
}

// abortLocked moves t's open transaction to PrepareAbort, bumping the
// epoch if fence (a timeout, or a new producer taking the id over).
func (c *Coordinator) abortLocked(t *txn, fence bool) {
	prevEpoch := t.epoch
	if fence && t.epoch < maxEpoch {
		t.epoch++
	}
	t.state = kmsg.TransactionStatePrepareAbort
	c.prepareRevertLocked(t, kmsg.TransactionStateOngoing, func() { t.epoch = prevEpoch }, func(int16) {})
}

// completeWait bounds how long EndTxn waits for the markers before
// answering: the decision is durable once prepared, so a slow partition
// only makes the producer's next request retry (CONCURRENT_TRANSACTIONS).
const completeWait = time.Second

// prepareLocked writes t's Prepare state and starts the marker round. A
// failed write restores prev. done is answered once the transaction is
// complete, or completeWait after the decision was written: answering at
// once would send the producer's next transaction into retries while the
// markers go out.
func (c *Coordinator) prepareLocked(t *txn, prev State, done func(code int16)) {
	c.prepareRevertLocked(t, prev, nil, done)
}

// prepareRevertLocked is prepareLocked with revert, run under c.mu with
// the state's restore if the write fails, so no request sees half of it.
func (c *Coordinator) prepareRevertLocked(t *txn, prev State, revert func(), done func(code int16)) {
	c.writeLocked(t, func(err error) {
		c.mu.Lock()
		if err != nil {
			t.state = prev
			if revert != nil {
				revert()
			}
			c.mu.Unlock()
			done(writeErrCode(err))
			return
		}
		t.busy = true
		var once sync.Once
		var timer *time.Timer
		answer := func() {
			once.Do(func() {
				timer.Stop()
				done(0)
			})
		}
		timer = time.AfterFunc(completeWait, answer)
		if !c.closed {
			c.sendMarkersLocked(t, answer)
		}
		c.mu.Unlock()
	})
}

// sendMarkersLocked starts the marker round of t's prepared transaction
// (t is busy until it completes).
func (c *Coordinator) sendMarkersLocked(t *txn, completed func()) {
	m := Markers{
		TransactionalID: t.id, ProducerID: t.pid, Epoch: t.epoch,
		Commit: t.state == kmsg.TransactionStatePrepareCommit, Partitions: sortedTPs(t.partitions),
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, 2*time.Second) {
			err := c.cfg.WriteMarkers(c.ctx, m)
			if err == nil {
				break
			}
			if c.ctx.Err() != nil {
				return
			}
			c.log.Warn("write transaction markers", "transactional_id", m.TransactionalID, "commit", m.Commit, "err", err, "retry_in", backoff)
			select {
			case <-c.stop:
				return
			case <-time.After(backoff):
			}
		}
		if c.complete(t, m) && completed != nil {
			completed()
		}
	}()
}

// complete records that t's markers are all written; false if the
// coordinator closed first.
func (c *Coordinator) complete(t *txn, m Markers) bool {
	for backoff := 50 * time.Millisecond; ; backoff = min(2*backoff, 2*time.Second) {
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return false
		}
		if m.Commit {
			t.state = kmsg.TransactionStateCompleteCommit
		} else {
			t.state = kmsg.TransactionStateCompleteAbort
		}
		t.partitions = map[TP]struct{}{}
		if t.nextPID >= 0 {
			t.prevPID, t.pid, t.epoch, t.nextPID = t.pid, t.nextPID, 0, -1
		}
		errc := make(chan error, 1)
		c.writeLocked(t, func(err error) { errc <- err })
		c.mu.Unlock()
		var err error
		select {
		case err = <-errc:
		case <-c.stop:
			return false
		}
		if err == nil {
			return true
		}
		c.log.Warn("record completed transaction", "transactional_id", t.id, "err", err, "retry_in", backoff)
		c.mu.Lock()
		t.busy = true // still completing
		c.mu.Unlock()
		select {
		case <-c.stop:
			return false
		case <-time.After(backoff):
		}
	}
}

// expireLoop aborts transactions open longer than their timeout.
func (c *Coordinator) expireLoop() {
	tick := time.NewTicker(c.cfg.CheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		c.ExpireNow()
	}
}

// ExpireNow aborts, fencing their producers, the transactions open past
// their timeout.
func (c *Coordinator) ExpireNow() {
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || !c.loaded {
		return
	}
	for _, t := range c.txns {
		if t.state == kmsg.TransactionStateOngoing && !t.busy && now.Sub(t.started) > t.timeout {
			c.log.Info("aborting a timed-out transaction", "transactional_id", t.id, "producer_id", t.pid, "epoch", t.epoch, "timeout", t.timeout)
			c.abortLocked(t, true)
		}
	}
}

// writeErrCode is what a client gets when a state record failed to write:
// a code it retries after finding the coordinator again.
func writeErrCode(err error) int16 {
	if errors.Is(err, context.DeadlineExceeded) {
		return kerr.RequestTimedOut.Code
	}
	return kerr.NotCoordinator.Code
}

func sortedTPs(m map[TP]struct{}) []TP {
	out := make([]TP, 0, len(m))
	for tp := range m {
		out = append(out, tp)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Topic != out[j].Topic {
			return out[i].Topic < out[j].Topic
		}
		return out[i].Partition < out[j].Partition
	})
	return out
}
