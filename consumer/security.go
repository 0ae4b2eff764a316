package consumer

import (
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// WithTLS connects with TLS: conf's roots and settings, or (nil) the
// system's roots with TLS 1.2 and up. Use it for SSL and SASL_SSL
// listeners.
func WithTLS(conf *tls.Config) Option {
	return func(c *config) {
		if conf == nil {
			conf = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		c.tls = conf
	}
}

// WithSASL authenticates every connection with mechanism PLAIN,
// SCRAM-SHA-256 or SCRAM-SHA-512, as user with password (SASL_PLAINTEXT,
// or SASL_SSL with WithTLS). An unknown mechanism makes New fail.
func WithSASL(mechanism, user, password string) Option {
	return func(c *config) {
		switch strings.ToUpper(mechanism) {
		case "PLAIN":
			c.sasl = plain.Auth{User: user, Pass: password}.AsMechanism()
		case "SCRAM-SHA-256":
			c.sasl = scram.Auth{User: user, Pass: password}.AsSha256Mechanism()
		case "SCRAM-SHA-512":
			c.sasl = scram.Auth{User: user, Pass: password}.AsSha512Mechanism()
		default:
			c.saslErr = fmt.Errorf("consumer: SASL mechanism %q: use PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", mechanism)
		}
	}
}

// securityOpts are the kgo options WithTLS and WithSASL ask for.
func (c *config) securityOpts() ([]kgo.Opt, error) {
	if c.saslErr != nil {
		return nil, c.saslErr
	}
	var opts []kgo.Opt
	if c.tls != nil {
		opts = append(opts, kgo.DialTLSConfig(c.tls))
	}
	if c.sasl != nil {
		opts = append(opts, kgo.SASL(c.sasl))
	}
	return opts, nil
}
