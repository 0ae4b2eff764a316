package agent

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
)

var errInvalidConfig = errors.New("invalid config")

// topicConfig is one topic-level config tlog honours. Names and defaults
// follow Kafka's.
type topicConfig struct {
	name     string
	typ      int8 // DescribeConfigs ConfigType: 1 boolean, 2 string, 3 int, 5 long, 7 list
	doc      string
	def      func(a *Agent, rf int) string
	validate func(v string) error
	// broker is the broker-level synonym shown in DescribeConfigs.
	broker string
}

func constDefault(v string) func(*Agent, int) string { return func(*Agent, int) string { return v } }

func intRange(lo, hi int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("%w: %q is not an integer in [%d, %d]", errInvalidConfig, v, lo, hi)
		}
		return nil
	}
}

func oneOf(vals ...string) func(string) error {
	return func(v string) error {
		for _, ok := range vals {
			if v == ok {
				return nil
			}
		}
		return fmt.Errorf("%w: %q is not one of %v", errInvalidConfig, v, vals)
	}
}

var topicConfigs = []topicConfig{
	{name: "cleanup.policy", typ: 7, doc: "Only delete: tlog drops whole segments by time or size.",
		def: constDefault("delete"), validate: oneOf("delete"), broker: "log.cleanup.policy"},
	{name: "compression.type", typ: 2, doc: "Batches are stored as the producer compressed them.",
		def: constDefault("producer"), validate: oneOf("producer"), broker: "compression.type"},
	{name: "max.message.bytes", typ: 3, doc: "Largest record batch accepted.",
		def:      func(a *Agent, _ int) string { return strconv.Itoa(int(a.cfg.MaxMessageBytes)) },
		validate: intRange(0, 1<<31-1), broker: "message.max.bytes"},
	{name: "message.timestamp.type", typ: 2, doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps the append time.",
		def: constDefault("CreateTime"), validate: oneOf("CreateTime", "LogAppendTime"), broker: "log.message.timestamp.type"},
	{name: "min.insync.replicas", typ: 3, doc: "Replicas that must hold a batch before acks=all succeeds.",
		def:      func(_ *Agent, rf int) string { return strconv.Itoa(min(2, max(rf, 1))) },
		validate: intRange(1, 1<<31-1), broker: "min.insync.replicas"},
	{name: "retention.bytes", typ: 5, doc: "Bytes kept per partition before old segments are dropped; -1 is unlimited.",
		def: constDefault("-1"), validate: intRange(-1, 1<<63-1), broker: "log.retention.bytes"},
	{name: "retention.ms", typ: 5, doc: "How long segments are kept; -1 is forever.",
		def: constDefault("604800000"), validate: intRange(-1, 1<<63-1), broker: "log.retention.ms"},
}

func lookupTopicConfig(name string) (topicConfig, bool) {
	for _, c := range topicConfigs {
		if c.name == name {
			return c, true
		}
	}
	return topicConfig{}, false
}

// validateTopicConfigs checks names and values of configs set on a topic.
func validateTopicConfigs(cfgs map[string]string) error {
	names := make([]string, 0, len(cfgs))
	for k := range cfgs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		c, ok := lookupTopicConfig(k)
		if !ok {
			return fmt.Errorf("%w: unknown topic config %q", errInvalidConfig, k)
		}
		if err := c.validate(cfgs[k]); err != nil {
			return fmt.Errorf("config %s: %w", k, err)
		}
	}
	return nil
}

// topicConfigValue returns a topic's effective value and whether it was set
// on the topic (as opposed to defaulted).
func (a *Agent) topicConfigValue(t *topic, name string) (string, bool) {
	if v, ok := t.configs[name]; ok {
		return v, true
	}
	c, ok := lookupTopicConfig(name)
	if !ok {
		return "", false
	}
	rf := 1
	if len(t.meta.Partitions) > 0 {
		rf = len(t.meta.Partitions[0].Replicas)
	}
	return c.def(a, rf), false
}

func (a *Agent) topicMaxMessageBytes(t *topic) int {
	v, _ := a.topicConfigValue(t, "max.message.bytes")
	n, err := strconv.Atoi(v)
	if err != nil {
		return int(a.cfg.MaxMessageBytes)
	}
	return n
}
