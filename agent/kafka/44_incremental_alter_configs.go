package kafka

// IncrementalAlterConfigs: v0-1
//
// SET (0), DELETE (1), APPEND (2) and SUBTRACT (3) on topic configs. The
// list operations apply to cleanup.policy, the only list-typed config;
// every result is validated as a whole before it is journaled.
//
// On a BROKER resource (an agent id, or "" for the cluster-wide
// default) SET and DELETE change the dynamic broker configs
// (brokerconfigs.go); the others are set by flags and refused
// (INVALID_REQUEST). tlog.agent.draining, per agent: SET true moves every
// replica and leader off the agent (tlog cluster drain), SET false or
// DELETE lets them come back. On a BROKER_LOGGER resource, SET changes
// the agent's log level (brokerlogger.go).
// With an authorizer: ALTER_CONFIGS on the topic
// (TOPIC_AUTHORIZATION_FAILED), or on the cluster for BROKER resources
// (CLUSTER_AUTHORIZATION_FAILED).
//
// Version notes:
// * v1: flexible versions

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/controller"
	"github.com/tlog-io/tlog/agent/topic"
)

func init() { register(44, 0, 1, handleIncrementalAlterConfigs) }

func handleIncrementalAlterConfigs(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewIncrementalAlterConfigsResponseResource()
		sr.ResourceType = rr.ResourceType
		sr.ResourceName = rr.ResourceName
		if int8(rr.ResourceType) == resourceBrokerLogger {
			sr.ErrorCode, sr.ErrorMessage = alterErr(s.alterBrokerLogger(r, rr, req.ValidateOnly))
			resp.Resources = append(resp.Resources, sr)
			continue
		}
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
	id, err := s.alterBrokerResource(r, rr.ResourceName)
	if err != nil {
		return err
	}
	var drain *bool
	set := maps.Clone(s.b.State().BrokerConfigs[rr.ResourceName])
	if set == nil {
		set = map[string]string{}
	}
	for _, c := range rr.Configs {
		if c.Name == drainConfig {
			v := "false"
			switch {
			case c.Op == 1:
			case c.Op == 0 && c.Value != nil:
				v = *c.Value
			default:
				return fmt.Errorf("%w: %s takes SET true|false or DELETE", topic.ErrInvalidConfig, drainConfig)
			}
			d, err := s.drainValue(id, v)
			if err != nil {
				return err
			}
			drain = &d
			continue
		}
		switch c.Op {
		case 0:
			if c.Value == nil {
				return fmt.Errorf("%w: SET %s needs a value", topic.ErrInvalidConfig, c.Name)
			}
			set[c.Name] = *c.Value
		case 1:
			if _, ok := s.brokerConfig(c.Name); !ok {
				return fmt.Errorf("%w: %s is not a broker config tlog knows", topic.ErrInvalidConfig, c.Name)
			}
			delete(set, c.Name)
		case 2, 3:
			return fmt.Errorf("%w: APPEND and SUBTRACT apply to list configs; tlog's dynamic broker configs are not lists", topic.ErrInvalidConfig)
		default:
			return fmt.Errorf("%w: unknown operation %d on %s", controller.ErrInvalidRequest, c.Op, c.Name)
		}
	}
	return s.applyBrokerConfigs(r, rr.ResourceName, id, set, drain, validateOnly)
}
