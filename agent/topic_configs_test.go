package agent_test

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Topic configs Kafka defines that change nothing in tlog are accepted at
// CreateTopics, shown by DescribeConfigs as set on the topic, with
// documentation saying why they have no effect, and refused when their
// value is one Kafka would refuse.
func TestTopicConfigsWithoutEffect(t *testing.T) {
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	set := map[string]string{
		"flush.messages": "10000", "flush.ms": "1000", "preallocate": "true", "unclean.leader.election.enable": "false",
		"message.format.version": "2.8-IV1", "index.interval.bytes": "4096", "segment.index.bytes": "10485760",
		"leader.replication.throttled.replicas": "*", "local.retention.ms": "-2", "remote.storage.enable": "true",
	}
	createTopic(t, c, "quiet-configs", 1, set)

	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "quiet-configs"
	req.Resources = append(req.Resources, rr)
	req.IncludeDocumentation = true
	got := configMap(do[*kmsg.DescribeConfigsResponse](c, 4, req).Resources[0])
	for name, want := range set {
		e, ok := got[name]
		if !ok || deref(e.Value) != want || e.Source != kmsg.ConfigSourceDynamicTopicConfig {
			t.Errorf("%s: %+v; want %q set on the topic", name, e, want)
			continue
		}
		if doc := deref(e.Documentation); !strings.Contains(doc, "no effect in tlog") {
			t.Errorf("%s: documentation %q does not say it has no effect", name, doc)
		}
	}
	if e := got["segment.jitter.ms"]; deref(e.Value) != "0" || e.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("segment.jitter.ms unset: %+v; want the default 0", e)
	}

	resp := do[*kmsg.CreateTopicsResponse](c, 5, createTopicsReq(false, topicSpec{"bad-flush", 1, 1, map[string]string{"flush.messages": "0"}}))
	if code := resp.Topics[0].ErrorCode; code != 40 { // INVALID_CONFIG
		t.Errorf("flush.messages=0: error %d, want INVALID_CONFIG", code)
	}
}
