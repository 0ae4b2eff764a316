package agent

import (
	"context"
	"fmt"

	"github.com/tlog-io/tlog/metadata"
)

// producerIDBlock is how many ids one journal entry reserves.
const producerIDBlock = 1000

// newProducerID hands out a producer id never used before, from blocks the
// controller journals (AllocateProducerIDs), so ids are never reused
// across agents or restarts.
func (a *Agent) newProducerID(ctx context.Context) (int64, error) {
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
