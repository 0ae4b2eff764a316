package replica_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"hash/crc32"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/peer"
	"github.com/tlog-io/tlog/agent/replica"
	"github.com/tlog-io/tlog/agent/wal"
	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier/batch"
)

var topicID = uuid.UUID{7}

// node is one agent as replication sees it: one partition on an in-memory
// WAL, and the replicator.
type node struct {
	id   int32
	p    *partition.Partition
	meta metadata.Partition
	r    *replica.Replicator
	peer *node // the other agent, for Dial

	mu       sync.Mutex
	proposed []metadata.Command
	hwOnly   atomic.Int32 // appends received carrying only a high watermark
}

func (n *node) Partitions() []partition.Held {
	return []partition.Held{{P: n.p, Topic: topicID, Name: "t", Index: 0, Meta: n.meta}}
}

func (n *node) Partition(topic uuid.UUID, idx int32) (partition.Held, bool) {
	if topic != topicID || idx != 0 {
		return partition.Held{}, false
	}
	return n.Partitions()[0], true
}

// Dial connects to the other node over a pipe, served as the agent's peer
// handler would: probes and appends go to its replicator.
func (n *node) Dial(ctx context.Context, id int32) (*peer.Conn, error) {
	a, b := net.Pipe()
	other := n.peer
	srv := peer.NewConn(b, func(c *peer.Conn, f peer.Frame) {
		switch f.Type {
		case peer.TypeProbe:
			var m peer.Probe
			if peer.Decode(f.Body, &m) == nil {
				resp := other.r.OnProbe(c.Remote, m)
				c.Reply(f, &resp)
			}
		case peer.TypeAppend:
			var m peer.Append
			if peer.Decode(f.Body, &m) == nil {
				if len(m.Data) == 0 && m.Truncate < 0 && m.Reset < 0 {
					other.hwOnly.Add(1)
				}
				other.r.OnAppend(c, f, m)
			}
		}
	})
	srv.Remote = n.id
	cl := peer.NewConn(a, nil)
	cl.Remote = id
	go func() {
		<-cl.Done()
		srv.Close()
	}()
	return cl, nil
}

func (n *node) State() *metadata.State {
	st := metadata.NewState()
	st.Agents = map[int32]metadata.AgentInfo{0: {ID: 0}, 1: {ID: 1}}
	return st
}

func (n *node) Poke() {}

func (n *node) Propose(_ context.Context, cmds ...metadata.Command) (*metadata.State, error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.proposed = append(n.proposed, cmds...)
	return n.State(), nil
}

func (n *node) RestoreProducers(uuid.UUID, int32, *partition.Partition) {}

func newNode(t *testing.T, id int32, meta metadata.Partition) *node {
	t.Helper()
	w := wal.New(wal.NewMemStore(), wal.Options{Logger: slog.New(slog.DiscardHandler)})
	n := &node{id: id, meta: meta}
	n.p = partition.New(partition.Config{Key: wal.NewPartKey(topicID, 0), Topic: "t", WAL: w,
		OnAppend: func() {
			if n.r != nil {
				n.r.Wake(wal.NewPartKey(topicID, 0))
			}
		}})
	n.p.SetRole(partition.Role{Leader: meta.Leader == id, Epoch: meta.LeaderEpoch, Self: id, ISR: meta.ISR, Replicas: meta.Replicas, MinISR: 2})
	ctx, cancel := context.WithCancel(context.Background())
	n.r = replica.New(ctx, replica.Config{ID: id, ReplicaLagMax: 10 * time.Second}, n)
	t.Cleanup(func() {
		n.r.StopAll()
		cancel()
		n.r.Wait()
		n.p.Close()
		w.Close()
	})
	return n
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func mkBatch(n int) []byte {
	var recs []byte
	for i := range n {
		r := kmsg.Record{OffsetDelta: int32(i), Value: []byte("v")}
		r.Length = int32(len(r.AppendTo(nil)[1:]))
		recs = r.AppendTo(recs)
	}
	rb := kmsg.RecordBatch{Magic: 2, LastOffsetDelta: int32(n - 1), ProducerID: -1, ProducerEpoch: -1,
		FirstSequence: -1, NumRecords: int32(n), Records: recs}
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// A leader's link feeds its follower: acks=all completes only once the
// follower has the batch, the high watermark reaches the follower, and the
// two logs hold the same bytes.
func TestLeaderFeedsFollower(t *testing.T) {
	meta := metadata.Partition{Index: 0, Leader: 0, LeaderEpoch: 1, Replicas: []int32{0, 1}, ISR: []int32{0, 1}}
	leader, follower := newNode(t, 0, meta), newNode(t, 1, meta)
	leader.peer, follower.peer = follower, leader
	leader.r.Reconcile()

	start := time.Now()
	for i := range 20 {
		b := mkBatch(1 + i%4)
		h, err := batch.ValidateProduce(b, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		if _, err := leader.p.Append(b, h, -1, func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("batch %d: %v", i, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("batch %d: acks=all never completed", i)
		}
	}
	lo := leader.p.Offsets()
	deadline := time.Now().Add(10 * time.Second)
	for follower.p.Offsets().HW != lo.HW && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if fo := follower.p.Offsets(); fo.HW != lo.HW || lo.HW != 50 {
		t.Fatalf("leader HW %d, follower HW %d; want 50", lo.HW, fo.HW)
	}
	// Every append carries the high watermark; one carrying nothing else
	// goes at most every 20 ms, not after each acknowledgement (which
	// would double the messages of a trickle).
	if n, most := follower.hwOnly.Load(), int32(time.Since(start)/(20*time.Millisecond))+2; n > most {
		t.Errorf("follower got %d high-watermark-only appends in %v; want at most %d", n, time.Since(start), most)
	}
	ctx := context.Background()
	a, _, err := leader.p.Read(ctx, 0, 1<<20, true)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := follower.p.Read(ctx, 0, 1<<20, true)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("follower's log differs from the leader's (%d and %d bytes, %v)", len(a), len(b), err)
	}
}
