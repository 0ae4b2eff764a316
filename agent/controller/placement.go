package controller

import (
	"errors"
	"fmt"
	"sort"

	"github.com/google/uuid"

	"github.com/tlog-io/tlog/agent/topic"
	"github.com/tlog-io/tlog/metadata"
)

// Placement of new topics and partitions: pure functions of a metadata
// state, shared by CreateTopics, CreatePartitions and the group
// coordinators' offsets topic.

var (
	ErrInvalidPartitions        = errors.New("invalid partitions")
	ErrInvalidReplicationFactor = errors.New("invalid replication factor")
	ErrInvalidReplicaAssignment = errors.New("invalid replica assignment")
	// ErrInvalidRequest: a request that contradicts itself or the
	// cluster's state (Kafka's INVALID_REQUEST).
	ErrInvalidRequest = errors.New("invalid request")
)

// The most partitions one topic, and the whole cluster, may have: what an
// agent serves, restarts with and keeps in metadata comfortably. Measured
// on 2 cores with one agent leading them all (docs/reliability.md): at
// 50,000 partitions an idle agent spends about 8% of a core on the
// controller's scans, is serving every partition 2.5 s after a restart and
// holds 240 MB; at 100,000 it is 17%, 9.6 s and 320 MB, with a 16 MB
// metadata snapshot rewritten as the journal grows. A single topic is held
// to a fifth of that, as a topic's partitions are read and rewritten
// together.
const (
	MaxTopicPartitions   = 10_000
	MaxClusterPartitions = 50_000
)

// CheckPartitionLimits checks a topic growing from have to have+adding
// partitions against MaxTopicPartitions and MaxClusterPartitions.
func CheckPartitionLimits(st *metadata.State, have, adding int) error {
	if have+adding > MaxTopicPartitions {
		return fmt.Errorf("%w: %d partitions; a topic may have at most %d", ErrInvalidPartitions, have+adding, MaxTopicPartitions)
	}
	total := 0
	for _, t := range st.Topics {
		total += len(t.Partitions)
	}
	if total+adding > MaxClusterPartitions {
		return fmt.Errorf("%w: the cluster would have %d partitions; it may have at most %d (it has %d)", ErrInvalidPartitions, total+adding, MaxClusterPartitions, total)
	}
	return nil
}

// NewTopic is what a CreateTopics request asks for. Partitions and
// ReplicationFactor of -1 take the defaults; Assignment, if given, fixes
// the replicas of each partition (first replica leads).
type NewTopic struct {
	Name              string
	Partitions        int32
	ReplicationFactor int16
	Configs           map[string]string
	Assignment        [][]int32
}

// PlanTopic builds the CreateTopic command for req without applying it
// (validate-only requests stop here). defaultPartitions serves
// Partitions -1.
func PlanTopic(st *metadata.State, req NewTopic, defaultPartitions int32) (metadata.CreateTopic, error) {
	var cmd metadata.CreateTopic
	if err := metadata.ValidateTopicName(req.Name); err != nil {
		return cmd, err
	}
	if _, ok := st.TopicByName(req.Name); ok {
		return cmd, fmt.Errorf("%w: %q", metadata.ErrTopicExists, req.Name)
	}
	if err := topic.ValidateConfigs(req.Configs); err != nil {
		return cmd, err
	}
	agents := PlacementOrder(st)
	partitions, rf := req.Partitions, req.ReplicationFactor
	var specs []metadata.PartitionSpec
	if len(req.Assignment) > 0 {
		if partitions != -1 || rf != -1 {
			return cmd, fmt.Errorf("%w: with a replica assignment, partitions and replication factor must be -1", ErrInvalidRequest)
		}
		if err := CheckPartitionLimits(st, 0, len(req.Assignment)); err != nil {
			return cmd, err
		}
		for i, reps := range req.Assignment {
			if err := ValidateReplicas(st, reps); err != nil {
				return cmd, fmt.Errorf("partition %d: %w", i, err)
			}
			specs = append(specs, metadata.PartitionSpec{Replicas: append([]int32(nil), reps...), Leader: reps[0]})
		}
	} else {
		if partitions == -1 {
			partitions = defaultPartitions
		}
		if rf == -1 {
			rf = int16(min(3, len(agents)))
		}
		if partitions <= 0 {
			return cmd, fmt.Errorf("%w: %d partitions (must be 1 to %d)", ErrInvalidPartitions, partitions, MaxTopicPartitions)
		}
		if err := CheckPartitionLimits(st, 0, int(partitions)); err != nil {
			return cmd, err
		}
		if rf <= 0 || int(rf) > len(agents) {
			return cmd, fmt.Errorf("%w: %d with %d agents", ErrInvalidReplicationFactor, rf, len(agents))
		}
		specs = PlaceReplicas(agents, len(st.Topics), int(partitions), int(rf))
	}
	cfg := make(map[string]string, len(req.Configs))
	for k, v := range req.Configs {
		cfg[k] = v
	}
	cmd = metadata.CreateTopic{ID: uuid.New(), Name: req.Name, Partitions: specs, Configs: cfg}
	// The state machine's own checks (name collisions among them), so a
	// validate-only request answers what a real one would.
	if _, err := st.Next(cmd); err != nil {
		return cmd, err
	}
	return cmd, nil
}

// ValidateReplicas checks one partition's replica list: registered
// agents, each once.
func ValidateReplicas(st *metadata.State, reps []int32) error {
	if len(reps) == 0 {
		return fmt.Errorf("%w: empty replica list", ErrInvalidReplicationFactor)
	}
	seen := map[int32]bool{}
	for _, r := range reps {
		if _, ok := st.Agents[r]; !ok {
			return fmt.Errorf("%w: agent %d is not registered", ErrInvalidReplicaAssignment, r)
		}
		if seen[r] {
			return fmt.Errorf("%w: agent %d listed twice", ErrInvalidReplicaAssignment, r)
		}
		seen[r] = true
	}
	return nil
}

// PlacementOrder lists the agents new replicas may go to (live, not
// draining), interleaving zones: consecutive agents in it are in different
// zones where there are several, so the replicas PlaceReplicas takes
// consecutively spread over zones.
func PlacementOrder(st *metadata.State) []int32 {
	byZone := map[string][]int32{}
	var zones []string
	for _, id := range st.AgentIDs() {
		ag := st.Agents[id]
		if ag.Fenced || ag.Draining {
			continue
		}
		if _, ok := byZone[ag.Zone]; !ok {
			zones = append(zones, ag.Zone)
		}
		byZone[ag.Zone] = append(byZone[ag.Zone], id)
	}
	sort.Strings(zones)
	var out []int32
	for i := 0; ; i++ {
		added := false
		for _, z := range zones {
			if i < len(byZone[z]) {
				out = append(out, byZone[z][i])
				added = true
			}
		}
		if !added {
			return out
		}
	}
}

// PlaceReplicas spreads partitions round-robin over agents, starting at an
// offset derived from salt (the topic count) so leaders of many topics
// don't all land on the first agent.
func PlaceReplicas(agents []int32, salt, partitions, rf int) []metadata.PartitionSpec {
	specs := make([]metadata.PartitionSpec, partitions)
	for i := range specs {
		reps := make([]int32, rf)
		for j := range reps {
			reps[j] = agents[(salt+i+j)%len(agents)]
		}
		specs[i] = metadata.PartitionSpec{Replicas: reps, Leader: reps[0]}
	}
	return specs
}
