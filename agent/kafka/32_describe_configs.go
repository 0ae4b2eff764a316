package kafka

// DescribeConfigs: v0-4
//
// TOPIC resources list every topic config Kafka 3.9 defines with its
// effective value and source (set on the topic, or the default). BROKER
// resources list the Kafka broker configs the agent honours
// (brokerconfigs.go): the agent's own id gives each with its value and
// source (dynamic for this agent, dynamic cluster default, static flag,
// default), "" gives the cluster-wide dynamic configs set. Synonyms (v1+)
// are the values behind the effective one, in Kafka's order;
// documentation (v3+) says what tlog does with the config.
// With an authorizer: DESCRIBE_CONFIGS on the topic
// (TOPIC_AUTHORIZATION_FAILED) or on the cluster for BROKER resources
// (CLUSTER_AUTHORIZATION_FAILED).
//
// Version notes:
// * v1: IncludeSynonyms, ConfigSource
// * v3: IncludeDocumentation, ConfigType
// * v4: flexible versions

import (
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/topic"
	"github.com/tlog-io/tlog/metadata"
)

func init() { register(32, 0, 4, handleDescribeConfigs) }

const (
	resourceTopic  = 2
	resourceBroker = 4

	sourceTopic         = 1 // DYNAMIC_TOPIC_CONFIG
	sourceStaticBroker  = 4 // STATIC_BROKER_CONFIG
	sourceDynamicBroker = 2 // DYNAMIC_BROKER_CONFIG
	sourceDefault       = 5 // DEFAULT_CONFIG
	configTypeInt       = 3
	configTypeLong      = 5
	configTypeBoolean   = 1
	configTypeString    = 2
)

func handleDescribeConfigs(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType = rr.ResourceType
		sr.ResourceName = rr.ResourceName
		want := func(name string) bool { return rr.ConfigNames == nil || slices.Contains(rr.ConfigNames, name) }
		switch rr.ResourceType {
		case resourceTopic:
			t := s.b.TopicByName(rr.ResourceName)
			if !r.allowedTopic(rr.ResourceName, metadata.OpDescribeConfigs) {
				sr.ErrorCode = kerr.TopicAuthorizationFailed.Code
				sr.ErrorMessage = kmsg.StringPtr(r.Principal() + " may not describe this topic's configs")
				break
			}
			if t == nil {
				sr.ErrorCode = kerr.UnknownTopicOrPartition.Code
				break
			}
			for _, c := range topic.Configs {
				if !want(c.Name) {
					continue
				}
				v, set := t.ConfigValue(c.Name, s.topicDefaults())
				src := int8(sourceDefault)
				if set {
					src = sourceTopic
				}
				rc := configEntry(req, c.Name, v, src, c.Type, c.Doc, false)
				if req.IncludeSynonyms {
					if set {
						rc.ConfigSynonyms = append(rc.ConfigSynonyms, configSynonym(synonym{c.Name, v, sourceTopic}))
					}
					// Kafka lists the broker default behind a topic
					// config; configs without a broker synonym have none.
					if name, dv, ok := c.BrokerDefault(s.topicDefaults(), t.ReplicationFactor()); ok {
						rc.ConfigSynonyms = append(rc.ConfigSynonyms, configSynonym(synonym{name, dv, sourceDefault}))
					}
				}
				sr.Configs = append(sr.Configs, rc)
			}
		case resourceBroker:
			if !r.allowedCluster(metadata.OpDescribeConfigs) {
				sr.ErrorCode = kerr.ClusterAuthorizationFailed.Code
				sr.ErrorMessage = kmsg.StringPtr(r.Principal() + " may not describe broker configs")
				break
			}
			st := s.b.State()
			if rr.ResourceName == metadata.ClusterDefault {
				// Only the cluster-wide dynamic configs set, as Kafka lists.
				for _, bc := range s.cfg.BrokerConfigs {
					if v, ok := st.BrokerConfigs[metadata.ClusterDefault][bc.Name]; ok && want(bc.Name) {
						rc := configEntry(req, bc.Name, v, sourceDynamicDefaultBroker, bc.Type, bc.Doc, false)
						if req.IncludeSynonyms {
							rc.ConfigSynonyms = append(rc.ConfigSynonyms, configSynonym(synonym{bc.Name, v, sourceDynamicDefaultBroker}))
						}
						sr.Configs = append(sr.Configs, rc)
					}
				}
				break
			}
			if rr.ResourceName != strconv.Itoa(int(s.cfg.ID)) {
				sr.ErrorCode = kerr.InvalidRequest.Code
				sr.ErrorMessage = kmsg.StringPtr("describe broker " + rr.ResourceName + "'s configs on that agent; this is agent " + strconv.Itoa(int(s.cfg.ID)))
				break
			}
			for _, bc := range s.cfg.BrokerConfigs {
				if !want(bc.Name) {
					continue
				}
				v, src, syns := s.brokerConfigValue(st, bc)
				rc := configEntry(req, bc.Name, v, src, bc.Type, bc.Doc, bc.Validate == nil)
				if req.IncludeSynonyms {
					for _, syn := range syns {
						rc.ConfigSynonyms = append(rc.ConfigSynonyms, configSynonym(syn))
					}
				}
				sr.Configs = append(sr.Configs, rc)
			}
			if want(drainConfig) {
				v := strconv.FormatBool(st.Agents[s.cfg.ID].Draining)
				rc := configEntry(req, drainConfig, v, sourceDynamicBroker, configTypeBoolean, "Move every replica and leader off this agent (tlog cluster drain).", false)
				if req.IncludeSynonyms {
					rc.ConfigSynonyms = append(rc.ConfigSynonyms, configSynonym(synonym{drainConfig, v, sourceDynamicBroker}))
				}
				sr.Configs = append(sr.Configs, rc)
			}
		case resourceBrokerLogger:
			s.describeBrokerLogger(r, rr, req, &sr)
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			msg := "only TOPIC, BROKER and BROKER_LOGGER resources are served"
			sr.ErrorMessage = &msg
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return now(resp), nil
}

func configEntry(req *kmsg.DescribeConfigsRequest, name, value string, source int8, typ int8, doc string, readOnly bool) kmsg.DescribeConfigsResponseResourceConfig {
	rc := kmsg.NewDescribeConfigsResponseResourceConfig()
	rc.Name = name
	rc.Value = &value
	rc.ReadOnly = readOnly
	rc.Source = kmsg.ConfigSource(source)
	rc.IsDefault = source == sourceDefault
	rc.ConfigType = kmsg.ConfigType(typ)
	if req.IncludeDocumentation {
		d := doc
		rc.Documentation = &d
	}
	return rc
}

func configSynonym(syn synonym) kmsg.DescribeConfigsResponseResourceConfigConfigSynonym {
	v := syn.value
	return kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: syn.name, Value: &v, Source: kmsg.ConfigSource(syn.source)}
}
