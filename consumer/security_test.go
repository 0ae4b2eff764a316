package consumer

import (
	"strings"
	"testing"
)

// WithSASL with an unknown mechanism fails New; known ones and WithTLS
// give the client its options.
func TestSecurityOptions(t *testing.T) {
	if _, err := New([]string{"127.0.0.1:9"}, WithSASL("GSSAPI", "u", "p"), WithGroup("g", "t")); err == nil || !strings.Contains(err.Error(), "GSSAPI") {
		t.Fatalf("New with an unknown SASL mechanism: %v", err)
	}
	var c config
	for _, o := range []Option{WithTLS(nil), WithSASL("scram-sha-256", "u", "p")} {
		o(&c)
	}
	opts, err := c.securityOpts()
	if err != nil || len(opts) != 2 || c.tls == nil || c.tls.MinVersion == 0 {
		t.Fatalf("security options: %d, %v, tls %+v", len(opts), err, c.tls)
	}
}
