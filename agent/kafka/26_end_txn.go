package kafka

// EndTxn: v0-3
//
// Commits or aborts the producer's transaction: the coordinator writes its
// decision to __transaction_state, then the markers to every partition of
// the transaction, and answers once they are all in (or 1 s after the
// decision, if they are slow: the decision stands). Until the markers are
// in, the producer's next AddPartitionsToTxn or EndTxn gets
// CONCURRENT_TRANSACTIONS and retries. The producer epoch is not bumped
// per transaction (transactions version 1).
//
// Version notes:
// * v2: PRODUCER_FENCED (older versions get INVALID_PRODUCER_EPOCH)
// * v3: flexible versions

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(26, 0, 3, handleEndTxn) }

func handleEndTxn(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.EndTxnRequest)
	resp := req.ResponseKind().(*kmsg.EndTxnResponse)
	c, code := s.b.TxnCoordinator(req.TransactionalID)
	if code != 0 {
		resp.ErrorCode = code
		return now(resp), nil
	}
	done := make(chan int16, 1)
	c.EndTxn(req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit, func(code int16) { done <- code })
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
