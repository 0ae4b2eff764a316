package agent

// CreatePartitions: v0-3
//
// Served by the controller. Only grows a topic; new partitions are placed
// like CreateTopics places them, or as the request assigns them.
// ValidateOnly checks without changing anything.
//
// Version notes:
// * v2: flexible versions

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(37, 0, 3, handleCreatePartitions) }

func handleCreatePartitions(a *Agent, r *request) (reply, error) {
	req := r.kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		err := a.createPartitions(r, rt, req.ValidateOnly)
		if err != nil {
			st.ErrorCode = createErrCode(err)
			st.ErrorMessage = errMsg(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return now(resp), nil
}

func (a *Agent) createPartitions(r *request, rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	st := a.meta.State()
	mt, ok := st.TopicByName(rt.Topic)
	if !ok {
		return fmt.Errorf("%w: %q", metadata.ErrUnknownTopic, rt.Topic)
	}
	if mt.Name == offsetsTopic {
		return errInternalTopic
	}
	have := int32(len(mt.Partitions))
	if rt.Count <= have {
		return fmt.Errorf("%w: topic has %d partitions, asked for %d (partitions can only be added)", errInvalidPartitions, have, rt.Count)
	}
	add := int(rt.Count - have)
	if err := checkPartitionLimits(st, int(have), add); err != nil {
		return err
	}
	var specs []metadata.PartitionSpec
	if len(rt.Assignment) > 0 {
		if len(rt.Assignment) != add {
			return fmt.Errorf("%w: %d assignments for %d new partitions", errInvalidReplicaAssignment, len(rt.Assignment), add)
		}
		rf := len(mt.Partitions[0].Replicas)
		for i, as := range rt.Assignment {
			if len(as.Replicas) != rf {
				return fmt.Errorf("%w: new partition %d has %d replicas, the topic's replication factor is %d", errInvalidReplicaAssignment, i, len(as.Replicas), rf)
			}
			if err := validateReplicas(st, as.Replicas); err != nil {
				return fmt.Errorf("new partition %d: %w", i, err)
			}
			specs = append(specs, metadata.PartitionSpec{Replicas: append([]int32(nil), as.Replicas...), Leader: as.Replicas[0]})
		}
	} else {
		rf := len(mt.Partitions[0].Replicas)
		agents := placementOrder(st)
		if rf > len(agents) {
			return fmt.Errorf("%w: topic has replication factor %d but %d agents are live", errInvalidReplicationFactor, rf, len(agents))
		}
		specs = placeReplicas(agents, int(have), add, rf)
	}
	if validateOnly {
		return nil
	}
	_, err := a.propose(r.ctx, metadata.CreatePartitions{TopicID: mt.ID, New: specs})
	return err
}
