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

// tlog acl against an agent with --authorizer acl: alice, with no ACLs,
// can neither create a topic nor produce (exit 1, the authorization error
// named); the super user grants CREATE on the cluster and WRITE on the
// topic with `tlog acl create`, after which both work; `tlog acl list`
// shows the grants and `tlog acl delete` takes them away again. Bad
// principals and operations exit 2 before anything is sent, and alice may
// not manage ACLs herself.
func TestCLIACLs(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the tlog binary")
	}
	bin := tlogtest.BuildTlog(t)
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket(), func(c *agent.Config) {
		c.Listeners = []kafka.ListenerSpec{{Name: "SASL", Protocol: kafka.SASLPlaintext, Addr: "127.0.0.1:0"}}
		c.BootstrapUser, c.BootstrapPassword = "admin", "admin-secret"
		c.Authorizer = true
	})
	addr := a.Addr()
	admin := func(args ...string) []string {
		return append([]string{"--sasl-mechanism", "SCRAM-SHA-512", "--sasl-user", "admin", "--sasl-password", "admin-secret"}, args...)
	}
	alice := func(args ...string) []string {
		return append([]string{"--sasl-mechanism", "SCRAM-SHA-512", "--sasl-user", "alice", "--sasl-password", "alice-pw"}, args...)
	}
	tlogtest.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		if r := cliRun(t, bin, addr, "", admin("user", "list")...); r.code != 0 {
			return errorString(r.String())
		}
		return nil
	})
	cliOK(t, bin, addr, "alice-pw\n", admin("user", "create", "alice", "--password-stdin")...)

	cliFails(t, bin, addr, 1, []string{"may not create topic"}, alice("topic", "create", "orders", "--partitions", "1")...)
	cliFails(t, bin, addr, 1, []string{"CLUSTER_AUTHORIZATION_FAILED"}, alice("acl", "list")...)
	cliOK(t, bin, addr, "", admin("acl", "create", "--allow-principal", "User:alice", "--operation", "create", "--cluster")...)
	cliOK(t, bin, addr, "", alice("topic", "create", "orders", "--partitions", "1")...)
	if r := cliRun(t, bin, addr, "o-1\n", alice("produce", "orders")...); r.code != 1 || !strings.Contains(r.stderr, "TOPIC_AUTHORIZATION_FAILED") {
		t.Fatalf("produce without WRITE: want exit 1 naming TOPIC_AUTHORIZATION_FAILED, got %s", r)
	}
	cliOK(t, bin, addr, "", admin("acl", "create", "--allow-principal", "User:alice", "--operation", "write,describe", "--topic", "ord", "--resource-pattern-type", "prefixed")...)
	cliOK(t, bin, addr, "o-1\n", alice("produce", "orders")...)

	out := cliOK(t, bin, addr, "", admin("acl", "list", "--topic", "orders", "--resource-pattern-type", "match")...).stdout
	for _, want := range []string{"prefixed", "ord", "User:alice", "write", "describe"} {
		if !strings.Contains(out, want) {
			t.Fatalf("acl list --topic orders --resource-pattern-type match: no %q in\n%s", want, out)
		}
	}
	if strings.Contains(out, "kafka-cluster") {
		t.Fatalf("acl list for topic orders shows the cluster ACL:\n%s", out)
	}
	del := cliOK(t, bin, addr, "", admin("acl", "delete", "--principal", "User:alice", "--topic", "ord", "--resource-pattern-type", "prefixed")...).stdout
	if strings.Count(del, "deleted:") != 2 {
		t.Fatalf("acl delete: want 2 deleted, got\n%s", del)
	}
	if r := cliRun(t, bin, addr, "o-2\n", alice("produce", "orders")...); r.code != 1 {
		t.Fatalf("produce after the grant was deleted: want exit 1, got %s", r)
	}

	cliFails(t, bin, addr, 2, []string{"User:NAME"}, admin("acl", "create", "--allow-principal", "alice", "--operation", "read", "--topic", "x")...)
	cliFails(t, bin, addr, 2, []string{"--operation"}, admin("acl", "create", "--allow-principal", "User:alice", "--operation", "fly", "--topic", "x")...)
	cliFails(t, bin, addr, 2, []string{"resource"}, admin("acl", "create", "--allow-principal", "User:alice", "--operation", "read")...)
	cliFails(t, bin, addr, 2, []string{"--principal"}, admin("acl", "delete")...)
	cliFails(t, bin, addr, 1, []string{"CLUSTER_AUTHORIZATION_FAILED"}, alice("acl", "create", "--allow-principal", "User:alice", "--operation", "all", "--cluster")...)
}

// tlog quota: set a user's and the default client's byte rates, list
// them (all, and one entity), remove one; bad values exit 2 before
// anything is sent, quotas tlog does not enforce exit 1 with the agent's
// reason.
func TestCLIQuotas(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the tlog binary")
	}
	bin := tlogtest.BuildTlog(t)
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket())
	addr := a.Addr()
	cliOK(t, bin, addr, "", "quota", "alter", "--user", "alice", "--add", "producer_byte_rate=1048576", "--add", "consumer_byte_rate=2097152")
	cliOK(t, bin, addr, "", "quota", "alter", "--default-client-id", "--add", "producer_byte_rate=65536")
	out := cliOK(t, bin, addr, "", "quota", "list").stdout
	for _, want := range []string{"user=alice", "producer_byte_rate", "1048576", "consumer_byte_rate", "2097152", "client-id=<default>", "65536"} {
		if !strings.Contains(out, want) {
			t.Fatalf("quota list: no %q in\n%s", want, out)
		}
	}
	out = cliOK(t, bin, addr, "", "quota", "list", "--user", "alice").stdout
	if strings.Contains(out, "<default>") || !strings.Contains(out, "user=alice") {
		t.Fatalf("quota list --user alice:\n%s", out)
	}
	cliOK(t, bin, addr, "", "quota", "alter", "--user", "alice", "--remove", "consumer_byte_rate")
	if out := cliOK(t, bin, addr, "", "quota", "list", "--user", "alice").stdout; strings.Contains(out, "consumer_byte_rate") {
		t.Fatalf("consumer_byte_rate still listed after removal:\n%s", out)
	}
	cliFails(t, bin, addr, 2, []string{"positive"}, "quota", "alter", "--user", "alice", "--add", "producer_byte_rate=-1")
	cliFails(t, bin, addr, 2, []string{"entity"}, "quota", "alter", "--add", "producer_byte_rate=1")
	cliFails(t, bin, addr, 2, []string{"not both"}, "quota", "alter", "--user", "a", "--default-user", "--add", "producer_byte_rate=1")
	cliFails(t, bin, addr, 1, []string{"request_percentage", "not a quota tlog enforces"}, "quota", "alter", "--user", "alice", "--add", "request_percentage=50")
}
