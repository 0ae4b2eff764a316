package kafka

// InitProducerID: v0-5
//
// Hands out producer ids for idempotent producers from blocks the
// controller journals (AllocateProducerIDs), so ids are never reused across
// agents or restarts. Every call gets a fresh id at epoch 0, as Kafka answers
// non-transactional producers. Transactional ids are refused: transactions
// are not served.
//
// Version notes:
// * v2: ThrottleMillis
// * v3: ProducerID/ProducerEpoch in the request
// * v4: flexible versions

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(22, 0, 5, handleInitProducerID) }

// producerIDBlock is how many ids one journal entry reserves.
const producerIDBlock = 1000

func handleInitProducerID(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return now(resp), nil
	}
	// Without a transactional id Kafka always hands out a fresh id, even
	// when the client names its current one (KIP-360 epoch bumps are for
	// transactional producers), and so do we.
	id, err := s.nextProducerID(r.ctx)
	if err != nil {
		s.log.Warn("allocate producer id", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return now(resp), nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return now(resp), nil
}

func (s *Server) nextProducerID(ctx context.Context) (int64, error) {
	s.pidMu.Lock()
	defer s.pidMu.Unlock()
	if s.pidNext >= s.pidEnd {
		st, err := s.b.Propose(ctx, metadata.AllocateProducerIDs{Agent: s.cfg.ID, Count: producerIDBlock})
		if err != nil {
			return 0, err
		}
		b, ok := st.ProducerBlocks[s.cfg.ID]
		if !ok {
			return 0, fmt.Errorf("producer id block missing after allocation")
		}
		s.pidNext, s.pidEnd = b.First, b.First+b.Count
	}
	id := s.pidNext
	s.pidNext++
	return id, nil
}
