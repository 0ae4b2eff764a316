package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/agent/kafka"
	"github.com/tlog-io/tlog/tier/bucketurl"
)

// storageFlags are the flags tlog dev and tlog agent share.
func storageFlags(dev bool) []cli.Flag {
	bucketUsage := "bucket URL: s3://BUCKET/PREFIX?endpoint=http://127.0.0.1:9000&region=us-east-1 (credentials from the AWS environment), file:///PATH, or mem://NAME; default file://DATA/bucket"
	if !dev {
		bucketUsage = "bucket URL, the same for every agent of the cluster: s3://BUCKET/PREFIX?endpoint=http://127.0.0.1:9000&region=us-east-1 (credentials from the AWS environment) or file:///SHARED/PATH " + requiredMark
	}
	return []cli.Flag{
		&cli.StringFlag{Name: "data", Value: "./tlog-data", EnvVars: []string{"TLOG_DATA"}, Usage: "data directory"},
		&cli.StringFlag{Name: "listen", Value: agent.Defaults.Listen, Usage: "Kafka listener address"},
		&cli.StringFlag{Name: "bucket", Usage: bucketUsage},
		&cli.StringFlag{Name: "wal-sync", Value: "never", Usage: "always: fsync before acknowledging; never: rely on the page cache (survives a process crash, not power loss)"},
		&cli.StringFlag{Name: "wal-store", Value: "auto", Usage: "files: the WAL in tlog's own append-only files (written with pwritev(2), read with pread); badger: in a Badger database (a mapped value log); auto: whichever DATA/wal already holds, files for a new one"},
		&cli.IntFlag{Name: "partitions", Value: int(agent.Defaults.DefaultPartitions), Usage: "num.partitions for auto-created topics"},
		sizeFlag("max-message-bytes", int64(agent.Defaults.MaxMessageBytes), "default max.message.bytes"),
		&cli.DurationFlag{Name: "flush-interval", Value: agent.Defaults.FlushInterval, Usage: "seal a segment at least this often"},
		&cli.DurationFlag{Name: "flush-commit-interval", Value: agent.Defaults.FlushCommitInterval, Usage: "the controller writes flush commits to the metadata journal at most this often, all agents' together (other metadata changes go at once)"},
		sizeFlag("flush-bytes", agent.Defaults.FlushBytes, "seal a segment once this much is unflushed"),
		sizeFlag("wal-max-bytes", agent.Defaults.WALMaxBytes, "unflushed bytes the WAL may hold while the bucket is slow or down; past it, produce gets a retriable error"),
		&cli.DurationFlag{Name: "compaction-interval", Value: agent.Defaults.CompactionInterval, Usage: "how often the key compactor looks for work on compacted topics (cleanup.policy=compact)"},
		sizeFlag("compaction-buffer-bytes", agent.Defaults.CompactionBufferBytes, "log.cleaner.dedupe.buffer.size: memory for the key compactor's map of keys (24 bytes a key; a bigger log takes more passes)"),
		&cli.DurationFlag{Name: "retention-check-interval", Value: agent.Defaults.RetentionInterval, Usage: "log.retention.check.interval.ms: how often the controller applies retention and deletes unreferenced objects"},
		&cli.DurationFlag{Name: "orphan-grace", Value: agent.Defaults.OrphanGrace, Usage: "how old an object no partition references must be before it is deleted; it must exceed the longest time from a segment's upload to its commit (at least 30s)"},
		sizeFlag("cache-bytes", agent.Defaults.CacheBytes, "memory for caching segment ranges read from the bucket"),
		sizeFlag("memory-limit", 0, "the Go runtime's soft memory limit, which collects garbage sooner near it (0: --cache-bytes + 96MiB, and the WAL's memtables (48MiB) on Badger; the GOMEMLIMIT environment variable overrides)"),
		&cli.StringFlag{Name: "admin-token", EnvVars: []string{"TLOG_ADMIN_TOKEN"}, Usage: "bearer token the admin listener asks for on every path but /healthz and /readyz"},
		&cli.BoolFlag{Name: "admin-pprof", Usage: "serve Go's profiles under /debug/pprof/ on the admin listener"},
		&cli.StringFlag{Name: "admin-listen", Usage: "admin HTTP address serving /metrics (Prometheus), /healthz, /readyz and, with --admin-pprof, /debug/pprof/, e.g. 127.0.0.1:9644; empty: off"},
		&cli.DurationFlag{Name: "group-initial-rebalance-delay", Value: agent.Defaults.GroupInitialRebalanceDelay, Usage: "group.initial.rebalance.delay.ms: how long a new group's first rebalance waits for more members (0: none)"},
		&cli.DurationFlag{Name: "group-consumer-heartbeat-interval", Value: agent.Defaults.GroupConsumerHeartbeatInterval, Usage: "group.consumer.heartbeat.interval.ms: how often members of consumer-protocol (KIP-848) groups heartbeat"},
		&cli.DurationFlag{Name: "group-consumer-session-timeout", Value: agent.Defaults.GroupConsumerSessionTimeout, Usage: "group.consumer.session.timeout.ms: how long a consumer-protocol group member may go without a heartbeat"},
		&cli.IntFlag{Name: "offsets-partitions", Value: int(agent.Defaults.OffsetsPartitions), Usage: "offsets.topic.num.partitions: partitions of __consumer_offsets, fixed when it is created"},
		&cli.IntFlag{Name: "transaction-partitions", Value: int(agent.Defaults.TransactionPartitions), Usage: "transaction.state.log.num.partitions: partitions of __transaction_state, fixed when it is created"},
		&cli.IntFlag{Name: "transaction-version", Value: int(agent.Defaults.TransactionVersion), Usage: "transaction.version feature level advertised to clients: 2 (epoch bump per transaction, KIP-890) or 1; the same on every agent"},
		&cli.DurationFlag{Name: "transaction-max-timeout", Value: agent.Defaults.TransactionMaxTimeout, Usage: "transaction.max.timeout.ms: the longest transaction timeout a producer may ask for"},
		&cli.StringSliceFlag{Name: "listener", Usage: "a Kafka port as [NAME=]PROTOCOL://HOST:PORT, PROTOCOL one of PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL (repeatable; when given, --listen is served only if also given)"},
		&cli.StringSliceFlag{Name: "advertised-listener", Usage: "advertised.listeners: NAME=HOST:PORT, the address clients of listener NAME are told to use (repeatable; default: its bound address)"},
		&cli.StringFlag{Name: "tls-cert", Usage: "PEM certificate (chain) for SSL and SASL_SSL listeners; read again when the file changes"},
		&cli.StringFlag{Name: "tls-key", Usage: "PEM private key for --tls-cert"},
		&cli.StringFlag{Name: "tls-client-ca", Usage: "PEM CA bundle: SSL listeners then require client certificates (the subject is the principal)"},
		&cli.DurationFlag{Name: "sasl-session-lifetime", Usage: "connections.max.reauth.ms: SASL clients re-authenticate within it or are disconnected (0: no limit)"},
		&cli.IntFlag{Name: "max-connections-per-ip", Usage: "max.connections.per.ip: Kafka connections one address may hold; more are closed at once (0: no bound)"},
		&cli.StringFlag{Name: "authorizer", Value: "none", Usage: "authorizer.class.name: `KIND` is acl (every request is checked against the ACLs that tlog acl manages; super users pass) or none (everyone may do everything)"},
		&cli.StringFlag{Name: "super-users", Usage: "principals allowed everything, comma-separated: User:a,User:b (the bootstrap user is one)"},
		&cli.StringFlag{Name: "bootstrap-user", Usage: "create (or reset) this SCRAM-SHA-512 and SCRAM-SHA-256 user at start, with the password in $TLOG_BOOTSTRAP_PASSWORD"},
	}
}

