package agent_test

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/agent/peer"
	"github.com/tlog-io/tlog/tests/tlogtest"
)

// With a cluster secret the peer port takes only agents that prove it: a
// stranger that speaks the peer protocol correctly (the cluster id and a
// real agent's id in its Hello, then a well-formed replication frame for
// a real partition at its leader's epoch) is refused and nothing is
// appended; a wrong secret is refused; a recorded valid Hello replayed on
// a new connection is refused; the agents themselves replicate as before.
func TestPeerPortNeedsTheClusterSecret(t *testing.T) {
	secret := []byte("correct horse battery staple")
	c := tlogtest.CreateCluster(t, 3, func(cfg *agent.Config) { cfg.ClusterSecret = secret })
	c.CreateTopic("guarded", 1, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl := c.Client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DefaultProduceTopic("guarded"))
	if err := cl.ProduceSync(ctx, kgo.StringRecord("replicated")).FirstErr(); err != nil {
		t.Fatalf("acks=all produce among agents with the secret: %v", err)
	}
	details, err := kadm.NewClient(cl).ListTopics(ctx, "guarded")
	if err != nil {
		t.Fatal(err)
	}
	topicID := details["guarded"].ID
	leader := c.WaitOnLeader("guarded", 0, 10*time.Second)
	var follower int32 = -1
	for _, m := range c.Running() {
		if m.A.ID() != leader {
			follower = m.A.ID()
			break
		}
	}
	fa := c.Agents[follower].A
	before, _ := fa.PartitionOffsets("guarded", 0)
	mp, _ := c.PartitionMeta("guarded", 0)
	clusterID := fa.ClusterID()

	hello := func(h peer.Hello) (*peer.Conn, peer.HelloResp) {
		t.Helper()
		nc, err := net.Dial("tcp", fa.PeerAddr())
		if err != nil {
			t.Fatal(err)
		}
		pc := peer.NewConn(nc, func(*peer.Conn, peer.Frame) {})
		t.Cleanup(func() { pc.Close() })
		var resp peer.HelloResp
		hctx, hcancel := context.WithTimeout(ctx, 5*time.Second)
		defer hcancel()
		if err := pc.Call(hctx, peer.TypeHello, &h, &resp); err != nil {
			return pc, peer.HelloResp{Code: -1, Msg: err.Error()}
		}
		return pc, resp
	}
	stranger := peer.Hello{From: leader, ClusterID: clusterID, Incarnation: 1}
	pc, resp := hello(stranger)
	if resp.Code == peer.OK {
		t.Fatal("a Hello without proof was accepted")
	}
	// It sends the append anyway, as a leader would.
	batch := tlogtest.RecordBatch("forged")
	pc.Send(peer.TypeAppend, &peer.Append{Topic: topicID, Partition: 0, Epoch: mp.LeaderEpoch, Truncate: -1, Reset: -1, HW: before.LEO + 1, Data: stamp(batch, before.LEO, mp.LeaderEpoch)})
	time.Sleep(300 * time.Millisecond)
	if after, _ := fa.PartitionOffsets("guarded", 0); after.LEO != before.LEO {
		t.Fatalf("the stranger's frame was appended: log end %d, was %d", after.LEO, before.LEO)
	}

	signed := func(key []byte) peer.Hello {
		h := peer.Hello{From: leader, ClusterID: clusterID, Incarnation: 1, Nonce: make([]byte, 16), Time: time.Now().UnixMilli()}
		rand.Read(h.Nonce)
		h.Proof = peer.HelloProof(key, &h)
		return h
	}
	if _, resp := hello(signed([]byte("wrong secret"))); resp.Code == peer.OK {
		t.Fatal("a Hello with a wrong secret was accepted")
	}
	valid := signed(secret)
	if _, resp := hello(valid); resp.Code != peer.OK || len(resp.Proof) == 0 {
		t.Fatalf("a valid Hello: code %d %q, proof %x", resp.Code, resp.Msg, resp.Proof)
	}
	if _, resp := hello(valid); resp.Code == peer.OK {
		t.Fatal("a replayed Hello was accepted")
	}
	stale := signed(secret)
	stale.Time = time.Now().Add(-10 * time.Minute).UnixMilli()
	stale.Proof = peer.HelloProof(secret, &stale)
	if _, resp := hello(stale); resp.Code == peer.OK {
		t.Fatal("a Hello from ten minutes ago was accepted")
	}
}

// stamp sets a batch's base offset and leader epoch (neither is under its
// CRC), as a leader does before replicating it.
func stamp(b []byte, base int64, epoch int32) []byte {
	binary.BigEndian.PutUint64(b[0:], uint64(base))
	binary.BigEndian.PutUint32(b[12:], uint32(epoch))
	return b
}
