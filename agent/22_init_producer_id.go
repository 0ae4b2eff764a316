package agent

// InitProducerID: v0-5
//
// Hands out producer ids for idempotent producers from blocks the
// controller journals (AllocateProducerIDs), so ids are never reused across
// agents or restarts. A producer that names its current id and epoch (v3+,
// KIP-360) gets the same id with the epoch bumped, or a fresh id when the
// epoch would overflow. Transactional ids are refused: transactions are not
// served.
//
// Version notes:
// * v2: ThrottleMillis
// * v3: ProducerID/ProducerEpoch in the request
// * v4: flexible versions

import (
	"context"
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(22, 0, 5, handleInitProducerID) }

// producerIDBlock is how many ids one journal entry reserves.
const producerIDBlock = 1000

func handleInitProducerID(a *Agent, r *request) (reply, error) {
	req := r.kreq.(*kmsg.InitProducerIDRequest)
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return now(resp), nil
	}
	if req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < math.MaxInt16-1 {
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
		return now(resp), nil
	}
	id, err := a.nextProducerID(r.ctx)
	if err != nil {
		a.log.Warn("allocate producer id", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return now(resp), nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return now(resp), nil
}

func (a *Agent) nextProducerID(ctx context.Context) (int64, error) {
	a.pidMu.Lock()
	defer a.pidMu.Unlock()
	if a.pidNext >= a.pidEnd {
		st, err := a.propose(ctx, metadata.AllocateProducerIDs{Agent: a.cfg.ID, Count: producerIDBlock})
		if err != nil {
			return 0, err
		}
		b, ok := st.ProducerBlocks[a.cfg.ID]
		if !ok {
			return 0, fmt.Errorf("producer id block missing after allocation")
		}
		a.pidNext, a.pidEnd = b.First, b.First+b.Count
	}
	id := a.pidNext
	a.pidNext++
	return id, nil
}
