package kafka

// Requests other agents make of this one (transaction markers, KIP-890
// verification) arrive over the peer port, which authenticates agents by
// the cluster secret, and run here as the cluster itself: no listener, no
// principal, every authorization granted (conn.internal). Only the APIs
// agents send are taken.

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// internalAPIs are the API keys agents send each other.
var internalAPIs = []int16{
	24, // AddPartitionsToTxn v4+: is (or add) a partition in a transaction
	27, // WriteTxnMarkers
}

// HandleInternal runs one request another agent sent (key, version and
// body as on the wire, without a header) and returns the response body.
func (s *Server) HandleInternal(ctx context.Context, key, version int16, body []byte) ([]byte, error) {
	h, ok := handlers[key]
	if !ok || !slices.Contains(internalAPIs, key) {
		return nil, fmt.Errorf("%s is not an API agents send each other", kmsg.NameForKey(key))
	}
	if version < h.min || version > h.max {
		return nil, fmt.Errorf("unsupported version %d of %s (serving %d-%d)", version, kmsg.NameForKey(key), h.min, h.max)
	}
	kreq := kmsg.RequestForKey(key)
	kreq.SetVersion(version)
	if err := kreq.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("decode %s v%d: %w", kmsg.NameForKey(key), version, err)
	}
	c := &conn{s: s, remote: "peer", lst: Listener{Name: "internal", Protocol: Plaintext}, internal: true}
	c.auth.principal = "User:tlog-agent"
	r := &request{c: c, kreq: kreq, ctx: ctx, clientID: "tlog-agent"}
	fn, err := c.handle(r)
	if err != nil {
		return nil, err
	}
	if fn == nil {
		return nil, fmt.Errorf("%s gave no response", kmsg.NameForKey(key))
	}
	resp := fn()
	if resp == nil {
		return nil, fmt.Errorf("%s gave no response (the agent is stopping)", kmsg.NameForKey(key))
	}
	return resp.AppendTo(nil), nil
}
