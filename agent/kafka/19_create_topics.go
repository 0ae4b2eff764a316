package kafka

// CreateTopics: v0-7
//
// Served by the controller (others answer NOT_CONTROLLER). Partition count
// and replication factor of -1 take the defaults (num.partitions,
// min(3, agents)); an explicit replica assignment requires both to be -1.
// Configs are checked against the topic configs tlog honours
// (INVALID_CONFIG otherwise). ValidateOnly checks without creating.
// With an authorizer: CREATE on the cluster or the topic
// (TOPIC_AUTHORIZATION_FAILED); the configs come back only with
// DESCRIBE_CONFIGS on the topic (else ConfigErrorCode says why).
//
// Version notes:
// * v1: ValidateOnly, ErrorMessage
// * v4: -1 defaults (KIP-464)
// * v5: NumPartitions, ReplicationFactor and Configs in the response;
//   flexible versions
// * v7: TopicID in the response

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/controller"
	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/agent/topic"
	"github.com/tlog-io/tlog/metadata"
)

func init() { register(19, 0, 7, handleCreateTopics) }

func handleCreateTopics(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.CreateTopicsRequest)
	resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
	seen := map[string]int{}
	for _, rt := range req.Topics {
		seen[rt.Topic]++
	}
	for _, rt := range req.Topics {
		st := kmsg.NewCreateTopicsResponseTopic()
		st.Topic = rt.Topic
		st.NumPartitions, st.ReplicationFactor = -1, -1
		setErr := func(err error) {
			st.ErrorCode = createErrCode(err)
			st.ErrorMessage = errMsg(err)
		}
		configs := map[string]string{}
		// Partitions of an explicit assignment must be 0..n-1, each once
		// (checked before anything is sized by them).
		var assignment [][]int32
		var assignErr error
		if n := len(rt.ReplicaAssignment); n > 0 {
			assignment = make([][]int32, n)
			for _, ra := range rt.ReplicaAssignment {
				if ra.Partition < 0 || int(ra.Partition) >= n || assignment[ra.Partition] != nil {
					assignErr = fmt.Errorf("%w: partitions must be numbered 0 to %d, each once; got %d", controller.ErrInvalidReplicaAssignment, n-1, ra.Partition)
					break
				}
				assignment[ra.Partition] = ra.Replicas
				if ra.Replicas == nil {
					assignment[ra.Partition] = []int32{}
				}
			}
		}
		var cfgErr error
		for _, c := range rt.Configs {
			if c.Value == nil {
				cfgErr = fmt.Errorf("%w: config %s has a null value", topic.ErrInvalidConfig, c.Name)
				break
			}
			configs[c.Name] = *c.Value
		}
		switch {
		case !r.mayCreateTopic(rt.Topic):
			setErr(fmt.Errorf("%w: %s may not create topic %q", errTopicAuthorization, r.Principal(), rt.Topic))
		case rt.Topic == group.OffsetsTopic:
			setErr(errInternalTopic)
		case seen[rt.Topic] > 1:
			setErr(fmt.Errorf("%w: topic %q listed more than once", controller.ErrInvalidRequest, rt.Topic))
		case assignErr != nil:
			setErr(assignErr)
		case cfgErr != nil:
			setErr(cfgErr)
		default:
			spec, err := controller.PlanTopic(s.b.State(), controller.NewTopic{Name: rt.Topic, Partitions: rt.NumPartitions, ReplicationFactor: rt.ReplicationFactor, Configs: configs, Assignment: assignment}, s.cfg.DefaultPartitions)
			if err == nil && !req.ValidateOnly {
				_, err = s.b.Propose(r.ctx, spec)
			}
			if err != nil {
				setErr(err)
				break
			}
			st.TopicID = spec.ID
			st.NumPartitions = int32(len(spec.Partitions))
			st.ReplicationFactor = int16(len(spec.Partitions[0].Replicas))
			if req.Version >= 5 && !r.allowedTopic(rt.Topic, metadata.OpDescribeConfigs) {
				st.ConfigErrorCode = kerr.TopicAuthorizationFailed.Code
			} else if req.Version >= 5 {
				t := &topic.Topic{Configs: spec.Configs}
				st.Configs = s.describeTopicConfigsForCreate(t, len(spec.Partitions[0].Replicas))
			}
		}
		if req.Version < 1 {
			st.ErrorMessage = nil
		}
		resp.Topics = append(resp.Topics, st)
	}
	return now(resp), nil
}

func createErrCode(err error) int16 {
	switch {
	case errors.Is(err, errTopicAuthorization):
		return kerr.TopicAuthorizationFailed.Code
	case errors.Is(err, errClusterAuthorization):
		return kerr.ClusterAuthorizationFailed.Code
	case errors.Is(err, controller.ErrInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, controller.ErrInvalidReplicationFactor):
		return kerr.InvalidReplicationFactor.Code
	case errors.Is(err, controller.ErrInvalidReplicaAssignment):
		return kerr.InvalidReplicaAssignment.Code
	case errors.Is(err, controller.ErrInvalidRequest):
		return kerr.InvalidRequest.Code
	}
	return errCode(err)
}

// describeTopicConfigsForCreate lists the configs a new topic will have
// (CreateTopics v5+).
func (s *Server) describeTopicConfigsForCreate(t *topic.Topic, rf int) []kmsg.CreateTopicsResponseTopicConfig {
	var out []kmsg.CreateTopicsResponseTopicConfig
	for _, c := range topic.Configs {
		rc := kmsg.NewCreateTopicsResponseTopicConfig()
		rc.Name = c.Name
		v, set := t.Configs[c.Name]
		if set {
			rc.Source = 1 // DYNAMIC_TOPIC_CONFIG
		} else {
			v = c.Default(s.topicDefaults(), rf)
			rc.Source = 5 // DEFAULT_CONFIG
		}
		rc.Value = &v
		out = append(out, rc)
	}
	return out
}

// createTopic creates a topic with the defaults (auto-creation).
func (s *Server) createTopic(ctx context.Context, name string) error {
	spec, err := controller.PlanTopic(s.b.State(), controller.NewTopic{Name: name, Partitions: -1, ReplicationFactor: -1}, s.cfg.DefaultPartitions)
	if err != nil {
		return err
	}
	_, err = s.b.Propose(ctx, spec)
	return err
}
