package producer

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// ErrClosed is returned (wrapped) by sends on a closed Producer and by
// records that Close failed before they were acknowledged.
var ErrClosed = errors.New("producer closed")

// ErrNoTopic is returned when a record has no topic and the Producer has no
// default topic.
var ErrNoTopic = errors.New("record has no topic and no default topic is set")

// Header is a record header. Keys need not be unique; order is kept.
type Header struct {
	Key   string // header name
	Value []byte // header value; nil is kept as null
}

// Record is a record to send.
type Record struct {
	// Topic is the destination; empty means the default topic.
	Topic string
	// Key decides the partition unless ExplicitPartition is set: a non-nil
	// key (an empty one included) is hashed with murmur2 as Java does; a
	// nil key is written as null and partitioned uniformly.
	Key []byte
	// Value is the payload; nil is written as null (a tombstone).
	Value []byte
	// Headers are written in order.
	Headers []Header
	// Timestamp is the record's CreateTime; zero means now. Topics with
	// message.timestamp.type=LogAppendTime store the broker's time instead.
	Timestamp time.Time
	// Partition is the partition to write to when ExplicitPartition is
	// true. A partition the topic does not have fails the send.
	Partition int32
	// ExplicitPartition makes the record go to Partition instead of the
	// partitioner's choice.
	ExplicitPartition bool
}

// Result is where an acknowledged record was written.
type Result struct {
	Topic     string // topic written to
	Partition int32  // partition written to
	// Offset is the record's offset; with AcksNone it is not known and
	// is meaningless.
	Offset int64
	// Timestamp is the CreateTime the record was sent with (kgo does not
	// surface a broker's LogAppendTime to producers).
	Timestamp time.Time
}

// Producer sends records to tlog or Kafka. It is safe for concurrent use;
// records sent to one partition from one goroutine are written in the order
// they were sent.
type Producer struct {
	cl     *kgo.Client
	cfg    config
	closed atomic.Bool
	once   sync.Once
}

// New creates a Producer for the given seed brokers ("host:port"). It does
// not connect: the first send does.
func New(brokers []string, opts ...Option) (*Producer, error) {
	var cfg config
	for _, o := range opts {
		o(&cfg)
	}
	kopts, err := cfg.kgo(brokers)
	if err != nil {
		return nil, err
	}
	cl, err := kgo.NewClient(kopts...)
	if err != nil {
		return nil, fmt.Errorf("producer: new client: %w", err)
	}
	return &Producer{cl: cl, cfg: cfg}, nil
}

// Client returns the underlying kgo client, for what this package does not
// cover (admin requests, metrics). Closing it closes the Producer.
func (p *Producer) Client() *kgo.Client { return p.cl }

// Send writes r and waits for its acknowledgement. If ctx ends first, Send
// returns ctx's error; the record is then failed if it was not yet sent, but
// a record already in flight may still be written (its outcome is unknown).
func (p *Producer) Send(ctx context.Context, r Record) (Result, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	done := make(chan struct{})
	var res Result
	var rerr error
	p.SendAsync(ctx, r, func(r Result, err error) {
		res, rerr = r, err
		close(done)
	})
	select {
	case <-done:
		return res, rerr
	case <-ctx.Done():
		// The callback still runs later; we just stop waiting for it.
		return Result{}, fmt.Errorf("send to %s: %w", r.Topic, ctx.Err())
	}
}

// SendAsync buffers r and returns; cb (if not nil) is called exactly once
// with the result or error. Callbacks run one at a time on the producer's
// goroutine in acknowledgement order, so they must be quick and must not
// call Send, Flush or Close (start a goroutine for that). SendAsync blocks
// only while the producer holds WithMaxBufferedRecords records; ctx bounds
// that wait and, until the record is sent, cancels it.
func (p *Producer) SendAsync(ctx context.Context, r Record, cb func(Result, error)) {
	if ctx == nil {
		ctx = context.Background()
	}
	if cb == nil {
		cb = func(Result, error) {}
	}
	kr, err := p.toKgo(ctx, r)
	if err != nil {
		cb(Result{}, err)
		return
	}
	p.cl.Produce(ctx, kr, func(kr *kgo.Record, err error) {
		if err != nil {
			cb(Result{}, p.wrapErr(kr, err))
			return
		}
		cb(Result{Topic: kr.Topic, Partition: kr.Partition, Offset: kr.Offset, Timestamp: kr.Timestamp}, nil)
	})
}

// SendFuture is SendAsync returning a Future instead of taking a callback.
func (p *Producer) SendFuture(ctx context.Context, r Record) *Future {
	f := &Future{done: make(chan struct{})}
	p.SendAsync(ctx, r, func(res Result, err error) {
		f.res, f.err = res, err
		close(f.done)
	})
	return f
}

// Flush waits until every record sent before the call is acknowledged or
// failed (their callbacks have run), or ctx ends. Linger is cut short.
func (p *Producer) Flush(ctx context.Context) error {
	if err := p.cl.Flush(ctx); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

// Close stops accepting records, flushes what is buffered until ctx ends,
// fails what is left with ErrClosed and closes the connections. It returns
// the flush error, if any. Calling Close again returns nil.
func (p *Producer) Close(ctx context.Context) error {
	var err error
	p.once.Do(func() {
		p.closed.Store(true)
		err = p.Flush(ctx)
		p.cl.Close()
	})
	return err
}

func (p *Producer) toKgo(ctx context.Context, r Record) (*kgo.Record, error) {
	if p.closed.Load() {
		return nil, fmt.Errorf("send to %s: %w", r.Topic, ErrClosed)
	}
	if r.Topic == "" && p.cfg.defaultTopic == "" {
		return nil, ErrNoTopic
	}
	kr := &kgo.Record{Topic: r.Topic, Key: r.Key, Value: r.Value, Timestamp: r.Timestamp}
	if len(r.Headers) > 0 {
		kr.Headers = make([]kgo.RecordHeader, len(r.Headers))
		for i, h := range r.Headers {
			kr.Headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
		}
	}
	if r.ExplicitPartition {
		if r.Partition < 0 {
			return nil, fmt.Errorf("send to %s: invalid partition %d", r.Topic, r.Partition)
		}
		kr.Context = withExplicitPartition(ctx, r.Partition)
	}
	return kr, nil
}

func (p *Producer) wrapErr(kr *kgo.Record, err error) error {
	topic := kr.Topic
	if topic == "" {
		topic = p.cfg.defaultTopic
	}
	if errors.Is(err, kgo.ErrClientClosed) {
		return fmt.Errorf("send to %s: %w: %w", topic, ErrClosed, err)
	}
	return fmt.Errorf("send to %s: %w", topic, err)
}

// Future is the pending result of SendFuture.
type Future struct {
	done chan struct{}
	res  Result
	err  error
}

// Done is closed once the result is known.
func (f *Future) Done() <-chan struct{} { return f.done }

// Wait blocks until the result is known or ctx ends.
func (f *Future) Wait(ctx context.Context) (Result, error) {
	select {
	case <-f.done:
		return f.res, f.err
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
}
