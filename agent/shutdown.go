package agent

// Controlled shutdown, as Kafka's controlled.shutdown.enable: an agent
// stopped on purpose (SIGTERM, Close) hands the partitions it leads to
// in-sync followers before it goes, so clients move over within a
// metadata refresh instead of waiting out its session. It stops
// heartbeating, has the controller fence it (a fenced agent leads nothing
// and is left out of ISRs: the controller's next round elects new
// leaders), and waits a bounded time for those elections. Its next start
// registers a new incarnation, which lifts the fence; it then catches up
// as a follower and the balancer hands its preferred leaderships back.

import (
	"context"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/tlog-io/tlog/metadata"
)

// handOffTimeout bounds the wait for new leaders; past it the agent stops
// anyway and the rest move when the controller notices, as after a crash.
const handOffTimeout = 5 * time.Second

// handOff moves leadership off this agent before it stops. It reports how
// many partitions moved.
func (a *Agent) handOff() int {
	if a.standalone() || a.client == nil {
		return 0
	}
	movable := a.movableLeads(a.meta.State())
	if len(movable) == 0 {
		return 0
	}
	start := time.Now()
	// No heartbeat may reach the controller after the fence: it would lift
	// it (a heartbeat from a fenced agent re-registers it).
	a.client.stopHeartbeats()
	ctx, cancel := context.WithTimeout(context.Background(), handOffTimeout)
	defer cancel()
	if _, err := a.propose(ctx, metadata.SetAgentFenced{ID: a.cfg.ID, Fenced: true, At: a.cfg.Clock.Now().UTC()}); err != nil {
		a.log.Warn("controlled shutdown: cannot hand leadership over; the controller moves it once this agent's session lapses", "partitions", len(movable), "err", err)
		return 0
	}
	for {
		left := 0
		st := a.meta.State()
		for _, k := range movable {
			if p, ok := st.Partition(k.topic, k.idx); ok && p.Leader == a.cfg.ID {
				left++
			}
		}
		if left == 0 {
			a.log.Info("controlled shutdown: leadership handed over", "partitions", len(movable), "took", time.Since(start).Round(time.Millisecond))
			return len(movable)
		}
		wake := a.metaChanged.wait()
		select {
		case <-wake:
		case <-time.After(100 * time.Millisecond):
			// A push may be lost; read the journal.
			if err := a.meta.Sync(ctx); err != nil && ctx.Err() == nil {
				a.log.Debug("controlled shutdown: journal sync", "err", err)
			}
		case <-ctx.Done():
			a.log.Warn("controlled shutdown: stopping with leaderships not yet moved", "partitions", left, "waited", time.Since(start).Round(time.Millisecond))
			return len(movable) - left
		}
	}
}

type partitionKey struct {
	topic uuid.UUID
	idx   int32
}

// movableLeads lists the partitions this agent leads that another live,
// in-sync replica can take over (the rest stay put: moving them would
// only take them offline sooner).
func (a *Agent) movableLeads(st *metadata.State) []partitionKey {
	var out []partitionKey
	for _, t := range st.Topics {
		for i, p := range t.Partitions {
			if p.Leader != a.cfg.ID {
				continue
			}
			if slices.ContainsFunc(p.ISR, func(id int32) bool { return id != a.cfg.ID && st.AgentLive(id) }) {
				out = append(out, partitionKey{t.ID, int32(i)})
			}
		}
	}
	return out
}
