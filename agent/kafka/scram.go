package kafka

// The server side of SCRAM (RFC 5802) for SASL/SCRAM-SHA-256 and -512.
// The credential side (salting, iterating, deriving the keys) is
// github.com/xdg-go/scram's; this is the two-message exchange, written
// here because Kafka's server is more lenient than that library's in one
// place clients rely on: librdkafka sends its client nonce again in front
// of the server's nonce in the final message, and Kafka accepts a final
// nonce that ends with the one it sent. Everything else is checked as the
// RFC says: the channel-binding echo, the proof (H(proof XOR
// HMAC(StoredKey, AuthMessage)) == StoredKey, in constant time), and the
// server's signature sent back.

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"github.com/tlog-io/tlog/metadata"
)

// scramServer is one SCRAM exchange on a connection.
type scramServer struct {
	mechanism string
	lookup    func(user string) (metadata.ScramCredential, bool)

	step        int
	user        string
	gs2         string // the client's GS2 header, echoed base64 in "c="
	clientBare  string
	serverFirst string
	nonce       string // client nonce + server nonce
	cred        metadata.ScramCredential
}

func (s *scramServer) hash() func() hash.Hash {
	if s.mechanism == metadata.ScramSHA512 {
		return sha512.New
	}
	return sha256.New
}

// Step takes the client's message and returns the reply; done once the
// client is authenticated as s.user. Any error ends the exchange.
func (s *scramServer) Step(msg string) (reply string, done bool, err error) {
	s.step++
	switch s.step {
	case 1:
		return s.first(msg)
	case 2:
		return s.final(msg)
	}
	return "", false, errors.New("SCRAM exchange already finished")
}

func (s *scramServer) first(msg string) (string, bool, error) {
	// gs2-header: "n,," or "y,," (no channel binding; "p=" is not served)
	// and no authzid other than empty.
	var gs2 string
	switch {
	case strings.HasPrefix(msg, "n,,"), strings.HasPrefix(msg, "y,,"):
		gs2 = msg[:3]
	case strings.HasPrefix(msg, "p="):
		return "", false, errors.New("SCRAM channel binding is not served")
	default:
		return "", false, errors.New("SCRAM client-first: bad GS2 header (an authzid is not served)")
	}
	bare := msg[len(gs2):]
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return "", false, errors.New("SCRAM client-first: want n=USER,r=NONCE")
	}
	for _, ext := range attrs[2:] {
		if strings.HasPrefix(ext, "tokenauth=") && ext != "tokenauth=false" {
			return "", false, errors.New("SCRAM with delegation tokens is not served")
		}
	}
	user, err := saslName(attrs[0][2:])
	if err != nil {
		return "", false, err
	}
	cnonce := attrs[1][2:]
	if cnonce == "" || strings.ContainsAny(cnonce, ",") {
		return "", false, errors.New("SCRAM client-first: bad nonce")
	}
	cred, ok := s.lookup(user)
	if !ok {
		return "", false, errAuth
	}
	snonce := make([]byte, 24)
	if _, err := rand.Read(snonce); err != nil {
		return "", false, err
	}
	s.user, s.gs2, s.clientBare, s.cred = user, gs2, bare, cred
	s.nonce = cnonce + base64.RawURLEncoding.EncodeToString(snonce)
	s.serverFirst = "r=" + s.nonce + ",s=" + base64.StdEncoding.EncodeToString(cred.Salt) + ",i=" + strconv.Itoa(cred.Iterations)
	return s.serverFirst, false, nil
}

func (s *scramServer) final(msg string) (string, bool, error) {
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return "", false, errors.New("SCRAM client-final: no proof")
	}
	withoutProof, proofB64 := msg[:i], msg[i+3:]
	attrs := strings.Split(withoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return "", false, errors.New("SCRAM client-final: want c=...,r=...,p=...")
	}
	if attrs[0][2:] != base64.StdEncoding.EncodeToString([]byte(s.gs2)) {
		return "", false, errAuth
	}
	// Kafka's check: the nonce ends with the one this server sent.
	if nonce := attrs[1][2:]; !strings.HasSuffix(nonce, s.nonce) {
		return "", false, errAuth
	}
	proof, err := base64.StdEncoding.DecodeString(proofB64)
	if err != nil {
		return "", false, errAuth
	}
	h := s.hash()
	authMessage := s.clientBare + "," + s.serverFirst + "," + withoutProof
	clientSig := hmacOf(h, s.cred.StoredKey, authMessage)
	if len(proof) != len(clientSig) {
		return "", false, errAuth
	}
	clientKey := make([]byte, len(proof))
	for j := range proof {
		clientKey[j] = proof[j] ^ clientSig[j]
	}
	sum := h()
	sum.Write(clientKey)
	if subtle.ConstantTimeCompare(sum.Sum(nil), s.cred.StoredKey) != 1 {
		return "", false, errAuth
	}
	return "v=" + base64.StdEncoding.EncodeToString(hmacOf(h, s.cred.ServerKey, authMessage)), true, nil
}

func hmacOf(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// saslName decodes a SCRAM user name ("=2C" is ',' and "=3D" is '=').
func saslName(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", fmt.Errorf("SCRAM user name: bad escape in %q", s)
		}
		i += 2
	}
	return b.String(), nil
}
