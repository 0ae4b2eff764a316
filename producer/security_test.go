package producer

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/agent/kafka"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
)

// A Producer with WithSASL writes through a SASL listener; a wrong
// password fails the send with the authentication error; an unknown
// mechanism fails New.
func TestSendWithSASL(t *testing.T) {
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket(), func(c *agent.Config) {
		c.Listeners = []kafka.ListenerSpec{{Name: "SASL", Protocol: kafka.SASLPlaintext, Addr: "127.0.0.1:0"}}
		c.BootstrapUser, c.BootstrapPassword = "app", "app-secret"
	})
	if _, err := New([]string{a.Addr()}, WithSASL("GSSAPI", "app", "x")); err == nil {
		t.Fatal("New took an unknown SASL mechanism")
	}
	send := func(pass string) error {
		p, err := New([]string{a.Addr()}, WithSASL("SCRAM-SHA-512", "app", pass), WithDeliveryTimeout(5*time.Second))
		if err != nil {
			return err
		}
		defer p.Close(context.Background())
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err = p.Send(ctx, Record{Topic: "secured", Value: []byte("v")})
		return err
	}
	// The bootstrap user is journaled just after start.
	tlogtest.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error { return send("app-secret") })
	if err := send("wrong"); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("send with a wrong password: %v, want SASL_AUTHENTICATION_FAILED", err)
	}
}
