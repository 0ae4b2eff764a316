// Package topic is a topic as an agent holds it (its partitions, its
// metadata and its configs) and the table of topic configs tlog honours:
// their names, defaults and valid values. The agent builds Topics from the
// metadata; the Kafka front end and the group coordinators read them.
package topic

import (
	"github.com/google/uuid"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/metadata"
)

// Topic is the agent's live view of one topic. A Topic is never changed
// once published: a metadata change builds a new one (partitions carry
// over), so readers need no lock.
type Topic struct {
	ID      uuid.UUID
	Name    string
	Configs map[string]string
	Parts   []*partition.Partition
	Meta    *metadata.Topic
}

// Partition returns partition idx, or nil if the topic has no such
// partition.
func (t *Topic) Partition(idx int32) *partition.Partition {
	if t == nil || idx < 0 || int(idx) >= len(t.Parts) {
		return nil
	}
	return t.Parts[idx]
}
