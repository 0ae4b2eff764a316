package agent

// Consumer groups live in the internal topic __consumer_offsets: group g
// is coordinated by the leader of partition abs(javaHash(g)) % N, as in
// Kafka, so groups move with partition leadership and their state is
// replicated, flushed and recovered like any data. This file runs one
// group.Coordinator per offsets partition this agent leads (keepers.go
// runs it).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tlog-io/tlog/agent/group"
)

// groupCoord is a group coordinator with the partition it writes to.
type groupCoord = keeperRun[*group.Coordinator]

// coordinatorFor returns the coordinator of a group on this agent, or the
// error a client gets: NOT_COORDINATOR if another agent coordinates it,
// COORDINATOR_NOT_AVAILABLE while __consumer_offsets does not exist.
func (a *Agent) coordinatorFor(groupID string) (*group.Coordinator, int16) {
	t := a.topicByName(group.OffsetsTopic)
	if t == nil || len(t.Parts) == 0 {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	idx := group.CoordinatorPartition(groupID, len(t.Parts))
	a.coordMu.Lock()
	gc := a.coords[idx]
	a.coordMu.Unlock()
	if gc == nil || gc.p != t.Parts[idx] {
		return nil, kerr.NotCoordinator.Code
	}
	return gc.c, 0
}

// ensureOffsetsTopic creates __consumer_offsets when the first group
// client shows up.
func (a *Agent) ensureOffsetsTopic(ctx context.Context) error {
	return a.ensureInternalTopic(ctx, group.OffsetsTopic, a.cfg.OffsetsPartitions)
}

// reconcileCoordinators starts a coordinator for every offsets partition
// this agent now leads and closes those it no longer leads.
func (a *Agent) reconcileCoordinators() {
	t := a.topicByName(group.OffsetsTopic) // before coordMu: a leaf
	a.coordMu.Lock()
	defer a.coordMu.Unlock()
	reconcileKeepers(a, t, a.coords, "consumer groups", func(gc *groupCoord) *group.Coordinator {
		return group.New(group.Config{
			Write:                     gc.w.write,
			WriteTxn:                  gc.w.writeTxn,
			InitialRebalanceDelay:     a.cfg.GroupInitialRebalanceDelay,
			MinSessionTimeout:         a.cfg.GroupMinSessionTimeout,
			MaxSessionTimeout:         a.cfg.GroupMaxSessionTimeout,
			OffsetsRetention:          a.cfg.OffsetsRetention,
			Topics:                    a.groupTopics,
			ConsumerHeartbeatInterval: a.cfg.GroupConsumerHeartbeatInterval,
			ConsumerSessionTimeout:    a.cfg.GroupConsumerSessionTimeout,
			Logger:                    a.log.With("offsets_partition", gc.idx),
		})
	})
}

// groupTopics is group.Config.Topics: every topic, as of the metadata
// sequence number, built once per change.
func (a *Agent) groupTopics() (map[string]group.TopicMeta, uint64) {
	st := a.meta.State()
	a.groupTopicsMu.Lock()
	defer a.groupTopicsMu.Unlock()
	if a.groupTopicsCache == nil || a.groupTopicsSeq != st.Seq {
		m := make(map[string]group.TopicMeta, len(st.Topics))
		for _, t := range st.Topics {
			m[t.Name] = group.TopicMeta{ID: t.ID, Partitions: int32(len(t.Partitions))}
		}
		a.groupTopicsCache, a.groupTopicsSeq = m, st.Seq
	}
	return a.groupTopicsCache, a.groupTopicsSeq
}

// topicNamesByID maps topic ids to names, for group descriptions.
func (a *Agent) topicNamesByID() map[[16]byte]string {
	topics, _ := a.groupTopics()
	out := make(map[[16]byte]string, len(topics))
	for name, tm := range topics {
		out[tm.ID] = name
	}
	return out
}

// closeCoordinators closes every coordinator (shutdown).
func (a *Agent) closeCoordinators() {
	a.coordMu.Lock()
	coords := a.coords
	a.coords = map[int32]*groupCoord{}
	a.coordMu.Unlock()
	closeKeepers(coords)
}
