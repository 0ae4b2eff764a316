package kafka

// AddOffsetsToTxn: v0-4
//
// Adds a group's __consumer_offsets partition to the producer's
// transaction, so the offsets it commits with TxnOffsetCommit are
// committed or aborted with the transaction.
// With an authorizer: WRITE on the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), READ on the group
// (GROUP_AUTHORIZATION_FAILED).
//
// Version notes:
// * v3: flexible versions
// * v4: may answer TRANSACTION_ABORTABLE (KIP-890; the same request)

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/agent/txn"
	"github.com/tlog-io/tlog/metadata"
)

func init() { register(25, 0, 4, handleAddOffsetsToTxn) }

func handleAddOffsetsToTxn(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.AddOffsetsToTxnRequest)
	resp := req.ResponseKind().(*kmsg.AddOffsetsToTxnResponse)
	switch {
	case !r.allowedTxnID(req.TransactionalID, metadata.OpWrite):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return now(resp), nil
	case !r.allowedGroup(req.Group, metadata.OpRead):
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return now(resp), nil
	}
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return now(resp), nil
	}
	if s.b.TopicByName(group.OffsetsTopic) == nil {
		if err := s.b.EnsureOffsetsTopic(r.ctx); err != nil {
			s.log.Warn("create "+group.OffsetsTopic, "err", err)
		}
	}
	t := s.b.TopicByName(group.OffsetsTopic)
	if t == nil || len(t.Parts) == 0 {
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return now(resp), nil
	}
	c, code := s.b.TxnCoordinator(req.TransactionalID)
	if code != 0 {
		resp.ErrorCode = code
		return now(resp), nil
	}
	tp := txn.TP{Topic: group.OffsetsTopic, Partition: group.CoordinatorPartition(req.Group, len(t.Parts))}
	done := make(chan int16, 1)
	c.AddPartitions(req.TransactionalID, req.ProducerID, req.ProducerEpoch, []txn.TP{tp}, func(code int16) { done <- code })
	return func() kmsg.Response {
		select {
		case code := <-done:
			resp.ErrorCode = fencedCode(code, req.Version < 2)
			return resp
		case <-r.ctx.Done():
			return nil
		}
	}, nil
}
