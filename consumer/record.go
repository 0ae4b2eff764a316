package consumer

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// TopicPartition names a partition.
type TopicPartition struct {
	Topic     string // topic name
	Partition int32  // partition number
}

// String is "topic/partition".
func (tp TopicPartition) String() string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

// Header is a record header.
type Header struct {
	Key   string // header name
	Value []byte // header value; nil if null
}

// Record is a record read from a partition.
type Record struct {
	Topic     string // topic read from
	Partition int32  // partition read from
	Offset    int64  // the record's offset in its partition
	// Key and Value are nil when null on the wire, empty when empty.
	Key     []byte
	Value   []byte
	Headers []Header // in the order written
	// Timestamp is the CreateTime the producer set, or the broker's time
	// for LogAppendTime topics.
	Timestamp time.Time
	// LeaderEpoch is the partition leader epoch the record was written in
	// (-1 if the broker does not say).
	LeaderEpoch int32
}

// TopicPartition returns the record's partition.
func (r *Record) TopicPartition() TopicPartition { return TopicPartition{r.Topic, r.Partition} }

// Header returns the value of the last header named key, and whether there
// is one.
func (r *Record) Header(key string) ([]byte, bool) {
	for i := len(r.Headers) - 1; i >= 0; i-- {
		if r.Headers[i].Key == key {
			return r.Headers[i].Value, true
		}
	}
	return nil, false
}

func fromKgo(kr *kgo.Record) *Record {
	r := &Record{
		Topic:       kr.Topic,
		Partition:   kr.Partition,
		Offset:      kr.Offset,
		Key:         kr.Key,
		Value:       kr.Value,
		Timestamp:   kr.Timestamp,
		LeaderEpoch: kr.LeaderEpoch,
	}
	if len(kr.Headers) > 0 {
		r.Headers = make([]Header, len(kr.Headers))
		for i, h := range kr.Headers {
			r.Headers[i] = Header{h.Key, h.Value}
		}
	}
	return r
}

// PanicError is the error Run returns when a handler panics: the panic is
// recovered so that the positions processed before it are saved.
type PanicError struct {
	Value any    // what the handler panicked with
	Stack []byte // the handler goroutine's stack at the panic
}

// Error describes the panic.
func (e *PanicError) Error() string { return fmt.Sprintf("handler panicked: %v", e.Value) }

func callHandler(ctx context.Context, h Handler, r *Record) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return h(ctx, r)
}
