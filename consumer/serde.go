package consumer

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
)

// Deserializer turns record bytes into a typed key or value. data is nil for
// a null key or value. A Deserializer returns an error for bad input, never
// panics. Implementations must be safe for concurrent use.
type Deserializer[T any] interface {
	Deserialize(topic string, data []byte) (T, error)
}

// DeserializerFunc adapts a function to a Deserializer.
type DeserializerFunc[T any] func(topic string, data []byte) (T, error)

// Deserialize calls f.
func (f DeserializerFunc[T]) Deserialize(topic string, data []byte) (T, error) { return f(topic, data) }

// Bytes returns a Deserializer that passes the bytes through (nil for null).
func Bytes() Deserializer[[]byte] {
	return DeserializerFunc[[]byte](func(_ string, data []byte) ([]byte, error) { return data, nil })
}

// String returns a Deserializer that reads the bytes as a string; null reads
// as "" (Message.NullKey and NullValue tell the two apart).
func String() Deserializer[string] {
	return DeserializerFunc[string](func(_ string, data []byte) (string, error) { return string(data), nil })
}

// JSON returns a Deserializer that decodes JSON into a T with
// encoding/json; null (no bytes) decodes to T's zero value.
func JSON[T any]() Deserializer[T] {
	return DeserializerFunc[T](func(topic string, data []byte) (T, error) {
		var v T
		if data == nil {
			return v, nil
		}
		if err := json.Unmarshal(data, &v); err != nil {
			var zero T
			return zero, fmt.Errorf("json deserialize %T from topic %q: %w", v, topic, err)
		}
		return v, nil
	})
}

// Proto returns a Deserializer that decodes a protobuf message of type M
// from its binary wire format, e.g. Proto[structpb.Struct](), which yields
// *structpb.Struct. Null decodes to a nil message; empty bytes to an empty
// one.
func Proto[M any, PM interface {
	*M
	proto.Message
}]() Deserializer[PM] {
	return DeserializerFunc[PM](func(topic string, data []byte) (PM, error) {
		if data == nil {
			return nil, nil
		}
		m := PM(new(M))
		if err := proto.Unmarshal(data, m); err != nil {
			return nil, fmt.Errorf("protobuf deserialize %T from topic %q: %w", m, topic, err)
		}
		return m, nil
	})
}

// Message is a record with a typed key and value.
type Message[K, V any] struct {
	Topic     string // topic read from
	Partition int32  // partition read from
	Offset    int64  // the record's offset
	Key       K      // the deserialized key
	Value     V      // the deserialized value
	// NullKey and NullValue report a null key or value on the wire.
	NullKey   bool
	NullValue bool
	Headers   []Header  // as in Record
	Timestamp time.Time // as in Record
	// Record is the raw record.
	Record *Record
}

// DeserializeError is the error Run returns (wrapped) when a record's key or
// value does not deserialize.
type DeserializeError struct {
	Topic     string // the record's topic
	Partition int32  // the record's partition
	Offset    int64  // the record's offset
	Part      string // "key" or "value"
	Err       error  // the deserializer's error
}

// Error describes which record failed and why.
func (e *DeserializeError) Error() string {
	return fmt.Sprintf("deserialize %s of %s/%d@%d: %v", e.Part, e.Topic, e.Partition, e.Offset, e.Err)
}

// Unwrap returns the deserializer's error.
func (e *DeserializeError) Unwrap() error { return e.Err }

// Typed returns a Handler that deserializes each record's key with kd and
// value with vd and calls fn. A record that does not deserialize is not
// passed to fn: the Handler returns a *DeserializeError, which stops Run
// without marking the record processed. To skip such records instead, wrap
// the Handler and return nil for a *DeserializeError. A nil kd or vd leaves
// the key or value at its zero value.
func Typed[K, V any](kd Deserializer[K], vd Deserializer[V], fn func(context.Context, Message[K, V]) error) Handler {
	return func(ctx context.Context, r *Record) error {
		m := Message[K, V]{
			Topic:     r.Topic,
			Partition: r.Partition,
			Offset:    r.Offset,
			NullKey:   r.Key == nil,
			NullValue: r.Value == nil,
			Headers:   r.Headers,
			Timestamp: r.Timestamp,
			Record:    r,
		}
		var err error
		if kd != nil {
			if m.Key, err = kd.Deserialize(r.Topic, r.Key); err != nil {
				return &DeserializeError{r.Topic, r.Partition, r.Offset, "key", err}
			}
		}
		if vd != nil {
			if m.Value, err = vd.Deserialize(r.Topic, r.Value); err != nil {
				return &DeserializeError{r.Topic, r.Partition, r.Offset, "value", err}
			}
		}
		return fn(ctx, m)
	}
}
