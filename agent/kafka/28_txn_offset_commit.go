package kafka

// TxnOffsetCommit: v0-5
//
// A transactional producer commits a group's offsets inside its
// transaction (after AddOffsetsToTxn): the group coordinator writes them
// to the group's offsets partition as a transactional batch with the
// producer's id and epoch, and they become the group's offsets only when
// the transaction's COMMIT marker reaches that partition (an ABORT drops
// them). A topic or partition that does not exist gets
// UNKNOWN_TOPIC_OR_PARTITION and is not written.
// With an authorizer: WRITE on the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), READ on the group
// (GROUP_AUTHORIZATION_FAILED), READ on each topic
// (TOPIC_AUTHORIZATION_FAILED on its partitions; the others are written).
//
// Version notes:
// * v2: LeaderEpoch per partition
// * v3: flexible versions; GenerationID, MemberID and InstanceID, which
//   fence a member of an older generation (KIP-447)
// * v4: the group's offsets partition must be in the transaction (checked
//   with the transaction's coordinator, KIP-890)
// * v5: transactions version 2: it is added to the transaction instead
//   (such clients send no AddOffsetsToTxn)

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/agent/txn"
	"github.com/tlog-io/tlog/metadata"
)

func init() { register(28, 0, 5, handleTxnOffsetCommit) }

func handleTxnOffsetCommit(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.TxnOffsetCommitRequest)
	// denied[i]: no READ on topic i (TOPIC_AUTHORIZATION_FAILED, whatever
	// the other topics get).
	denied := make([]bool, len(req.Topics))
	answer := func(code func(topic string, p int32) int16) *kmsg.TxnOffsetCommitResponse {
		resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
		for i, rt := range req.Topics {
			st := kmsg.NewTxnOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code(rt.Topic, rp.Partition)
				if denied[i] {
					sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
	switch {
	case !r.allowedTxnID(req.TransactionalID, metadata.OpWrite):
		return now(answer(func(string, int32) int16 { return kerr.TransactionalIDAuthorizationFailed.Code })), nil
	case !r.allowedGroup(req.Group, metadata.OpRead):
		return now(answer(func(string, int32) int16 { return kerr.GroupAuthorizationFailed.Code })), nil
	}
	// The coordinator is given the allowed topics only; if none is
	// allowed, nothing is asked of it (nor of the transaction's).
	commit := req
	var allowed []kmsg.TxnOffsetCommitRequestTopic
	for i, rt := range req.Topics {
		if denied[i] = !r.allowedTopic(rt.Topic, metadata.OpRead); !denied[i] {
			allowed = append(allowed, rt)
		}
	}
	if len(allowed) < len(req.Topics) {
		if len(allowed) == 0 {
			return now(answer(func(string, int32) int16 { return 0 })), nil
		}
		sub := *req
		sub.Topics = allowed
		commit = &sub
	}
	c, code := s.b.Coordinator(req.Group)
	if code != 0 {
		return now(answer(func(string, int32) int16 { return code })), nil
	}
	for i, rt := range req.Topics {
		if denied[i] {
			continue
		}
		t := s.b.TopicByName(rt.Topic)
		for _, rp := range rt.Partitions {
			if t.Partition(rp.Partition) == nil {
				return now(answer(func(topic string, p int32) int16 {
					if s.b.TopicByName(topic).Partition(p) == nil {
						return kerr.UnknownTopicOrPartition.Code
					}
					return kerr.OperationNotAttempted.Code
				})), nil
			}
		}
	}
	if req.Version >= 4 {
		t := s.b.TopicByName(group.OffsetsTopic)
		if t == nil || len(t.Parts) == 0 {
			return now(answer(func(string, int32) int16 { return kerr.CoordinatorNotAvailable.Code })), nil
		}
		tp := txn.TP{Topic: group.OffsetsTopic, Partition: group.CoordinatorPartition(req.Group, len(t.Parts))}
		code := s.b.VerifyTxn(r.ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, tp, req.Version >= 5)
		switch code {
		case 0:
		case kerr.InvalidTxnState.Code, kerr.ProducerFenced.Code, kerr.InvalidProducerEpoch.Code,
			kerr.InvalidProducerIDMapping.Code, kerr.ConcurrentTransactions.Code:
			return now(answer(func(string, int32) int16 { return code })), nil
		default: // the transaction's coordinator could not be asked
			return now(answer(func(string, int32) int16 { return kerr.CoordinatorNotAvailable.Code })), nil
		}
	}
	done := make(chan *kmsg.TxnOffsetCommitResponse, 1)
	c.TxnCommit(commit, func(resp *kmsg.TxnOffsetCommitResponse) { done <- resp })
	return func() kmsg.Response {
		select {
		case resp := <-done:
			if commit == req {
				return resp
			}
			// Put the denied topics back, in the request's order.
			out := answer(func(string, int32) int16 { return 0 })
			for i, j := 0, 0; i < len(req.Topics); i++ {
				if !denied[i] && j < len(resp.Topics) {
					out.Topics[i] = resp.Topics[j]
					j++
				}
			}
			out.ThrottleMillis = resp.ThrottleMillis
			return out
		case <-r.ctx.Done():
			return nil
		}
	}, nil
}
