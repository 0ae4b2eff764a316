package producer

import (
	"encoding/json"
	"fmt"
	"reflect"

	"google.golang.org/protobuf/proto"
)

// Serializer turns a typed key or value into record bytes. Returning nil
// bytes writes a null key or value (a null value is a tombstone on compacted
// topics; a null key is partitioned like any keyless record). topic is the
// record's topic, for serializers that depend on it (schema registries).
// Implementations must be safe for concurrent use.
type Serializer[T any] interface {
	Serialize(topic string, v T) ([]byte, error)
}

// SerializerFunc adapts a function to a Serializer.
type SerializerFunc[T any] func(topic string, v T) ([]byte, error)

// Serialize calls f.
func (f SerializerFunc[T]) Serialize(topic string, v T) ([]byte, error) { return f(topic, v) }

// Bytes returns a Serializer that passes bytes through unchanged; a nil
// slice is written as null, an empty non-nil slice as zero bytes.
func Bytes() Serializer[[]byte] {
	return SerializerFunc[[]byte](func(_ string, v []byte) ([]byte, error) { return v, nil })
}

// String returns a Serializer that writes a string's UTF-8 bytes, like
// Java's StringSerializer. The empty string is written as zero bytes, not
// null, so an empty key is hashed like Java hashes it; use Message.NullKey
// for a keyless record.
func String() Serializer[string] {
	return SerializerFunc[string](func(_ string, v string) ([]byte, error) {
		if v == "" {
			return []byte{}, nil // non-nil: empty, not null
		}
		return []byte(v), nil
	})
}

// JSON returns a Serializer that writes v with encoding/json. A nil pointer,
// map, slice or interface is written as null (no bytes), as Java's JSON
// serializers do, rather than as the four bytes "null".
func JSON[T any]() Serializer[T] {
	return SerializerFunc[T](func(topic string, v T) ([]byte, error) {
		if isNil(v) {
			return nil, nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("json serialize %T for topic %q: %w", v, topic, err)
		}
		return b, nil
	})
}

// Proto returns a Serializer that writes a protobuf message in its binary
// wire format. A nil message is written as null.
func Proto[T proto.Message]() Serializer[T] {
	return SerializerFunc[T](func(topic string, v T) ([]byte, error) {
		if isNil(v) {
			return nil, nil
		}
		b, err := proto.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("protobuf serialize %T for topic %q: %w", v, topic, err)
		}
		if b == nil {
			b = []byte{} // an empty message is zero bytes, not null
		}
		return b, nil
	})
}

func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface, reflect.Func, reflect.Chan:
		return rv.IsNil()
	}
	return false
}
