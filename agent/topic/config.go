package topic

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ErrInvalidConfig: a config name or value tlog does not accept.
var ErrInvalidConfig = errors.New("invalid config")

// Defaults are the agent settings some topic configs default to.
type Defaults struct {
	MaxMessageBytes int32
}

// Config is one topic-level config tlog honours. Names and defaults
// follow Kafka's.
type Config struct {
	Name string
	Type int8 // DescribeConfigs ConfigType: 1 boolean, 2 string, 3 int, 5 long, 7 list
	Doc  string
	// Broker is the broker-level synonym shown in DescribeConfigs.
	Broker string
	// hoursSynonym: Kafka's default behind the config is this broker
	// config in hours (log.retention.hours for retention.ms).
	hoursSynonym string
	def          func(d Defaults, rf int) string
	validate     func(v string) error
}

// Default is the config's value on a topic that does not set it.
func (c Config) Default(d Defaults, rf int) string { return c.def(d, rf) }

// BrokerDefault is the broker config behind the config's default, and
// its value, as Kafka's synonyms name it (log.retention.hours 168 behind
// retention.ms); ok is false for configs without one.
func (c Config) BrokerDefault(d Defaults, rf int) (name, value string, ok bool) {
	if c.hoursSynonym != "" {
		ms, _ := strconv.ParseInt(c.def(d, rf), 10, 64)
		return c.hoursSynonym, strconv.FormatInt(ms/3_600_000, 10), true
	}
	if c.Broker == "" {
		return "", "", false
	}
	return c.Broker, c.def(d, rf), true
}

// Validate checks one value of the config.
func (c Config) Validate(v string) error { return c.validate(v) }

func constDefault(v string) func(Defaults, int) string {
	return func(Defaults, int) string { return v }
}

func intRange(lo, hi int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("%w: %q is not an integer in [%d, %d]", ErrInvalidConfig, v, lo, hi)
		}
		return nil
	}
}

func floatRange(lo, hi float64) func(string) error {
	return func(v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= lo && f <= hi) {
			return fmt.Errorf("%w: %q is not a number in [%v, %v]", ErrInvalidConfig, v, lo, hi)
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
		return fmt.Errorf("%w: %q is not one of %v", ErrInvalidConfig, v, vals)
	}
}

func gzipLevel(v string) error {
	if v == "-1" {
		return nil
	}
	return intRange(1, 9)(v)
}

func boolean(v string) error {
	if strings.EqualFold(v, "true") || strings.EqualFold(v, "false") {
		return nil
	}
	return fmt.Errorf("%w: %q is not true or false", ErrInvalidConfig, v)
}

// throttledReplicas checks Kafka's list of partition:broker pairs (or *)
// naming replicas to throttle.
func throttledReplicas(v string) error {
	v = strings.TrimSpace(v)
	if v == "" || v == "*" {
		return nil
	}
	for _, pair := range strings.Split(v, ",") {
		p, b, ok := strings.Cut(strings.TrimSpace(pair), ":")
		if _, err := strconv.ParseInt(p, 10, 32); !ok || err != nil {
			return fmt.Errorf("%w: %q is not a list of partition:broker pairs or *", ErrInvalidConfig, v)
		}
		if _, err := strconv.ParseInt(b, 10, 32); err != nil {
			return fmt.Errorf("%w: %q is not a list of partition:broker pairs or *", ErrInvalidConfig, v)
		}
	}
	return nil
}

// messageFormatVersion checks a (deprecated) message.format.version: a
// Kafka version Kafka 3.9 still parses, such as 0.10.0, 2.8-IV1 or 3.0.
var messageFormatVersion = regexp.MustCompile(`^(0\.(8\.[0-2]|9\.0|10\.[0-2]|11\.0)(\.\d+)?|[1-3]\.\d+)(-IV\d+)?$`)

func formatVersion(v string) error {
	if messageFormatVersion.MatchString(v) {
		return nil
	}
	return fmt.Errorf("%w: %q is not a Kafka version (such as 2.8 or 3.0-IV1)", ErrInvalidConfig, v)
}

// noEffect prefixes the documentation of configs tlog accepts, stores and
// describes for the tools that set them, but that change nothing here.
const noEffect = "Accepted and shown; no effect in tlog: "

