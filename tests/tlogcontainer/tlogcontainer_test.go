package tlogcontainer_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/testcontainers/testcontainers-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/tests/tlogcontainer"
)

func TestMain(m *testing.M) {
	// No registry here: Ryuk's image cannot be pulled (containers are
	// terminated by the tests themselves).
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	os.Exit(m.Run())
}

// docker skips the test without a reachable Docker engine.
func docker(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("containers: not in -short")
	}
	testcontainers.SkipIfProviderIsNotHealthy(t)
}

// staticMinIO skips the test unless a static MinIO binary is at hand to
// build MinIO's image from.
func staticMinIO(t *testing.T) tlogcontainer.Option {
	t.Helper()
	path := os.Getenv("TLOG_MINIO_STATIC")
	if path == "" {
		var err error
		if path, err = exec.LookPath("minio"); err != nil {
			t.Skip("no minio binary on PATH (.ci/run installs one)")
		}
	}
	out, err := exec.Command("go", "version", "-m", path).Output()
	if err != nil || !strings.Contains(string(out), "CGO_ENABLED=0") {
		t.Skipf("%s is not a static build (CGO_ENABLED=0 go install github.com/minio/minio@…; TLOG_MINIO_STATIC names one)", path)
	}
	return tlogcontainer.WithMinIOBinary(path)
}

func roundTrip(t *testing.T, ctx context.Context, brokers []string, topic string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var rs []*kgo.Record
	for i := range n {
		rs = append(rs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, "v%d", i)})
	}
	if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		t.Fatalf("produce to %v: %v", brokers, err)
	}
	seen := map[string]bool{}
	for len(seen) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("consumed %d of %d", len(seen), n)
		}
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
}

// One `tlog dev` in a container: a client on the host produces and
// consumes; `tlog cluster status` runs inside it.
func TestRunDev(t *testing.T) {
	docker(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := tlogcontainer.Run(ctx, tlogcontainer.WithLogs(testWriter{t}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Terminate(context.Background())
	roundTrip(t, ctx, c.Brokers(), "demo", 100)
	st, err := c.Status(ctx)
	if err != nil || !strings.Contains(st, "demo") {
		t.Fatalf("cluster status: %v\n%s", err, st)
	}
}

// MinIO and three agents: an RF=3 topic keeps taking writes while one
// agent is killed, and after it is back every record is read; the
// agents' objects are in MinIO.
func TestRunCluster(t *testing.T) {
	docker(t)
	minioImage := staticMinIO(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	c, err := tlogcontainer.Run(ctx, tlogcontainer.WithAgents(3), minioImage, tlogcontainer.WithLogs(testWriter{t}),
		tlogcontainer.WithArgs("--flush-interval", "100ms"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Terminate(context.Background())
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers()...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 3, 3, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ctx, c.Brokers(), "orders", 500)
	slowLink(t, ctx, c)
	if err := c.Agents[0].Kill(ctx); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ctx, c.Brokers()[1:], "orders", 500)
	if err := c.Agents[0].Start(ctx); err != nil {
		t.Fatal(err)
	}
	roundTrip(t, ctx, c.Brokers(), "orders", 500)
	objs, err := c.MinIO.Objects(ctx, "cluster/")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) == 0 {
		t.Fatal("nothing in MinIO under cluster/")
	}
	// What the metadata references is all there, each range once.
	ranges, err := c.MinIO.CheckSegments(ctx)
	if err != nil || ranges == 0 {
		t.Fatalf("segments: %d ranges checked: %v", ranges, err)
	}
	st, err := c.Status(ctx)
	if err != nil {
		t.Fatalf("cluster status: %v\n%s", err, st)
	}
	t.Logf("%d objects in MinIO, %d ranges referenced; status:\n%s", len(objs), ranges, st)

	// The check sees a referenced object gone (the last step: this
	// loses data).
	ms, err := c.MinIO.State(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var victim string
	for _, tp := range ms.Topics {
		for _, p := range tp.Partitions {
			if len(p.Segments) > 0 {
				victim = p.Segments[0].Object
			}
		}
	}
	if err := c.MinIO.Client.RemoveObject(ctx, c.MinIO.Bucket, tlogcontainer.ClusterPrefix+victim, minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.MinIO.CheckSegments(ctx); err == nil || !strings.Contains(err.Error(), "not in the bucket") {
		t.Fatalf("with %s removed, the check says %v", victim, err)
	}
}

// slowLink checks Slow: a request from agent 0 to agent 1 takes at least
// one more round trip's delay (2 × 200 ms: both ways) while the link is
// slow, and nothing more once healed.
func slowLink(t *testing.T, ctx context.Context, c *tlogcontainer.Cluster) {
	if err := tlogcontainer.FaultsSupported(); err != nil {
		t.Logf("slow link not checked: %v", err)
		return
	}
	a0, a1 := c.Agents[0], c.Agents[1]
	status := func() time.Duration {
		t.Helper()
		start := time.Now()
		if out, err := a0.Tlog(ctx, "--brokers", a1.InternalAddr, "cluster", "status"); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		return time.Since(start)
	}
	before := status()
	if err := a0.Slow(ctx, 200*time.Millisecond, 0, a1); err != nil {
		t.Fatal(err)
	}
	slow := status()
	if err := a0.Heal(ctx); err != nil {
		t.Fatal(err)
	}
	after := status()
	t.Logf("cluster status from %s through %s: %v, slowed %v, healed %v", a0.Name, a1.Name, before, slow, after)
	if slow-before < 400*time.Millisecond {
		t.Errorf("with 200 ms each way, the status took %v against %v", slow, before)
	}
	if after > before+300*time.Millisecond {
		t.Errorf("healed, the status took %v against %v before", after, before)
	}
}

// testWriter sends container output to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
