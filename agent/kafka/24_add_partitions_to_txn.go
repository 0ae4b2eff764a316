package kafka

// AddPartitionsToTxn: v0-3
//
// Adds partitions to the producer's transaction at its coordinator,
// beginning the transaction if none is open. The coordinator answers once
// the change is committed in __transaction_state. A partition that does
// not exist fails with UNKNOWN_TOPIC_OR_PARTITION and the others with
// OPERATION_NOT_ATTEMPTED, as Kafka answers; otherwise every partition
// gets the coordinator's one answer.
//
// Version notes:
// * v3: flexible versions
// * v4 (batched, broker to coordinator) is not served.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/agent/txn"
)

func init() { register(24, 0, 3, handleAddPartitionsToTxn) }

func handleAddPartitionsToTxn(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.AddPartitionsToTxnRequest)
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
	var tps []txn.TP
	missing := false
	for _, rt := range req.Topics {
		t := s.b.TopicByName(rt.Topic)
		for _, p := range rt.Partitions {
			if t.Partition(p) == nil || rt.Topic == group.OffsetsTopic || rt.Topic == txn.Topic {
				missing = true
			}
			tps = append(tps, txn.TP{Topic: rt.Topic, Partition: p})
		}
	}
	if missing {
		answer(func(topic string, p int32) int16 {
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