// Configs is every topic config Kafka 3.9 defines that tlog accepts, in
// the order DescribeConfigs lists them. Those it honours say what they do;
// the rest say why they change nothing here.
var Configs = []Config{
	{Name: "cleanup.policy", Type: 7, Doc: "delete drops whole ranges by time or size (retention.ms, retention.bytes); compact keeps the latest record of every key (the key compactor rewrites ranges in the bucket); compact,delete does both.",
		def: constDefault("delete"), validate: oneOf("delete", "compact", "compact,delete", "delete,compact"), Broker: "log.cleanup.policy"},
	{Name: "delete.retention.ms", Type: 5, Doc: "How long a tombstone (a null value) of a compacted topic is kept after it could be cleaned.",
		def: constDefault("86400000"), validate: intRange(0, 1<<63-1), Broker: "log.cleaner.delete.retention.ms"},
	{Name: "max.compaction.lag.ms", Type: 5, Doc: "Records older than this are compacted whatever the dirty ratio.",
		def: constDefault("9223372036854775807"), validate: intRange(1, 1<<63-1), Broker: "log.cleaner.max.compaction.lag.ms"},
	{Name: "min.cleanable.dirty.ratio", Type: 6, Doc: "Share of a compacted partition's bytes not yet cleaned that starts a pass.",
		def: constDefault("0.5"), validate: floatRange(0, 1), Broker: "log.cleaner.min.cleanable.ratio"},
	{Name: "min.compaction.lag.ms", Type: 5, Doc: "Records newer than this are not compacted.",
		def: constDefault("0"), validate: intRange(0, 1<<63-1), Broker: "log.cleaner.min.compaction.lag.ms"},
	{Name: "compression.type", Type: 2, Doc: "producer stores batches as the producer compressed them; uncompressed, gzip, snappy, lz4 or zstd has the leader recompress every batch in another codec to that one (at compression.<codec>.level) before it is written, as Kafka does.",
		def: constDefault("producer"), validate: oneOf("producer", "uncompressed", "gzip", "snappy", "lz4", "zstd"), Broker: "compression.type"},
	{Name: "compression.gzip.level", Type: 3, Doc: "gzip level when the leader recompresses to gzip: 1 to 9, or -1 for the codec's default.",
		def: constDefault("-1"), validate: gzipLevel, Broker: "compression.gzip.level"},
	{Name: "compression.lz4.level", Type: 3, Doc: "lz4 level when the leader recompresses to lz4: 1 to 17; up to 9 the fast compressor, above it the high-compression levels.",
		def: constDefault("9"), validate: intRange(1, 17), Broker: "compression.lz4.level"},
	{Name: "compression.zstd.level", Type: 3, Doc: "zstd level when the leader recompresses to zstd: -131072 to 22.",
		def: constDefault("3"), validate: intRange(-131072, 22), Broker: "compression.zstd.level"},
	{Name: "max.message.bytes", Type: 3, Doc: "Largest record batch accepted.",
		def:      func(d Defaults, _ int) string { return strconv.Itoa(int(d.MaxMessageBytes)) },
		validate: intRange(0, 1<<31-1), Broker: "message.max.bytes"},
	{Name: "message.timestamp.type", Type: 2, Doc: "CreateTime keeps the producer's timestamps; LogAppendTime stamps the append time.",
		def: constDefault("CreateTime"), validate: oneOf("CreateTime", "LogAppendTime"), Broker: "log.message.timestamp.type"},
	{Name: "message.timestamp.after.max.ms", Type: 5, Doc: "With CreateTime, a batch holding a record stamped more than this after the broker's clock is refused (INVALID_TIMESTAMP). Unset, message.timestamp.difference.max.ms applies.",
		def: constDefault("9223372036854775807"), validate: intRange(0, 1<<63-1), Broker: "log.message.timestamp.after.max.ms"},
	{Name: "message.timestamp.before.max.ms", Type: 5, Doc: "With CreateTime, a batch holding a record stamped more than this before the broker's clock is refused (INVALID_TIMESTAMP). Unset, message.timestamp.difference.max.ms applies.",
		def: constDefault("9223372036854775807"), validate: intRange(0, 1<<63-1), Broker: "log.message.timestamp.before.max.ms"},
	{Name: "message.timestamp.difference.max.ms", Type: 5, Doc: "Deprecated in Kafka: both bounds above, where they are not set.",
		def: constDefault("9223372036854775807"), validate: intRange(0, 1<<63-1), Broker: "log.message.timestamp.difference.max.ms"},
	{Name: "min.insync.replicas", Type: 3, Doc: "Replicas that must hold a batch before acks=all succeeds.",
		def:      func(_ Defaults, rf int) string { return strconv.Itoa(min(2, max(rf, 1))) },
		validate: intRange(1, 1<<31-1), Broker: "min.insync.replicas"},
	{Name: "retention.bytes", Type: 5, Doc: "Bytes kept per partition before old segments are dropped; -1 is unlimited.",
		def: constDefault("-1"), validate: intRange(-1, 1<<63-1), Broker: "log.retention.bytes"},
	{Name: "retention.ms", Type: 5, Doc: "How long segments are kept; -1 is forever.",
		def: constDefault("604800000"), validate: intRange(-1, 1<<63-1), Broker: "log.retention.ms", hoursSynonym: "log.retention.hours"},
	{Name: "segment.bytes", Type: 3, Doc: "Largest range the merger builds from small flushed ranges (at most the agent's merge size, 64 MiB by default); retention drops whole ranges, so this is its grain in bytes.",
		def: constDefault("1073741824"), validate: intRange(14, 1<<31-1), Broker: "log.segment.bytes"},
	{Name: "segment.ms", Type: 5, Doc: "Longest span of record time a merged range covers; retention drops whole ranges, so this is its grain in time.",
		def: constDefault("604800000"), validate: intRange(1, 1<<63-1), Broker: "log.roll.ms", hoursSynonym: "log.roll.hours"},

	{Name: "file.delete.delay.ms", Type: 5, Doc: noEffect + "objects no partition references are deleted by the controller's garbage collection once older than --orphan-grace.",
		def: constDefault("60000"), validate: intRange(0, 1<<63-1), Broker: "log.segment.delete.delay.ms"},
	{Name: "flush.messages", Type: 5, Doc: noEffect + "when the WAL is fsynced is the agent's --wal-sync (always: before acknowledging).",
		def: constDefault("9223372036854775807"), validate: intRange(1, 1<<63-1), Broker: "log.flush.interval.messages"},
	{Name: "flush.ms", Type: 5, Doc: noEffect + "when the WAL is fsynced is the agent's --wal-sync (always: before acknowledging).",
		def: constDefault("9223372036854775807"), validate: intRange(0, 1<<63-1), Broker: "log.flush.interval.ms"},
	{Name: "follower.replication.throttled.replicas", Type: 7, Doc: noEffect + "replication is not throttled; a follower copies only the unflushed tail, the rest is in the bucket.",
		def: constDefault(""), validate: throttledReplicas},
	{Name: "index.interval.bytes", Type: 3, Doc: noEffect + "each segment object carries its own block index, cut about every 64 KiB.",
		def: constDefault("4096"), validate: intRange(0, 1<<31-1), Broker: "log.index.interval.bytes"},
	{Name: "leader.replication.throttled.replicas", Type: 7, Doc: noEffect + "replication is not throttled; a follower copies only the unflushed tail, the rest is in the bucket.",
		def: constDefault(""), validate: throttledReplicas},
	{Name: "local.retention.bytes", Type: 5, Doc: noEffect + "an agent holds only the unflushed tail locally (its WAL); everything flushed is read from the bucket.",
		def: constDefault("-2"), validate: intRange(-2, 1<<63-1), Broker: "log.local.retention.bytes"},
	{Name: "local.retention.ms", Type: 5, Doc: noEffect + "an agent holds only the unflushed tail locally (its WAL); everything flushed is read from the bucket.",
		def: constDefault("-2"), validate: intRange(-2, 1<<63-1), Broker: "log.local.retention.ms"},
	{Name: "message.downconversion.enable", Type: 1, Doc: noEffect + "tlog serves only record batches v2 (Fetch v4 and later), so there is nothing to convert down to.",
		def: constDefault("true"), validate: boolean, Broker: "log.message.downconversion.enable"},
	{Name: "message.format.version", Type: 2, Doc: noEffect + "deprecated in Kafka; batches are always stored as record batches v2.",
		def: constDefault("3.0-IV1"), validate: formatVersion, Broker: "log.message.format.version"},
	{Name: "preallocate", Type: 1, Doc: noEffect + "there are no local segment files to preallocate.",
		def: constDefault("false"), validate: boolean, Broker: "log.preallocate"},
	{Name: "remote.log.copy.disable", Type: 1, Doc: noEffect + "every flushed range goes to the bucket: the bucket is the log.",
		def: constDefault("false"), validate: boolean},
	{Name: "remote.log.delete.on.disable", Type: 1, Doc: noEffect + "tiered storage cannot be turned off: the bucket is the log.",
		def: constDefault("false"), validate: boolean},
	{Name: "remote.storage.enable", Type: 1, Doc: noEffect + "every topic is tiered: the bucket is the log.",
		def: constDefault("false"), validate: boolean},
	{Name: "segment.index.bytes", Type: 3, Doc: noEffect + "each segment object carries its own block index in its footer.",
		def: constDefault("10485760"), validate: intRange(4, 1<<31-1), Broker: "log.index.size.max.bytes"},
	{Name: "segment.jitter.ms", Type: 5, Doc: noEffect + "ranges are sealed by the agent's flush interval and merged by size and record time.",
		def: constDefault("0"), validate: intRange(0, 1<<63-1), Broker: "log.roll.jitter.ms", hoursSynonym: "log.roll.jitter.hours"},
	{Name: "unclean.leader.election.enable", Type: 1, Doc: noEffect + "a new leader is always an in-sync replica, and everything flushed is in the bucket whoever leads.",
		def: constDefault("false"), validate: boolean, Broker: "unclean.leader.election.enable"},
}

