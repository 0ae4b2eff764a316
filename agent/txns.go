package agent

// Transactions live in the internal topic __transaction_state: a
// transactional id is coordinated by the leader of partition
// abs(javaHash(id)) % N, as in Kafka. This file runs one txn.Coordinator
// per partition of it this agent leads (keepers.go runs it) and writes the
// coordinators' markers: to partitions this agent leads directly, to the
// others through their leaders' WriteTxnMarkers.

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/agent/txn"
)

// txnKeeper is a transaction coordinator as keepers.go runs it.
type txnKeeper struct{ *txn.Coordinator }

func (k txnKeeper) Apply(key, value []byte, _ time.Time) error {
	return k.Coordinator.Apply(key, value)
}

type txnCoord = keeperRun[txnKeeper]

// txnCoordinatorFor returns the coordinator of a transactional id on this
// agent, or the error a client gets.
func (a *Agent) txnCoordinatorFor(txnID string) (*txn.Coordinator, int16) {
	t := a.topicByName(txn.Topic)
	if t == nil || len(t.Parts) == 0 {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	idx := txn.Partition(txnID, len(t.Parts))
	a.txnMu.Lock()
	tc := a.txnCoords[idx]
	a.txnMu.Unlock()
	if tc == nil || tc.p != t.Parts[idx] {
		return nil, kerr.NotCoordinator.Code
	}
	return tc.c.Coordinator, 0
}

// ensureTxnTopic creates __transaction_state when the first
// transactional producer shows up.
func (a *Agent) ensureTxnTopic(ctx context.Context) error {
	return a.ensureInternalTopic(ctx, txn.Topic, a.cfg.TransactionPartitions)
}

// reconcileTxnCoordinators starts a coordinator for every partition of
// __transaction_state this agent now leads and closes the others.
func (a *Agent) reconcileTxnCoordinators() {
	t := a.topicByName(txn.Topic) // before txnMu: a leaf
	a.txnMu.Lock()
	defer a.txnMu.Unlock()
	reconcileKeepers(a, t, a.txnCoords, "transactions", func(tc *txnCoord) txnKeeper {
		return txnKeeper{txn.New(txn.Config{
			Write:         tc.w.write,
			WriteMarkers:  a.writeMarkers,
			NewProducerID: a.newProducerID,
			MaxTimeout:    a.cfg.TransactionMaxTimeout,
			CheckInterval: a.cfg.TransactionCheckInterval,
			Logger:        a.log.With("transaction_partition", tc.idx),
			Now:           a.cfg.Clock.Now,
		})}
	})
}

// closeTxnCoordinators closes every transaction coordinator (shutdown).
func (a *Agent) closeTxnCoordinators() {
	a.txnMu.Lock()
	coords := a.txnCoords
	a.txnCoords = map[int32]*txnCoord{}
	a.txnMu.Unlock()
	closeKeepers(coords)
}

// writeMarkers writes m's markers, each once the in-sync replicas of its
// partition have it: directly where this agent leads the partition, else
// through the leader's WriteTxnMarkers.
func (a *Agent) writeMarkers(ctx context.Context, m txn.Markers) error {
	var remote []txn.TP
	// pending counts local appends in flight, plus one until all are
	// issued; the last to finish closes appended.
	var pending atomic.Int64
	pending.Store(1)
	appended := make(chan struct{})
	finished := func() {
		if pending.Add(-1) == 0 {
			close(appended)
		}
	}
	errs := make(chan error, len(m.Partitions))
	for _, tp := range m.Partitions {
		t := a.topicByName(tp.Topic)
		p := t.Partition(tp.Partition)
		if p == nil {
			// Deleted since it joined the transaction: nothing to end.
			continue
		}
		if !p.IsLeader() {
			remote = append(remote, tp)
			continue
		}
		pending.Add(1)
		done := func(err error) {
			defer finished()
			if err != nil {
				errs <- fmt.Errorf("marker on %s/%d: %w", tp.Topic, tp.Partition, err)
				return
			}
			a.txnMarkerWritten(tp.Topic, tp.Partition, m.ProducerID, m.Commit)
		}
		if _, err := p.AppendMarker(m.ProducerID, m.Epoch, m.Commit, 0, done); err != nil {
			done(err)
		}
	}
	var remoteErr error
	if len(remote) > 0 {
		remoteErr = a.writeRemoteMarkers(ctx, m, remote)
	}
	// The local appends complete once replicated, or fail when their
	// partitions close, which on shutdown is after the coordinators have
	// closed: so stop waiting when ctx ends.
	finished()
	select {
	case <-appended:
	case <-ctx.Done():
		return ctx.Err()
	}
	close(errs)
	var all []error
	for err := range errs {
		all = append(all, err)
	}
	return errors.Join(append(all, remoteErr)...)
}

// writeRemoteMarkers sends WriteTxnMarkers for tps to their leaders, as
// this agent's metadata names them, over the peer port.
func (a *Agent) writeRemoteMarkers(ctx context.Context, m txn.Markers, tps []txn.TP) error {
	byLeader := map[int32][]txn.TP{}
	for _, tp := range tps {
		leader, ok := a.leaderOf(tp.Topic, tp.Partition)
		if !ok {
			return fmt.Errorf("marker on %s/%d: %w", tp.Topic, tp.Partition, kerr.LeaderNotAvailable)
		}
		byLeader[leader] = append(byLeader[leader], tp)
	}
	var errs []error
	for leader, tps := range byLeader {
		req := kmsg.NewPtrWriteTxnMarkersRequest()
		req.Version = 1
		mk := kmsg.NewWriteTxnMarkersRequestMarker()
		mk.ProducerID, mk.ProducerEpoch, mk.Committed = m.ProducerID, m.Epoch, m.Commit
		byTopic := map[string]int{}
		for _, tp := range tps {
			i, ok := byTopic[tp.Topic]
			if !ok {
				i = len(mk.Topics)
				byTopic[tp.Topic] = i
				mt := kmsg.NewWriteTxnMarkersRequestMarkerTopic()
				mt.Topic = tp.Topic
				mk.Topics = append(mk.Topics, mt)
			}
			mk.Topics[i].Partitions = append(mk.Topics[i].Partitions, tp.Partition)
		}
		req.Markers = append(req.Markers, mk)
		kresp, err := a.kafkaPeer(ctx, leader, req)
		if err != nil {
			errs = append(errs, fmt.Errorf("write markers to agent %d: %w", leader, err))
			continue
		}
		for _, rm := range kresp.(*kmsg.WriteTxnMarkersResponse).Markers {
			for _, rt := range rm.Topics {
				for _, rp := range rt.Partitions {
					if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
						errs = append(errs, fmt.Errorf("marker on %s/%d at agent %d: %w", rt.Topic, rp.Partition, leader, err))
					}
				}
			}
		}
	}
	return errors.Join(errs...)
}

