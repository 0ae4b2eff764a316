package kafka

import (
	"context"
	"io"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/topic"
	"github.com/tlog-io/tlog/agent/txn"
	"github.com/tlog-io/tlog/agent/wal"
	"github.com/tlog-io/tlog/metadata"
)

// memBackend is a single-agent Backend over an in-memory WAL and a
// metadata state changed in place: the front end tested without an agent,
// a bucket or a controller. It has no group coordinators.
type memBackend struct {
	w *wal.WAL

	mu     sync.Mutex
	st     *metadata.State
	topics map[uuid.UUID]*topic.Topic

	dataMu sync.Mutex
	data   chan struct{} // closed when any high watermark moves
}

const memAgent = 1

// newMemBackend makes a backend whose one agent advertises addr.
func newMemBackend(t testing.TB, addr string) *memBackend {
	t.Helper()
	b := &memBackend{
		w:      wal.New(wal.NewMemStore(), wal.Options{Logger: slog.New(slog.DiscardHandler)}),
		st:     metadata.NewState(),
		topics: map[uuid.UUID]*topic.Topic{},
		data:   make(chan struct{}),
	}
	t.Cleanup(func() {
		for _, tp := range b.Topics() {
			for _, p := range tp.Parts {
				p.Close()
			}
		}
		b.w.Close()
	})
	reg := metadata.RegisterAgent{Agent: metadata.AgentInfo{ID: memAgent, Addr: addr, Registered: time.Now().UTC()}}
	if _, err := b.Propose(context.Background(), reg); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *memBackend) TopicByName(name string) *topic.Topic {
	b.mu.Lock()
	defer b.mu.Unlock()
	mt, ok := b.st.TopicByName(name)
	if !ok {
		return nil
	}
	return b.topics[mt.ID]
}

func (b *memBackend) TopicByID(id uuid.UUID) *topic.Topic {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.topics[id]
}

func (b *memBackend) Topics() []*topic.Topic {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]*topic.Topic, 0, len(b.topics))
	for _, t := range b.topics {
		out = append(out, t)
	}
	return out
}

func (b *memBackend) State() *metadata.State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.st
}

// Propose applies cmds and builds partitions for new topics and
// partitions, each led by this agent alone.
func (b *memBackend) Propose(_ context.Context, cmds ...metadata.Command) (*metadata.State, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	next, err := b.st.Next(cmds...)
	if err != nil {
		return nil, err
	}
	b.st = next
	for id, mt := range next.Topics {
		old := b.topics[id]
		t := &topic.Topic{ID: id, Name: mt.Name, Configs: mt.Configs, Meta: mt}
		if old != nil {
			t.Parts = old.Parts
		}
		for i := len(t.Parts); i < len(mt.Partitions); i++ {
			p := partition.New(partition.Config{
				Key: wal.NewPartKey(id, int32(i)), Topic: mt.Name, Index: int32(i), WAL: b.w,
				OnAdvance: b.signal,
			})
			p.SetRole(partition.Role{Leader: true, Self: memAgent, ISR: []int32{memAgent}, Replicas: []int32{memAgent}, MinISR: 1})
			t.Parts = append(t.Parts, p)
		}
		b.topics[id] = t
	}
	for id, t := range b.topics {
		if _, ok := next.Topics[id]; !ok {
			delete(b.topics, id)
			for _, p := range t.Parts {
				p.Close()
			}
		}
	}
	return next, nil
}

func (b *memBackend) signal() {
	b.dataMu.Lock()
	close(b.data)
	b.data = make(chan struct{})
	b.dataMu.Unlock()
}

func (b *memBackend) ControllerID() int32 { return memAgent }

func (b *memBackend) Coordinator(string) (*group.Coordinator, int16) {
	return nil, kerr.CoordinatorNotAvailable.Code
}
func (b *memBackend) Coordinators() []*group.Coordinator       { return nil }
func (b *memBackend) EnsureOffsetsTopic(context.Context) error { return nil }
func (b *memBackend) TxnCoordinator(string) (*txn.Coordinator, int16) {
	return nil, kerr.CoordinatorNotAvailable.Code
}
func (b *memBackend) EnsureTxnTopic(context.Context) error { return nil }
func (b *memBackend) TxnCoordinators() []*txn.Coordinator  { return nil }
func (b *memBackend) VerifyTxn(context.Context, string, int64, int16, txn.TP, bool) int16 {
	return kerr.CoordinatorNotAvailable.Code
}
func (b *memBackend) TxnMarkerWritten(string, int32, int64, bool) {}
func (b *memBackend) GroupTopicNames() map[[16]byte]string        { return nil }
func (b *memBackend) SessionLive() bool                           { return true }
func (b *memBackend) UnflushedBytes() int64                       { return 0 }
func (b *memBackend) Flush()                                      {}

func (b *memBackend) DataMoved() <-chan struct{} {
	b.dataMu.Lock()
	defer b.dataMu.Unlock()
	return b.data
}

func (b *memBackend) NewProducerID(ctx context.Context) (int64, error) {
	st, err := b.Propose(ctx, metadata.AllocateProducerIDs{Agent: memAgent, Count: 1})
	if err != nil {
		return 0, err
	}
	return st.ProducerBlocks[memAgent].First, nil
}

func (b *memBackend) SetDraining(ctx context.Context, id int32, draining bool) error {
	_, err := b.Propose(ctx, metadata.SetAgentDraining{ID: id, Draining: draining})
	return err
}

var testConfig = Config{
	ID: memAgent, ClusterID: "test", MaxRequestBytes: 100 << 20, MaxMessageBytes: 1 << 20,
	DefaultPartitions: 1, AutoCreateTopics: true, WALMaxBytes: 1 << 30, FlushBytes: 1 << 30,
}

// startServer serves the Kafka protocol over a memBackend on a free
// 127.0.0.1 port.
func startServer(t testing.TB) (*Server, *memBackend, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := newMemBackend(t, ln.Addr().String())
	s := New(testConfig, b, slog.New(slog.NewTextHandler(io.Discard, nil)), prometheus.NewRegistry())
	s.Serve(ln)
	t.Cleanup(func() {
		s.Stop()
		s.Wait()
	})
	return s, b, ln.Addr().String()
}
