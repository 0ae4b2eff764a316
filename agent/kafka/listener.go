package kafka

// Listeners: a Kafka port speaks one security protocol, as Kafka's
// listeners do. PLAINTEXT and SSL connections are authenticated by the
// transport (anonymous, or the client certificate's subject); SASL_PLAINTEXT
// and SASL_SSL ones must finish a SASL exchange (SaslHandshake, then
// SaslAuthenticate) before any request but ApiVersions is taken. The
// listener's name picks which of each agent's advertised addresses
// Metadata, FindCoordinator and DescribeCluster answer with, so a client
// on the TLS port is sent to TLS ports.

import (
	"crypto/tls"
	"fmt"
	"net"
	"strings"
)

// Security protocols, as Kafka names them.
const (
	Plaintext     = "PLAINTEXT"
	SSL           = "SSL"
	SASLPlaintext = "SASL_PLAINTEXT"
	SASLSSL       = "SASL_SSL"
)

// Listener is one Kafka port's settings.
type Listener struct {
	Name     string // advertised under this name (Kafka's listener name)
	Protocol string
	// TLS serves SSL and SASL_SSL; with ClientAuth set, a client
	// certificate's subject is the connection's principal.
	TLS *tls.Config
}

// SASL reports whether connections must authenticate with SASL.
func (l Listener) SASL() bool { return l.Protocol == SASLPlaintext || l.Protocol == SASLSSL }

// Secure reports whether the listener runs TLS.
func (l Listener) Secure() bool { return l.Protocol == SSL || l.Protocol == SASLSSL }

// ListenerSpec is a parsed --listener value: [NAME=]PROTOCOL://HOST:PORT.
type ListenerSpec struct {
	Name, Protocol, Addr string
	// Advertise is the address its clients are told (advertised.listeners;
	// empty: the bound address).
	Advertise string
}

// ParseListener parses [NAME=]PROTOCOL://HOST:PORT; the name defaults to
// the protocol.
func ParseListener(v string) (ListenerSpec, error) {
	var l ListenerSpec
	rest := v
	if i := strings.Index(v, "="); i >= 0 && i < strings.Index(v, "://") {
		l.Name, rest = v[:i], v[i+1:]
	}
	proto, addr, ok := strings.Cut(rest, "://")
	if !ok {
		return l, fmt.Errorf("listener %q: want [NAME=]PROTOCOL://HOST:PORT", v)
	}
	l.Protocol = strings.ToUpper(proto)
	switch l.Protocol {
	case Plaintext, SSL, SASLPlaintext, SASLSSL:
	default:
		return l, fmt.Errorf("listener %q: protocol %q is not PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", v, proto)
	}
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return l, fmt.Errorf("listener %q: address: %w", v, err)
	}
	l.Addr = addr
	if l.Name == "" {
		l.Name = l.Protocol
	}
	for _, r := range l.Name {
		if !(r == '_' || r == '-' || r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9') {
			return l, fmt.Errorf("listener %q: name %q: letters, digits, '_' and '-' only", v, l.Name)
		}
	}
	return l, nil
}
