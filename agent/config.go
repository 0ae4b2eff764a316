package agent

import (
	"log/slog"
	"time"

	"github.com/tlog-io/tlog/agent/kafka"
	"github.com/tlog-io/tlog/agent/peer"
	"github.com/tlog-io/tlog/agent/wal"
	"github.com/tlog-io/tlog/metadata/clock"
	"github.com/tlog-io/tlog/tier"
)

// Config configures an agent. A zero field takes its value in Defaults.
type Config struct {
	ID        int32
	DataDir   string
	Listen    string // Kafka listener
	Advertise string // address given to clients
	Zone      string
	Bucket    tier.Bucket

	// Listeners are the Kafka ports, each with its security protocol
	// ([NAME=]PROTOCOL://ADDR); empty: one PLAINTEXT port on Listen. The
	// first is the agent's main address (Advertise names it).
	Listeners []kafka.ListenerSpec
	// TLS for SSL and SASL_SSL listeners: a certificate and key (PEM
	// files, read again when they change), and a CA bundle that makes SSL
	// listeners require client certificates (the subject is then the
	// principal) and SASL_SSL ones accept them.
	TLSCertFile, TLSKeyFile, TLSClientCAFile string
	// SASLSessionLifetime is connections.max.reauth.ms (0: none).
	SASLSessionLifetime time.Duration
	// BootstrapUser, with BootstrapPassword, is a SCRAM-SHA-512 and
	// SCRAM-SHA-256 user the agent creates (or resets) at start, so a
	// new SASL cluster has someone to log in as.
	BootstrapUser, BootstrapPassword string
	// SuperUsers are principals ("User:NAME") allowed everything (the
	// bootstrap user is one).
	SuperUsers []string
	// Authorizer makes every Kafka request ask the ACLs in the journal
	// (authorizer.class.name); super users pass. Off, everyone may do
	// everything but manage users and ACLs over authenticated listeners.
	Authorizer bool
	// MaxConnectionsPerIP is max.connections.per.ip on every Kafka
	// listener (0: no bound, as Kafka's default).
	MaxConnectionsPerIP int
	// ClusterSecret, shared by every agent of the cluster, authenticates
	// peer connections: a Hello must prove it (HMAC over the called
	// agent's challenge for that connection) before anything else on the
	// connection is taken, and the answering agent proves it back. Empty: the peer port takes any agent of the
	// cluster id (keep it on a private network).
	ClusterSecret []byte

	// WALSync fsyncs every WAL group commit before acknowledging.
	WALSync bool
	// WALStoreKind picks the WAL's store: tlog's own append-only files
	// (wal.FileStore), Badger, or (WALAuto, the zero value) whichever the
	// WAL directory already holds, files for a new one.
	WALStoreKind WALKind
	// WALStore, if set, is the store the WAL runs on instead of Badger in
	// DataDir/wal (tests: wal.NewMemStore, or waltest.Faulty to inject
	// faults). The WAL closes it when the agent closes.
	WALStore wal.Store
	// AutoCreateTopics lets Metadata requests create missing topics.
	AutoCreateTopics bool
	// DefaultPartitions is num.partitions.
	DefaultPartitions int32
	// MaxMessageBytes is the broker default max.message.bytes.
	MaxMessageBytes int32
	// MaxRequestBytes is socket.request.max.bytes.
	MaxRequestBytes int32

	LeaseTTL time.Duration // controller lease TTL
	Logger   *slog.Logger
	// LogLevel, if set, is the level Logger logs at: the BROKER_LOGGER
	// resource changes it at run time.
	LogLevel *slog.LevelVar
	// FlushCommitInterval is the least time between metadata journal
	// writes that carry only flush commits: every agent's flush commits
	// wait up to this long to share one write (metadata.Config).
	FlushCommitInterval time.Duration

	// FlushInterval and FlushBytes seal a segment on age or size;
	// SegmentBytes bounds one object.
	FlushInterval time.Duration
	FlushBytes    int64
	SegmentBytes  int64
	// WALMaxBytes bounds unflushed data: past it, produce answers with a
	// retriable error until flushing catches up.
	WALMaxBytes int64
	// CacheBytes bounds the in-memory cache of segment ranges.
	CacheBytes int64
	// RetentionInterval is how often the controller applies retention and
	// collects unreferenced objects; OrphanGrace is how old
	// an unreferenced object must be before it is deleted.
	RetentionInterval time.Duration
	OrphanGrace       time.Duration
	// CompactInterval is how often small ranges are merged;
	// CompactBytes is the size merged objects grow to.
	CompactInterval time.Duration
	CompactBytes    int64
	// CompactionInterval is how often the key compactor looks at
	// compacted topics (cleanup.policy=compact); CompactionBufferBytes
	// bounds the memory of its key map (log.cleaner.dedupe.buffer.size).
	CompactionInterval    time.Duration
	CompactionBufferBytes int64

	// AdminListen is the admin HTTP address (/metrics, /healthz,
	// /readyz); empty disables it.
	AdminListen string
	// AdminToken, if set, is the bearer token every admin path but the
	// probes needs; AdminPprof serves /debug/pprof/ there.
	AdminToken string
	AdminPprof bool

	// PeerListen is the peer port (replication, heartbeats, proposals),
	// e.g. 127.0.0.1:9093. Empty is a standalone agent (tlog dev): no
	// peers, always its own controller. PeerAdvertise is what other agents
	// dial. Transport opens peer connections (TCP when nil; tests
	// inject faults).
	PeerListen    string
	PeerAdvertise string
	Transport     peer.Transport
	// Clock is the time the agent decides by: its session with the
	// controller (and the unreachable-controller vote), the controller's
	// liveness and fencing, the controller lease, and a leader's view of
	// follower lag (nil: clock.Real, the process's monotonic clock). Tests
	// pass a clocktest.Fake and move time instead of sleeping. Like
	// Transport it is a seam, not a setting: it has no entry in Defaults
	// and no flag. Loops are still paced in real time (see package clock).
	Clock clock.Clock
	// HeartbeatInterval: how often an agent heartbeats to the
	// controller. SessionTimeout: silence after which the controller
	// fences an agent. DisconnectGrace: how long a dropped heartbeat
	// connection may stay down before the agent is fenced (a killed
	// process drops its connections at once).
	HeartbeatInterval time.Duration
	SessionTimeout    time.Duration
	DisconnectGrace   time.Duration
	// ReplicaLagMax is replica.lag.time.max.ms: a follower missing data
	// for longer leaves the ISR.
	ReplicaLagMax time.Duration
	// BalanceInterval: how often the controller evens out replicas and
	// leaders; NoAutoBalance turns that off.
	BalanceInterval time.Duration
	NoAutoBalance   bool
	// ReplaceFencedAfter: replicas on an agent fenced (unheard from)
	// this long move to live agents, as a drain moves them (negative:
	// never). Drains and these moves happen with NoAutoBalance too.
	ReplaceFencedAfter time.Duration

	// Consumer groups. OffsetsPartitions: partitions of __consumer_offsets
	// (offsets.topic.num.partitions). GroupInitialRebalanceDelay holds a
	// new group's first rebalance open for more members (negative: none). GroupMinSessionTimeout, GroupMaxSessionTimeout
	// bound what members may ask for. OffsetsRetention:
	// how long an empty group keeps its offsets.
	// GroupWriteTimeout bounds the
	// wait for a group record to be committed.
	// GroupConsumerHeartbeatInterval and GroupConsumerSessionTimeout are
	// those of consumer-protocol (KIP-848) groups, which the coordinator
	// sets for its members.
	OffsetsPartitions          int32
	GroupInitialRebalanceDelay time.Duration
	GroupMinSessionTimeout     time.Duration
	GroupMaxSessionTimeout     time.Duration
	OffsetsRetention           time.Duration
	GroupWriteTimeout          time.Duration

	GroupConsumerHeartbeatInterval time.Duration
	GroupConsumerSessionTimeout    time.Duration

	// Transactions. TransactionPartitions: partitions of
	// __transaction_state (transaction.state.log.num.partitions).
	// TransactionMaxTimeout: the longest transaction.timeout.ms a
	// producer may ask for (transaction.max.timeout.ms).
	// TransactionCheckInterval: how often coordinators look for
	// transactions past their timeout to abort.
	TransactionPartitions    int32
	TransactionMaxTimeout    time.Duration
	TransactionCheckInterval time.Duration
	// TransactionVersion is the transaction.version feature level
	// ApiVersions finalizes: 2 (KIP-890 part 2: clients let produces add
	// partitions and every EndTxn bump the epoch) or 1. Give every agent
	// the same.
	TransactionVersion int16
}

