package agent_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/agent/kafka"
	"github.com/tlog-io/tlog/tests/tlogtest"
)

// SASL on its own listeners beside a plaintext one: the bootstrap user
// logs in with SCRAM-SHA-512, SCRAM-SHA-256 and PLAIN, on SASL_PLAINTEXT
// and SASL_SSL, and is sent to the SASL ports by Metadata; a wrong
// password fails with SASL_AUTHENTICATION_FAILED; a request before
// authenticating closes the connection; a TLS port fed plaintext closes
// it; a user created with AlterUserScramCredentials logs in, and is gone
// once deleted.
func TestSASLAndTLSListeners(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	certFile, keyFile, pool := tlogtest.SelfSigned(t, dir, "tlog-test")
	a := startAgent(t, func(c *agent.Config) {
		c.Listeners = []kafka.ListenerSpec{
			{Name: "PLAIN_TEXT", Protocol: kafka.Plaintext, Addr: "127.0.0.1:0"},
			{Name: "SASL", Protocol: kafka.SASLPlaintext, Addr: "127.0.0.1:0"},
			{Name: "SECURE", Protocol: kafka.SASLSSL, Addr: "127.0.0.1:0"},
		}
		c.TLSCertFile, c.TLSKeyFile = certFile, keyFile
		c.BootstrapUser, c.BootstrapPassword = "admin", "s3cret-admin"
	})
	addrs := a.KafkaAddrs()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tlsConf := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}

	login := func(addr string, mech sasl.Mechanism, useTLS bool) error {
		opts := []kgo.Opt{kgo.SeedBrokers(addr), kgo.SASL(mech), kgo.RequestRetries(0)}
		if useTLS {
			opts = append(opts, kgo.DialTLSConfig(tlsConf.Clone()))
		}
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			return err
		}
		defer cl.Close()
		md, err := kadm.NewClient(cl).BrokerMetadata(ctx)
		if err != nil {
			return err
		}
		for _, b := range md.Brokers {
			if got := net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))); got != addr {
				return errors.New("metadata advertises " + got + ", not this listener's " + addr)
			}
		}
		return nil
	}
	admin := scram.Auth{User: "admin", Pass: "s3cret-admin"}
	tlogtest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error { return login(addrs["SASL"], admin.AsSha512Mechanism(), false) })
	for name, mech := range map[string]sasl.Mechanism{
		"SCRAM-SHA-256": admin.AsSha256Mechanism(),
		"PLAIN":         plain.Auth{User: "admin", Pass: "s3cret-admin"}.AsMechanism(),
	} {
		if err := login(addrs["SASL"], mech, false); err != nil {
			t.Fatalf("%s on SASL_PLAINTEXT: %v", name, err)
		}
	}
	if err := login(addrs["SECURE"], admin.AsSha512Mechanism(), true); err != nil {
		t.Fatalf("SCRAM-SHA-512 on SASL_SSL: %v", err)
	}
	for name, mech := range map[string]sasl.Mechanism{
		"SCRAM-SHA-512": scram.Auth{User: "admin", Pass: "wrong"}.AsSha512Mechanism(),
		"PLAIN":         plain.Auth{User: "admin", Pass: "wrong"}.AsMechanism(),
		"unknown user":  scram.Auth{User: "nobody", Pass: "x"}.AsSha256Mechanism(),
	} {
		if err := login(addrs["SASL"], mech, false); !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("%s with a wrong password: %v, want SASL_AUTHENTICATION_FAILED", name, err)
		}
	}

	// A Metadata request before authenticating: the connection closes.
	raw := dialRaw(t, addrs["SASL"])
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(9)
	raw.send(md)
	raw.expectClosed("Metadata before SASL")
	// A large frame before authenticating is refused by its size alone.
	big := dialRaw(t, addrs["SASL"])
	big.write([]byte{0, 0x10, 0, 0}) // 1 MiB, over the 512 KiB allowed before SASL
	big.expectClosed("a 1 MiB request before SASL")
	// Plaintext Kafka to the TLS port: the connection closes.
	nc, err := net.Dial("tcp", addrs["SECURE"])
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	nc.Write([]byte{0, 0, 0, 10, 0, 18, 0, 0, 0, 0, 0, 1, 0, 0})
	nc.SetReadDeadline(time.Now().Add(15 * time.Second))
	if _, err := io.ReadAll(nc); err != nil && !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("plaintext to the TLS port: %v, want the connection closed", err)
	}

	// A user made with AlterUserScramCredentials logs in; deleted, not.
	admCl := tlogtest.NewClient(t, addrs["SASL"], kgo.SASL(admin.AsSha512Mechanism()))
	adm := kadm.NewClient(admCl)
	res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "alice", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "alice-pw"}})
	if err != nil || res.Error() != nil {
		t.Fatalf("create alice: %v %v", err, res.Error())
	}
	alice := scram.Auth{User: "alice", Pass: "alice-pw"}
	if err := login(addrs["SASL"], alice.AsSha256Mechanism(), false); err != nil {
		t.Fatalf("alice: %v", err)
	}
	// Alice is no super user: she may not manage users.
	aliceAdm := kadm.NewClient(tlogtest.NewClient(t, addrs["SASL"], kgo.SASL(alice.AsSha256Mechanism())))
	res, err = aliceAdm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "admin", Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "taken-over"}})
	if err == nil {
		err = res["admin"].Err
	}
	if !errors.Is(err, kerr.ClusterAuthorizationFailed) {
		t.Fatalf("alice resetting admin's password: %v, want CLUSTER_AUTHORIZATION_FAILED", err)
	}
	if err := login(addrs["SASL"], admin.AsSha512Mechanism(), false); err != nil {
		t.Fatalf("admin after alice's attempt: %v", err)
	}
	described, err := adm.DescribeUserSCRAMs(ctx, "alice")
	if err != nil || described["alice"].Err != nil || len(described["alice"].CredInfos) != 1 || described["alice"].CredInfos[0].Iterations != 4096 {
		t.Fatalf("describe alice: %+v %v", described, err)
	}
	if res, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "alice", Mechanism: kadm.ScramSha256}}, nil); err != nil || res.Error() != nil {
		t.Fatalf("delete alice: %v %v", err, res.Error())
	}
	if err := login(addrs["SASL"], alice.AsSha256Mechanism(), false); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("deleted alice: %v", err)
	}
	// Bad credentials, checked by the agent (kadm would refuse some first).
	for what, up := range map[string]kmsg.AlterUserSCRAMCredentialsRequestUpsertion{
		"10 iterations":      {Name: "bob", Mechanism: 1, Iterations: 10, Salt: make([]byte, 16), SaltedPassword: make([]byte, 32)},
		"a short salt":       {Name: "bob", Mechanism: 1, Iterations: 4096, Salt: make([]byte, 4), SaltedPassword: make([]byte, 32)},
		"a 20-byte password": {Name: "bob", Mechanism: 2, Iterations: 4096, Salt: make([]byte, 16), SaltedPassword: make([]byte, 20)},
	} {
		req := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
		req.Upsertions = append(req.Upsertions, up)
		resp, err := req.RequestWith(ctx, admCl)
		if err != nil {
			t.Fatal(err)
		}
		if code := resp.Results[0].ErrorCode; code != kerr.UnacceptableCredential.Code {
			t.Fatalf("%s: error %d, want UNACCEPTABLE_CREDENTIAL", what, code)
		}
	}
	if d, err := adm.DescribeUserSCRAMs(ctx, "bob"); err != nil || !errors.Is(d["bob"].Err, kerr.ResourceNotFound) {
		t.Fatalf("bob after refused upserts: %+v %v", d, err)
	}
}

