package topic_test

import (
	"errors"
	"testing"

	"github.com/tlog-io/tlog/agent/topic"
	"github.com/tlog-io/tlog/metadata"
)

func TestValidateConfigs(t *testing.T) {
	for _, tc := range []struct {
		cfgs map[string]string
		ok   bool
	}{
		{nil, true},
		{map[string]string{"retention.ms": "-1", "max.message.bytes": "1000", "message.timestamp.type": "LogAppendTime"}, true},
		{map[string]string{"retention.ms": "-2"}, false},
		{map[string]string{"min.insync.replicas": "0"}, false},
		{map[string]string{"message.timestamp.type": "Now"}, false},
		{map[string]string{"no.such.config": "1"}, false},
		{map[string]string{"max.message.bytes": "1e6"}, false},
		// Accepted with no effect, validated as Kafka 3.9 validates them.
		{map[string]string{"flush.messages": "1", "flush.ms": "0", "preallocate": "TRUE", "unclean.leader.election.enable": "false",
			"message.downconversion.enable": "true", "index.interval.bytes": "4096", "segment.index.bytes": "4",
			"segment.jitter.ms": "0", "file.delete.delay.ms": "60000", "local.retention.ms": "-2", "local.retention.bytes": "-1",
			"remote.storage.enable": "true", "remote.log.copy.disable": "false", "remote.log.delete.on.disable": "false",
			"leader.replication.throttled.replicas": "0:1,1:2", "follower.replication.throttled.replicas": "*"}, true},
		{map[string]string{"message.format.version": "0.10.0"}, true},
		{map[string]string{"message.format.version": "2.8-IV1"}, true},
		{map[string]string{"message.format.version": "3.0"}, true},
		{map[string]string{"message.format.version": "banana"}, false},
		{map[string]string{"flush.messages": "0"}, false},
		{map[string]string{"preallocate": "yes"}, false},
		{map[string]string{"segment.index.bytes": "3"}, false},
		{map[string]string{"local.retention.ms": "-3"}, false},
		{map[string]string{"leader.replication.throttled.replicas": "0-1"}, false},
	} {
		err := topic.ValidateConfigs(tc.cfgs)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, topic.ErrInvalidConfig)) {
			t.Errorf("ValidateConfigs(%v) = %v, want ok=%v", tc.cfgs, err, tc.ok)
		}
	}
}

// Unset configs take their defaults: min.insync.replicas follows the
// replication factor (at most 2), max.message.bytes the agent's setting.
func TestConfigValueDefaults(t *testing.T) {
	d := topic.Defaults{MaxMessageBytes: 12345}
	rf3 := &topic.Topic{Meta: &metadata.Topic{Partitions: []metadata.Partition{{Replicas: []int32{1, 2, 3}}}}}
	rf1 := &topic.Topic{Meta: &metadata.Topic{Partitions: []metadata.Partition{{Replicas: []int32{1}}}}, Configs: map[string]string{"max.message.bytes": "99"}}
	for _, tc := range []struct {
		t       *topic.Topic
		name    string
		want    string
		wantSet bool
	}{
		{rf3, "min.insync.replicas", "2", false},
		{rf1, "min.insync.replicas", "1", false},
		{rf3, "max.message.bytes", "12345", false},
		{rf1, "max.message.bytes", "99", true},
		{rf3, "retention.ms", "604800000", false},
	} {
		if v, set := tc.t.ConfigValue(tc.name, d); v != tc.want || set != tc.wantSet {
			t.Errorf("%s = %q (set %v), want %q (set %v)", tc.name, v, set, tc.want, tc.wantSet)
		}
	}
	if n := rf1.MaxMessageBytes(d); n != 99 {
		t.Errorf("MaxMessageBytes = %d, want 99", n)
	}
}
