package kafka

// EndTxn: v0-5
//
// Commits or aborts the producer's transaction: the coordinator writes its
// decision to __transaction_state, then the markers to every partition of
// the transaction, and answers once they are all in (or 1 s after the
// decision, if they are slow: the decision stands). Until the markers are
// in, the producer's next AddPartitionsToTxn or EndTxn gets
// CONCURRENT_TRANSACTIONS and retries.
// With an authorizer: WRITE on the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED).
//
// Version notes:
// * v2: PRODUCER_FENCED (older versions get INVALID_PRODUCER_EPOCH)
// * v3: flexible versions
// * v5: transactions version 2 (KIP-890 part 2): every decision bumps the
//   producer epoch, the markers carry the new one (fencing late writes of
//   the transaction), and the response names the producer id and epoch
//   the producer goes on with; a retry at the old epoch is recognised; an
//   abort with no transaction open is taken (it bumps the epoch)

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(26, 0, 5, handleEndTxn) }

func handleEndTxn(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.EndTxnRequest)
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if !r.allowedTxnID(req.TransactionalID, metadata.OpWrite) {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return now(resp), nil
	}
	c, code := s.b.TxnCoordinator(req.TransactionalID)
	if code != 0 {
		resp.ErrorCode = code
		return now(resp), nil
	}
	type result struct {
		pid   int64
		epoch int16
		code  int16
	}
	done := make(chan result, 1)
	c.EndTxn(r.ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit, req.Version >= 5,
		func(pid int64, epoch int16, code int16) { done <- result{pid, epoch, code} })
	return func() kmsg.Response {
		select {
		case res := <-done:
			resp.ErrorCode = fencedCode(res.code, req.Version < 2)
			if res.code == 0 && req.Version >= 5 {
				resp.ProducerID, resp.ProducerEpoch = res.pid, res.epoch
			}
			return resp
		case <-r.ctx.Done():
			return nil
		}
	}, nil
}
