package tests

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/agent/kafka"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
)

// startSASLAgent runs an agent with one listener of protocol and the
// bootstrap user admin/admin-secret (journaled just after start: callers
// retry their first login).
func startSASLAgent(t *testing.T, protocol string, mod ...func(*agent.Config)) *agent.Agent {
	t.Helper()
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket(), append([]func(*agent.Config){func(c *agent.Config) {
		c.Listeners = []kafka.ListenerSpec{{Name: "SECURE", Protocol: protocol, Addr: "127.0.0.1:0"}}
		c.BootstrapUser, c.BootstrapPassword = "admin", "admin-secret"
	}}, mod...)...)
	return a
}

// kcat over SASL_SSL with SCRAM-SHA-512: produce and consume with the
// right password; a wrong one fails cleanly (non-zero exit, an
// authentication error).
func TestKcatSASLSSL(t *testing.T) {
	kcatPath(t)
	dir := t.TempDir()
	cert, key, _ := tlogtest.SelfSigned(t, dir, "kcat-sasl")
	a := startSASLAgent(t, kafka.SASLSSL, func(c *agent.Config) { c.TLSCertFile, c.TLSKeyFile = cert, key })
	addr := a.Addr()
	sec := func(pass string) []string {
		return []string{"-b", addr, "-X", "security.protocol=SASL_SSL", "-X", "sasl.mechanisms=SCRAM-SHA-512",
			"-X", "sasl.username=admin", "-X", "sasl.password=" + pass, "-X", "ssl.ca.location=" + cert}
	}
	// The bootstrap user is journaled just after start.
	tlogtest.CheckFor(t, 10*time.Second, 200*time.Millisecond, func() error {
		out, err := exec.Command(kcatPath(t), append(sec("admin-secret"), "-L", "-m", "3")...).CombinedOutput()
		if err != nil {
			return errors.New(string(out))
		}
		return nil
	})
	runKcat(t, "one\ntwo\nthree\n", append(sec("admin-secret"), "-P", "-t", "secure")...)
	got := runKcat(t, "", append(sec("admin-secret"), "-C", "-t", "secure", "-e", "-q", "-f", "%s@%o\n")...)
	if want := "one@0\ntwo@1\nthree@2\n"; got != want {
		t.Fatalf("consume over SASL_SSL:\n got %q\nwant %q", got, want)
	}
	out, err := exec.Command(kcatPath(t), append(sec("wrong"), "-L", "-m", "5")...).CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(strings.ToLower(string(out)), "authentication") {
		t.Fatalf("kcat with a wrong password: %v\n%s", err, out)
	}
}

// confluent-kafka over SASL_PLAINTEXT with PLAIN: produce and consume
// with the right password; a wrong one gets the authentication error and
// a non-zero exit.
func TestConfluentKafkaSASLPlain(t *testing.T) {
	py := confluentPython(t)
	a := startSASLAgent(t, kafka.SASLPlaintext)
	script := filepath.Join("clients", "confluent_sasl.py")
	var out []byte
	tlogtest.CheckFor(t, 15*time.Second, 200*time.Millisecond, func() error {
		var err error
		out, err = exec.Command(py, script, a.Addr(), "SASL_PLAINTEXT", "PLAIN", "admin", "admin-secret", "plain-topic").CombinedOutput()
		if err != nil {
			return errors.New(string(out))
		}
		return nil
	})
	if !strings.Contains(string(out), "read s-0 s-1 s-2 s-3 s-4") {
		t.Fatalf("confluent-kafka over SASL PLAIN:\n%s", out)
	}
	out, err := exec.Command(py, script, a.Addr(), "SASL_PLAINTEXT", "PLAIN", "admin", "wrong", "plain-topic").CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 || !strings.Contains(string(out), "auth-failed") {
		t.Fatalf("confluent-kafka with a wrong password: %v\n%s", err, out)
	}
}

// kcat (librdkafka) against --authorizer acl as a SCRAM user with no ACLs:
// producing and consuming fail with librdkafka's topic-authorization
// error (or the agent's "User:carol may not ...") and a non-zero exit;
// once the super user grants WRITE and READ (with kadm's CreateACLs), the
// same commands work; a consumer group needs READ on the group as well.
func TestKcatACLs(t *testing.T) {
	kcatPath(t)
	a := startSASLAgent(t, kafka.SASLPlaintext, func(c *agent.Config) { c.Authorizer = true })
	addr := a.Addr()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admCl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.SASL(scram.Auth{User: "admin", Pass: "admin-secret"}.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer admCl.Close()
	adm := kadm.NewClient(admCl)
	tlogtest.CheckFor(t, 10*time.Second, 100*time.Millisecond, func() error {
		_, err := adm.CreateTopic(ctx, 1, 1, nil, "guarded")
		return err
	})
	if res, err := adm.AlterUserSCRAMs(ctx, nil, []kadm.UpsertSCRAM{{User: "carol", Mechanism: kadm.ScramSha256, Iterations: 4096, Password: "carol-pw"}}); err != nil || res.Error() != nil {
		t.Fatalf("create carol: %v %v", err, res.Error())
	}
	carol := []string{"-b", addr, "-X", "security.protocol=SASL_PLAINTEXT", "-X", "sasl.mechanisms=SCRAM-SHA-256",
		"-X", "sasl.username=carol", "-X", "sasl.password=carol-pw"}
	kcatFails := func(what, stdin string, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, kcatPath(t), args...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		lower := strings.ToLower(string(out))
		if !errors.As(err, &ee) || !strings.Contains(lower, "authorization failed") && !strings.Contains(lower, "user:carol may not") {
			t.Fatalf("%s without ACLs: want a non-zero exit naming the authorization failure, got %v:\n%s", what, err, out)
		}
	}
	kcatFails("produce", "denied\n", append(carol, "-P", "-t", "guarded")...)
	kcatFails("consume", "", append(carol, "-C", "-t", "guarded", "-e", "-q")...)

	acls := kadm.NewACLs().Allow("User:carol").Topics("guarded").
		Operations(kadm.OpWrite, kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)
	res, err := adm.CreateACLs(ctx, acls)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create ACL: %v", r.Err)
		}
	}
	runKcat(t, "one\ntwo\n", append(carol, "-P", "-t", "guarded")...)
	if got := runKcat(t, "", append(carol, "-C", "-t", "guarded", "-e", "-q", "-f", "%s@%o\n")...); got != "one@0\ntwo@1\n" {
		t.Fatalf("consume with READ: got %q", got)
	}
	// A consumer group needs READ on the group too.
	group := append(carol, "-X", "auto.offset.reset=earliest", "-G", "carols", "-e", "-q", "-f", "%s@%o\n", "guarded")
	kcatFails("group consume", "", group...)
	if res, err := adm.CreateACLs(ctx, kadm.NewACLs().Allow("User:carol").Groups("carols").
		Operations(kadm.OpRead).ResourcePatternType(kadm.ACLPatternLiteral)); err != nil || res[0].Err != nil {
		t.Fatalf("create group ACL: %v %v", err, res)
	}
	if got := runKcat(t, "", group...); got != "one@0\ntwo@1\n" {
		t.Fatalf("group consume with READ on the group: got %q", got)
	}
}
