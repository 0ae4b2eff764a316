package producer

import (
	"crypto/tls"

	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
)

// Acks is how many replicas must have a record before a send succeeds.
type Acks int

const (
	// AcksAll waits for every in-sync replica (Kafka acks=all, acks=-1). It
	// is the default and the only level compatible with idempotence.
	AcksAll Acks = iota
	// AcksLeader waits for the partition leader only (acks=1).
	AcksLeader
	// AcksNone does not wait at all (acks=0): a send succeeds once the
	// request is written to the connection and its offset is meaningless.
	AcksNone
)

// String returns Kafka's name for the level.
func (a Acks) String() string {
	switch a {
	case AcksAll:
		return "all"
	case AcksLeader:
		return "1"
	case AcksNone:
		return "0"
	}
	return fmt.Sprintf("Acks(%d)", int(a))
}

// Compression is the codec for record batches.
type Compression int

const (
	// CompressionDefault is kgo's default: snappy, or none for brokers
	// that do not support it.
	CompressionDefault Compression = iota
	// CompressionNone sends batches uncompressed.
	CompressionNone
	// CompressionGzip compresses batches with gzip.
	CompressionGzip
	// CompressionSnappy compresses batches with snappy.
	CompressionSnappy
	// CompressionLZ4 compresses batches with lz4.
	CompressionLZ4
	// CompressionZstd compresses batches with zstd.
	CompressionZstd
)

// Option configures a Producer.
type Option func(*config)

type config struct {
	acks         Acks
	idempotence  *bool // nil: on for AcksAll, off otherwise (Java's rule)
	clientID     string
	defaultTopic string
	linger       time.Duration
	compression  Compression
	partitioner  kgo.Partitioner
	maxBuffered  int
	timeout      time.Duration
	retries      int
	maxBatch     int32
	noAutoCreate bool
	kgoOpts      []kgo.Opt
	// security: TLS and SASL (security.go), and a bad SASL setting.
	tls     *tls.Config
	sasl    sasl.Mechanism
	saslErr error
}

// WithAcks sets the acknowledgement level (default AcksAll). AcksLeader and
// AcksNone turn idempotence off unless WithIdempotence(true) asks for it,
// which New then refuses, as the Java client does.
func WithAcks(a Acks) Option { return func(c *config) { c.acks = a } }

// WithIdempotence turns idempotent writes on or off (default on with
// AcksAll). With it on, the broker discards duplicates of a retried batch,
// so a retry never writes a record twice or out of order.
func WithIdempotence(on bool) Option { return func(c *config) { c.idempotence = &on } }

// WithClientID sets the client.id the broker sees (default "tlog-producer").
func WithClientID(id string) Option { return func(c *config) { c.clientID = id } }

// WithDefaultTopic sets the topic for records whose Topic is empty.
func WithDefaultTopic(topic string) Option { return func(c *config) { c.defaultTopic = topic } }

// WithLinger waits up to d (at most a minute) for more records before
// sending a batch (default 0: send at once; batches still form while a
// request is in flight).
func WithLinger(d time.Duration) Option { return func(c *config) { c.linger = d } }

// WithCompression sets the batch codec (default CompressionDefault).
func WithCompression(cmp Compression) Option { return func(c *config) { c.compression = cmp } }

// WithPartitioner replaces DefaultPartitioner for records without an
// explicit partition.
func WithPartitioner(p kgo.Partitioner) Option { return func(c *config) { c.partitioner = p } }

// WithMaxBufferedRecords bounds the records buffered but not yet
// acknowledged (kgo's default 10000); sends block while it is reached.
func WithMaxBufferedRecords(n int) Option { return func(c *config) { c.maxBuffered = n } }

// WithDeliveryTimeout fails a record that is not acknowledged within d of
// being sent (default: no limit besides retries, as kgo).
func WithDeliveryTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithRetries bounds how often a record is retried (default: kgo's, which
// retries until the delivery timeout).
func WithRetries(n int) Option { return func(c *config) { c.retries = n } }

// WithMaxBatchBytes bounds a record batch (default 1 MB, the broker's
// default max.message.bytes).
func WithMaxBatchBytes(n int32) Option { return func(c *config) { c.maxBatch = n } }

// WithAutoCreateTopics sets whether sending to a missing topic asks the
// broker to create it (default true, as the Java producer; the broker's
// auto.create.topics.enable has the last word).
func WithAutoCreateTopics(on bool) Option { return func(c *config) { c.noAutoCreate = !on } }

// WithKgoOptions appends raw kgo options (TLS, SASL, logging, …). They are
// applied last and can override anything set above.
func WithKgoOptions(opts ...kgo.Opt) Option {
	return func(c *config) { c.kgoOpts = append(c.kgoOpts, opts...) }
}

func (c *config) kgo(brokers []string) ([]kgo.Opt, error) {
	if len(brokers) == 0 {
		return nil, fmt.Errorf("producer: no brokers given")
	}
	idem := c.acks == AcksAll
	if c.idempotence != nil {
		idem = *c.idempotence
	}
	if idem && c.acks != AcksAll {
		return nil, fmt.Errorf("producer: idempotence requires acks=all, have acks=%s", c.acks)
	}
	id := c.clientID
	if id == "" {
		id = "tlog-producer"
	}
	part := c.partitioner
	if part == nil {
		part = DefaultPartitioner()
	}
	sec, err := c.securityOpts()
	if err != nil {
		return nil, err
	}
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID(id),
		kgo.RecordPartitioner(explicitPartitioner{part}),
	}, sec...)
	switch c.acks {
	case AcksAll:
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case AcksLeader:
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()))
	case AcksNone:
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()))
	default:
		return nil, fmt.Errorf("producer: unknown acks level %d", int(c.acks))
	}
	if !idem {
		opts = append(opts, kgo.DisableIdempotentWrite())
	}
	if !c.noAutoCreate {
		opts = append(opts, kgo.AllowAutoTopicCreation())
	}
	if c.defaultTopic != "" {
		opts = append(opts, kgo.DefaultProduceTopic(c.defaultTopic))
	}
	if c.linger > 0 {
		opts = append(opts, kgo.ProducerLinger(c.linger))
	}
	switch c.compression {
	case CompressionDefault:
	case CompressionNone:
		opts = append(opts, kgo.ProducerBatchCompression(kgo.NoCompression()))
	case CompressionGzip:
		opts = append(opts, kgo.ProducerBatchCompression(kgo.GzipCompression()))
	case CompressionSnappy:
		opts = append(opts, kgo.ProducerBatchCompression(kgo.SnappyCompression()))
	case CompressionLZ4:
		opts = append(opts, kgo.ProducerBatchCompression(kgo.Lz4Compression()))
	case CompressionZstd:
		opts = append(opts, kgo.ProducerBatchCompression(kgo.ZstdCompression()))
	default:
		return nil, fmt.Errorf("producer: unknown compression %d", int(c.compression))
	}
	if c.maxBuffered > 0 {
		opts = append(opts, kgo.MaxBufferedRecords(c.maxBuffered))
	}
	if c.timeout > 0 {
		opts = append(opts, kgo.RecordDeliveryTimeout(c.timeout))
	}
	if c.retries > 0 {
		opts = append(opts, kgo.RecordRetries(c.retries))
	}
	if c.maxBatch > 0 {
		opts = append(opts, kgo.ProducerBatchMaxBytes(c.maxBatch))
	}
	return append(opts, c.kgoOpts...), nil
}