// listenerSpecs is the Kafka ports --listener and --listen ask for (none:
// the agent's default, one PLAINTEXT port on --listen).
func listenerSpecs(c *cli.Context) ([]kafka.ListenerSpec, error) {
	var specs []kafka.ListenerSpec
	if vs := c.StringSlice("listener"); len(vs) > 0 && c.IsSet("listen") {
		specs = append(specs, kafka.ListenerSpec{Name: kafka.Plaintext, Protocol: kafka.Plaintext, Addr: c.String("listen")})
	}
	for _, v := range c.StringSlice("listener") {
		l, err := kafka.ParseListener(v)
		if err != nil {
			return nil, err
		}
		specs = append(specs, l)
	}
	for _, v := range c.StringSlice("advertised-listener") {
		name, addr, ok := strings.Cut(v, "=")
		if _, _, err := net.SplitHostPort(addr); !ok || err != nil {
			return nil, fmt.Errorf("--advertised-listener %q: want NAME=HOST:PORT", v)
		}
		i := slices.IndexFunc(specs, func(l kafka.ListenerSpec) bool { return l.Name == name })
		if i < 0 {
			return nil, fmt.Errorf("--advertised-listener %q: no --listener is named %s", v, name)
		}
		specs[i].Advertise = addr
	}
	return specs, nil
}

