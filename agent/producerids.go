package agent

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/tlog-io/tlog/metadata"
)

// producerIDBlock is how many ids one journal entry reserves.
const producerIDBlock = 1000

// pidCounterShift leaves the low bits of every producer id to the front
// end, which marks an idempotent producer's id with a MAC of its
// principal (agent/kafka/producerids.go); transactional ids keep them 0.
const pidCounterShift = 24

// newProducerID hands out a producer id never used before, from blocks the
// controller journals (AllocateProducerIDs), so ids are never reused
// across agents or restarts: the block's counter, shifted left by
// pidCounterShift. The first allocation also journals the cluster's
// producer id key.
func (a *Agent) newProducerID(ctx context.Context) (int64, error) {
	a.pidMu.Lock()
	defer a.pidMu.Unlock()
	if a.pidNext >= a.pidEnd {
		alloc := metadata.AllocateProducerIDs{Agent: a.cfg.ID, Count: producerIDBlock}
		if len(a.meta.State().ProducerIDKey) == 0 {
			alloc.Key = make([]byte, 32)
			rand.Read(alloc.Key)
		}
		st, err := a.propose(ctx, alloc)
		if err != nil {
			return 0, err
		}
		b, ok := st.ProducerBlocks[a.cfg.ID]
		if !ok {
			return 0, fmt.Errorf("producer id block missing after allocation")
		}
		a.pidNext, a.pidEnd = b.First, b.First+b.Count
	}
	c := a.pidNext
	if c >= 1<<(63-pidCounterShift) {
		return 0, fmt.Errorf("producer ids exhausted (counter %d)", c)
	}
	a.pidNext++
	return c << pidCounterShift, nil
}
