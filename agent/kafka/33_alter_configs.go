package kafka

// AlterConfigs: v0-2
//
// Replaces a topic's whole set of configs (configs not named return to
// their defaults), as Kafka's legacy AlterConfigs does. Validated like
// CreateTopics configs; ValidateOnly checks without changing. On a
// BROKER resource it replaces the dynamic broker configs
// (brokerconfigs.go) the same way.
// With an authorizer: ALTER_CONFIGS on the topic
// (TOPIC_AUTHORIZATION_FAILED).
//
// Version notes:
// * v2: flexible versions

import (
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/controller"
	"github.com/tlog-io/tlog/agent/topic"
	"github.com/tlog-io/tlog/metadata"
)

func init() { register(33, 0, 2, handleAlterConfigs) }

func handleAlterConfigs(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType = rr.ResourceType
		sr.ResourceName = rr.ResourceName
		set := map[string]string{}
		var nullErr error
		for _, c := range rr.Configs {
			if c.Value == nil {
				nullErr = fmt.Errorf("%w: config %s has a null value", controller.ErrInvalidRequest, c.Name)
				break
			}
			set[c.Name] = *c.Value
		}
		if nullErr != nil {
			sr.ErrorCode, sr.ErrorMessage = alterErr(nullErr)
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		var err error
		if int8(rr.ResourceType) == resourceBroker {
			err = s.replaceBrokerConfigs(r, rr.ResourceName, set, req.ValidateOnly)
		} else {
			err = s.alterTopicConfigs(r, int8(rr.ResourceType), rr.ResourceName, func(cur map[string]string) (map[string]string, error) {
				return set, nil
			}, req.ValidateOnly)
		}
		sr.ErrorCode, sr.ErrorMessage = alterErr(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return now(resp), nil
}

// replaceBrokerConfigs sets a broker resource's dynamic configs to set,
// as Kafka's legacy AlterConfigs does (those not named return to their
// static values). tlog.agent.draining changes only if named.
func (s *Server) replaceBrokerConfigs(r *request, resource string, set map[string]string, validateOnly bool) error {
	id, err := s.alterBrokerResource(r, resource)
	if err != nil {
		return err
	}
	var drain *bool
	if v, ok := set[drainConfig]; ok {
		d, err := s.drainValue(id, v)
		if err != nil {
			return err
		}
		drain = &d
		delete(set, drainConfig)
	}
	return s.applyBrokerConfigs(r, resource, id, set, drain, validateOnly)
}

func alterErr(err error) (int16, *string) {
	if err == nil {
		return 0, nil
	}
	return createErrCode(err), errMsg(err)
}

// alterTopicConfigs computes a topic's new configs with change, validates
// them, and journals the difference.
func (s *Server) alterTopicConfigs(r *request, resType int8, name string, change func(cur map[string]string) (map[string]string, error), validateOnly bool) error {
	if resType != resourceTopic {
		return fmt.Errorf("%w: only TOPIC and BROKER configs can be altered", controller.ErrInvalidRequest)
	}
	if !r.allowedTopic(name, metadata.OpAlterConfigs) {
		return fmt.Errorf("%w: %s may not alter the configs of topic %q", errTopicAuthorization, r.Principal(), name)
	}
	mt, ok := s.b.State().TopicByName(name)
	if !ok {
		return fmt.Errorf("%w: %q", metadata.ErrUnknownTopic, name)
	}
	cur := make(map[string]string, len(mt.Configs))
	for k, v := range mt.Configs {
		cur[k] = v
	}
	work := make(map[string]string, len(cur))
	for k, v := range cur {
		work[k] = v
	}
	next, err := change(work)
	if err != nil {
		return err
	}
	if err := topic.ValidateConfigs(next); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	cmd := metadata.AlterTopicConfigs{TopicID: mt.ID, Set: map[string]string{}}
	for k, v := range next {
		if old, ok := cur[k]; !ok || old != v {
			cmd.Set[k] = v
		}
	}
	for k := range cur {
		if _, ok := next[k]; !ok {
			cmd.Delete = append(cmd.Delete, k)
		}
	}
	if len(cmd.Set) == 0 && len(cmd.Delete) == 0 {
		return nil
	}
	_, err = s.b.Propose(r.ctx, cmd)
	return err
}
