package peer

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"reflect"
	"sync"
	"testing"
	"time"
)

func allMessages() []Message {
	return []Message{
		&Hello{From: 3, ClusterID: "c", Incarnation: 9},
		&HelloResp{Code: Fenced, Msg: "m", From: 2},
		&Heartbeat{ID: 1, Addr: "a:1", PeerAddr: "a:2", AdminAddr: "a:3", Zone: "z", Incarnation: 7, Seq: 99},
		&HeartbeatResp{Code: OK, ControllerEpoch: 4, Seq: 100},
		&Propose{Cmds: []byte(`[{"type":"x"}]`)},
		&ProposeResp{Code: Failed, Kind: "stale_epoch", Msg: "no", Seq: 5, Body: []byte("{}")},
		&Push{Seq: 8, Body: []byte("entry")},
		&Probe{Topic: [16]byte{1, 2}, Partition: 7, Epoch: 3},
		&ProbeResp{Code: OK, LEO: 1234, LastEpoch: 2},
		&Append{Topic: [16]byte{9}, Partition: 1, Epoch: 2, Truncate: -1, Reset: 40, HW: 30, Data: []byte("batches")},
		&AppendResp{Code: OutOfOrder, Msg: "at 3", LEO: 3},
	}
}

func TestMessagesRoundTrip(t *testing.T) {
	for _, m := range allMessages() {
		b := encode(m)
		got := reflect.New(reflect.TypeOf(m).Elem()).Interface().(Message)
		if err := Decode(b, got); err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%T: got %+v want %+v", m, got, m)
		}
		// Every truncation is an error, never a panic.
		for i := 0; i < len(b); i++ {
			x := reflect.New(reflect.TypeOf(m).Elem()).Interface().(Message)
			if err := Decode(b[:i], x); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%T truncated to %d: err %v", m, i, err)
			}
		}
		if err := Decode(append(b, 0), reflect.New(reflect.TypeOf(m).Elem()).Interface().(Message)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%T with a trailing byte: %v", m, err)
		}
	}
}

func FuzzDecode(f *testing.F) {
	for _, m := range allMessages() {
		f.Add(encode(m))
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, m := range allMessages() {
			x := reflect.New(reflect.TypeOf(m).Elem()).Interface().(Message)
			_ = Decode(b, x)
		}
	})
}

