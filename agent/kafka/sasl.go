package kafka

// Authentication. Every connection has a principal ("User:NAME", Kafka's
// form): User:ANONYMOUS on PLAINTEXT, the client certificate's subject on
// SSL when the listener asks for one, the SASL user on SASL listeners once
// SaslAuthenticate succeeds. SASL mechanisms: PLAIN, SCRAM-SHA-256 and
// SCRAM-SHA-512, all checked against the SCRAM credentials in the metadata
// journal (PLAIN derives the SCRAM keys from the password it is sent and
// compares them; no password is kept anywhere). The SCRAM exchange is
// scram.go; the key derivation is github.com/xdg-go/scram's.

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/xdg-go/scram"

	"github.com/tlog-io/tlog/metadata"
)

// SASL mechanisms served, in the order SaslHandshake lists them.
var saslMechanisms = []string{"PLAIN", metadata.ScramSHA256, metadata.ScramSHA512}

// Anonymous is the principal of an unauthenticated connection.
const Anonymous = "User:ANONYMOUS"

// maxSASLBytes bounds one SaslAuthenticate payload (a SCRAM message is a
// few hundred bytes; PLAIN a name and a password).
const maxSASLBytes = 16 << 10

// maxPreAuthBytes bounds a request before authentication (Kafka's
// sasl.server.max.receive.size); authTimeout is how long the SASL exchange
// may take from the connection's start.
const (
	maxPreAuthBytes = 512 << 10
	authTimeout     = 30 * time.Second
)

// authState is a connection's authentication.
type authState struct {
	principal string // "" until authenticated
	mechanism string // chosen by SaslHandshake, "" before
	scram     *scramServer
	expires   time.Time // zero: no expiry
	failed    bool      // an exchange failed: the connection closes
	deadline  bool      // a read deadline bounds the exchange until it ends
}

// authenticateTransport sets the principal the transport gives: anonymous,
// or (TLS with client certificates) the certificate's subject. The TLS
// handshake runs here, bounded, so a client that never finishes one (or
// speaks plaintext to a TLS port) is dropped.
func (c *conn) authenticateTransport() error {
	if tc, ok := c.nc.(*tls.Conn); ok {
		ctx, cancel := context.WithTimeout(c.s.ctx, 10*time.Second)
		defer cancel()
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("TLS handshake: %w", err)
		}
		if certs := tc.ConnectionState().PeerCertificates; len(certs) > 0 && !c.lst.SASL() {
			c.auth.principal = "User:" + certs[0].Subject.String()
			return nil
		}
	}
	if !c.lst.SASL() {
		c.auth.principal = Anonymous
	}
	return nil
}

// admit says whether a request with key may run now: on SASL listeners
// only ApiVersions and the SASL exchange come before authentication, and a
// session past its lifetime takes nothing else until it re-authenticates.
func (c *conn) admit(key int16, now time.Time) error {
	switch key {
	case 18, 17, 36: // ApiVersions, SaslHandshake, SaslAuthenticate
		return nil
	}
	switch {
	case c.auth.principal == "":
		return errors.New("the SASL exchange must come first")
	case !c.auth.expires.IsZero() && now.After(c.auth.expires):
		return errors.New("the SASL session expired without re-authentication")
	}
	return nil
}

// Principal is the connection's authenticated principal.
func (r *request) Principal() string { return r.c.auth.principal }

// saslHandshake picks the mechanism for the exchange that follows; on an
// authenticated connection it begins a re-authentication.
func (c *conn) saslHandshake(mechanism string) int16 {
	if !c.lst.SASL() {
		return kerr.IllegalSaslState.Code // this listener does not speak SASL
	}
	for _, m := range saslMechanisms {
		if m == mechanism {
			c.auth.mechanism, c.auth.scram = m, nil
			return 0
		}
	}
	return kerr.UnsupportedSaslMechanism.Code
}

// errAuth is every authentication failure's message: which part was wrong
// (no such user, a bad password) is not told.
var errAuth = errors.New("authentication failed: invalid credentials")

// saslAuthenticate takes one message of the exchange and returns the
// reply to send; done reports the exchange finished (successfully if err
// is nil).
func (c *conn) saslAuthenticate(msg []byte, now time.Time) (reply []byte, done bool, err error) {
	if c.auth.mechanism == "" {
		return nil, false, errors.New("no mechanism chosen: SaslHandshake first")
	}
	if len(msg) > maxSASLBytes {
		return nil, false, fmt.Errorf("SASL message of %d bytes (at most %d)", len(msg), maxSASLBytes)
	}
	st := c.s.b.State()
	var user string
	switch c.auth.mechanism {
	case "PLAIN":
		u, err := checkPlain(st, msg)
		if err != nil {
			return nil, false, err
		}
		user = u
	default:
		if c.auth.scram == nil {
			mech := c.auth.mechanism
			c.auth.scram = &scramServer{mechanism: mech, lookup: func(name string) (metadata.ScramCredential, bool) {
				return st.ScramCredentialOf(name, mech)
			}}
		}
		out, done, err := c.auth.scram.Step(string(msg))
		if err != nil {
			return nil, false, err
		}
		if !done {
			return []byte(out), false, nil
		}
		user = c.auth.scram.user
		reply = []byte(out)
		c.auth.scram = nil
	}
	principal := "User:" + user
	if c.auth.principal != "" && c.auth.principal != principal {
		return nil, false, fmt.Errorf("re-authentication as %s on a connection of %s", principal, c.auth.principal)
	}
	c.auth.principal, c.auth.mechanism = principal, ""
	c.auth.expires = time.Time{}
	if d := c.s.cfg.SASLSessionLifetime; d > 0 {
		c.auth.expires = now.Add(d)
	}
	return reply, true, nil
}

// checkPlain checks a PLAIN message ([authzid] NUL user NUL password)
// against the user's SCRAM credential and returns the user.
func checkPlain(st *metadata.State, msg []byte) (string, error) {
	parts := strings.Split(string(msg), "\x00")
	if len(parts) != 3 || parts[1] == "" {
		return "", errors.New("malformed PLAIN message")
	}
	authz, user, pass := parts[0], parts[1], parts[2]
	if authz != "" && authz != user {
		return "", errors.New("PLAIN: acting as another user is not supported")
	}
	for _, mech := range []string{metadata.ScramSHA512, metadata.ScramSHA256} {
		cr, ok := st.ScramCredentialOf(user, mech)
		if !ok {
			continue
		}
		hash := scram.SHA512
		if mech == metadata.ScramSHA256 {
			hash = scram.SHA256
		}
		cl, err := hash.NewClient(user, pass, "")
		if err != nil {
			return "", errAuth
		}
		got := cl.GetStoredCredentials(scram.KeyFactors{Salt: string(cr.Salt), Iters: cr.Iterations})
		if subtle.ConstantTimeCompare(got.StoredKey, cr.StoredKey) == 1 {
			return user, nil
		}
		return "", errAuth
	}
	return "", errAuth
}

// sessionLifetimeMillis is what SaslAuthenticate v1+ tells the client.
func (c *conn) sessionLifetimeMillis(now time.Time) int64 {
	if c.auth.expires.IsZero() {
		return 0
	}
	return max(c.auth.expires.Sub(now).Milliseconds(), 1)
}