// Defaults is the one table of configuration defaults: a zero field of a
// Config takes its value here, and the CLI's flags (cmd/tlog) default to
// and show the same values.
var Defaults = Config{
	Listen:                "127.0.0.1:9092",
	DefaultPartitions:     1,
	MaxMessageBytes:       1 << 20,
	MaxRequestBytes:       100 << 20,
	LeaseTTL:              3 * time.Second,
	FlushCommitInterval:   100 * time.Millisecond,
	FlushInterval:         250 * time.Millisecond,
	FlushBytes:            8 << 20,
	SegmentBytes:          8 << 20,
	WALMaxBytes:           1 << 30,
	CacheBytes:            256 << 20,
	RetentionInterval:     30 * time.Second,
	OrphanGrace:           10 * time.Minute,
	CompactInterval:       30 * time.Second,
	CompactBytes:          64 << 20,
	CompactionInterval:    15 * time.Second,
	CompactionBufferBytes: 64 << 20,
	HeartbeatInterval:     250 * time.Millisecond,
	SessionTimeout:        3 * time.Second,
	DisconnectGrace:       500 * time.Millisecond,
	ReplicaLagMax:         10 * time.Second,
	BalanceInterval:       5 * time.Second,
	ReplaceFencedAfter:    10 * time.Minute,

	OffsetsPartitions:          16,
	GroupInitialRebalanceDelay: 3 * time.Second,
	GroupMinSessionTimeout:     6 * time.Second,
	GroupMaxSessionTimeout:     30 * time.Minute,
	OffsetsRetention:           7 * 24 * time.Hour,
	GroupWriteTimeout:          30 * time.Second,

	GroupConsumerHeartbeatInterval: 5 * time.Second,
	GroupConsumerSessionTimeout:    45 * time.Second,

	TransactionPartitions:    16,
	TransactionMaxTimeout:    15 * time.Minute,
	TransactionCheckInterval: 10 * time.Second,
	TransactionVersion:       2,
}

