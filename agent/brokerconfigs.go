package agent

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/tlog-io/tlog/agent/kafka"
	"github.com/tlog-io/tlog/agent/topic"
)

// Broker config types as DescribeConfigs names them.
const (
	cfgBoolean = 1
	cfgString  = 2
	cfgInt     = 3
	cfgLong    = 5
	cfgDouble  = 6
)

// brokerConfigs is the table of Kafka broker configs this agent honours,
// with its values, for DescribeConfigs (agent/kafka/brokerconfigs.go).
// Two are dynamic, per agent or cluster-wide: log.cleaner.backoff.ms and
// log.cleaner.dedupe.buffer.size, read by the key compactor on the
// controller at each pass (agent/tiering). Some more that Kafka lets
// operators change (thread counts, Kerberos) are dynamic and change
// nothing here, each saying why. The rest are set by flags.
// Last come the broker defaults behind topic configs, tlog's defaults:
// they are set per topic, not per agent.
func (a *Agent) brokerConfigs() []kafka.BrokerConfig {
	cfg := a.cfg
	itoa := func(n int64) string { return strconv.FormatInt(n, 10) }
	ms := func(d time.Duration) string { return itoa(d.Milliseconds()) }
	maxConns := int64(cfg.MaxConnectionsPerIP)
	if maxConns <= 0 {
		maxConns = 1<<31 - 1 // Kafka's default: no bound
	}
	out := []kafka.BrokerConfig{
		{Name: "broker.id", Value: itoa(int64(cfg.ID)), Type: cfgInt, Doc: "This agent's id (--id)."},
		{Name: "node.id", Value: itoa(int64(cfg.ID)), Type: cfgInt, Doc: "This agent's id (--id); KRaft's name for broker.id."},
		{Name: "auto.create.topics.enable", Value: strconv.FormatBool(cfg.AutoCreateTopics), Type: cfgBoolean, Doc: "Metadata requests create missing topics (--auto-create-topics)."},
		{Name: "num.partitions", Value: itoa(int64(cfg.DefaultPartitions)), Type: cfgInt, Doc: "Partitions of auto-created topics (--partitions)."},
		{Name: "message.max.bytes", Value: itoa(int64(cfg.MaxMessageBytes)), Type: cfgInt, Doc: "Largest record batch; the default of max.message.bytes (--max-message-bytes)."},
		{Name: "socket.request.max.bytes", Value: itoa(int64(cfg.MaxRequestBytes)), Type: cfgInt, Doc: "Largest request accepted; a larger one closes the connection."},
		{Name: "max.connections.per.ip", Value: itoa(maxConns), Type: cfgInt, Doc: "Connections one address may hold; past it a new one is closed (--max-connections-per-ip)."},
		{Name: "connections.max.reauth.ms", Value: ms(cfg.SASLSessionLifetime), Type: cfgLong, Doc: "How long a SASL session lasts before the client must re-authenticate (0: no limit)."},
		{Name: "super.users", Value: strings.Join(a.superUsers(), ";"), Type: cfgString, Doc: "Principals the authorizer allows everything."},
		{Name: "replica.lag.time.max.ms", Value: ms(cfg.ReplicaLagMax), Type: cfgLong, Doc: "A follower missing data for longer leaves the ISR."},
		{Name: "auto.leader.rebalance.enable", Value: strconv.FormatBool(!cfg.NoAutoBalance), Type: cfgBoolean, Doc: "The controller evens out replicas and leaders."},
		{Name: "log.retention.check.interval.ms", Value: ms(cfg.RetentionInterval), Type: cfgLong, Doc: "How often the controller applies retention and deletes unreferenced objects."},
		{Name: "log.cleaner.enable", Value: "true", Type: cfgBoolean, Doc: "The key compactor runs on the controller for topics with cleanup.policy=compact."},
		{Name: "log.cleaner.backoff.ms", Value: ms(cfg.CompactionInterval), Type: cfgLong, Validate: positiveLong(1, 1<<63-1),
			Doc: "How long the key compactor waits between passes over compacted topics (--compaction-interval). Dynamic: per agent or cluster-wide; the controller's value applies."},
		{Name: "log.cleaner.dedupe.buffer.size", Value: itoa(cfg.CompactionBufferBytes), Type: cfgLong, Validate: positiveLong(1<<20, 1<<31-1),
			Doc: "Memory for the key compactor's map of keys, 24 bytes a key (--compaction-buffer-bytes). Dynamic: per agent or cluster-wide; the controller's value applies from its next pass."},
		{Name: "offsets.topic.num.partitions", Value: itoa(int64(cfg.OffsetsPartitions)), Type: cfgInt, Doc: "Partitions of __consumer_offsets, fixed when it is created."},
		{Name: "offsets.retention.minutes", Value: itoa(int64(cfg.OffsetsRetention / time.Minute)), Type: cfgInt, Doc: "How long an empty group keeps its committed offsets."},
		{Name: "group.initial.rebalance.delay.ms", Value: ms(cfg.GroupInitialRebalanceDelay), Type: cfgInt, Doc: "How long a new group's first rebalance waits for more members."},
		{Name: "group.min.session.timeout.ms", Value: ms(cfg.GroupMinSessionTimeout), Type: cfgInt, Doc: "Shortest session timeout a classic group member may ask for."},
		{Name: "group.max.session.timeout.ms", Value: ms(cfg.GroupMaxSessionTimeout), Type: cfgInt, Doc: "Longest session timeout a classic group member may ask for."},
		{Name: "group.consumer.heartbeat.interval.ms", Value: ms(cfg.GroupConsumerHeartbeatInterval), Type: cfgInt, Doc: "Heartbeat interval of consumer-protocol (KIP-848) group members."},
		{Name: "group.consumer.session.timeout.ms", Value: ms(cfg.GroupConsumerSessionTimeout), Type: cfgInt, Doc: "Session timeout of consumer-protocol (KIP-848) group members."},
		{Name: "transaction.state.log.num.partitions", Value: itoa(int64(cfg.TransactionPartitions)), Type: cfgInt, Doc: "Partitions of __transaction_state, fixed when it is created."},
		{Name: "transaction.max.timeout.ms", Value: ms(cfg.TransactionMaxTimeout), Type: cfgInt, Doc: "Longest transaction timeout a producer may ask for."},
	}
	// Dynamic in Kafka, and without meaning here: accepted, validated,
	// stored and shown for the tools that set them.
	noEffect := func(name, value string, typ int8, why string, validate func(string) error) kafka.BrokerConfig {
		return kafka.BrokerConfig{Name: name, Value: value, Type: typ, Default: true, Validate: validate,
			Doc: "Accepted and shown; no effect in tlog: " + why}
	}
	threads := "an agent's goroutines are not pooled by kind."
	kerberos := "tlog has no Kerberos (GSSAPI); SASL is PLAIN or SCRAM."
	out = append(out,
		noEffect("background.threads", "10", cfgInt, threads, positiveLong(1, 1<<31-1)),
		noEffect("num.io.threads", "8", cfgInt, threads, positiveLong(1, 1<<31-1)),
		noEffect("num.network.threads", "3", cfgInt, threads, positiveLong(1, 1<<31-1)),
		noEffect("num.replica.fetchers", "1", cfgInt, "followers copy the unflushed tail over one peer stream per leader.", positiveLong(1, 1<<31-1)),
		noEffect("num.recovery.threads.per.data.dir", "2", cfgInt, "an agent recovers one WAL, no log directories.", positiveLong(1, 1<<31-1)),
		noEffect("log.cleaner.threads", "1", cfgInt, "the key compactor runs one pass at a time on the controller.", positiveLong(0, 1<<31-1)),
		noEffect("log.cleaner.io.max.bytes.per.second", "1.7976931348623157E308", cfgDouble, "the key compactor's reads are not throttled.", positiveFloat),
		noEffect("log.cleaner.io.buffer.size", "524288", cfgInt, "the key compactor reads whole ranges from the bucket.", positiveLong(0, 1<<31-1)),
		noEffect("log.cleaner.io.buffer.load.factor", "0.9", cfgDouble, "the key compactor's map has its own load factor.", positiveFloat),
		noEffect("sasl.kerberos.min.time.before.relogin", "60000", cfgLong, kerberos, positiveLong(0, 1<<63-1)),
		noEffect("sasl.kerberos.ticket.renew.jitter", "0.05", cfgDouble, kerberos, positiveFloat),
		noEffect("sasl.kerberos.ticket.renew.window.factor", "0.8", cfgDouble, kerberos, positiveFloat),
		noEffect("sasl.kerberos.kinit.cmd", "/usr/bin/kinit", cfgString, kerberos, anyString),
	)
	seen := map[string]bool{}
	for _, bc := range out {
		seen[bc.Name] = true
	}
	d := topic.Defaults{MaxMessageBytes: cfg.MaxMessageBytes}
	for _, c := range topic.Configs {
		name, v, ok := c.BrokerDefault(d, 3)
		if !ok || seen[name] {
			continue
		}
		seen[name] = true
		out = append(out, kafka.BrokerConfig{Name: name, Value: v, Type: c.Type, Default: true,
			Doc: "The default of topic config " + c.Name + " (set it per topic): " + c.Doc})
	}
	return out
}

// positiveLong validates a dynamic broker config's value.
func positiveLong(lo, hi int64) func(string) error {
	return func(v string) error {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < lo || n > hi {
			return fmt.Errorf("%w: %q is not an integer in [%d, %d]", topic.ErrInvalidConfig, v, lo, hi)
		}
		return nil
	}
}

func positiveFloat(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f >= 0) {
		return fmt.Errorf("%w: %q is not a number of at least 0", topic.ErrInvalidConfig, v)
	}
	return nil
}

func anyString(string) error { return nil }
