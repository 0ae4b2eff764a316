package kafka

// DescribeConfigs: v0-4
//
// TOPIC resources list every topic config tlog honours with its effective
// value and source (set on the topic, or the default); BROKER resources
// list the agent's settings, read-only. Synonyms (v1+) name the broker
// default behind a topic config; documentation (v3+) says what tlog does
// with it.
// With an authorizer: DESCRIBE_CONFIGS on the topic
// (TOPIC_AUTHORIZATION_FAILED) or on the cluster for BROKER resources
// (CLUSTER_AUTHORIZATION_FAILED).
//
// Version notes:
// * v1: IncludeSynonyms, ConfigSource
// * v3: IncludeDocumentation, ConfigType
// * v4: flexible versions

import (
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
	sourceDynamicBroker = 1 // DYNAMIC_BROKER_CONFIG
	sourceDefault       = 5 // DEFAULT_CONFIG
	configTypeInt       = 3
	configTypeLong      = 5
	configTypeBoolean   = 1
)

func handleDescribeConfigs(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType = rr.ResourceType
		sr.ResourceName = rr.ResourceName
		want := func(name string) bool {
			if rr.ConfigNames == nil {
				return true
			}
			for _, n := range rr.ConfigNames {
				if n == name {
					return true
				}
			}
			return false
		}
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
						rc.ConfigSynonyms = append(rc.ConfigSynonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: c.Name, Value: &v, Source: sourceTopic})
					}
					rf := len(t.Meta.Partitions[0].Replicas)
					dv := c.Default(s.topicDefaults(), rf)
					rc.ConfigSynonyms = append(rc.ConfigSynonyms, kmsg.DescribeConfigsResponseResourceConfigConfigSynonym{Name: c.Broker, Value: &dv, Source: sourceDefault})
				}
				sr.Configs = append(sr.Configs, rc)
			}
		case resourceBroker:
			if !r.allowedCluster(metadata.OpDescribeConfigs) {
				sr.ErrorCode = kerr.ClusterAuthorizationFailed.Code
				sr.ErrorMessage = kmsg.StringPtr(r.Principal() + " may not describe broker configs")
				break
			}
			if rr.ResourceName != "" && rr.ResourceName != strconv.Itoa(int(s.cfg.ID)) {
				sr.ErrorCode = kerr.InvalidRequest.Code
				msg := "describe broker configs on the agent itself"
				sr.ErrorMessage = &msg
				break
			}
			for _, bc := range s.brokerConfigs() {
				if !want(bc.name) {
					continue
				}
				if bc.name == drainConfig { // the one dynamic setting
					sr.Configs = append(sr.Configs, configEntry(req, bc.name, bc.value, sourceDynamicBroker, bc.typ, bc.doc, false))
					continue
				}
				sr.Configs = append(sr.Configs, configEntry(req, bc.name, bc.value, sourceStaticBroker, bc.typ, bc.doc, true))
			}
		default:
			sr.ErrorCode = kerr.InvalidRequest.Code
			msg := "only TOPIC and BROKER resources are served"
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

type brokerConfig struct {
	name, value string
	typ         int8
	doc         string
}

func (s *Server) brokerConfigs() []brokerConfig {
	return []brokerConfig{
		{"auto.create.topics.enable", strconv.FormatBool(s.cfg.AutoCreateTopics), configTypeBoolean, "Metadata requests create missing topics."},
		{"broker.id", strconv.Itoa(int(s.cfg.ID)), configTypeInt, "This agent's id."},
		{"message.max.bytes", strconv.Itoa(int(s.cfg.MaxMessageBytes)), configTypeInt, "Default max.message.bytes for topics."},
		{"num.partitions", strconv.Itoa(int(s.cfg.DefaultPartitions)), configTypeInt, "Partitions of auto-created topics."},
		{"socket.request.max.bytes", strconv.Itoa(int(s.cfg.MaxRequestBytes)), configTypeInt, "Largest request accepted; larger ones close the connection."},
		{"log.retention.ms", "604800000", configTypeLong, "Default retention.ms."},
		{"log.retention.bytes", "-1", configTypeLong, "Default retention.bytes."},
		{drainConfig, strconv.FormatBool(s.b.State().Agents[s.cfg.ID].Draining), configTypeBoolean, "Move every replica and leader off this agent (tlog cluster drain)."},
	}
}
