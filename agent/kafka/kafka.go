// Package kafka is the agent's Kafka front end: the listener, its
// connections, and one file per Kafka API (NN_name.go, numbered by API
// key), each opening with a comment on its behaviour and versions. It
// decodes and encodes with kmsg and does what a request asks through
// Backend, the agent as the front end sees it; it holds no partition,
// group or metadata state of its own beyond the producer ids it hands out.
package kafka

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/agent/topic"
	"github.com/tlog-io/tlog/agent/txn"
	"github.com/tlog-io/tlog/metadata"
)

// Backend is the agent as the Kafka handlers need it.
type Backend interface {
	// TopicByName and TopicByID return the topic as this agent holds it,
	// or nil. Topics lists them all.
	TopicByName(name string) *topic.Topic
	TopicByID(id uuid.UUID) *topic.Topic
	Topics() []*topic.Topic

	// State is the metadata as last applied here; Propose changes it
	// through the controller and returns a state that includes the
	// change. ControllerID is the controller as far as this agent knows,
	// or -1.
	State() *metadata.State
	Propose(ctx context.Context, cmds ...metadata.Command) (*metadata.State, error)
	ControllerID() int32

	// Coordinator is the group coordinator for groupID if this agent is
	// it, else a Kafka error code (NOT_COORDINATOR, or
	// COORDINATOR_LOAD_IN_PROGRESS while it loads). Coordinators lists
	// those this agent runs. EnsureOffsetsTopic creates the topic the
	// coordinators keep their state in, if missing.
	Coordinator(groupID string) (*group.Coordinator, int16)
	Coordinators() []*group.Coordinator
	EnsureOffsetsTopic(ctx context.Context) error
	// TxnCoordinator is the transaction coordinator for txnID if this
	// agent is it, else a Kafka error code as Coordinator gives.
	// EnsureTxnTopic creates the topic the transaction coordinators keep
	// their state in, if missing.
	TxnCoordinator(txnID string) (*txn.Coordinator, int16)
	TxnCoordinators() []*txn.Coordinator
	// VerifyTxn asks txnID's coordinator, wherever it is, whether tp is
	// in producer pid/epoch's open transaction: 0, or the Kafka error.
	// With add (transactions version 2) it adds tp instead, beginning
	// the transaction if none is open.
	VerifyTxn(ctx context.Context, txnID string, pid int64, epoch int16, tp txn.TP, add bool) int16
	EnsureTxnTopic(ctx context.Context) error
	// TxnMarkerWritten is told of each marker WriteTxnMarkers committed
	// (a group coordinator applies its producer's pending offsets).
	TxnMarkerWritten(topic string, partition int32, pid int64, commit bool)
	// GroupTopicNames maps topic ids to names, for consumer groups that
	// name topics by id.
	GroupTopicNames() map[[16]byte]string

	// SessionLive says the controller heard from this agent within the
	// session timeout: a leader past it must stop taking writes.
	SessionLive() bool
	// DataMoved returns a channel closed the next time any partition's
	// high watermark moves (long-polling fetches wait on it).
	DataMoved() <-chan struct{}
	// UnflushedBytes is how much of the WAL the bucket has yet to take;
	// Flush asks the tiering loop to flush now.
	UnflushedBytes() int64
	Flush()
	// NewProducerID hands out a producer id never used before.
	NewProducerID(ctx context.Context) (int64, error)

	// SetDraining marks an agent to be emptied of replicas (or no
	// longer), through the controller.
	SetDraining(ctx context.Context, id int32, draining bool) error
}

// Config is what the front end needs of the agent's settings.
type Config struct {
	ID                int32
	ClusterID         string
	MaxRequestBytes   int32
	MaxMessageBytes   int32
	DefaultPartitions int32
	AutoCreateTopics  bool
	// WALMaxBytes refuses produce once that much is unflushed;
	// FlushBytes asks for a flush once that much is.
	WALMaxBytes int64
	FlushBytes  int64
	// TransactionVersion is the transaction.version level ApiVersions
	// finalizes (0: none).
	TransactionVersion int16
	// SASLSessionLifetime bounds a SASL session (connections.max.reauth.ms,
	// KIP-368): clients re-authenticate before it ends, or the connection
	// is closed. 0: sessions do not expire.
	SASLSessionLifetime time.Duration
	// SuperUsers are principals ("User:NAME") allowed everything.
	SuperUsers []string
	// Authorizer makes every API ask the ACLs (authz.go); without it
	// everyone may do everything but manage users and ACLs over an
	// authenticated listener.
	Authorizer bool
	// MaxConnectionsPerIP bounds the connections from one address
	// (max.connections.per.ip; 0: no bound): past it a new connection is
	// closed at once.
	MaxConnectionsPerIP int
	// BrokerConfigs are the Kafka broker configs the agent honours, in
	// the order DescribeConfigs lists them (brokerconfigs.go).
	BrokerConfigs []BrokerConfig
	// LogLevel is the level of the agent's logger, changed at run time
	// through the BROKER_LOGGER resource (nil: fixed).
	LogLevel *slog.LevelVar
}

// Server serves the Kafka protocol on one listener.
type Server struct {
	cfg     Config
	b       Backend
	log     *slog.Logger
	metrics *metrics

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loops and each connection's two goroutines
	lnMu   sync.Mutex
	lns    []net.Listener

	quotas quotas // client byte-rate quotas' sensors (quotas.go)

	connsMu sync.Mutex
	conns   map[*conn]struct{}
	perIP   map[string]int
	closing bool
}

// New makes a server; Serve starts it. Its metrics register on reg.
func New(cfg Config, b Backend, log *slog.Logger, reg prometheus.Registerer) *Server {
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		cfg:     cfg,
		b:       b,
		log:     log,
		metrics: newMetrics(reg),
		ctx:     ctx,
		cancel:  cancel,
		conns:   make(map[*conn]struct{}),
		perIP:   make(map[string]int),
	}
}

// Serve accepts PLAINTEXT connections on ln until Stop; the server owns
// ln.
func (s *Server) Serve(ln net.Listener) {
	s.ServeListener(ln, Listener{Name: Plaintext, Protocol: Plaintext})
}

// ServeListener accepts connections on ln, speaking l's protocol (TLS is
// layered here), until Stop; the server owns ln.
func (s *Server) ServeListener(ln net.Listener, l Listener) {
	if l.Secure() {
		ln = tls.NewListener(ln, l.TLS)
	}
	s.lnMu.Lock()
	s.lns = append(s.lns, ln)
	s.lnMu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.serve(ln, l)
	}()
}

// Stop closes the listener and every connection and cancels requests in
// flight; Wait then waits for their goroutines.
func (s *Server) Stop() {
	s.cancel()
	s.lnMu.Lock()
	for _, ln := range s.lns {
		ln.Close()
	}
	s.lnMu.Unlock()
	s.connsMu.Lock()
	s.closing = true
	for c := range s.conns {
		c.nc.Close()
	}
	s.connsMu.Unlock()
}

// Wait waits for the goroutines Serve started, after Stop.
func (s *Server) Wait() { s.wg.Wait() }

// topicDefaults are the agent settings topic configs default to.
func (s *Server) topicDefaults() topic.Defaults {
	return topic.Defaults{MaxMessageBytes: s.cfg.MaxMessageBytes}
}
