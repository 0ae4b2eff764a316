package tests

import (
	"strings"
	"testing"
	"time"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/agent/kafka"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
)

// The CLI on a SASL listener: as the bootstrap user (flags, or a
// --command-config file) it creates a user from standard input, lists
// users, and works as the new user; a wrong password or a missing one
// exits non-zero with a plain message.
func TestCLISASL(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the tlog binary")
	}
	bin := tlogtest.BuildTlog(t)
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket(), func(c *agent.Config) {
		c.Listeners = []kafka.ListenerSpec{{Name: "SASL", Protocol: kafka.SASLPlaintext, Addr: "127.0.0.1:0"}}
		c.BootstrapUser, c.BootstrapPassword = "admin", "admin-secret"
	})
	addr := a.Addr()
	as := func(mech, user, pass string, args ...string) []string {
		return append([]string{"--sasl-mechanism", mech, "--sasl-user", user, "--sasl-password", pass}, args...)
	}
	var r cliResult
	tlogtest.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error { // the bootstrap user is journaled just after start
		if r = cliRun(t, bin, addr, "", as("SCRAM-SHA-512", "admin", "admin-secret", "user", "list")...); r.code != 0 {
			return errorString(r.String())
		}
		return nil
	})
	cliOK(t, bin, addr, "alice-pw\n", as("SCRAM-SHA-512", "admin", "admin-secret", "user", "create", "alice", "--mechanism", "SCRAM-SHA-256", "--password-stdin")...)
	out := cliOK(t, bin, addr, "", as("SCRAM-SHA-512", "admin", "admin-secret", "user", "list")...).stdout
	if !strings.Contains(out, "alice") || !strings.Contains(out, "SCRAM-SHA-256") || !strings.Contains(out, "admin") {
		t.Fatalf("user list:\n%s", out)
	}
	props := writeTemp(t, "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-256\nsasl.username=alice\nsasl.password=alice-pw\n")
	cliOK(t, bin, addr, "", "--command-config", props, "topic", "create", "sasl-topic", "--partitions", "1")
	cliOK(t, bin, addr, "", as("PLAIN", "alice", "alice-pw", "topic", "describe", "sasl-topic")...)
	cliFails(t, bin, addr, 1, []string{"SASL"}, as("SCRAM-SHA-256", "alice", "wrong", "topic", "list")...)
	cliFails(t, bin, addr, 2, []string{"--sasl-user"}, "--sasl-mechanism", "PLAIN", "topic", "list")
	cliFails(t, bin, addr, 2, []string{"--password-stdin"}, as("SCRAM-SHA-512", "admin", "admin-secret", "user", "create", "bob")...)
	cliOK(t, bin, addr, "", as("SCRAM-SHA-512", "admin", "admin-secret", "user", "delete", "alice", "--mechanism", "SCRAM-SHA-256")...)
	cliFails(t, bin, addr, 1, nil, as("SCRAM-SHA-256", "alice", "alice-pw", "topic", "list")...)
}

type errorString string

func (e errorString) Error() string { return string(e) }