// orDefault sets *v to def when it is not positive.
func orDefault[T int16 | int32 | int64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

func (c *Config) setDefaults() {
	d := Defaults
	if c.Listen == "" {
		c.Listen = d.Listen
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Transport == nil {
		c.Transport = peer.TCP{}
	}
	c.Clock = clock.Or(c.Clock)
	orDefault(&c.DefaultPartitions, d.DefaultPartitions)
	orDefault(&c.MaxMessageBytes, d.MaxMessageBytes)
	orDefault(&c.MaxRequestBytes, d.MaxRequestBytes)
	orDefault(&c.LeaseTTL, d.LeaseTTL)
	orDefault(&c.FlushCommitInterval, d.FlushCommitInterval)
	orDefault(&c.FlushInterval, d.FlushInterval)
	orDefault(&c.FlushBytes, d.FlushBytes)
	orDefault(&c.SegmentBytes, d.SegmentBytes)
	orDefault(&c.WALMaxBytes, d.WALMaxBytes)
	orDefault(&c.CacheBytes, d.CacheBytes)
	orDefault(&c.RetentionInterval, d.RetentionInterval)
	orDefault(&c.OrphanGrace, d.OrphanGrace)
	orDefault(&c.CompactInterval, d.CompactInterval)
	orDefault(&c.CompactBytes, d.CompactBytes)
	orDefault(&c.CompactionInterval, d.CompactionInterval)
	orDefault(&c.CompactionBufferBytes, d.CompactionBufferBytes)
	orDefault(&c.HeartbeatInterval, d.HeartbeatInterval)
	orDefault(&c.SessionTimeout, d.SessionTimeout)
	orDefault(&c.DisconnectGrace, d.DisconnectGrace)
	orDefault(&c.ReplicaLagMax, d.ReplicaLagMax)
	orDefault(&c.BalanceInterval, d.BalanceInterval)
	if c.ReplaceFencedAfter == 0 { // negative: never
		c.ReplaceFencedAfter = d.ReplaceFencedAfter
	}
	orDefault(&c.OffsetsPartitions, d.OffsetsPartitions)
	orDefault(&c.TransactionPartitions, d.TransactionPartitions)
	orDefault(&c.TransactionMaxTimeout, d.TransactionMaxTimeout)
	orDefault(&c.TransactionVersion, d.TransactionVersion)
	orDefault(&c.TransactionCheckInterval, d.TransactionCheckInterval)
	// Negative means none; zero, the default.
	switch {
	case c.GroupInitialRebalanceDelay == 0:
		c.GroupInitialRebalanceDelay = d.GroupInitialRebalanceDelay
	case c.GroupInitialRebalanceDelay < 0:
		c.GroupInitialRebalanceDelay = 0
	}
	orDefault(&c.GroupMinSessionTimeout, d.GroupMinSessionTimeout)
	orDefault(&c.GroupMaxSessionTimeout, d.GroupMaxSessionTimeout)
	orDefault(&c.OffsetsRetention, d.OffsetsRetention)
	orDefault(&c.GroupWriteTimeout, d.GroupWriteTimeout)
	orDefault(&c.GroupConsumerHeartbeatInterval, d.GroupConsumerHeartbeatInterval)
	orDefault(&c.GroupConsumerSessionTimeout, d.GroupConsumerSessionTimeout)
}
