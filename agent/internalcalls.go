package agent

// Kafka requests agents make of each other (WriteTxnMarkers,
// AddPartitionsToTxn v5) travel over the peer port, which authenticates
// agents by the cluster secret, and run in the called agent's front end as
// the cluster itself. On a Kafka listener they would need a principal with
// CLUSTER_ACTION, and the PLAINTEXT listener a cluster keeps for them
// would have to trust whoever reaches it.

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/peer"
)

// kafkaPeer sends req to agent id and returns its response.
func (a *Agent) kafkaPeer(ctx context.Context, id int32, req kmsg.Request) (kmsg.Response, error) {
	body := req.AppendTo(nil)
	var out []byte
	if id == a.cfg.ID {
		front := a.frontLive.Load()
		if front == nil {
			return nil, errors.New("the agent is starting")
		}
		b, err := front.HandleInternal(ctx, req.Key(), req.GetVersion(), body)
		if err != nil {
			return nil, err
		}
		out = b
	} else {
		c, err := a.kafkaPeerConn(ctx, id)
		if err != nil {
			return nil, err
		}
		var resp peer.KafkaResp
		if err := c.Call(ctx, peer.TypeKafka, &peer.Kafka{Key: req.Key(), Version: req.GetVersion(), Body: body}, &resp); err != nil {
			return nil, fmt.Errorf("%s to agent %d: %w", kmsg.NameForKey(req.Key()), id, err)
		}
		if resp.Code != peer.OK {
			return nil, fmt.Errorf("%s to agent %d: %s", kmsg.NameForKey(req.Key()), id, resp.Msg)
		}
		out = resp.Body
	}
	kresp := req.ResponseKind()
	if err := kresp.ReadFrom(out); err != nil {
		return nil, fmt.Errorf("%s from agent %d: decode the response: %w", kmsg.NameForKey(req.Key()), id, err)
	}
	return kresp, nil
}

// kafkaPeerConn is a live peer connection to agent id for Kafka requests,
// dialed when there is none.
func (a *Agent) kafkaPeerConn(ctx context.Context, id int32) (*peer.Conn, error) {
	a.txnMu.Lock()
	c := a.kafkaPeers[id]
	a.txnMu.Unlock()
	if c != nil {
		select {
		case <-c.Done():
		default:
			return c, nil
		}
	}
	c, err := a.dialPeer(ctx, id)
	if err != nil {
		return nil, err
	}
	a.txnMu.Lock()
	defer a.txnMu.Unlock()
	if old := a.kafkaPeers[id]; old != nil && old != c {
		select {
		case <-old.Done():
		default:
			// Another call dialed first: use its connection.
			c.Close()
			return old, nil
		}
	}
	if a.kafkaPeers == nil {
		a.kafkaPeers = map[int32]*peer.Conn{}
	}
	a.kafkaPeers[id] = c
	return c, nil
}

// onKafkaPeer runs a Kafka request another agent sent, off the
// connection's reader (it may wait on replication), and replies.
func (a *Agent) onKafkaPeer(c *peer.Conn, f peer.Frame, m peer.Kafka) {
	a.connsMu.Lock()
	if a.closing {
		a.connsMu.Unlock()
		c.Reply(f, &peer.KafkaResp{Code: peer.Retry, Msg: "the agent is stopping"})
		return
	}
	a.wg.Add(1) // under connsMu while not closing: before Close's Wait
	a.connsMu.Unlock()
	go func() {
		defer a.wg.Done()
		front := a.frontLive.Load()
		if front == nil {
			c.Reply(f, &peer.KafkaResp{Code: peer.Retry, Msg: "the agent is starting"})
			return
		}
		body, err := front.HandleInternal(a.ctx, m.Key, m.Version, m.Body)
		if err != nil {
			code := peer.Invalid
			if errors.Is(err, context.Canceled) {
				code = peer.Retry
			}
			c.Reply(f, &peer.KafkaResp{Code: code, Msg: err.Error()})
			return
		}
		c.Reply(f, &peer.KafkaResp{Code: peer.OK, Body: body})
	}()
}
