package metadata

// Dynamic broker configs: the Kafka broker configs an operator changes
// at run time (IncrementalAlterConfigs or AlterConfigs on a BROKER
// resource), kept in the journal so they outlive restarts and every agent
// sees the same ones. They are keyed by Kafka's resource name: an agent's
// id for that agent, "" for the cluster-wide default. Which names are
// dynamic, and what their values may be, is the front end's business
// (agent/kafka); the journal only stores them.

import (
	"fmt"
	"maps"
	"strconv"
)

// ClusterDefault is the resource name of cluster-wide dynamic broker
// configs (Kafka's DYNAMIC_DEFAULT_BROKER_CONFIG).
const ClusterDefault = ""

// maxBrokerConfigs bounds one resource's dynamic configs.
const maxBrokerConfigs = 256

// SetBrokerConfigs replaces the dynamic configs of one broker resource:
// an agent id, or ClusterDefault. An empty Configs removes them all.
type SetBrokerConfigs struct {
	Resource string            `json:"resource"`
	Configs  map[string]string `json:"configs,omitempty"`
}

func (SetBrokerConfigs) CommandType() string { return "set_broker_configs" }

func (c SetBrokerConfigs) apply(tx *txn) error {
	if c.Resource != ClusterDefault {
		if id, err := strconv.ParseInt(c.Resource, 10, 32); err != nil || id < 0 {
			return fmt.Errorf("%w: broker resource %q is neither an agent id nor the cluster default", ErrInvalidCommand, c.Resource)
		}
	}
	if len(c.Configs) > maxBrokerConfigs {
		return fmt.Errorf("%w: more than %d dynamic configs on broker resource %q", ErrInvalidCommand, maxBrokerConfigs, c.Resource)
	}
	all := maps.Clone(tx.s.BrokerConfigs)
	if all == nil {
		all = map[string]map[string]string{}
	}
	if len(c.Configs) == 0 {
		delete(all, c.Resource)
	} else {
		all[c.Resource] = maps.Clone(c.Configs)
	}
	if len(all) == 0 {
		all = nil
	}
	tx.s.BrokerConfigs = all
	return nil
}

// BrokerConfig is the dynamic value of a broker config on agent id: its
// own, else the cluster default; perAgent says which. ok is false if
// neither is set.
func (s *State) BrokerConfig(id int32, name string) (value string, perAgent, ok bool) {
	if v, ok := s.BrokerConfigs[strconv.Itoa(int(id))][name]; ok {
		return v, true, true
	}
	v, ok := s.BrokerConfigs[ClusterDefault][name]
	return v, false, ok
}
