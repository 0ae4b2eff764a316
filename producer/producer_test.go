package producer

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

func newProducer(t *testing.T, addr string, opts ...Option) *Producer {
	t.Helper()
	p, err := New([]string{addr}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close(context.Background()) })
	return p
}

func TestSendSyncRoundTrip(t *testing.T) {
	addr := startTlog(t)
	p := newProducer(t, addr)
	ctx := ctx10(t)
	ts := time.UnixMilli(1_700_000_000_123)
	headers := []Header{{"trace", []byte("abc")}, {"trace", []byte("def")}, {"empty", []byte{}}, {"null", nil}}
	res, err := p.Send(ctx, Record{Topic: "t", Key: []byte("k"), Value: []byte("v"), Headers: headers, Timestamp: ts})
	if err != nil {
		t.Fatal(err)
	}
	if res.Topic != "t" || res.Partition != 0 || res.Offset != 0 || !res.Timestamp.Equal(ts) {
		t.Fatalf("result %+v", res)
	}
	res2, err := p.Send(ctx, Record{Topic: "t", Value: []byte("second")})
	if err != nil {
		t.Fatal(err)
	}
	if res2.Offset != 1 {
		t.Fatalf("second offset %d, want 1", res2.Offset)
	}
	if time.Since(res2.Timestamp) > time.Minute || res2.Timestamp.After(time.Now()) {
		t.Fatalf("zero timestamp not set to now: %v", res2.Timestamp)
	}

	rs := readN(t, addr, "t", 2)
	r := rs[0]
	if string(r.Key) != "k" || string(r.Value) != "v" || !r.Timestamp.Equal(ts) || r.Offset != 0 {
		t.Fatalf("read %+v", r)
	}
	if len(r.Headers) != len(headers) {
		t.Fatalf("headers %+v, want %+v", r.Headers, headers)
	}
	for i, h := range headers {
		if r.Headers[i].Key != h.Key || !bytes.Equal(r.Headers[i].Value, h.Value) || (h.Value == nil) != (r.Headers[i].Value == nil) {
			t.Errorf("header %d: read %q=%q, sent %q=%q", i, r.Headers[i].Key, r.Headers[i].Value, h.Key, h.Value)
		}
	}
	if !rs[1].Timestamp.Equal(res2.Timestamp.Truncate(time.Millisecond)) {
		t.Errorf("second record timestamp %v, result said %v", rs[1].Timestamp, res2.Timestamp)
	}
	// Idempotence is on by default: the batch carries a producer ID.
	if r.ProducerID < 0 {
		t.Errorf("record has producer ID %d: idempotence off", r.ProducerID)
	}
}

