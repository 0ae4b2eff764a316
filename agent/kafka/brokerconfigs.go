package kafka

// Broker configs: the Kafka broker configs an agent honours, listed by
// DescribeConfigs on its BROKER resource, and the dynamic ones among them
// that IncrementalAlterConfigs and AlterConfigs change at run time. The
// agent gives the table (Config.BrokerConfigs): each entry's static value
// comes from its flags, and dynamic values live in the journal
// (metadata.SetBrokerConfigs), per agent or cluster-wide (resource name
// ""), as Kafka keeps them. tlog.agent.draining is the one per-agent
// setting kept apart (metadata.SetAgentDraining): the controller plans
// from it.

import (
	"fmt"
	"maps"
	"strconv"

	"github.com/tlog-io/tlog/agent/controller"
	"github.com/tlog-io/tlog/agent/topic"
	"github.com/tlog-io/tlog/metadata"
)

// BrokerConfig is one Kafka broker config the agent honours.
type BrokerConfig struct {
	Name string
	// Value is the agent's own (static) value: its flag, or the default.
	Value string
	// Type is DescribeConfigs' ConfigType: 1 boolean, 2 string, 3 int,
	// 5 long, 7 list.
	Type int8
	Doc  string
	// Default: Value is tlog's default rather than a flag's
	// (DEFAULT_CONFIG, not STATIC_BROKER_CONFIG).
	Default bool
	// Validate checks a dynamic value; nil: read-only (set by flags).
	Validate func(string) error
}

// Dynamic configs' sources as DescribeConfigs names them.
const (
	sourceDynamicDefaultBroker = 3 // DYNAMIC_DEFAULT_BROKER_CONFIG
)

// brokerConfigValue is a broker config's effective value on this agent
// and its source, with the synonyms behind it in Kafka's order (dynamic
// per agent, dynamic cluster default, static or default).
func (s *Server) brokerConfigValue(st *metadata.State, bc BrokerConfig) (value string, source int8, synonyms []synonym) {
	static := synonym{bc.Name, bc.Value, sourceStaticBroker}
	if bc.Default {
		static.source = sourceDefault
	}
	if bc.Validate != nil {
		if v, ok := st.BrokerConfigs[strconv.Itoa(int(s.cfg.ID))][bc.Name]; ok {
			synonyms = append(synonyms, synonym{bc.Name, v, sourceDynamicBroker})
		}
		if v, ok := st.BrokerConfigs[metadata.ClusterDefault][bc.Name]; ok {
			synonyms = append(synonyms, synonym{bc.Name, v, sourceDynamicDefaultBroker})
		}
	}
	synonyms = append(synonyms, static)
	return synonyms[0].value, synonyms[0].source, synonyms
}

type synonym struct {
	name, value string
	source      int8
}

// alterBrokerResource checks a broker resource an alter names: an agent
// id that is registered, or "" for the cluster-wide default.
func (s *Server) alterBrokerResource(r *request, name string) (agent int32, err error) {
	if !r.allowedCluster(metadata.OpAlterConfigs) {
		return 0, fmt.Errorf("%w: %s may not alter broker configs", errClusterAuthorization, r.Principal())
	}
	if name == metadata.ClusterDefault {
		return -1, nil
	}
	id, err := strconv.ParseInt(name, 10, 32)
	if err != nil || id < 0 {
		return 0, fmt.Errorf("%w: broker resource %q is not an agent id (or \"\" for the cluster-wide default)", controller.ErrInvalidRequest, name)
	}
	if _, ok := s.b.State().Agents[int32(id)]; !ok {
		return 0, fmt.Errorf("%w: agent %d is not registered", controller.ErrInvalidRequest, id)
	}
	return int32(id), nil
}

// setBrokerConfigs validates a broker resource's new dynamic configs and
// journals them, unless validateOnly. set holds only dynamic names
// (tlog.agent.draining is handled apart).
func (s *Server) setBrokerConfigs(r *request, resource string, set map[string]string, validateOnly bool) error {
	for name, v := range set {
		bc, ok := s.brokerConfig(name)
		switch {
		case !ok:
			return fmt.Errorf("%w: %s is not a broker config tlog knows", topic.ErrInvalidConfig, name)
		case bc.Validate == nil:
			return fmt.Errorf("%w: broker config %s cannot be updated dynamically: it is set by the agent's flags", controller.ErrInvalidRequest, name)
		}
		if err := bc.Validate(v); err != nil {
			return fmt.Errorf("broker config %s: %w", name, err)
		}
	}
	if validateOnly || maps.Equal(set, s.b.State().BrokerConfigs[resource]) {
		return nil
	}
	_, err := s.b.Propose(r.ctx, metadata.SetBrokerConfigs{Resource: resource, Configs: set})
	return err
}

func (s *Server) brokerConfig(name string) (BrokerConfig, bool) {
	for _, bc := range s.cfg.BrokerConfigs {
		if bc.Name == name {
			return bc, true
		}
	}
	return BrokerConfig{}, false
}

// drainValue parses a value of tlog.agent.draining for agent id (-1: the
// cluster-wide resource, where it cannot be set) and checks that a drain
// can finish.
func (s *Server) drainValue(id int32, v string) (bool, error) {
	if id < 0 {
		return false, fmt.Errorf("%w: %s is set per agent, not cluster-wide", controller.ErrInvalidRequest, drainConfig)
	}
	d, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%w: %s must be true or false, not %q", topic.ErrInvalidConfig, drainConfig, v)
	}
	if d {
		if err := controller.DrainBlocker(s.b.State(), id); err != nil {
			return false, fmt.Errorf("%w: %w", controller.ErrInvalidRequest, err)
		}
	}
	return d, nil
}

// applyBrokerConfigs journals a broker resource's new dynamic configs
// and, if drain is given, agent id's draining flag.
func (s *Server) applyBrokerConfigs(r *request, resource string, id int32, set map[string]string, drain *bool, validateOnly bool) error {
	if err := s.setBrokerConfigs(r, resource, set, validateOnly); err != nil {
		return err
	}
	if drain == nil || validateOnly {
		return nil
	}
	return s.b.SetDraining(r.ctx, id, *drain)
}