// byName indexes Configs: produce reads several configs per batch.
var byName = func() map[string]Config {
	m := make(map[string]Config, len(Configs))
	for _, c := range Configs {
		m[c.Name] = c
	}
	return m
}()

// Lookup finds a topic config by name.
func Lookup(name string) (Config, bool) {
	c, ok := byName[name]
	return c, ok
}

// ValidateConfigs checks names and values of configs set on a topic.
func ValidateConfigs(cfgs map[string]string) error {
	names := make([]string, 0, len(cfgs))
	for k := range cfgs {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		c, ok := Lookup(k)
		if !ok {
			return fmt.Errorf("%w: unknown topic config %q", ErrInvalidConfig, k)
		}
		if err := c.validate(cfgs[k]); err != nil {
			return fmt.Errorf("config %s: %w", k, err)
		}
	}
	return nil
}

// ConfigValue returns the topic's effective value of a config and whether
// it is set on the topic (as opposed to defaulted).
func (t *Topic) ConfigValue(name string, d Defaults) (string, bool) {
	if v, ok := t.Configs[name]; ok {
		return v, true
	}
	c, ok := Lookup(name)
	if !ok {
		return "", false
	}
	return c.def(d, t.ReplicationFactor()), false
}

// Compacted says whether the topic's cleanup.policy includes compact.
func (t *Topic) Compacted() bool {
	return t.Meta != nil && t.Meta.CleanupPolicyHas("compact")
}

