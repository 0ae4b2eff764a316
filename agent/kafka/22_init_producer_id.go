package kafka

// InitProducerID: v0-5
//
// Hands out producer ids for idempotent producers from blocks the
// controller journals (AllocateProducerIDs), so ids are never reused across
// agents or restarts. Every call without a transactional id gets a fresh id
// at epoch 0, as Kafka answers non-transactional producers. With one, the
// transaction coordinator of the id answers: the id's producer id at its
// next epoch, fencing the previous producer (see agent/txn).
// With an authorizer: WRITE on the transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); without one IDEMPOTENT_WRITE on
// the cluster or WRITE on some topic (CLUSTER_AUTHORIZATION_FAILED). An
// idempotent producer's id is bound to the principal that asked for it
// (producerids.go).
//
// Version notes:
// * v2: ThrottleMillis
// * v3: ProducerID/ProducerEpoch in the request
// * v4: flexible versions

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(22, 0, 5, handleInitProducerID) }

func handleInitProducerID(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	switch {
	case req.TransactionalID != nil && !r.allowedTxnID(*req.TransactionalID, metadata.OpWrite):
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return now(resp), nil
	case req.TransactionalID == nil && !r.allowedCluster(metadata.OpIdempotentWrite) && !r.allowedAnyTopic(metadata.OpWrite):
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return now(resp), nil
	}
	if req.TransactionalID != nil {
		return s.initTransactional(r, req, resp)
	}
	// Without a transactional id Kafka always hands out a fresh id, even
	// when the client names its current one (KIP-360 epoch bumps are for
	// transactional producers), and so do we.
	id, err := s.b.NewProducerID(r.ctx)
	if err != nil {
		s.log.Warn("allocate producer id", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return now(resp), nil
	}
	resp.ProducerID, resp.ProducerEpoch = s.idempotentProducerID(r.Principal(), id), 0
	return now(resp), nil
}

func (s *Server) initTransactional(r *request, req *kmsg.InitProducerIDRequest, resp *kmsg.InitProducerIDResponse) (reply, error) {
	if *req.TransactionalID == "" {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return now(resp), nil
	}
	c, code := s.b.TxnCoordinator(*req.TransactionalID)
	if code != 0 {
		resp.ErrorCode = code
		return now(resp), nil
	}
	pid, epoch := int64(-1), int16(-1)
	if req.Version >= 3 {
		pid, epoch = req.ProducerID, req.ProducerEpoch
	}
	type result struct {
		pid   int64
		epoch int16
		code  int16
	}
	done := make(chan result, 1)
	timeout := time.Duration(req.TransactionTimeoutMillis) * time.Millisecond
	c.InitProducerID(r.ctx, *req.TransactionalID, timeout, pid, epoch, func(p int64, e int16, code int16) {
		done <- result{p, e, code}
	})
	return func() kmsg.Response {
		select {
		case res := <-done:
			resp.ProducerID, resp.ProducerEpoch, resp.ErrorCode = res.pid, res.epoch, res.code
			if res.code == kerr.ProducerFenced.Code && req.Version < 4 {
				resp.ErrorCode = kerr.InvalidProducerEpoch.Code // PRODUCER_FENCED is v4+
			}
		case <-r.ctx.Done():
			return nil
		}
		return resp
	}, nil
}