// leaderOf is the live leader of a partition in this agent's metadata.
func (a *Agent) leaderOf(topicName string, idx int32) (int32, bool) {
	st := a.meta.State()
	mt, ok := st.TopicByName(topicName)
	if !ok || idx < 0 || int(idx) >= len(mt.Partitions) {
		return 0, false
	}
	leader := mt.Partitions[idx].Leader
	ag, ok := st.Agents[leader]
	return leader, leader >= 0 && ok && !ag.Fenced
}

// partitionCount is how many partitions a topic has here (1 if unknown,
// so hashing stays defined).
func (a *Agent) partitionCount(topicName string) int {
	if t := a.topicByName(topicName); t != nil && len(t.Parts) > 0 {
		return len(t.Parts)
	}
	return 1
}

// txnMarkerWritten is told of every marker committed on a partition this
// agent leads: on __consumer_offsets, the group coordinator's pending
// transactional offsets of the producer now count, or never will.
func (a *Agent) txnMarkerWritten(topicName string, idx int32, pid int64, commit bool) {
	if topicName != group.OffsetsTopic {
		return
	}
	a.coordMu.Lock()
	gc := a.coords[idx]
	a.coordMu.Unlock()
	if gc != nil {
		gc.c.MarkerWritten(pid, commit)
	}
}

// verifyTxn asks txnID's coordinator whether tp is in producer
// pid/epoch's open transaction, or (add) adds it: here if this agent
// coordinates it, else with AddPartitionsToTxn v5 (VerifyOnly unless add)
// through the agents' client. An add that finds the previous transaction
// still completing is retried for up to 100 ms, as Kafka's brokers do.
func (a *Agent) verifyTxn(ctx context.Context, txnID string, pid int64, epoch int16, tp txn.TP, add bool) int16 {
	deadline := time.Now().Add(100 * time.Millisecond)
	for {
		code := a.verifyTxnOnce(ctx, txnID, pid, epoch, tp, add)
		if code != kerr.ConcurrentTransactions.Code || !add || time.Now().After(deadline) {
			return code
		}
		select {
		case <-ctx.Done():
			return code
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (a *Agent) verifyTxnOnce(ctx context.Context, txnID string, pid int64, epoch int16, tp txn.TP, add bool) int16 {
	c, code := a.txnCoordinatorFor(txnID)
	if code == 0 {
		if !add {
			return c.Includes(txnID, pid, epoch, tp)
		}
		done := make(chan int16, 1)
		c.AddPartitions(txnID, pid, epoch, []txn.TP{tp}, func(code int16) { done <- code })
		select {
		case code := <-done:
			return code
		case <-ctx.Done():
			return kerr.RequestTimedOut.Code
		}
	}
	if code != kerr.NotCoordinator.Code {
		return code
	}
	leader, ok := a.leaderOf(txn.Topic, txn.Partition(txnID, a.partitionCount(txn.Topic)))
	if !ok {
		return kerr.CoordinatorNotAvailable.Code
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.Version = 5
	rt := kmsg.NewAddPartitionsToTxnRequestTransaction()
	rt.TransactionalID, rt.ProducerID, rt.ProducerEpoch, rt.VerifyOnly = txnID, pid, epoch, !add
	tt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
	tt.Topic, tt.Partitions = tp.Topic, []int32{tp.Partition}
	rt.Topics = append(rt.Topics, tt)
	req.Transactions = append(req.Transactions, rt)
	kresp, err := a.kafkaPeer(ctx, leader, req)
	if err != nil {
		a.log.Debug("verify a transaction with its coordinator", "transactional_id", txnID, "coordinator", leader, "err", err)
		return kerr.CoordinatorNotAvailable.Code
	}
	resp := kresp.(*kmsg.AddPartitionsToTxnResponse)
	if resp.ErrorCode != 0 {
		return resp.ErrorCode
	}
	for _, t := range resp.Transactions {
		for _, tt := range t.Topics {
			for _, p := range tt.Partitions {
				if p.ErrorCode != 0 {
					return p.ErrorCode
				}
			}
		}
		return 0
	}
	return kerr.CoordinatorNotAvailable.Code
}
