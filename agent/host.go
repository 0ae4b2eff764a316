package agent

import (
	"context"

	"github.com/google/uuid"

	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/peer"
	"github.com/tlog-io/tlog/agent/topic"
	"github.com/tlog-io/tlog/agent/txn"
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
		for i, p := range t.Parts {
			if i < len(t.Meta.Partitions) {
				out = append(out, partition.Held{P: p, Topic: t.ID, Name: t.Name, Index: int32(i), Meta: t.Meta.Partitions[i]})
			}
		}
	}
	return out
}

func (h host) Partition(topic uuid.UUID, idx int32) (partition.Held, bool) {
	t := h.a.topicByID(topic)
	if t == nil || idx < 0 || int(idx) >= len(t.Parts) || int(idx) >= len(t.Meta.Partitions) {
		return partition.Held{}, false
	}
	return partition.Held{P: t.Parts[idx], Topic: t.ID, Name: t.Name, Index: idx, Meta: t.Meta.Partitions[idx]}, true
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

func (h host) Doom(ctx context.Context, decide func(*metadata.State) []string) ([]string, error) {
	return h.a.meta.Doom(ctx, decide)
}

func (h host) Forget(keys []string) { h.a.meta.Forget(keys) }

func (h host) UnflushedBytes() int64 { return h.a.unflushedBytes() }

// backend is the agent as the Kafka front end sees it.
type backend struct{ a *Agent }

func (b backend) TopicByName(name string) *topic.Topic { return b.a.topicByName(name) }
func (b backend) TopicByID(id uuid.UUID) *topic.Topic  { return b.a.topicByID(id) }

func (b backend) Topics() []*topic.Topic {
	a := b.a
	a.mu.RLock()
	defer a.mu.RUnlock()
	out := make([]*topic.Topic, 0, len(a.topics))
	for _, t := range a.topics {
		out = append(out, t)
	}
	return out
}

func (b backend) State() *metadata.State { return b.a.meta.State() }

func (b backend) Propose(ctx context.Context, cmds ...metadata.Command) (*metadata.State, error) {
	return b.a.propose(ctx, cmds...)
}

func (b backend) ControllerID() int32 { return b.a.meta.ControllerID() }

func (b backend) Coordinator(groupID string) (*group.Coordinator, int16) {
	return b.a.coordinatorFor(groupID)
}

func (b backend) Coordinators() []*group.Coordinator {
	a := b.a
	a.coordMu.Lock()
	defer a.coordMu.Unlock()
	out := make([]*group.Coordinator, 0, len(a.coords))
	for _, gc := range a.coords {
		out = append(out, gc.c)
	}
	return out
}

func (b backend) EnsureOffsetsTopic(ctx context.Context) error { return b.a.ensureOffsetsTopic(ctx) }
func (b backend) GroupTopicNames() map[[16]byte]string         { return b.a.topicNamesByID() }
func (b backend) SessionLive() bool                            { return b.a.sessionLive() }
func (b backend) DataMoved() <-chan struct{}                   { return b.a.data.wait() }
func (b backend) UnflushedBytes() int64                        { return b.a.unflushedBytes() }
func (b backend) Flush()                                       { b.a.tier.Kick() }

func (b backend) SetDraining(ctx context.Context, id int32, draining bool) error {
	return b.a.SetDraining(ctx, id, draining)
}

func (b backend) NewProducerID(ctx context.Context) (int64, error) { return b.a.newProducerID(ctx) }

func (b backend) TxnCoordinator(txnID string) (*txn.Coordinator, int16) {
	return b.a.txnCoordinatorFor(txnID)
}
func (b backend) EnsureTxnTopic(ctx context.Context) error { return b.a.ensureTxnTopic(ctx) }

func (b backend) TxnMarkerWritten(topicName string, idx int32, pid int64, commit bool) {
	b.a.txnMarkerWritten(topicName, idx, pid, commit)
}

func (b backend) TxnCoordinators() []*txn.Coordinator {
	a := b.a
	a.txnMu.Lock()
	defer a.txnMu.Unlock()
	out := make([]*txn.Coordinator, 0, len(a.txnCoords))
	for _, tc := range a.txnCoords {
		out = append(out, tc.c.Coordinator)
	}
	return out
}

func (b backend) VerifyTxn(ctx context.Context, txnID string, pid int64, epoch int16, tp txn.TP, add bool) int16 {
	return b.a.verifyTxn(ctx, txnID, pid, epoch, tp, add)
}
