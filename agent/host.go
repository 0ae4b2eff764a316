package agent

import (
	"context"

	"github.com/google/uuid"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/peer"
	"github.com/tlog-io/tlog/metadata"
)

// host is the agent as replication and tiering see it.
type host struct{ a *Agent }

func (h host) Partitions() []partition.Held {
	a := h.a
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []partition.Held
	for _, t := range a.byID {
		for i, p := range t.parts {
			if i < len(t.meta.Partitions) {
				out = append(out, partition.Held{P: p, Topic: t.id, Name: t.name, Index: int32(i), Meta: t.meta.Partitions[i]})
			}
		}
	}
	return out
}

func (h host) Partition(topic uuid.UUID, idx int32) (partition.Held, bool) {
	t := h.a.topicByID(topic)
	if t == nil || idx < 0 || int(idx) >= len(t.parts) || int(idx) >= len(t.meta.Partitions) {
		return partition.Held{}, false
	}
	return partition.Held{P: t.parts[idx], Topic: t.id, Name: t.name, Index: idx, Meta: t.meta.Partitions[idx]}, true
}

func (h host) Dial(ctx context.Context, id int32) (*peer.Conn, error) {
	return h.a.dialPeer(ctx, id)
}

func (h host) State() *metadata.State { return h.a.meta.State() }

func (h host) Poke() { h.a.meta.Poke() }

func (h host) Propose(ctx context.Context, cmds ...metadata.Command) (*metadata.State, error) {
	return h.a.propose(ctx, cmds...)
}

func (h host) RestoreProducers(topic uuid.UUID, idx int32, p *partition.Partition) {
	if t := h.a.topicByID(topic); t != nil {
		h.a.maybeRestoreProducers(t, idx, p)
	}
}

func (h host) IsController() bool { return h.a.meta.IsController() }

func (h host) UnflushedBytes() int64 { return h.a.unflushedBytes() }
