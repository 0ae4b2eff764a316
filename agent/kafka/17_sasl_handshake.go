package kafka

// SaslHandshake: v0-1
//
// Chooses the SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) for the
// SaslAuthenticate exchange that follows; the response lists them all. On
// an authenticated connection it begins a re-authentication (KIP-368). A
// listener that does not speak SASL answers ILLEGAL_SASL_STATE.
//
// Version notes:
// * v0 is advertised because clients (librdkafka) require it in the range
//   before they use v1. A client that really does the v0 exchange (SASL
//   tokens sent raw after it, not in SaslAuthenticate: before Kafka 1.0)
//   has its connection closed at the first raw token.
// * v1: the exchange goes through SaslAuthenticate

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(17, 0, 1, handleSaslHandshake) }

func handleSaslHandshake(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.ErrorCode = r.c.saslHandshake(req.Mechanism)
	if r.c.lst.SASL() {
		resp.SupportedMechanisms = append([]string(nil), saslMechanisms...)
	}
	return now(resp), nil
}
