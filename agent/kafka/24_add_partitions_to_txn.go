package kafka

// AddPartitionsToTxn: v0-5
//
// Adds partitions to the producer's transaction at its coordinator,
// beginning the transaction if none is open. The coordinator answers once
// the change is committed in __transaction_state. A partition that does
// not exist fails with UNKNOWN_TOPIC_OR_PARTITION and the others with
// OPERATION_NOT_ATTEMPTED, as Kafka answers; otherwise every partition
// gets the coordinator's one answer.
// With an authorizer: v0-3 WRITE on the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED) and on each topic
// (TOPIC_AUTHORIZATION_FAILED, the others OPERATION_NOT_ATTEMPTED); v4+
// CLUSTER_ACTION on the cluster (CLUSTER_AUTHORIZATION_FAILED), as Kafka.
//
// Version notes:
// * v3: flexible versions
// * v4: batched by transactional id, and VerifyOnly: a partition leader
//   asks whether a partition is in the producer's open transaction before
//   taking its first transactional batch there (KIP-890); answered per
//   partition, INVALID_TXN_STATE where it is not. Clients use v3 and
//   below (v4 is the agent-to-agent side).
// * v5: as v4; a partition leader also adds (not VerifyOnly) for Produce
//   v12 and the group coordinator for TxnOffsetCommit v5 (transactions
//   version 2)

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/agent/txn"
	"github.com/tlog-io/tlog/metadata"
)

func init() { register(24, 0, 5, handleAddPartitionsToTxn) }

func handleAddPartitionsToTxn(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.AddPartitionsToTxnRequest)
	if req.Version >= 4 {
		return s.addPartitionsBatched(r, req)
	}
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	answer := func(code func(topic string, p int32) int16) {
		for _, rt := range req.Topics {
			st := kmsg.NewAddPartitionsToTxnResponseTopic()
			st.Topic = rt.Topic
			for _, p := range rt.Partitions {
				sp := kmsg.NewAddPartitionsToTxnResponseTopicPartition()
				sp.Partition, sp.ErrorCode = p, code(rt.Topic, p)
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
	}
	if !r.allowedTxnID(req.TransactionalID, metadata.OpWrite) {
		answer(func(string, int32) int16 { return kerr.TransactionalIDAuthorizationFailed.Code })
		return now(resp), nil
	}
	var tps []txn.TP
	denied := map[string]bool{}
	failed := false
	for _, rt := range req.Topics {
		if !r.allowedTopic(rt.Topic, metadata.OpWrite) {
			denied[rt.Topic], failed = true, true
		}
		t := s.b.TopicByName(rt.Topic)
		for _, p := range rt.Partitions {
			if t.Partition(p) == nil || rt.Topic == group.OffsetsTopic || rt.Topic == txn.Topic {
				failed = true
			}
			tps = append(tps, txn.TP{Topic: rt.Topic, Partition: p})
		}
	}
	if failed { // Kafka adds none if any fails
		answer(func(topic string, p int32) int16 {
			if denied[topic] {
				return kerr.TopicAuthorizationFailed.Code
			}
			if t := s.b.TopicByName(topic); t.Partition(p) == nil || topic == group.OffsetsTopic || topic == txn.Topic {
				return kerr.UnknownTopicOrPartition.Code
			}
			return kerr.OperationNotAttempted.Code
		})
		return now(resp), nil
	}
	c, code := s.b.TxnCoordinator(req.TransactionalID)
	if code != 0 {
		answer(func(string, int32) int16 { return code })
		return now(resp), nil
	}
	done := make(chan int16, 1)
	c.AddPartitions(req.TransactionalID, req.ProducerID, req.ProducerEpoch, tps, func(code int16) { done <- code })
	return func() kmsg.Response {
		select {
		case code := <-done:
			answer(func(string, int32) int16 { return fencedCode(code, req.Version < 2) })
			return resp
		case <-r.ctx.Done():
			return nil
		}
	}, nil
}

// fencedCode is PRODUCER_FENCED as clients of old versions know it
// (INVALID_PRODUCER_EPOCH), where old is true.
func fencedCode(code int16, old bool) int16 {
	if code == kerr.ProducerFenced.Code && old {
		return kerr.InvalidProducerEpoch.Code
	}
	return code
}

// addPartitionsBatched serves v4: each transaction added to, or (VerifyOnly)
// checked against, at this agent's coordinator.
func (s *Server) addPartitionsBatched(r *request, req *kmsg.AddPartitionsToTxnRequest) (reply, error) {
	resp := req.ResponseKind().(*kmsg.AddPartitionsToTxnResponse)
	// Only agents send v4+; the sender has authorized the producer, so
	// Kafka asks no WRITE here.
	if !r.allowedCluster(metadata.OpClusterAction) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return now(resp), nil
	}
	type pending struct {
		i    int
		done chan int16
	}
	var waits []pending
	for _, rt := range req.Transactions {
		out := kmsg.NewAddPartitionsToTxnResponseTransaction()
		out.TransactionalID = rt.TransactionalID
		var tps []txn.TP
		for _, tt := range rt.Topics {
			ot := kmsg.NewAddPartitionsToTxnResponseTransactionTopic()
			ot.Topic = tt.Topic
			for _, p := range tt.Partitions {
				op := kmsg.NewAddPartitionsToTxnResponseTransactionTopicPartition()
				op.Partition = p
				ot.Partitions = append(ot.Partitions, op)
				tps = append(tps, txn.TP{Topic: tt.Topic, Partition: p})
			}
			out.Topics = append(out.Topics, ot)
		}
		resp.Transactions = append(resp.Transactions, out)
		set := func(code func(txn.TP) int16) {
			o := &resp.Transactions[len(resp.Transactions)-1]
			for i := range o.Topics {
				for j := range o.Topics[i].Partitions {
					o.Topics[i].Partitions[j].ErrorCode = code(txn.TP{Topic: o.Topics[i].Topic, Partition: o.Topics[i].Partitions[j].Partition})
				}
			}
		}
		c, code := s.b.TxnCoordinator(rt.TransactionalID)
		switch {
		case code != 0:
			set(func(txn.TP) int16 { return code })
		case rt.VerifyOnly:
			set(func(tp txn.TP) int16 { return c.Includes(rt.TransactionalID, rt.ProducerID, rt.ProducerEpoch, tp) })
		default:
			done := make(chan int16, 1)
			c.AddPartitions(rt.TransactionalID, rt.ProducerID, rt.ProducerEpoch, tps, func(code int16) { done <- code })
			waits = append(waits, pending{i: len(resp.Transactions) - 1, done: done})
		}
	}
	return func() kmsg.Response {
		for _, w := range waits {
			var code int16
			select {
			case code = <-w.done:
			case <-r.ctx.Done():
				return nil
			}
			o := &resp.Transactions[w.i]
			for i := range o.Topics {
				for j := range o.Topics[i].Partitions {
					o.Topics[i].Partitions[j].ErrorCode = code
				}
			}
		}
		return resp
	}, nil
}
