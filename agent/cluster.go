package agent

// The peer port: agents reach each other here for replication (leader →
// follower), liveness and registration (agent → controller), proposals
// forwarded to the controller, and journal entries the controller pushes
// back. Every connection opens with Hello naming the caller and the
// cluster; messages are in agent/peer.

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/tlog-io/tlog/agent/peer"
	"github.com/tlog-io/tlog/metadata"
)

// startPeer binds the peer listener (not in standalone mode).
func (a *Agent) startPeer() error {
	if a.standalone() {
		return nil
	}
	ln, err := a.cfg.Transport.Listen(a.cfg.PeerListen)
	if err != nil {
		return fmt.Errorf("agent: peer listen on %s: %w", a.cfg.PeerListen, err)
	}
	a.peerLn = ln
	if a.cfg.PeerAdvertise == "" {
		a.cfg.PeerAdvertise = ln.Addr().String()
	}
	return nil
}

func (a *Agent) servePeers() {
	for {
		nc, err := a.peerLn.Accept()
		if err != nil {
			if a.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			a.log.Warn("peer accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		c := peer.NewConn(nc, a.handlePeer)
		if !a.trackPeerConn(c) {
			c.Close()
			return
		}
	}
}

// trackPeerConn remembers c so Close can close it; false once closing.
func (a *Agent) trackPeerConn(c *peer.Conn) bool {
	a.connsMu.Lock()
	defer a.connsMu.Unlock()
	if a.closing {
		return false
	}
	a.peerConns[c] = struct{}{}
	a.wg.Add(1) // under connsMu while not closing: before Close's Wait
	go func() {
		defer a.wg.Done()
		<-c.Done()
		a.connsMu.Lock()
		delete(a.peerConns, c)
		a.connsMu.Unlock()
	}()
	return true
}

// handlePeer dispatches one request from a peer. It runs on the
// connection's reader: replication appends are handled in order; slow
// work (proposals, catching up on metadata) is handed off.
func (a *Agent) handlePeer(c *peer.Conn, f peer.Frame) {
	if f.Type == peer.TypeHello {
		var m peer.Hello
		if err := peer.Decode(f.Body, &m); err != nil {
			a.log.Warn("closing peer connection: bad hello", "peer", c.RemoteAddr(), "err", err)
			c.Close()
			return
		}
		if m.ClusterID != a.clusterID {
			c.Reply(f, &peer.HelloResp{Code: peer.Invalid, Msg: fmt.Sprintf("cluster %s, this agent is in %s", m.ClusterID, a.clusterID)})
			a.log.Warn("closing peer connection from another cluster", "peer", c.RemoteAddr(), "agent", m.From, "cluster", m.ClusterID)
			time.AfterFunc(time.Second, func() { c.Close() })
			return
		}
		if secret := a.cfg.ClusterSecret; len(secret) > 0 {
			if len(m.Proof) == 0 {
				// First the challenge, fresh for this connection.
				c.Challenge = make([]byte, 16)
				rand.Read(c.Challenge)
				c.Reply(f, &peer.HelloResp{Code: peer.Challenge, From: a.cfg.ID, Challenge: c.Challenge})
				return
			}
			challenge := c.Challenge
			c.Challenge = nil // one try per challenge
			if len(challenge) == 0 || len(m.Nonce) < 16 || len(m.Nonce) > 64 ||
				!hmac.Equal(m.Proof, peer.HelloProof(secret, &m, a.cfg.ID, challenge)) {
				c.Reply(f, &peer.HelloResp{Code: peer.Invalid, Msg: "peer authentication failed"})
				a.log.Warn("closing peer connection: authentication failed (a wrong or replayed proof of the cluster secret)", "peer", c.RemoteAddr(), "claims_agent", m.From)
				time.AfterFunc(time.Second, func() { c.Close() })
				return
			}
			c.Remote = m.From
			c.Reply(f, &peer.HelloResp{Code: peer.OK, From: a.cfg.ID, Proof: peer.HelloRespProof(secret, a.clusterID, a.cfg.ID, m.Nonce, challenge)})
			return
		}
		c.Remote = m.From
		c.Reply(f, &peer.HelloResp{Code: peer.OK, From: a.cfg.ID})
		return
	}
	if c.Remote < 0 {
		a.log.Warn("closing peer connection: request before hello", "peer", c.RemoteAddr(), "type", f.Type)
		c.Close()
		return
	}
	var err error
	switch f.Type {
	case peer.TypeHeartbeat:
		var m peer.Heartbeat
		if err = peer.Decode(f.Body, &m); err == nil {
			resp := a.ctrl.OnHeartbeat(c, m)
			c.Reply(f, &resp)
		}
	case peer.TypePropose:
		var m peer.Propose
		if err = peer.Decode(f.Body, &m); err == nil {
			a.ctrl.OnPropose(c, f, m)
		}
	case peer.TypePush:
		var m peer.Push
		if err = peer.Decode(f.Body, &m); err == nil {
			select {
			case a.pushes <- m:
			default:
				// Too far behind: the journal poll catches up instead.
				a.meta.Poke()
			}
		}
	case peer.TypeProbe:
		var m peer.Probe
		if err = peer.Decode(f.Body, &m); err == nil {
			resp := a.repl.OnProbe(c.Remote, m)
			c.Reply(f, &resp)
		}
	case peer.TypeAppend:
		var m peer.Append
		if err = peer.Decode(f.Body, &m); err == nil {
			a.repl.OnAppend(c, f, m)
		}
	case peer.TypeKafka:
		var m peer.Kafka
		if err = peer.Decode(f.Body, &m); err == nil {
			a.onKafkaPeer(c, f, m)
		}
	default:
		err = fmt.Errorf("unknown message type %d", f.Type)
	}
	if err != nil {
		a.log.Warn("closing peer connection: bad request", "peer", c.RemoteAddr(), "agent", c.Remote, "err", err)
		c.Close()
	}
}

// dialPeer connects to agent id's peer port and says hello.
func (a *Agent) dialPeer(ctx context.Context, id int32) (*peer.Conn, error) {
	info, ok := a.meta.State().Agents[id]
	if !ok || info.PeerAddr == "" {
		return nil, fmt.Errorf("agent %d has no peer address in metadata", id)
	}
	nc, err := a.cfg.Transport.Dial(ctx, info.PeerAddr)
	if err != nil {
		return nil, fmt.Errorf("dial agent %d at %s: %w", id, info.PeerAddr, err)
	}
	c := peer.NewConn(nc, a.handlePeer)
	var resp peer.HelloResp
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	hello := peer.Hello{From: a.cfg.ID, ClusterID: a.clusterID, Incarnation: a.incarnation}
	err = c.Call(hctx, peer.TypeHello, &hello, &resp)
	secret := a.cfg.ClusterSecret
	var challenge []byte
	if err == nil && len(secret) > 0 && resp.Code == peer.Challenge && resp.From == id {
		challenge = resp.Challenge
		hello.Nonce = make([]byte, 16)
		rand.Read(hello.Nonce)
		hello.Time = time.Now().UnixMilli()
		hello.Proof = peer.HelloProof(secret, &hello, id, challenge)
		resp = peer.HelloResp{}
		err = c.Call(hctx, peer.TypeHello, &hello, &resp)
	}
	if err == nil && resp.Code != peer.OK {
		err = errors.New(resp.Msg)
	}
	if err == nil && resp.From != id {
		err = fmt.Errorf("%s answers as agent %d", info.PeerAddr, resp.From)
	}
	if err == nil && len(secret) > 0 &&
		(len(challenge) == 0 || !hmac.Equal(resp.Proof, peer.HelloRespProof(secret, a.clusterID, id, hello.Nonce, challenge))) {
		err = fmt.Errorf("%s did not prove the cluster secret", info.PeerAddr)
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("hello to agent %d: %w", id, err)
	}
	c.Remote = id
	if !a.trackPeerConn(c) {
		c.Close()
		return nil, peer.ErrClosed
	}
	return c, nil
}

// applyPushes applies journal entries pushed by the controller, in order.
func (a *Agent) applyPushes() {
	for {
		select {
		case <-a.ctx.Done():
			return
		case m := <-a.pushes:
			if err := a.meta.Deliver(a.ctx, m.Seq, m.Body); err != nil && a.ctx.Err() == nil {
				a.log.Warn("apply pushed journal entry", "seq", m.Seq, "err", err)
			}
		}
	}
}

// propose changes metadata through the controller (this agent, or the one
// it follows) and applies the result locally before returning, so a
// client's next request sees it.
func (a *Agent) propose(ctx context.Context, cmds ...metadata.Command) (*metadata.State, error) {
	if a.meta.IsController() {
		st, err := a.meta.Propose(ctx, cmds...)
		if errors.Is(err, metadata.ErrConflict) && a.meta.IsController() {
			st, err = a.meta.Propose(ctx, cmds...) // re-validated on the state just read
		}
		if err != nil {
			return nil, err
		}
		a.syncTopics()
		return st, nil
	}
	if a.standalone() {
		return nil, metadata.ErrNotController
	}
	seq, err := a.client.propose(ctx, cmds)
	if err != nil {
		return nil, err
	}
	if err := a.waitApplied(ctx, seq); err != nil {
		return nil, err
	}
	a.syncTopics()
	return a.meta.State(), nil
}

// waitApplied waits until local metadata has applied entry seq: a push
// normally brings it first; after a short wait the journal is read.
func (a *Agent) waitApplied(ctx context.Context, seq uint64) error {
	deadline := time.Now().Add(200 * time.Millisecond)
	for a.meta.State().Seq < seq {
		if time.Now().After(deadline) {
			if err := a.meta.Sync(ctx); err != nil {
				return err
			}
			if a.meta.State().Seq >= seq {
				return nil
			}
			deadline = time.Now().Add(200 * time.Millisecond)
		}
		wake := a.metaChanged.wait()
		if a.meta.State().Seq >= seq {
			return nil
		}
		t := time.NewTimer(20 * time.Millisecond)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
	return nil
}
