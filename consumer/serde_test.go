package consumer_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/tlog-io/tlog/consumer"
	"github.com/tlog-io/tlog/producer"
)

type order struct {
	ID     string            `json:"id"`
	Status string            `json:"status"`
	Items  []int             `json:"items,omitempty"`
	Tags   map[string]string `json:"tags,omitempty"`
}

func TestJSONRoundTrip(t *testing.T) {
	ser, des := producer.JSON[order](), consumer.JSON[order]()
	for _, in := range []order{{}, {ID: "o-1", Status: "shipped", Items: []int{1, 2}, Tags: map[string]string{"ü": "\x00"}}} {
		b, err := ser.Serialize("t", in)
		if err != nil {
			t.Fatal(err)
		}
		out, err := des.Deserialize("t", b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(in, out) {
			t.Fatalf("round trip: %+v → %s → %+v", in, b, out)
		}
	}
	// Pointers: nil is a null record, and null decodes to nil.
	pser, pdes := producer.JSON[*order](), consumer.JSON[*order]()
	if b, err := pser.Serialize("t", nil); err != nil || b != nil {
		t.Fatalf("nil pointer serialized to %q, %v; want null", b, err)
	}
	if v, err := pdes.Deserialize("t", nil); err != nil || v != nil {
		t.Fatalf("null deserialized to %v, %v", v, err)
	}
	// Bad input is an error, not a panic.
	for _, bad := range [][]byte{[]byte("{"), []byte(`{"id": 5}`), {0xff, 0xfe}, {}} {
		if _, err := des.Deserialize("t", bad); err == nil {
			t.Errorf("%q deserialized without error", bad)
		}
	}
	if _, err := producer.JSON[any]().Serialize("t", make(chan int)); err == nil {
		t.Error("a channel serialized")
	}
}

func TestProtoRoundTrip(t *testing.T) {
	st, err := structpb.NewStruct(map[string]any{"order": "o-1", "status": "delivered", "n": 3.0, "nested": map[string]any{"ok": true}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := producer.Proto[*structpb.Struct]().Serialize("t", st)
	if err != nil {
		t.Fatal(err)
	}
	got, err := consumer.Proto[structpb.Struct]().Deserialize("t", b)
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(st, got) {
		t.Fatalf("struct round trip: %v → %v", st, got)
	}

	sv := wrapperspb.String("prepared")
	b, err = producer.Proto[*wrapperspb.StringValue]().Serialize("t", sv)
	if err != nil {
		t.Fatal(err)
	}
	gsv, err := consumer.Proto[wrapperspb.StringValue]().Deserialize("t", b)
	if err != nil || gsv.GetValue() != "prepared" {
		t.Fatalf("string value round trip: %v, %v", gsv, err)
	}
	// The empty message is zero bytes but not null; null is a nil message.
	b, err = producer.Proto[*wrapperspb.StringValue]().Serialize("t", &wrapperspb.StringValue{})
	if err != nil || b == nil || len(b) != 0 {
		t.Fatalf("empty message serialized to %#v, %v", b, err)
	}
	if m, err := consumer.Proto[wrapperspb.StringValue]().Deserialize("t", b); err != nil || m == nil {
		t.Fatalf("empty bytes deserialized to %v, %v", m, err)
	}
	if b, err := producer.Proto[*wrapperspb.StringValue]().Serialize("t", nil); err != nil || b != nil {
		t.Fatalf("nil message serialized to %#v, %v", b, err)
	}
	if m, err := consumer.Proto[wrapperspb.StringValue]().Deserialize("t", nil); err != nil || m != nil {
		t.Fatalf("null deserialized to %v, %v", m, err)
	}
	// Garbage is an error.
	for _, bad := range [][]byte{{0xff}, {0x0a, 0x10, 'a'}, {0x08}} {
		if _, err := consumer.Proto[structpb.Struct]().Deserialize("t", bad); err == nil {
			t.Errorf("%x deserialized without error", bad)
		}
	}
}

func TestBytesAndString(t *testing.T) {
	if b, _ := producer.Bytes().Serialize("t", nil); b != nil {
		t.Fatal("nil bytes not null")
	}
	if s, _ := consumer.String().Deserialize("t", []byte("héllo")); s != "héllo" {
		t.Fatalf("string %q", s)
	}
	if b, _ := consumer.Bytes().Deserialize("t", []byte{}); b == nil {
		t.Fatal("empty bytes became null")
	}
}

// Typed values go through tlog and come back equal; a record that does not
// deserialize stops Run with a *DeserializeError and is not marked
// processed.
func TestTypedThroughTlog(t *testing.T) {
	addr := startTlog(t)
	for _, topic := range []string{"json", "proto"} {
		createTopic(t, addr, topic, 2)
	}
	p, err := producer.New([]string{addr})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx := ctx10(t)

	jp := producer.NewTyped(p, producer.String(), producer.JSON[order]())
	sent := []order{{ID: "o-1", Status: "prepared"}, {ID: "o-1", Status: "shipped", Items: []int{7}}, {ID: "o-2", Status: "delivered"}}
	for _, o := range sent {
		if _, err := jp.Send(ctx, producer.Message[string, order]{Topic: "json", Key: o.ID, Value: o, Headers: []producer.Header{{Key: "v", Value: []byte("1")}}}); err != nil {
			t.Fatal(err)
		}
	}
	// A record that is not JSON, in order-1's partition, after its records.
	bad, err := p.Send(ctx, producer.Record{Topic: "json", Key: []byte("o-1"), Value: []byte("not json")})
	if err != nil {
		t.Fatal(err)
	}
	var got []order
	store := consumer.NewMemoryStore()
	c := newConsumer(t, addr, consumer.WithAssignment("json", nil, consumer.Earliest()), consumer.WithOffsetStore(store))
	h := consumer.Typed(consumer.String(), consumer.JSON[order](), func(_ context.Context, m consumer.Message[string, order]) error {
		if m.Key != m.Value.ID || m.NullKey || string(m.Headers[0].Value) != "1" || m.Record == nil {
			t.Errorf("message %+v", m)
		}
		got = append(got, m.Value)
		return nil
	})
	err = c.Run(ctx, h)
	var de *consumer.DeserializeError
	if !errors.As(err, &de) || de.Part != "value" || de.Offset != bad.Offset || de.Partition != bad.Partition {
		t.Fatalf("Run: %v, want a DeserializeError of the value at %d@%d", err, bad.Partition, bad.Offset)
	}
	tp := consumer.TopicPartition{Topic: "json", Partition: bad.Partition}
	if pos := store.Offsets()[tp]; pos != bad.Offset {
		t.Fatalf("saved %d for %s, want the bad record's offset %d (not processed)", pos, tp, bad.Offset)
	}
	// Skipping poison records is the application's choice: wrap the handler.
	skipped := 0
	skip := func(ctx context.Context, r *consumer.Record) error {
		err := h(ctx, r)
		if errors.As(err, &de) {
			skipped++
			return nil
		}
		return err
	}
	if err := runUntil(t, c, skip, func() bool { return len(got) == 3 && skipped == 1 }); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if skipped != 1 {
		t.Fatalf("skipped %d records, want the bad one", skipped)
	}
	if !reflect.DeepEqual(got[0], sent[0]) && !reflect.DeepEqual(got[1], sent[0]) {
		t.Fatalf("read %+v", got)
	}
	for _, o := range sent {
		found := false
		for _, g := range got {
			found = found || reflect.DeepEqual(o, g)
		}
		if !found {
			t.Errorf("%+v not read back", o)
		}
	}

	pp := producer.NewTyped(p, producer.Bytes(), producer.Proto[*structpb.Struct]())
	st, _ := structpb.NewStruct(map[string]any{"order": "o-9", "status": "shipped"})
	if _, err := pp.Send(ctx, producer.Message[[]byte, *structpb.Struct]{Topic: "proto", Key: []byte("o-9"), Value: st}); err != nil {
		t.Fatal(err)
	}
	c2 := newConsumer(t, addr, consumer.WithAssignment("proto", nil, consumer.Earliest()))
	var gotSt *structpb.Struct
	if err := runUntil(t, c2, consumer.Typed(consumer.Bytes(), consumer.Proto[structpb.Struct](), func(_ context.Context, m consumer.Message[[]byte, *structpb.Struct]) error {
		gotSt = m.Value
		return nil
	}), func() bool { return gotSt != nil }); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if !proto.Equal(st, gotSt) {
		t.Fatalf("read %v, sent %v", gotSt, st)
	}
}

func TestFileStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "pos.json")
	s, err := consumer.NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	a, b := consumer.TopicPartition{Topic: "orders", Partition: 0}, consumer.TopicPartition{Topic: "orders", Partition: 11}
	if got, _ := s.Load(ctx, []consumer.TopicPartition{a}); len(got) != 0 {
		t.Fatalf("empty store loaded %v", got)
	}
	if err := s.Save(ctx, map[consumer.TopicPartition]int64{a: 5, b: 7}); err != nil {
		t.Fatal(err)
	}
	if err := s.Save(ctx, map[consumer.TopicPartition]int64{a: 9}); err != nil {
		t.Fatal(err)
	}
	s2, err := consumer.NewFileStore(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s2.Load(ctx, []consumer.TopicPartition{a, b, {Topic: "x", Partition: 0}})
	if err != nil || got[a] != 9 || got[b] != 7 || len(got) != 2 {
		t.Fatalf("reopened store: %v, %v", got, err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("files left in the directory: %v", entries)
	}
	for _, bad := range []string{"{", `{"t": {"x": 1}}`, `[]`} {
		os.WriteFile(path, []byte(bad), 0o644)
		if _, err := consumer.NewFileStore(path); err == nil {
			t.Errorf("corrupt store %q opened", bad)
		}
	}
	if _, err := consumer.NewFileStore(filepath.Join(dir, "missing", "dir", "x.json")); err != nil {
		t.Fatalf("missing file: %v", err)
	}
	ms := consumer.NewMemoryStore()
	ms.Save(ctx, map[consumer.TopicPartition]int64{a: 1})
	if got, _ := ms.Load(ctx, []consumer.TopicPartition{a, b}); got[a] != 1 || len(got) != 1 {
		t.Fatalf("memory store: %v", got)
	}
}