// ReplicationFactor is the replica count of the topic's first partition
// (1 for a topic without partitions).
func (t *Topic) ReplicationFactor() int {
	if t.Meta != nil && len(t.Meta.Partitions) > 0 {
		return len(t.Meta.Partitions[0].Replicas)
	}
	return 1
}

// TimestampBounds are how far before and after the broker's clock a
// CreateTime record's timestamp may be (message.timestamp.before.max.ms and
// .after.max.ms, each falling back to the deprecated
// message.timestamp.difference.max.ms as Kafka's LogConfig does);
// math.MaxInt64 is no bound.
func (t *Topic) TimestampBounds(d Defaults) (before, after int64) {
	long := func(name string) int64 {
		v, _ := t.ConfigValue(name, d)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return math.MaxInt64
		}
		return n
	}
	diff := long("message.timestamp.difference.max.ms")
	before, after = long("message.timestamp.before.max.ms"), long("message.timestamp.after.max.ms")
	if before == math.MaxInt64 {
		before = diff
	}
	if after == math.MaxInt64 {
		after = diff
	}
	return before, after
}

// Recompression returns the codec (tier/batch's numbering) and level the
// leader recompresses produced batches to, from compression.type and the
// codec's compression.*.level, or ok=false for "producer" (keep the
// producer's codec).
func (t *Topic) Recompression(d Defaults) (codec int8, level int, ok bool) {
	v, _ := t.ConfigValue("compression.type", d)
	levelOf := func(name string) int {
		s, _ := t.ConfigValue(name, d)
		n, _ := strconv.Atoi(s)
		return n
	}
	switch v {
	case "uncompressed":
		return 0, 0, true
	case "gzip":
		return 1, levelOf("compression.gzip.level"), true
	case "snappy":
		return 2, 0, true
	case "lz4":
		return 3, levelOf("compression.lz4.level"), true
	case "zstd":
		return 4, levelOf("compression.zstd.level"), true
	}
	return 0, 0, false
}

// MaxMessageBytes is the largest record batch the topic accepts.
func (t *Topic) MaxMessageBytes(d Defaults) int {
	v, _ := t.ConfigValue("max.message.bytes", d)
	n, err := strconv.Atoi(v)
	if err != nil {
		return int(d.MaxMessageBytes)
	}
	return n
}
