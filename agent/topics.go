package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sort"
	"strconv"

	"github.com/google/uuid"

	"github.com/tlog-io/tlog/metadata"
)

var errInvalidPartitions = errors.New("invalid partitions")
var errInvalidReplicationFactor = errors.New("invalid replication factor")

// validateTopicName applies Kafka's rules (1-249 characters of
// [a-zA-Z0-9._-], not "." or "..").
func validateTopicName(name string) error { return metadata.ValidateTopicName(name) }

// createTopic validates and creates a topic through the controller.
// partitions and rf of -1 take the agent's defaults; assignment, if given,
// fixes the replicas of each partition (first replica leads).
func (a *Agent) createTopic(ctx context.Context, name string, partitions int32, rf int16, configs map[string]string, assignment [][]int32) error {
	spec, err := a.planTopic(name, partitions, rf, configs, assignment)
	if err != nil {
		return err
	}
	_, err = a.propose(ctx, spec)
	return err
}

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

// checkPartitionLimits checks a topic growing from have to have+adding
// partitions against MaxTopicPartitions and MaxClusterPartitions.
func checkPartitionLimits(st *metadata.State, have, adding int) error {
	if have+adding > MaxTopicPartitions {
		return fmt.Errorf("%w: %d partitions; a topic may have at most %d", errInvalidPartitions, have+adding, MaxTopicPartitions)
	}
	total := 0
	for _, t := range st.Topics {
		total += len(t.Partitions)
	}
	if total+adding > MaxClusterPartitions {
		return fmt.Errorf("%w: the cluster would have %d partitions; it may have at most %d (it has %d)", errInvalidPartitions, total+adding, MaxClusterPartitions, total)
	}
	return nil
}

// planTopic builds the CreateTopic command without applying it (also used
// for validate-only requests).
func (a *Agent) planTopic(name string, partitions int32, rf int16, configs map[string]string, assignment [][]int32) (metadata.CreateTopic, error) {
	var cmd metadata.CreateTopic
	if err := validateTopicName(name); err != nil {
		return cmd, err
	}
	st := a.meta.State()
	if _, ok := st.TopicByName(name); ok {
		return cmd, fmt.Errorf("%w: %q", metadata.ErrTopicExists, name)
	}
	if err := validateTopicConfigs(configs); err != nil {
		return cmd, err
	}
	agents := placementOrder(st)
	var specs []metadata.PartitionSpec
	if len(assignment) > 0 {
		if partitions != -1 || rf != -1 {
			return cmd, fmt.Errorf("%w: with a replica assignment, partitions and replication factor must be -1", errInvalidRequest)
		}
		if err := checkPartitionLimits(st, 0, len(assignment)); err != nil {
			return cmd, err
		}
		for i, reps := range assignment {
			if err := validateReplicas(st, reps); err != nil {
				return cmd, fmt.Errorf("partition %d: %w", i, err)
			}
			specs = append(specs, metadata.PartitionSpec{Replicas: append([]int32(nil), reps...), Leader: reps[0]})
		}
	} else {
		if partitions == -1 {
			partitions = a.cfg.DefaultPartitions
		}
		if rf == -1 {
			rf = int16(min(3, len(agents)))
		}
		if partitions <= 0 {
			return cmd, fmt.Errorf("%w: %d partitions (must be 1 to %d)", errInvalidPartitions, partitions, MaxTopicPartitions)
		}
		if err := checkPartitionLimits(st, 0, int(partitions)); err != nil {
			return cmd, err
		}
		if rf <= 0 || int(rf) > len(agents) {
			return cmd, fmt.Errorf("%w: %d with %d agents", errInvalidReplicationFactor, rf, len(agents))
		}
		specs = placeReplicas(agents, len(st.Topics), int(partitions), int(rf))
	}
	cfg := make(map[string]string, len(configs))
	for k, v := range configs {
		cfg[k] = v
	}
	cmd = metadata.CreateTopic{ID: uuid.New(), Name: name, Partitions: specs, Configs: cfg}
	// The state machine's own checks (name collisions among them), so a
	// validate-only request answers what a real one would.
	if _, err := st.Next(cmd); err != nil {
		return cmd, err
	}
	return cmd, nil
}

func validateReplicas(st *metadata.State, reps []int32) error {
	if len(reps) == 0 {
		return fmt.Errorf("%w: empty replica list", errInvalidReplicationFactor)
	}
	seen := map[int32]bool{}
	for _, r := range reps {
		if _, ok := st.Agents[r]; !ok {
			return fmt.Errorf("%w: agent %d is not registered", errInvalidReplicaAssignment, r)
		}
		if seen[r] {
			return fmt.Errorf("%w: agent %d listed twice", errInvalidReplicaAssignment, r)
		}
		seen[r] = true
	}
	return nil
}

var errInvalidReplicaAssignment = errors.New("invalid replica assignment")
var errInvalidRequest = errors.New("invalid request")

// placementOrder lists the agents new replicas may go to (live, not
// draining), interleaving zones: consecutive agents in it are in different
// zones where there are several, so the replicas placeReplicas takes
// consecutively spread over zones.
func placementOrder(st *metadata.State) []int32 {
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

// placeReplicas spreads partitions round-robin over agents, starting at an
// offset derived from the topic count so leaders of many topics don't all
// land on the first agent.
func placeReplicas(agents []int32, salt, partitions, rf int) []metadata.PartitionSpec {
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

// controllerID is the agent holding the controller lease as far as this
// agent knows, or -1.
func (a *Agent) controllerID() int32 { return a.meta.ControllerID() }

func splitHostPort(addr string) (string, int32) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 9092
	}
	n, _ := strconv.Atoi(p)
	return h, int32(n)
}
