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
// appended; a wrong secret, a proof made for another agent, and a valid
// proof replayed on a new connection (proofs answer a per-connection
// challenge) are refused; the agents themselves replicate as before.
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

	dial := func() *peer.Conn {
		t.Helper()
		nc, err := net.Dial("tcp", fa.PeerAddr())
		if err != nil {
			t.Fatal(err)
		}
		pc := peer.NewConn(nc, func(*peer.Conn, peer.Frame) {})
		t.Cleanup(func() { pc.Close() })
		return pc
	}
	call := func(pc *peer.Conn, h peer.Hello) peer.HelloResp {
		t.Helper()
		var resp peer.HelloResp
		hctx, hcancel := context.WithTimeout(ctx, 5*time.Second)
		defer hcancel()
		if err := pc.Call(hctx, peer.TypeHello, &h, &resp); err != nil {
			return peer.HelloResp{Code: -1, Msg: err.Error()}
		}
		return resp
	}
	// A stranger: the cluster id and the leader's id, no proof. It is
	// challenged, not admitted, and its append is not taken.
	pc := dial()
	if resp := call(pc, peer.Hello{From: leader, ClusterID: clusterID, Incarnation: 1}); resp.Code != peer.Challenge || len(resp.Challenge) == 0 {
		t.Fatalf("a Hello without proof: code %d %q, want a challenge", resp.Code, resp.Msg)
	}
	batch := tlogtest.RecordBatch("forged")
	pc.Send(peer.TypeAppend, &peer.Append{Topic: topicID, Partition: 0, Epoch: mp.LeaderEpoch, Truncate: -1, Reset: -1, HW: before.LEO + 1, Data: stamp(batch, before.LEO, mp.LeaderEpoch)})
	time.Sleep(300 * time.Millisecond)
	if after, _ := fa.PartitionOffsets("guarded", 0); after.LEO != before.LEO {
		t.Fatalf("the stranger's frame was appended: log end %d, was %d", after.LEO, before.LEO)
	}

	// proved answers a challenge on pc with key, naming agent to.
	proved := func(pc *peer.Conn, key []byte, to int32) (peer.Hello, peer.HelloResp) {
		t.Helper()
		h := peer.Hello{From: leader, ClusterID: clusterID, Incarnation: 1}
		first := call(pc, h)
		if first.Code != peer.Challenge {
			t.Fatalf("first Hello: code %d %q, want a challenge", first.Code, first.Msg)
		}
		h.Nonce, h.Time = make([]byte, 16), time.Now().UnixMilli()
		rand.Read(h.Nonce)
		h.Proof = peer.HelloProof(key, &h, to, first.Challenge)
		return h, call(pc, h)
	}
	if _, resp := proved(dial(), []byte("wrong secret"), follower); resp.Code == peer.OK {
		t.Fatal("a Hello with a wrong secret was accepted")
	}
	if _, resp := proved(dial(), secret, leader); resp.Code == peer.OK {
		t.Fatal("a proof made for another agent was accepted")
	}
	valid, resp := proved(dial(), secret, follower)
	if resp.Code != peer.OK || len(resp.Proof) == 0 {
		t.Fatalf("a valid Hello: code %d %q, proof %x", resp.Code, resp.Msg, resp.Proof)
	}
	// Replayed on a new connection: that one has its own challenge.
	pc2 := dial()
	if first := call(pc2, peer.Hello{From: leader, ClusterID: clusterID, Incarnation: 1}); first.Code != peer.Challenge {
		t.Fatalf("first Hello on a new connection: %d", first.Code)
	}
	if resp := call(pc2, valid); resp.Code == peer.OK {
		t.Fatal("a replayed Hello was accepted")
	}
}

// stamp sets a batch's base offset and leader epoch (neither is under its
// CRC), as a leader does before replicating it.
func stamp(b []byte, base int64, epoch int32) []byte {
	binary.BigEndian.PutUint64(b[0:], uint64(base))
	binary.BigEndian.PutUint32(b[12:], uint32(epoch))
	return b
}
