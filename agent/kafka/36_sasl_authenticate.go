package kafka

// SaslAuthenticate: v0-2
//
// One message of the SASL exchange SaslHandshake chose: PLAIN in one step,
// SCRAM in two (client-first, then client-final). A failed exchange is
// SASL_AUTHENTICATION_FAILED and the connection closes once the client has
// the answer; which part of the credentials was wrong is not said.
//
// Version notes:
// * v1: SessionLifetimeMillis (KIP-368): the client re-authenticates on
//   the same connection before it ends (--sasl-session-lifetime)
// * v2: flexible versions

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(36, 0, 2, handleSaslAuthenticate) }

func handleSaslAuthenticate(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	if !r.c.lst.SASL() {
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.ErrorMessage = kmsg.StringPtr("this listener does not speak SASL")
		r.c.auth.failed = true
		return now(resp), nil
	}
	t := time.Now()
	out, done, err := r.c.saslAuthenticate(req.SASLAuthBytes, t)
	switch {
	case err != nil:
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(err.Error())
		r.c.auth.failed = true
		s.log.Info("SASL authentication failed", "client", r.c.remote, "listener", r.c.lst.Name, "err", err)
	case done:
		resp.SessionLifetimeMillis = r.c.sessionLifetimeMillis(t)
	}
	resp.SASLAuthBytes = out
	if resp.SASLAuthBytes == nil {
		resp.SASLAuthBytes = []byte{}
	}
	return now(resp), nil
}
