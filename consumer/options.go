package consumer

import (
	"crypto/tls"

	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
)

// Option configures a Consumer.
type Option func(*config)

// assignment is one WithAssignment.
type assignment struct {
	topic      string
	partitions []int32 // nil: every partition
	start      Offset
}

type config struct {
	group        string
	protocol     string // "" or "classic", or "consumer" (KIP-848)
	topics       []string
	assignments  []assignment
	store        OffsetStore
	atMostOnce   bool
	maxPoll      int
	reset        *Offset
	clientID     string
	fetchMaxWait time.Duration
	onAssigned   func(context.Context, []TopicPartition)
	onRevoked    func(context.Context, []TopicPartition)
	onError      func(error)
	kgoOpts      []kgo.Opt
	// security: TLS and SASL (security.go), and a bad SASL setting.
	tls     *tls.Config
	sasl    sasl.Mechanism
	saslErr error
}

// WithGroup consumes topics as a member of a consumer group: the broker
// assigns partitions and keeps committed offsets. It excludes
// WithAssignment.
func WithGroup(group string, topics ...string) Option {
	return func(c *config) {
		c.group = group
		c.topics = append(c.topics, topics...)
	}
}

// WithGroupProtocol picks the group protocol, as Java's group.protocol:
// "classic" (the default: JoinGroup/SyncGroup, partitions assigned by a
// member with the cooperative-sticky assignor) or "consumer" (KIP-848:
// ConsumerGroupHeartbeat, partitions assigned by the broker with its
// uniform assignor, no group-wide stop on a rebalance). Against a broker
// without KIP-848 the consumer protocol falls back to classic.
func WithGroupProtocol(protocol string) Option { return func(c *config) { c.protocol = protocol } }

// WithAssignment consumes the given partitions of topic (nil or empty: all
// of them, looked up when Run starts). A partition starts at its position in
// the OffsetStore if there is one, else at start. It may be given several
// times; it excludes WithGroup.
func WithAssignment(topic string, partitions []int32, start Offset) Option {
	return func(c *config) {
		c.assignments = append(c.assignments, assignment{topic, append([]int32(nil), partitions...), start})
	}
}

// WithOffsetStore sets where an assignment-mode consumer keeps its position
// (default: a new MemoryStore, which forgets it with the process).
func WithOffsetStore(s OffsetStore) Option { return func(c *config) { c.store = s } }

// WithAtMostOnce saves (or commits) the positions past a batch before its
// handler calls instead of after: a crash loses the rest of the batch
// instead of replaying it, and a handler error does not rewind.
func WithAtMostOnce() Option { return func(c *config) { c.atMostOnce = true } }

// WithMaxPollRecords bounds a batch, and so how much is replayed after a
// crash (default 500, as Java's max.poll.records).
func WithMaxPollRecords(n int) Option { return func(c *config) { c.maxPoll = n } }

// WithResetOffset is where to start a partition whose position is out of
// range (deleted by retention, or past the end), and in group mode one with
// no committed offset (default Earliest).
func WithResetOffset(o Offset) Option { return func(c *config) { c.reset = &o } }

// WithClientID sets the client.id the broker sees (default "tlog-consumer").
func WithClientID(id string) Option { return func(c *config) { c.clientID = id } }

// WithFetchMaxWait bounds how long the broker holds a fetch waiting for data
// (default 500ms, as Java's fetch.max.wait.ms).
func WithFetchMaxWait(d time.Duration) Option { return func(c *config) { c.fetchMaxWait = d } }

// WithOnAssigned calls fn with the partitions gained, in group mode after
// each rebalance and in assignment mode once the assignment is resolved.
func WithOnAssigned(fn func(context.Context, []TopicPartition)) Option {
	return func(c *config) { c.onAssigned = fn }
}