func TestNullAndEmptyKeyAndValue(t *testing.T) {
	addr := startTlog(t)
	p := newProducer(t, addr)
	ctx := ctx10(t)
	in := []Record{
		{Topic: "t", Key: nil, Value: nil},
		{Topic: "t", Key: []byte{}, Value: []byte{}},
		{Topic: "t", Key: []byte("k"), Value: nil},
	}
	for _, r := range in {
		if _, err := p.Send(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	for i, r := range readN(t, addr, "t", 3) {
		if (r.Key == nil) != (in[i].Key == nil) || (r.Value == nil) != (in[i].Value == nil) ||
			!bytes.Equal(r.Key, in[i].Key) || !bytes.Equal(r.Value, in[i].Value) {
			t.Errorf("record %d: read key %#v value %#v, sent %#v %#v", i, r.Key, r.Value, in[i].Key, in[i].Value)
		}
	}
}

// A keyed record sent through the producer to tlog lands in the partition
// Java's DefaultPartitioner picks.
func TestKeyedRecordLandsInJavaPartition(t *testing.T) {
	addr := startTlog(t)
	const parts = 6
	createTopic(t, addr, "keyed", parts)
	p := newProducer(t, addr)
	ctx := ctx10(t)
	keys := [][]byte{{}, []byte("21"), []byte("foobar"), []byte("abc"), {0xff, 0xfe}}
	for i := range 30 {
		keys = append(keys, fmt.Appendf(nil, "order-%d", i))
	}
	spread := map[int32]bool{}
	for _, k := range keys {
		res, err := p.Send(ctx, Record{Topic: "keyed", Key: k, Value: k})
		if err != nil {
			t.Fatal(err)
		}
		want := javaPartition(k, parts)
		if res.Partition != want {
			t.Errorf("key %q: producer wrote partition %d, Java's partitioner picks %d", k, res.Partition, want)
		}
		spread[res.Partition] = true
	}
	if len(spread) < 3 {
		t.Errorf("30+ keys landed in only %d partitions", len(spread))
	}
	// Read back: each record is in the partition computed from its key.
	for _, r := range readN(t, addr, "keyed", len(keys)) {
		if want := javaPartition(r.Key, parts); r.Partition != want {
			t.Errorf("key %q read from partition %d, want %d", r.Key, r.Partition, want)
		}
	}
}

// Records of one key are read in the order they were sent.
func TestKeyOrder(t *testing.T) {
	addr := startTlog(t)
	createTopic(t, addr, "orders", 4)
	p := newProducer(t, addr)
	ctx := ctx10(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for i := range 200 {
		wg.Add(1)
		key := fmt.Sprintf("order-%d", i%10)
		p.SendAsync(ctx, Record{Topic: "orders", Key: []byte(key), Value: fmt.Appendf(nil, "%s/%03d", key, i)}, func(_ Result, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatal(errs[0])
	}
	last := map[string]string{}
	for _, r := range readN(t, addr, "orders", 200) {
		k := string(r.Key)
		if v := string(r.Value); v <= last[k] {
			t.Fatalf("key %s: %s read after %s", k, v, last[k])
		}
		last[k] = string(r.Value)
	}
}

func TestExplicitPartition(t *testing.T) {
	addr := startTlog(t)
	createTopic(t, addr, "ex", 4)
	p := newProducer(t, addr)
	ctx := ctx10(t)
	key := []byte("order-1")
	target := (javaPartition(key, 4) + 1) % 4 // anywhere but the key's partition
	res, err := p.Send(ctx, Record{Topic: "ex", Key: key, Value: []byte("x"), Partition: target, ExplicitPartition: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Partition != target {
		t.Fatalf("explicit partition %d, written to %d", target, res.Partition)
	}
	// Partition 0 is explicit too, not "unset".
	res, err = p.Send(ctx, Record{Topic: "ex", Value: []byte("y"), Partition: 0, ExplicitPartition: true})
	if err != nil || res.Partition != 0 {
		t.Fatalf("explicit partition 0: %+v, %v", res, err)
	}
	if _, err := p.Send(ctx, Record{Topic: "ex", Value: []byte("z"), Partition: 99, ExplicitPartition: true}); err == nil {
		t.Fatal("partition 99 of a 4-partition topic succeeded")
	}
	if _, err := p.Send(ctx, Record{Topic: "ex", Value: []byte("z"), Partition: -1, ExplicitPartition: true}); err == nil {
		t.Fatal("partition -1 succeeded")
	}
	for _, r := range readN(t, addr, "ex", 2) {
		if want := map[string]int32{"x": target, "y": 0}[string(r.Value)]; r.Partition != want {
			t.Errorf("%s read from partition %d, want %d", r.Value, r.Partition, want)
		}
	}
}

func TestSendAsyncFutureFlush(t *testing.T) {
	addr := startTlog(t)
	createTopic(t, addr, "async", 3)
	p := newProducer(t, addr, WithLinger(50*time.Millisecond))
	ctx := ctx10(t)
	const n = 300
	var mu sync.Mutex
	got := map[int32][]int64{}
	calls := 0
	for i := range n {
		p.SendAsync(ctx, Record{Topic: "async", Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")}, func(r Result, err error) {
			mu.Lock()
			defer mu.Unlock()
			calls++
			if err != nil {
				t.Errorf("async send: %v", err)
				return
			}
			got[r.Partition] = append(got[r.Partition], r.Offset)
		})
	}
	// Flush returns only after every callback ran (linger is cut short).
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if calls != n {
		t.Fatalf("%d callbacks after Flush, want %d", calls, n)
	}
	total := 0
	for part, offs := range got {
		slices.Sort(offs)
		for i, o := range offs {
			if o != int64(i) {
				t.Fatalf("partition %d: offsets %v are not dense from 0", part, offs)
			}
		}
		total += len(offs)
	}
	mu.Unlock()
	if total != n {
		t.Fatalf("%d results, want %d", total, n)
	}

	f := p.SendFuture(ctx, Record{Topic: "async", Value: []byte("future"), Partition: 2, ExplicitPartition: true})
	res, err := f.Wait(ctx)
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-f.Done():
	default:
		t.Fatal("Done not closed after Wait returned")
	}
	if res.Partition != 2 || res.Offset != int64(len(got[2])) {
		t.Fatalf("future result %+v, want partition 2 offset %d", res, len(got[2]))
	}
	// A failed send reports through the future too.
	f = p.SendFuture(ctx, Record{Topic: "async", Value: []byte("bad"), Partition: 7, ExplicitPartition: true})
	if _, err := f.Wait(ctx); err == nil {
		t.Fatal("future of a send to a missing partition succeeded")
	}
}

func TestCloseFlushesThenRefuses(t *testing.T) {
	addr := startTlog(t)
	p, err := New([]string{addr}, WithLinger(time.Minute)) // only Flush/Close send
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctx10(t)
	var wg sync.WaitGroup
	var failed []error
	var mu sync.Mutex
	for i := range 20 {
		wg.Add(1)
		p.SendAsync(ctx, Record{Topic: "c", Value: fmt.Appendf(nil, "%d", i)}, func(_ Result, err error) {
			defer wg.Done()
			if err != nil {
				mu.Lock()
				failed = append(failed, err)
				mu.Unlock()
			}
		})
	}
	if err := p.Close(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if len(failed) > 0 {
		t.Fatalf("records buffered before Close failed: %v", failed[0])
	}
	readN(t, addr, "c", 20)

	if _, err := p.Send(ctx, Record{Topic: "c", Value: []byte("late")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send after Close: %v, want ErrClosed", err)
	}
	var asyncErr error
	p.SendAsync(ctx, Record{Topic: "c", Value: []byte("late")}, func(_ Result, err error) { asyncErr = err })
	if !errors.Is(asyncErr, ErrClosed) {
		t.Fatalf("SendAsync after Close: %v, want ErrClosed (synchronously)", asyncErr)
	}
	if err := p.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// Close with an expired context fails what it could not flush, with
// ErrClosed, and every callback still runs.
func TestCloseExpiredFailsBuffered(t *testing.T) {
	p, err := New([]string{"127.0.0.1:1"}, WithLinger(time.Minute)) // nothing listens
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	p.SendAsync(context.Background(), Record{Topic: "c", Value: []byte("x")}, func(_ Result, err error) { done <- err })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := p.Close(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close: %v, want deadline exceeded", err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("buffered record failed with %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("callback of a buffered record never ran after Close")
	}
}

func TestSendContextCancelled(t *testing.T) {
	p, err := New([]string{"127.0.0.1:1"}) // nothing listens: the send never completes
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := p.Send(ctx, Record{Topic: "t", Value: []byte("x")}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Send: %v, want deadline exceeded", err)
	}
}

func TestAcksLevels(t *testing.T) {
	addr := startTlog(t)
	for _, topic := range []string{"acks-all", "acks-1", "acks-0", "noidem"} {
		createTopic(t, addr, topic, 1)
	}
	for _, a := range []Acks{AcksAll, AcksLeader, AcksNone} {
		t.Run(a.String(), func(t *testing.T) {
			p := newProducer(t, addr, WithAcks(a))
			topic := "acks-" + a.String()
			if _, err := p.Send(ctx10(t), Record{Topic: topic, Value: []byte(a.String())}); err != nil {
				t.Fatal(err)
			}
			r := readN(t, addr, topic, 1)[0]
			if string(r.Value) != a.String() {
				t.Fatalf("read %q", r.Value)
			}
			// Java's rule: idempotence is on only with acks=all.
			if idem := r.ProducerID >= 0; idem != (a == AcksAll) {
				t.Fatalf("acks=%s: producer ID %d", a, r.ProducerID)
			}
		})
	}
	if _, err := New([]string{addr}, WithAcks(AcksLeader), WithIdempotence(true)); err == nil {
		t.Fatal("idempotence with acks=1 accepted")
	}
	p := newProducer(t, addr, WithIdempotence(false))
	if _, err := p.Send(ctx10(t), Record{Topic: "noidem", Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if r := readN(t, addr, "noidem", 1)[0]; r.ProducerID >= 0 {
		t.Fatalf("idempotence off, yet producer ID %d", r.ProducerID)
	}
}

func TestCompressionCodecs(t *testing.T) {
	addr := startTlog(t)
	codecs := []Compression{CompressionNone, CompressionGzip, CompressionSnappy, CompressionLZ4, CompressionZstd}
	for _, c := range codecs {
		createTopic(t, addr, fmt.Sprintf("codec-%d", c), 1)
	}
	for _, c := range codecs {
		p := newProducer(t, addr, WithCompression(c))
		topic := fmt.Sprintf("codec-%d", c)
		if _, err := p.Send(ctx10(t), Record{Topic: topic, Value: bytes.Repeat([]byte("tlog "), 100)}); err != nil {
			t.Fatalf("compression %d: %v", c, err)
		}
		if r := readN(t, addr, topic, 1)[0]; len(r.Value) != 500 {
			t.Fatalf("compression %d: read %d bytes", c, len(r.Value))
		}
	}
}

func TestDefaultTopicAndErrors(t *testing.T) {
	addr := startTlog(t)
	ctx := ctx10(t)
	p := newProducer(t, addr)
	if _, err := p.Send(ctx, Record{Value: []byte("x")}); !errors.Is(err, ErrNoTopic) {
		t.Fatalf("no topic: %v", err)
	}
	p2 := newProducer(t, addr, WithDefaultTopic("dflt"))
	res, err := p2.Send(ctx, Record{Value: []byte("x")})
	if err != nil || res.Topic != "dflt" {
		t.Fatalf("default topic: %+v, %v", res, err)
	}
	if _, err := New(nil); err == nil {
		t.Fatal("New without brokers succeeded")
	}
	if _, err := New([]string{addr}, WithAcks(Acks(9))); err == nil {
		t.Fatal("unknown acks accepted")
	}
	// A record over the broker's max.message.bytes fails, it does not hang.
	big := make([]byte, 2<<20)
	if _, err := p.Send(ctx, Record{Topic: "big", Value: big}); err == nil {
		t.Fatal("2 MiB record accepted")
	}
}

func TestTypedSend(t *testing.T) {
	addr := startTlog(t)
	createTopic(t, addr, "typed", 3)
	p := newProducer(t, addr)
	type order struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	tp := NewTyped(p, String(), JSON[order]())
	if tp.Producer() != p {
		t.Fatal("Producer() is not the wrapped producer")
	}
	ctx := ctx10(t)
	res, err := tp.Send(ctx, Message[string, order]{Topic: "typed", Key: "order-7", Value: order{"order-7", "shipped"}})
	if err != nil {
		t.Fatal(err)
	}
	if want := javaPartition([]byte("order-7"), 3); res.Partition != want {
		t.Fatalf("typed key went to %d, want %d", res.Partition, want)
	}
	if _, err := tp.SendFuture(ctx, Message[string, order]{Topic: "typed", NullKey: true, Value: order{"x", "prepared"}}).Wait(ctx); err != nil {
		t.Fatal(err)
	}
	rs := readN(t, addr, "typed", 2)
	slices.SortFunc(rs, func(a, b *kgo.Record) int { return len(b.Key) - len(a.Key) })
	if string(rs[0].Key) != "order-7" || string(rs[0].Value) != `{"id":"order-7","status":"shipped"}` {
		t.Fatalf("read %q=%q", rs[0].Key, rs[0].Value)
	}
	if rs[1].Key != nil {
		t.Fatalf("NullKey sent key %#v", rs[1].Key)
	}

	// A serializer error is returned, nothing is sent, nothing panics.
	bad := NewTyped(p, String(), JSON[any]())
	if _, err := bad.Send(ctx, Message[string, any]{Topic: "typed", Key: "k", Value: make(chan int)}); err == nil {
		t.Fatal("unserializable value sent")
	}
	var cbErr error
	bad.SendAsync(ctx, Message[string, any]{Topic: "typed", Value: func() {}}, func(_ Result, err error) { cbErr = err })
	if cbErr == nil {
		t.Fatal("SendAsync of an unserializable value did not report")
	}
	if _, err := bad.SendFuture(ctx, Message[string, any]{Topic: "typed", Value: func() {}}).Wait(ctx); err == nil {
		t.Fatal("SendFuture of an unserializable value did not report")
	}
	if _, err := NewTyped[string, string](p, nil, String()).Send(ctx, Message[string, string]{Topic: "typed", Key: "k"}); err == nil {
		t.Fatal("nil key serializer accepted")
	}
}