// max.connections.per.ip: past the bound a new connection is closed at
// once; once one closes, another is taken.
func TestMaxConnectionsPerIP(t *testing.T) {
	t.Parallel()
	a := startAgent(t, func(c *agent.Config) { c.MaxConnectionsPerIP = 2 })
	apiVersions := func(c *rawConn) {
		t.Helper()
		if r := do[*kmsg.ApiVersionsResponse](c, 2, kmsg.NewPtrApiVersionsRequest()); r.ErrorCode != 0 {
			t.Fatalf("ApiVersions: %d", r.ErrorCode)
		}
	}
	first, second := dialRaw(t, a.Addr()), dialRaw(t, a.Addr())
	apiVersions(first)
	apiVersions(second)
	third := dialRaw(t, a.Addr())
	third.write(kmsg.NewRequestFormatter().AppendRequest(nil, kmsg.NewPtrApiVersionsRequest(), 1))
	third.expectClosed("a third connection from one address")
	first.nc.Close()
	tlogtest.CheckFor(t, 5*time.Second, 50*time.Millisecond, func() error {
		c, err := net.DialTimeout("tcp", a.Addr(), time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		rc := &rawConn{t: t, nc: c, f: kmsg.NewRequestFormatter()}
		rc.write(rc.f.AppendRequest(nil, kmsg.NewPtrApiVersionsRequest(), 1))
		if _, err := rc.readFrame(2 * time.Second); err != nil {
			return err
		}
		return nil
	})
}

// advertised.listeners: a listener's clients are told its advertised
// address (as containers need: the host sees a mapped port, other
// containers a network alias), each listener its own.
func TestAdvertisedListeners(t *testing.T) {
	t.Parallel()
	a := startAgent(t, func(c *agent.Config) {
		c.Listeners = []kafka.ListenerSpec{
			{Name: "EXTERNAL", Protocol: kafka.Plaintext, Addr: "127.0.0.1:0", Advertise: "localhost:19092"},
			{Name: "INTERNAL", Protocol: kafka.Plaintext, Addr: "127.0.0.1:0", Advertise: "tlog-0.internal:9094"},
			{Name: "BOUND", Protocol: kafka.Plaintext, Addr: "127.0.0.1:0"},
		}
	})
	for name, want := range map[string]string{"EXTERNAL": "localhost:19092", "INTERNAL": "tlog-0.internal:9094", "BOUND": a.KafkaAddrs()["BOUND"]} {
		md := metadata(dialRaw(t, a.KafkaAddrs()[name]))
		if len(md.Brokers) != 1 {
			t.Fatalf("%s: %d brokers", name, len(md.Brokers))
		}
		if got := net.JoinHostPort(md.Brokers[0].Host, strconv.Itoa(int(md.Brokers[0].Port))); got != want {
			t.Errorf("listener %s advertises %s, want %s", name, got, want)
		}
	}
}