func devCommand() *cli.Command {
	return &cli.Command{
		Name:  "dev",
		Usage: "run a single agent on this machine, with a local bucket",
		Description: "Runs one agent that is its own controller. Point any Kafka client at --listen.\n" +
			"Data lives under --data: the write-ahead log in DATA/wal and, unless --bucket says\n" +
			"otherwise, the bucket in DATA/bucket.",
		Flags: append(storageFlags(true),
			&cli.BoolFlag{Name: "auto-create-topics", Value: true, Usage: "create unknown topics on Metadata requests"},
			&cli.IntFlag{Name: "id", Value: 1, Usage: "agent (broker) id, 1 as in Kafka's quickstart; a data directory keeps the id it was created with (0 for one made before this flag)"},
		),
		Action: func(c *cli.Context) error { return runAgent(c, true) },
	}
}

func agentCommand() *cli.Command {
	return &cli.Command{
		Name:  "agent",
		Usage: "run one agent of a cluster",
		Description: "Agents sharing a bucket form one cluster: they find each other through it, elect a\n" +
			"controller with a lease in it, replicate each partition's unflushed tail to their peers\n" +
			"before acknowledging, and flush segments to it. Every agent needs a distinct --id.",
		Flags: append(storageFlags(false),
			&cli.IntFlag{Name: "id", Usage: "agent id, unique in the cluster (0 or more) " + requiredMark},
			&cli.StringFlag{Name: "advertise", Usage: "Kafka address clients are told to use (default: the bound --listen address)"},
			&cli.StringFlag{Name: "peer-listen", Value: "127.0.0.1:9093", Usage: "peer port: replication, heartbeats and proposals between agents"},
			&cli.StringFlag{Name: "peer-advertise", Usage: "peer address other agents dial (default: the bound --peer-listen address)"},
			&cli.StringFlag{Name: "zone", Usage: "availability zone or rack; replicas of a partition spread over zones"},
			&cli.BoolFlag{Name: "auto-create-topics", Value: false, Usage: "create unknown topics on Metadata requests"},
			&cli.DurationFlag{Name: "lease-ttl", Value: agent.Defaults.LeaseTTL, Usage: "controller lease TTL: how long a silent controller keeps the role"},
			&cli.DurationFlag{Name: "heartbeat-interval", Value: agent.Defaults.HeartbeatInterval, Usage: "how often the agent heartbeats to the controller"},
			&cli.DurationFlag{Name: "session-timeout", Value: agent.Defaults.SessionTimeout, Usage: "silence after which the controller fences an agent and moves its leaders"},
			&cli.DurationFlag{Name: "replica-lag-max", Value: agent.Defaults.ReplicaLagMax, Usage: "replica.lag.time.max.ms: a follower missing data longer leaves the ISR"},
			&cli.BoolFlag{Name: "no-auto-balance", Usage: "do not move replicas and leaders to even out load (drains and --replace-fenced-after still work)"},
			&cli.DurationFlag{Name: "replace-fenced-after", Value: agent.Defaults.ReplaceFencedAfter, Usage: "move the replicas of an agent fenced (unheard from) this long to live agents; 0 or less: never"},
			&cli.StringFlag{Name: "cluster-secret-file", EnvVars: []string{"TLOG_CLUSTER_SECRET_FILE"}, Usage: "file holding the secret every agent of the cluster shares: peer connections must prove it (HMAC) before anything else is taken"},
		),
		Action: func(c *cli.Context) error { return runAgent(c, false) },
	}
}

