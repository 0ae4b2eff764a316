package producer

import (
	"context"
	"fmt"
	"time"
)

// Message is a typed record for a Typed producer.
type Message[K, V any] struct {
	// Topic is the destination; empty means the Producer's default topic.
	Topic string
	// Key is serialized with the key Serializer and decides the partition,
	// unless NullKey or ExplicitPartition is set.
	Key K
	// NullKey sends a null key (Key is ignored): the record is partitioned
	// like any keyless record.
	NullKey bool
	// Value is serialized with the value Serializer.
	Value V
	// Headers, Timestamp, Partition and ExplicitPartition are as in Record.
	Headers           []Header
	Timestamp         time.Time // CreateTime; zero means now
	Partition         int32     // used when ExplicitPartition is set
	ExplicitPartition bool      // write to Partition, not the key's partition
}

// Typed sends typed keys and values through a Producer. It is safe for
// concurrent use; several Typed values may share one Producer.
type Typed[K, V any] struct {
	p      *Producer
	keySer Serializer[K]
	valSer Serializer[V]
}

// NewTyped returns a Typed producer writing through p with the given key and
// value serializers.
func NewTyped[K, V any](p *Producer, keySer Serializer[K], valSer Serializer[V]) *Typed[K, V] {
	return &Typed[K, V]{p: p, keySer: keySer, valSer: valSer}
}

// Producer returns the underlying Producer (for Flush and Close).
func (t *Typed[K, V]) Producer() *Producer { return t.p }

// Record serializes m into a Record; it is what the Send methods do first.
func (t *Typed[K, V]) Record(m Message[K, V]) (Record, error) {
	topic := m.Topic
	if topic == "" {
		topic = t.p.cfg.defaultTopic
	}
	r := Record{
		Topic:             m.Topic,
		Headers:           m.Headers,
		Timestamp:         m.Timestamp,
		Partition:         m.Partition,
		ExplicitPartition: m.ExplicitPartition,
	}
	if !m.NullKey {
		if t.keySer == nil {
			return Record{}, fmt.Errorf("serialize key for %s: no key serializer", topic)
		}
		k, err := t.keySer.Serialize(topic, m.Key)
		if err != nil {
			return Record{}, fmt.Errorf("serialize key for %s: %w", topic, err)
		}
		r.Key = k
	}
	if t.valSer == nil {
		return Record{}, fmt.Errorf("serialize value for %s: no value serializer", topic)
	}
	v, err := t.valSer.Serialize(topic, m.Value)
	if err != nil {
		return Record{}, fmt.Errorf("serialize value for %s: %w", topic, err)
	}
	r.Value = v
	return r, nil
}

// Send serializes m, writes it and waits for the acknowledgement, as
// Producer.Send. A serialization error is returned without sending.
func (t *Typed[K, V]) Send(ctx context.Context, m Message[K, V]) (Result, error) {
	r, err := t.Record(m)
	if err != nil {
		return Result{}, err
	}
	return t.p.Send(ctx, r)
}

// SendAsync serializes m and sends it as Producer.SendAsync. A serialization
// error is passed to cb (before SendAsync returns) and nothing is sent.
func (t *Typed[K, V]) SendAsync(ctx context.Context, m Message[K, V], cb func(Result, error)) {
	r, err := t.Record(m)
	if err != nil {
		if cb != nil {
			cb(Result{}, err)
		}
		return
	}
	t.p.SendAsync(ctx, r, cb)
}

// SendFuture is SendAsync returning a Future.
func (t *Typed[K, V]) SendFuture(ctx context.Context, m Message[K, V]) *Future {
	r, err := t.Record(m)
	if err != nil {
		f := &Future{done: make(chan struct{}), err: err}
		close(f.done)
		return f
	}
	return t.p.SendFuture(ctx, r)
}
