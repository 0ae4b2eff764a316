package kafka

// IncrementalAlterConfigs: v0-1
//
// SET (0), DELETE (1), APPEND (2) and SUBTRACT (3) on topic configs. The
// list operations apply to cleanup.policy, the only list-typed config;
// every result is validated as a whole before it is journaled.
//
// On a BROKER resource (named by agent id) the one dynamic setting is
// tlog.agent.draining: SET true moves every replica and leader off the
// agent (tlog cluster drain), SET false or DELETE lets them come back.
// Other broker configs are static (flags) and refused.
// With an authorizer: ALTER_CONFIGS on the topic
// (TOPIC_AUTHORIZATION_FAILED), or on the cluster for BROKER resources
// (CLUSTER_AUTHORIZATION_FAILED).
//
// Version notes:
// * v1: flexible versions

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/controller"
	"github.com/tlog-io/tlog/agent/topic"
	"github.com/tlog-io/tlog/metadata"
)

func init() { register(44, 0, 1, handleIncrementalAlterConfigs) }

func handleIncrementalAlterConfigs(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType = rr.ResourceType
		sr.ResourceName = rr.ResourceName
		if int8(rr.ResourceType) == resourceBroker {
			sr.ErrorCode, sr.ErrorMessage = alterErr(s.alterBrokerConfigs(r, rr, req.ValidateOnly))
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		err := s.alterTopicConfigs(r, int8(rr.ResourceType), rr.ResourceName, func(cur map[string]string) (map[string]string, error) {
			for _, c := range rr.Configs {
				val := ""
				if c.Value != nil {
					val = *c.Value
				}
				switch c.Op {
				case 0:
					if c.Value == nil {
						return nil, fmt.Errorf("%w: SET %s needs a value", topic.ErrInvalidConfig, c.Name)
					}
					cur[c.Name] = val
				case 1:
					delete(cur, c.Name)
				case 2, 3:
					tc, ok := topic.Lookup(c.Name)
					if !ok || tc.Type != 7 {
						return nil, fmt.Errorf("%w: %s is not a list config", topic.ErrInvalidConfig, c.Name)
					}
					base, _ := s.topicConfigValueByName(rr.ResourceName, c.Name, cur)
					items := splitList(base)
					for _, v := range splitList(val) {
						if c.Op == 2 && !slices.Contains(items, v) {
							items = append(items, v)
						}
						if c.Op == 3 {
							items = slices.DeleteFunc(items, func(s string) bool { return s == v })
						}
					}
					cur[c.Name] = strings.Join(items, ",")
				default:
					return nil, fmt.Errorf("%w: unknown operation %d on %s", controller.ErrInvalidRequest, c.Op, c.Name)
				}
			}
			return cur, nil
		}, req.ValidateOnly)
		sr.ErrorCode, sr.ErrorMessage = alterErr(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return now(resp), nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// topicConfigValueByName is the effective value given in-progress configs.
func (s *Server) topicConfigValueByName(topicName, name string, cur map[string]string) (string, bool) {
	if v, ok := cur[name]; ok {
		return v, true
	}
	t := s.b.TopicByName(topicName)
	if t == nil {
		return "", false
	}
	tc, ok := topic.Lookup(name)
	if !ok {
		return "", false
	}
	return tc.Default(s.topicDefaults(), len(t.Meta.Partitions[0].Replicas)), false
}

// drainConfig is the dynamic broker config that drains an agent.
const drainConfig = "tlog.agent.draining"

func (s *Server) alterBrokerConfigs(r *request, rr kmsg.IncrementalAlterConfigsRequestResource, validateOnly bool) error {
	if !r.allowedCluster(metadata.OpAlterConfigs) {
		return fmt.Errorf("%w: %s may not alter broker configs", errClusterAuthorization, r.Principal())
	}
	id, err := strconv.ParseInt(rr.ResourceName, 10, 32)
	if err != nil {
		return fmt.Errorf("%w: broker resource %q is not an agent id", controller.ErrInvalidRequest, rr.ResourceName)
	}
	if _, ok := s.b.State().Agents[int32(id)]; !ok {
		return fmt.Errorf("%w: agent %d is not registered", controller.ErrInvalidRequest, id)
	}
	var drain *bool
	for _, c := range rr.Configs {
		if c.Name != drainConfig {
			return fmt.Errorf("%w: broker config %s is static (set by the agent's flags); only %s can be changed", topic.ErrInvalidConfig, c.Name, drainConfig)
		}
		var v bool
		switch {
		case c.Op == 1:
		case c.Op == 0 && c.Value != nil:
			if v, err = strconv.ParseBool(*c.Value); err != nil {
				return fmt.Errorf("%w: %s must be true or false, not %q", topic.ErrInvalidConfig, drainConfig, *c.Value)
			}
		default:
			return fmt.Errorf("%w: %s takes SET true|false or DELETE", topic.ErrInvalidConfig, drainConfig)
		}
		drain = &v
	}
	if drain != nil && *drain {
		if err := controller.DrainBlocker(s.b.State(), int32(id)); err != nil {
			return fmt.Errorf("%w: %w", controller.ErrInvalidRequest, err)
		}
	}
	if drain == nil || validateOnly {
		return nil
	}
	return s.b.SetDraining(r.ctx, int32(id), *drain)
}
