package kafka

// SaslHandshake: v1
//
// Chooses the SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) for the
// SaslAuthenticate exchange that follows; the response lists them all. On
// an authenticated connection it begins a re-authentication (KIP-368). A
// listener that does not speak SASL answers ILLEGAL_SASL_STATE.
//
// Version notes:
// * v0 (tokens sent raw after the handshake, not as SaslAuthenticate) is
//   not served: clients since Kafka 1.0 use v1.

import "github.com/twmb/franz-go/pkg/kmsg"

func init() { register(17, 1, 1, handleSaslHandshake) }

func handleSaslHandshake(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	resp.ErrorCode = r.c.saslHandshake(req.Mechanism)
	if r.c.lst.SASL() {
		resp.SupportedMechanisms = append([]string(nil), saslMechanisms...)
	}
	return now(resp), nil
}