func pipe(t *testing.T, handle Handler) (client, server *Conn) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := l.Accept()
		accepted <- c
	}()
	nc, err := TCP{}.Dial(context.Background(), l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	client = NewConn(nc, nil)
	server = NewConn(<-accepted, handle)
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

func TestCallsArePipelinedAndHandledInOrder(t *testing.T) {
	var mu sync.Mutex
	var order []int64
	// The server answers every other request later, out of order.
	var late []Frame
	var srv *Conn
	handle := func(c *Conn, f Frame) {
		var p Probe
		if err := Decode(f.Body, &p); err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		order = append(order, int64(p.Partition))
		if p.Partition%2 == 1 {
			late = append(late, f)
			mu.Unlock()
			return
		}
		mu.Unlock()
		c.Reply(f, &ProbeResp{LEO: int64(p.Partition) * 10})
	}
	cl, s := pipe(t, handle)
	srv = s
	const n = 200
	var wg sync.WaitGroup
	got := make([]int64, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		i := i
		err := cl.Go(TypeProbe, &Probe{Partition: int32(i)}, func(b []byte, err error) {
			defer wg.Done()
			var r ProbeResp
			if err == nil {
				err = Decode(b, &r)
			}
			if err != nil {
				t.Error(err)
				return
			}
			got[i] = r.LEO
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Answer the held ones once all arrived.
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		k := len(late)
		mu.Unlock()
		if k == n/2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	for j := len(late) - 1; j >= 0; j-- {
		var p Probe
		Decode(late[j].Body, &p)
		srv.Reply(late[j], &ProbeResp{LEO: int64(p.Partition) * 10})
	}
	mu.Unlock()
	wg.Wait()
	for i := range got {
		if got[i] != int64(i)*10 {
			t.Fatalf("response %d = %d", i, got[i])
		}
	}
	for i, p := range order {
		if p != int64(i) {
			t.Fatalf("handled out of order: %v", order[:i+1])
		}
	}
}

func TestCloseFailsWaitingCalls(t *testing.T) {
	cl, srv := pipe(t, func(c *Conn, f Frame) {}) // never answers
	errc := make(chan error, 1)
	go func() { errc <- cl.Call(context.Background(), TypeProbe, &Probe{}, &ProbeResp{}) }()
	time.Sleep(20 * time.Millisecond)
	srv.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("err = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("call still waiting after the peer closed")
	}
	if err := cl.Go(TypeProbe, &Probe{}, func([]byte, error) {}); !errors.Is(err, ErrClosed) {
		// The client may not have noticed yet; it must soon.
		select {
		case <-cl.Done():
		case <-time.After(5 * time.Second):
			t.Fatal("client never noticed the close")
		}
	}
}

func TestOversizedFrameClosesBeforeAllocating(t *testing.T) {
	_, srv := pipe(t, func(c *Conn, f Frame) { t.Error("handler ran for an oversized frame") })
	_ = srv
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	defer l.Close()
	go func() {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		NewConn(nc, func(c *Conn, f Frame) { t.Error("handler ran") })
	}()
	nc, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var hdr [9]byte
	binary.BigEndian.PutUint32(hdr[:], MaxFrame+1)
	nc.Write(hdr[:])
	nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := nc.Read(make([]byte, 1)); err == nil {
		t.Fatal("connection stayed open after an oversized frame")
	}
}

func encode(m Message) []byte {
	var e Enc
	m.Encode(&e)
	return append(e.B, e.Tail...) // as the frame sends it
}

// Frames of every shape arrive whole and in order: small ones gathered in
// the writer's buffer, appends whose batches go beside it, and a message
// whose own encoding is larger than the buffer.
func TestFramesOfEverySizeArriveInOrder(t *testing.T) {
	type got struct {
		typ  uint8
		body []byte
	}
	ch := make(chan got, 64)
	handle := func(c *Conn, f Frame) { ch <- got{f.Type, f.Body} }
	cl, _ := pipe(t, handle)
	fill := func(n int, seed byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = seed + byte(i*7)
		}
		return b
	}
	msgs := []struct {
		typ uint8
		m   Message
	}{
		{TypeProbe, &Probe{Partition: 1}},
		{TypeAppend, &Append{Partition: 2, Truncate: -1, Reset: -1, Data: fill(100, 1)}},   // gathered
		{TypeAppend, &Append{Partition: 3, Truncate: -1, Reset: -1, Data: fill(1<<20, 2)}}, // beside the buffer
		{TypeKafka, &Kafka{Key: 0, Version: 9, Body: fill(writeBuffer+4096, 3)}},           // larger than the buffer
		{TypeProbe, &Probe{Partition: 4}},
		{TypeAppend, &Append{Partition: 5, Truncate: -1, Reset: -1, Data: fill(directTail, 4)}}, // at the threshold
		{TypePush, &Push{Seq: 6, Body: fill(writeBuffer-100, 5)}},                               // fills the buffer
		{TypeProbe, &Probe{Partition: 7}},
	}
	for _, m := range msgs {
		if err := cl.Send(m.typ, m.m); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range msgs {
		select {
		case g := <-ch:
			want := encode(m.m)
			if g.typ != m.typ || !bytes.Equal(g.body, want) {
				t.Fatalf("frame %d (%T): got type %d, %d bytes; want type %d, %d bytes", i, m.m, g.typ, len(g.body), m.typ, len(want))
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("frame %d (%T) never arrived", i, m.m)
		}
	}
}