// WithOnRevoked calls fn with the partitions lost in a rebalance (group
// mode), after the positions processed on them were committed (or, for
// partitions lost without a clean revoke, without committing).
func WithOnRevoked(fn func(context.Context, []TopicPartition)) Option {
	return func(c *config) { c.onRevoked = fn }
}

// WithErrorHandler receives errors that do not stop Run: fetch errors that
// kgo keeps retrying and failed commits before a revoke.
func WithErrorHandler(fn func(error)) Option { return func(c *config) { c.onError = fn } }

// WithKgoOptions appends raw kgo options (TLS, SASL, logging, …), applied
// last.
func WithKgoOptions(opts ...kgo.Opt) Option {
	return func(c *config) { c.kgoOpts = append(c.kgoOpts, opts...) }
}

func (c *config) validate(brokers []string) error {
	switch {
	case len(brokers) == 0:
		return fmt.Errorf("consumer: no brokers given")
	case c.saslErr != nil:
		return c.saslErr
	case c.group != "" && len(c.assignments) > 0:
		return fmt.Errorf("consumer: WithGroup and WithAssignment exclude each other")
	case c.group == "" && len(c.assignments) == 0:
		return fmt.Errorf("consumer: need WithGroup or WithAssignment")
	case c.group != "" && len(c.topics) == 0:
		return fmt.Errorf("consumer: group %q has no topics", c.group)
	case c.protocol != "" && c.protocol != "classic" && c.protocol != "consumer":
		return fmt.Errorf("consumer: unknown group protocol %q: use classic or consumer", c.protocol)
	case c.protocol != "" && c.group == "":
		return fmt.Errorf("consumer: WithGroupProtocol needs WithGroup")
	case c.group != "" && c.store != nil:
		return fmt.Errorf("consumer: WithOffsetStore is for assignment mode; groups commit to the broker")
	case c.maxPoll < 0:
		return fmt.Errorf("consumer: negative max poll records %d", c.maxPoll)
	}
	for _, a := range c.assignments {
		if a.topic == "" {
			return fmt.Errorf("consumer: assignment with an empty topic")
		}
		if err := a.start.validate(); err != nil {
			return fmt.Errorf("consumer: assignment of %s: %w", a.topic, err)
		}
		for _, p := range a.partitions {
			if p < 0 {
				return fmt.Errorf("consumer: assignment of %s: invalid partition %d", a.topic, p)
			}
		}
	}
	if c.reset != nil {
		if err := c.reset.validate(); err != nil {
			return fmt.Errorf("consumer: reset offset: %w", err)
		}
	}
	return nil
}

func (c *config) kgo(brokers []string, g *groupHooks) []kgo.Opt {
	id := c.clientID
	if id == "" {
		id = "tlog-consumer"
	}
	wait := c.fetchMaxWait
	if wait <= 0 {
		wait = 500 * time.Millisecond
	}
	reset := Earliest()
	if c.reset != nil {
		reset = *c.reset
	}
	sec, _ := c.securityOpts() // validate refused a bad setting
	opts := append([]kgo.Opt{
		kgo.SeedBrokers(brokers...),
		kgo.ClientID(id),
		kgo.FetchMaxWait(wait),
		kgo.ConsumeResetOffset(reset.kgo()),
	}, sec...)
	if c.group != "" {
		opts = append(opts,
			// No ConsumeTopics: kgo joins once it has topics, and the
			// member should join when Run starts, not at New.
			kgo.ConsumerGroup(c.group),
			// Only records whose handler returned are committed, never
			// merely polled ones.
			kgo.AutoCommitMarks(),
			// A rebalance waits for the batch in hand, so revoke can
			// commit everything processed.
			kgo.BlockRebalanceOnPoll(),
			kgo.OnPartitionsAssigned(g.assigned),
			kgo.OnPartitionsRevoked(g.revoked),
			kgo.OnPartitionsLost(g.lost),
		)
		if c.protocol == "consumer" {
			opts = append(opts, kgo.ServerSideBalancer())
		}
	}
	return append(opts, c.kgoOpts...)
}
