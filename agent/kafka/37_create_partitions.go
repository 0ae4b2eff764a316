package kafka

// CreatePartitions: v0-3
//
// Served by the controller. Only grows a topic; new partitions are placed
// like CreateTopics places them, or as the request assigns them.
// ValidateOnly checks without changing anything.
// With an authorizer: ALTER on the topic (TOPIC_AUTHORIZATION_FAILED).
//
// Version notes:
// * v2: flexible versions

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/controller"
	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/metadata"
)

func init() { register(37, 0, 3, handleCreatePartitions) }

func handleCreatePartitions(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.CreatePartitionsRequest)
	resp := req.ResponseKind().(*kmsg.CreatePartitionsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewCreatePartitionsResponseTopic()
		st.Topic = rt.Topic
		err := s.createPartitions(r, rt, req.ValidateOnly)
		if err != nil {
			st.ErrorCode = createErrCode(err)
			st.ErrorMessage = errMsg(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return now(resp), nil
}

func (s *Server) createPartitions(r *request, rt kmsg.CreatePartitionsRequestTopic, validateOnly bool) error {
	if !r.allowedTopic(rt.Topic, metadata.OpAlter) {
		return fmt.Errorf("%w: %s may not add partitions to topic %q", errTopicAuthorization, r.Principal(), rt.Topic)
	}
	st := s.b.State()
	mt, ok := st.TopicByName(rt.Topic)
	if !ok {
		return fmt.Errorf("%w: %q", metadata.ErrUnknownTopic, rt.Topic)
	}
	if mt.Name == group.OffsetsTopic {
		return errInternalTopic
	}
	have := int32(len(mt.Partitions))
	if rt.Count <= have {
		return fmt.Errorf("%w: topic has %d partitions, asked for %d (partitions can only be added)", controller.ErrInvalidPartitions, have, rt.Count)
	}
	add := int(rt.Count - have)
	if err := controller.CheckPartitionLimits(st, int(have), add); err != nil {
		return err
	}
	var specs []metadata.PartitionSpec
	if len(rt.Assignment) > 0 {
		if len(rt.Assignment) != add {
			return fmt.Errorf("%w: %d assignments for %d new partitions", controller.ErrInvalidReplicaAssignment, len(rt.Assignment), add)
		}
		rf := len(mt.Partitions[0].Replicas)
		for i, as := range rt.Assignment {
			if len(as.Replicas) != rf {
				return fmt.Errorf("%w: new partition %d has %d replicas, the topic's replication factor is %d", controller.ErrInvalidReplicaAssignment, i, len(as.Replicas), rf)
			}
			if err := controller.ValidateReplicas(st, as.Replicas); err != nil {
				return fmt.Errorf("new partition %d: %w", i, err)
			}
			specs = append(specs, metadata.PartitionSpec{Replicas: append([]int32(nil), as.Replicas...), Leader: as.Replicas[0]})
		}
	} else {
		rf := len(mt.Partitions[0].Replicas)
		agents := controller.PlacementOrder(st)
		if rf > len(agents) {
			return fmt.Errorf("%w: topic has replication factor %d but %d agents are live", controller.ErrInvalidReplicationFactor, rf, len(agents))
		}
		specs = controller.PlaceReplicas(agents, int(have), add, rf)
	}
	if validateOnly {
		return nil
	}
	_, err := s.b.Propose(r.ctx, metadata.CreatePartitions{TopicID: mt.ID, New: specs})
	return err
}
