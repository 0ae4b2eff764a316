package kafka

import (
	"bytes"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/xdg-go/scram"

	"github.com/tlog-io/tlog/metadata"
)

// stateOnly is a Backend that has only metadata (the SASL exchange needs
// no more).
type stateOnly struct {
	Backend
	st *metadata.State
}

func (s stateOnly) State() *metadata.State { return s.st }

// fuzzState holds user alice (password alice-pw) for both SCRAM
// mechanisms.
func fuzzState(tb testing.TB) *metadata.State {
	st := metadata.NewState()
	for _, mech := range []string{metadata.ScramSHA256, metadata.ScramSHA512} {
		hash := scram.SHA256
		if mech == metadata.ScramSHA512 {
			hash = scram.SHA512
		}
		cl, err := hash.NewClient("alice", "alice-pw", "")
		if err != nil {
			tb.Fatal(err)
		}
		salt := []byte("0123456789abcdef")
		sc := cl.GetStoredCredentials(scram.KeyFactors{Salt: string(salt), Iters: 4096})
		if err := st.Apply(metadata.SetScramCredential{User: "alice", Mechanism: mech,
			Credential: metadata.ScramCredential{Iterations: 4096, Salt: salt, StoredKey: sc.StoredKey, ServerKey: sc.ServerKey}}); err != nil {
			tb.Fatal(err)
		}
	}
	return st
}

// The SASL exchange on hostile input: up to three messages (split at
// 0xff) for each mechanism. It never panics, SCRAM never authenticates
// without a proof, and PLAIN only with alice's password.
func FuzzSASLExchange(f *testing.F) {
	f.Add([]byte("\x00alice\x00alice-pw"))
	f.Add([]byte("alice\x00alice\x00wrong"))
	f.Add([]byte("n,,n=alice,r=abcdefgh\xffc=biws,r=abcdefgh,p=AAAA"))
	f.Add([]byte("n,,n=alice,r=abcdefgh\xffc=biws,r=abcdefghXYZ,p=dGVzdA=="))
	f.Add([]byte("p=n,,n=,r=\xff\xff"))
	f.Add(bytes.Repeat([]byte("n,,n=a"), 5000))
	st := fuzzState(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		msgs := bytes.SplitN(in, []byte{0xff}, 3)
		for _, mech := range saslMechanisms {
			c := &conn{s: &Server{b: stateOnly{st: st}}, lst: Listener{Name: "S", Protocol: SASLPlaintext}}
			if code := c.saslHandshake(mech); code != 0 {
				t.Fatalf("handshake %s: %d", mech, code)
			}
			for _, m := range msgs {
				_, done, err := c.saslAuthenticate(m, time.Now())
				if err != nil || done {
					break
				}
			}
			if c.auth.principal == "" {
				continue
			}
			if mech != "PLAIN" {
				t.Fatalf("%s authenticated %s from %q", mech, c.auth.principal, in)
			}
			if parts := strings.Split(string(msgs[0]), "\x00"); len(parts) != 3 || parts[2] != "alice-pw" || c.auth.principal != "User:alice" {
				t.Fatalf("PLAIN authenticated %s from %q", c.auth.principal, msgs[0])
			}
		}
	})
}

// The real exchanges succeed (so the fuzz target's "never" is not
// vacuous): PLAIN and both SCRAMs with alice's password.
func TestSASLExchangeSucceeds(t *testing.T) {
	st := fuzzState(t)
	newConn := func(mech string) *conn {
		c := &conn{s: &Server{b: stateOnly{st: st}}, lst: Listener{Name: "S", Protocol: SASLPlaintext}}
		c.saslHandshake(mech)
		return c
	}
	c := newConn("PLAIN")
	if _, done, err := c.saslAuthenticate([]byte("\x00alice\x00alice-pw"), time.Now()); err != nil || !done || c.auth.principal != "User:alice" {
		t.Fatalf("PLAIN: %v %v %q", done, err, c.auth.principal)
	}
	for mech, hash := range map[string]scram.HashGeneratorFcn{metadata.ScramSHA256: scram.SHA256, metadata.ScramSHA512: scram.SHA512} {
		c := newConn(mech)
		cl, _ := hash.NewClient("alice", "alice-pw", "")
		conv := cl.NewConversation()
		msg, _ := conv.Step("")
		for i := 0; i < 3 && c.auth.principal == ""; i++ {
			out, done, err := c.saslAuthenticate([]byte(msg), time.Now())
			if err != nil {
				t.Fatalf("%s step %d: %v", mech, i, err)
			}
			if msg, err = conv.Step(string(out)); err != nil && !done {
				t.Fatalf("%s client step %d: %v", mech, i, err)
			}
		}
		if c.auth.principal != "User:alice" {
			t.Fatalf("%s: principal %q", mech, c.auth.principal)
		}
	}
}

// librdkafka sends its client nonce again in front of the server's nonce
// in the final message (its proof covers that message); Kafka accepts a
// nonce that ends with the one it sent, and so does tlog. A nonce that
// does not end with it is refused.
func TestScramFinalNonceLikeKafka(t *testing.T) {
	st := fuzzState(t)
	cred, _ := st.ScramCredentialOf("alice", metadata.ScramSHA256)
	for _, tc := range []struct {
		name  string
		nonce func(cnonce, full string) string
		ok    bool
	}{
		{"exact", func(_, full string) string { return full }, true},
		{"client nonce twice (librdkafka)", func(cnonce, full string) string { return cnonce + full }, true},
		{"another nonce", func(cnonce, _ string) string { return cnonce + "forged" }, false},
	} {
		s := &scramServer{mechanism: metadata.ScramSHA256, lookup: func(string) (metadata.ScramCredential, bool) { return cred, true }}
		first, _, err := s.Step("n,,n=alice,r=clientnonce")
		if err != nil {
			t.Fatal(err)
		}
		full := strings.TrimPrefix(strings.Split(first, ",")[0], "r=")
		withoutProof := "c=biws,r=" + tc.nonce("clientnonce", full)
		authMessage := "n=alice,r=clientnonce," + first + "," + withoutProof
		proof := clientProof(t, "alice-pw", cred, authMessage)
		_, done, err := s.Step(withoutProof + ",p=" + proof)
		if got := err == nil && done; got != tc.ok {
			t.Fatalf("%s: authenticated %v (%v), want %v", tc.name, got, err, tc.ok)
		}
	}
}

// clientProof is RFC 5802's ClientProof for password over authMessage
// (SHA-256).
func clientProof(t *testing.T, password string, cred metadata.ScramCredential, authMessage string) string {
	t.Helper()
	salted := pbkdf2SHA256([]byte(password), cred.Salt, cred.Iterations)
	clientKey := hmacOf(sha256.New, salted, "Client Key")
	sig := hmacOf(sha256.New, cred.StoredKey, authMessage)
	for i := range clientKey {
		clientKey[i] ^= sig[i]
	}
	return base64.StdEncoding.EncodeToString(clientKey)
}

func pbkdf2SHA256(password, salt []byte, iter int) []byte {
	key, err := pbkdf2.Key(sha256.New, string(password), salt, iter, sha256.Size)
	if err != nil {
		panic(err)
	}
	return key
}