func runAgent(c *cli.Context, dev bool) error {
	log, level, err := newLogger(c)
	if err != nil {
		return err
	}
	if !dev && !c.IsSet("id") {
		return fail(2, "--id is required: every agent of a cluster needs its own (see tlog agent --help)")
	}
	var walSync bool
	switch c.String("wal-sync") {
	case "always":
		walSync = true
	case "never":
	default:
		return fail(2, "bad --wal-sync %q: use always or never", c.String("wal-sync"))
	}
	walStore := agent.WALAuto
	switch c.String("wal-store") {
	case "auto":
	case "badger":
		walStore = agent.WALBadger
	case "files":
		walStore = agent.WALFiles
	default:
		return fail(2, "bad --wal-store %q: use auto, files or badger", c.String("wal-store"))
	}
	dataDir, err := filepath.Abs(c.String("data"))
	if err != nil {
		return fail(2, "bad --data %q: %v", c.String("data"), err)
	}
	bucketURL := c.String("bucket")
	if bucketURL == "" {
		if !dev {
			return fail(2, "--bucket is required: every agent of a cluster must name the same bucket (s3://… or file:///shared/path; see tlog agent --help)")
		}
		bucketURL = "file://" + filepath.Join(dataDir, "bucket")
	}

	cfg := agent.Config{
		DataDir:             dataDir,
		Listen:              c.String("listen"),
		WALSync:             walSync,
		WALStoreKind:        walStore,
		AutoCreateTopics:    c.Bool("auto-create-topics"),
		DefaultPartitions:   int32(c.Int("partitions")),
		MaxMessageBytes:     int32(sizeOf(c, "max-message-bytes")),
		FlushInterval:       c.Duration("flush-interval"),
		FlushCommitInterval: c.Duration("flush-commit-interval"),
		FlushBytes:          sizeOf(c, "flush-bytes"),
		SegmentBytes:        sizeOf(c, "flush-bytes"),
		WALMaxBytes:         sizeOf(c, "wal-max-bytes"),
		CacheBytes:          sizeOf(c, "cache-bytes"),
		RetentionInterval:   c.Duration("retention-check-interval"),
		OrphanGrace:         c.Duration("orphan-grace"),

		CompactionInterval:    c.Duration("compaction-interval"),
		CompactionBufferBytes: sizeOf(c, "compaction-buffer-bytes"),
		AdminListen:           c.String("admin-listen"),
		AdminToken:            c.String("admin-token"),
		AdminPprof:            c.Bool("admin-pprof"),
		OffsetsPartitions:     int32(c.Int("offsets-partitions")),
		Logger:                log,
		LogLevel:              level,

		TransactionPartitions: int32(c.Int("transaction-partitions")),
		TransactionMaxTimeout: c.Duration("transaction-max-timeout"),
		TransactionVersion:    int16(c.Int("transaction-version")),

		TLSCertFile:         c.String("tls-cert"),
		TLSKeyFile:          c.String("tls-key"),
		TLSClientCAFile:     c.String("tls-client-ca"),
		SASLSessionLifetime: c.Duration("sasl-session-lifetime"),
		BootstrapUser:       c.String("bootstrap-user"),
		MaxConnectionsPerIP: c.Int("max-connections-per-ip"),
	}
	if d := c.Duration("compaction-interval"); d <= 0 {
		return fail(2, "bad --compaction-interval %v: give a positive duration", d)
	}
	if d := c.Duration("retention-check-interval"); d <= 0 {
		return fail(2, "bad --retention-check-interval %v: give a positive duration", d)
	}
	// Shorter, and a commit delayed by a slow controller could find its
	// object already collected.
	if d := c.Duration("orphan-grace"); d < 30*time.Second {
		return fail(2, "bad --orphan-grace %v: give 30s or more", d)
	}
	if n := sizeOf(c, "compaction-buffer-bytes"); n < 1<<20 {
		return fail(2, "bad --compaction-buffer-bytes %s: give at least 1MiB", formatSize(n))
	}
	if n := sizeOf(c, "max-message-bytes"); n < 1 || n > math.MaxInt32 {
		return fail(2, "bad --max-message-bytes %s: give 1 to 2147483647 bytes", formatSize(n))
	}
	if cfg.MaxConnectionsPerIP < 0 {
		return fail(2, "bad --max-connections-per-ip %d: give 0 (no bound) or more", cfg.MaxConnectionsPerIP)
	}
	switch c.String("authorizer") {
	case "acl":
		cfg.Authorizer = true
	case "none", "":
	default:
		return fail(2, "bad --authorizer %q: give acl or none", c.String("authorizer"))
	}
	for _, su := range strings.Split(c.String("super-users"), ",") {
		if su = strings.TrimSpace(su); su == "" {
			continue
		}
		if !strings.HasPrefix(su, "User:") || len(su) == len("User:") {
			return fail(2, "bad --super-users entry %q: give User:NAME", su)
		}
		cfg.SuperUsers = append(cfg.SuperUsers, su)
	}
	if cfg.Listeners, err = listenerSpecs(c); err != nil {
		return fail(2, "bad --listener: %v", err)
	}
	if cfg.BootstrapUser != "" {
		cfg.BootstrapPassword = os.Getenv("TLOG_BOOTSTRAP_PASSWORD")
		if cfg.BootstrapPassword == "" {
			return fail(2, "--bootstrap-user needs the password in $TLOG_BOOTSTRAP_PASSWORD")
		}
	}
	if d := c.Duration("sasl-session-lifetime"); d < 0 {
		return fail(2, "bad --sasl-session-lifetime %v: give a positive duration, or 0 for none", d)
	}
	switch d := c.Duration("group-initial-rebalance-delay"); {
	case d < 0:
		return fail(2, "bad --group-initial-rebalance-delay %v: give a duration, 0 for none", d)
	case d == 0:
		cfg.GroupInitialRebalanceDelay = -1 // none
	default:
		cfg.GroupInitialRebalanceDelay = d
	}
	hb, st := c.Duration("group-consumer-heartbeat-interval"), c.Duration("group-consumer-session-timeout")
	switch {
	case hb <= 0:
		return fail(2, "bad --group-consumer-heartbeat-interval %v: give a positive duration", hb)
	case st <= hb:
		return fail(2, "bad --group-consumer-session-timeout %v: it must be longer than --group-consumer-heartbeat-interval (%v)", st, hb)
	}
	cfg.GroupConsumerHeartbeatInterval, cfg.GroupConsumerSessionTimeout = hb, st
	if n := c.Int("offsets-partitions"); n <= 0 || n > 1000 {
		return fail(2, "bad --offsets-partitions %d: give 1 to 1000", n)
	}
	if n := c.Int("transaction-partitions"); n <= 0 || n > 1000 {
		return fail(2, "bad --transaction-partitions %d: give 1 to 1000", n)
	}
	if v := c.Int("transaction-version"); v != 1 && v != 2 {
		return fail(2, "bad --transaction-version %d: give 1 or 2", v)
	}
	if d := c.Duration("transaction-max-timeout"); d < time.Second {
		return fail(2, "bad --transaction-max-timeout %v: give at least 1s", d)
	}
	if c.Int("id") < 0 || c.Int("id") > 1<<31-1 {
		return fail(2, "bad --id %d: use 0 to 2147483647", c.Int("id"))
	}
	// Nothing is created until every flag has been checked.
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fail(1, "cannot create data directory: %v", err)
	}
	if dev {
		id, err := devAgentID(dataDir, c.Int("id"), c.IsSet("id"))
		if err != nil {
			return fail(2, "%v", err)
		}
		cfg.ID = id
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	bucket, err := bucketurl.Open(ctx, bucketURL)
	if err != nil {
		return fail(2, "cannot open bucket %s: %v", bucketURL, err)
	}
	defer bucket.Close()
	cfg.Bucket = bucket
	name := "tlog dev"
	if !dev {
		if c.String("peer-listen") == "" {
			return fail(2, "--peer-listen must not be empty: agents replicate over it")
		}
		cfg.ID = int32(c.Int("id"))
		cfg.Advertise = c.String("advertise")
		cfg.PeerListen = c.String("peer-listen")
		cfg.PeerAdvertise = c.String("peer-advertise")
		cfg.Zone = c.String("zone")
		cfg.LeaseTTL = c.Duration("lease-ttl")
		cfg.HeartbeatInterval = c.Duration("heartbeat-interval")
		cfg.SessionTimeout = c.Duration("session-timeout")
		cfg.ReplicaLagMax = c.Duration("replica-lag-max")
		cfg.NoAutoBalance = c.Bool("no-auto-balance")
		if cfg.ReplaceFencedAfter = c.Duration("replace-fenced-after"); cfg.ReplaceFencedAfter <= 0 {
			cfg.ReplaceFencedAfter = -1
		}
		if path := c.String("cluster-secret-file"); path != "" {
			b, err := os.ReadFile(path)
			if err != nil {
				return fail(2, "bad --cluster-secret-file: %v", err)
			}
			if cfg.ClusterSecret = bytes.TrimSpace(b); len(cfg.ClusterSecret) < 16 {
				return fail(2, "bad --cluster-secret-file: the secret must be at least 16 bytes")
			}
		} else {
			log.Warn("no --cluster-secret-file: the peer port takes any agent that names this cluster; keep it on a private network")
		}
		name = fmt.Sprintf("tlog agent %d", cfg.ID)
	}
	files, err := agent.WALOnFiles(dataDir, cfg.WALStoreKind)
	if err != nil {
		return fail(2, "%v", err)
	}
	if limit, set := memoryLimit(sizeOf(c, "memory-limit"), cfg.CacheBytes, !files); set {
		log.Debug("memory limit", "bytes", limit)
	}
	a, err := agent.Start(ctx, cfg)
	if err != nil {
		return fail(1, "%v", err)
	}
	fmt.Fprintf(c.App.Writer, "%s: serving Kafka on %s (cluster %s)\n", name, a.Addr(), a.ClusterID())
	if len(cfg.Listeners) > 0 {
		for _, l := range cfg.Listeners {
			fmt.Fprintf(c.App.Writer, "  listener %s: %s://%s\n", l.Name, l.Protocol, a.KafkaAddrs()[l.Name])
		}
	}
	fmt.Fprintf(c.App.Writer, "  data:   %s (write-ahead log in %s, wal-sync=%s)\n", dataDir, filepath.Join(dataDir, "wal"), c.String("wal-sync"))
	fmt.Fprintf(c.App.Writer, "  bucket: %s\n", bucketURL)
	if addr := a.PeerAddr(); addr != "" {
		fmt.Fprintf(c.App.Writer, "  peer listener: %s (other agents replicate through it)\n", addr)
	}
	if addr := a.AdminAddr(); addr != "" {
		pprof := ""
		if cfg.AdminPprof {
			pprof = ", /debug/pprof/"
		}
		fmt.Fprintf(c.App.Writer, "  admin:  http://%s/metrics, /healthz, /readyz%s\n", addr, pprof)
	}
	if dev {
		fmt.Fprintf(c.App.Writer, "  try:    echo hello | kcat -P -b %s -t demo && kcat -C -b %s -t demo -e\n", a.Addr(), a.Addr())
	}
	<-ctx.Done()
	stop() // a second Ctrl-C now kills the process
	fmt.Fprintf(c.App.Writer, "%s: shutting down\n", name)
	if err := a.Close(); err != nil {
		return fail(1, "shutdown: %v", err)
	}
	return nil
}
