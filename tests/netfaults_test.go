package tests

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/tests/history"
	"github.com/tlog-io/tlog/tests/tlogcontainer"
)

// Network faults on a containerized cluster (tests/tlogcontainer): MinIO
// and three agents on their own Docker network, an RF=3 topic written by
// idempotent producers and read by a consumer group, while links are cut
// for real (iptables in the agents' namespaces). Every send, poll and
// commit goes into a history (tests/history) checked after a final drain:
// nothing acknowledged may be lost, duplicated or read at two offsets, no
// consumer may go backwards or skip, no group commit may move back.

// netfaultCluster starts the cluster, or skips with the reason it cannot.
func netfaultCluster(t *testing.T, ctx context.Context) *tlogcontainer.Cluster {
	t.Helper()
	if os.Getenv("TLOG_NETFAULTS") == "" {
		t.Skip("network-fault scenarios: set TLOG_NETFAULTS=1 (task test:chaos and .ci/run do)")
	}
	if err := tlogcontainer.FaultsSupported(); err != nil {
		t.Skip(err)
	}
	t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	testcontainers.SkipIfProviderIsNotHealthy(t)
	minio := os.Getenv("TLOG_MINIO_STATIC")
	if minio == "" {
		minio = "minio"
	}
	// The agents' logs go to a file, named in the test's log.
	logs, err := os.CreateTemp("", "tlog-netfault-*.log")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logs.Close() })
	t.Logf("agent logs: %s", logs.Name())
	c, err := tlogcontainer.Run(ctx, tlogcontainer.WithAgents(3), tlogcontainer.WithMinIOBinary(lookMinIO(t, minio)),
		tlogcontainer.WithLogs(logs),
		tlogcontainer.WithArgs(append([]string{"--flush-interval", "200ms", "--lease-ttl", "3s", "--wal-sync", walSync(),
			"--orphan-grace", orphanGrace.String(), "--retention-check-interval", gcInterval.String()},
			// More agent flags, to measure other settings (e.g.
			// TLOG_NETFAULT_ARGS="--session-timeout 2s").
			strings.Fields(os.Getenv("TLOG_NETFAULT_ARGS"))...)...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Terminate(context.Background()) })
	return c
}

// workload is producers and a consumer group on one topic, recording
// into a history, and when each partition acknowledged.
type workload struct {
	t      *testing.T
	c      *tlogcontainer.Cluster
	topic  string
	h      *history.History
	stop   chan struct{}
	wg     sync.WaitGroup
	mu     sync.Mutex
	start  time.Time
	ackAts map[int32][]time.Time
}

func startWorkload(t *testing.T, ctx context.Context, c *tlogcontainer.Cluster, topic string, partitions int32) *workload {
	t.Helper()
	adm := kadm.NewClient(tlogtestClient(t, c.Brokers()))
	if _, err := adm.CreateTopic(ctx, partitions, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	w := &workload{t: t, c: c, topic: topic, h: history.New(), stop: make(chan struct{}), start: time.Now(), ackAts: map[int32][]time.Time{}}
	for p := range 2 {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.produce(ctx, fmt.Sprintf("p%d", p))
		}()
	}
	for i := range 2 {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			w.consume(ctx, fmt.Sprintf("c%d", i))
		}()
	}
	return w
}

// clientMetadataMinAge lets the clients look for a partition's new leader
// soon after a NOT_LEADER answer, as the Java client does (it refreshes
// after retry.backoff.ms, 100 ms); franz-go waits 5 s between metadata
// requests by default, which would be most of what the scenarios measure.
const clientMetadataMinAge = 250 * time.Millisecond

// produce sends unique values until stopped, a few in flight at a time.
func (w *workload) produce(ctx context.Context, name string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.c.Brokers()...), kgo.DefaultProduceTopic(w.topic),
		kgo.RecordDeliveryTimeout(20*time.Second), kgo.ProducerLinger(5*time.Millisecond), kgo.MaxBufferedRecords(64),
		kgo.MetadataMinAge(clientMetadataMinAge))
	if err != nil {
		w.t.Error(err)
		return
	}
	defer cl.Close()
	var inflight sync.WaitGroup
	for n := 0; ; n++ {
		select {
		case <-w.stop:
			inflight.Wait()
			return
		case <-time.After(2 * time.Millisecond):
		}
		v := fmt.Sprintf("%s-%d", name, n)
		inflight.Add(1)
		cl.Produce(ctx, &kgo.Record{Key: []byte(v), Value: []byte(v)}, func(r *kgo.Record, err error) {
			defer inflight.Done()
			tp := history.TP{Topic: w.topic, Partition: r.Partition}
			if err != nil {
				w.h.Send(v, tp, -1, history.Failed)
				return
			}
			w.h.Send(v, tp, r.Offset, history.Acked)
			w.acked(r.Partition)
		})
	}
}

func (w *workload) acked(p int32) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ackAts[p] = append(w.ackAts[p], time.Now())
}

// consume reads as a member of group "g", committing what it read after
// every poll.
func (w *workload) consume(ctx context.Context, name string) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.c.Brokers()...), kgo.ConsumerGroup("g"), kgo.ConsumeTopics(w.topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit(), kgo.FetchMaxWait(200*time.Millisecond), kgo.MetadataMinAge(clientMetadataMinAge),
		kgo.OnPartitionsAssigned(func(context.Context, *kgo.Client, map[string][]int32) { w.h.Rebalance(name) }),
		kgo.OnPartitionsRevoked(func(context.Context, *kgo.Client, map[string][]int32) { w.h.Rebalance(name) }),
		kgo.OnPartitionsLost(func(context.Context, *kgo.Client, map[string][]int32) { w.h.Rebalance(name) }))
	if err != nil {
		w.t.Error(err)
		return
	}
	defer cl.Close()
	for {
		select {
		case <-w.stop:
			return
		default:
		}
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		cancel()
		var recs []*kgo.Record
		fs.EachRecord(func(r *kgo.Record) {
			w.h.Poll(name, history.TP{Topic: r.Topic, Partition: r.Partition}, r.Offset, string(r.Value))
			recs = append(recs, r)
		})
		if len(recs) == 0 {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := cl.CommitRecords(cctx, recs...)
		cancel()
		if err == nil {
			for p, off := range lastOffsets(recs) {
				w.h.Commit("g", history.TP{Topic: w.topic, Partition: p}, off+1)
			}
		}
	}
}

func lastOffsets(recs []*kgo.Record) map[int32]int64 {
	out := map[int32]int64{}
	for _, r := range recs {
		if off, ok := out[r.Partition]; !ok || r.Offset > off {
			out[r.Partition] = r.Offset
		}
	}
	return out
}

// finish stops the clients, drains every partition from the start with a
// fresh reader, and checks the history.
func (w *workload) finish(ctx context.Context) history.Report {
	w.t.Helper()
	close(w.stop)
	w.wg.Wait()
	cl := tlogtestClient(w.t, w.c.Brokers(), kgo.ConsumeTopics(w.topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(200*time.Millisecond))
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, w.topic)
	if err != nil {
		w.t.Fatal(err)
	}
	next := map[int32]int64{}
	done := func() bool {
		for _, e := range ends[w.topic] {
			if next[e.Partition] < e.Offset {
				return false
			}
		}
		return true
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for !done() {
		fs := cl.PollFetches(dctx)
		if dctx.Err() != nil {
			w.t.Fatalf("final drain: read up to %v of %v", next, ends)
		}
		fs.EachRecord(func(r *kgo.Record) {
			w.h.Poll("drain", history.TP{Topic: r.Topic, Partition: r.Partition}, r.Offset, string(r.Value))
			next[r.Partition] = r.Offset + 1
		})
	}
	return w.h.Check()
}

// availability is the longest any partition went without an
// acknowledgement, and how long after healed the last partition to
// recover acknowledged again (0 if none stopped).
func (w *workload) availability(healed time.Time) (longest, toHeal time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, ats := range w.ackAts {
		prev := w.start
		for _, at := range ats {
			longest = max(longest, at.Sub(prev))
			if prev.Before(healed) && !at.Before(healed) && healed.Sub(prev) > time.Second {
				toHeal = max(toHeal, at.Sub(healed)) // stalled over the heal
			}
			prev = at
		}
	}
	return longest, toHeal
}

func tlogtestClient(t *testing.T, brokers []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(brokers...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// leaderOf is the agent leading topic's partition p.
func leaderOf(t *testing.T, ctx context.Context, c *tlogcontainer.Cluster, topic string, p int32) *tlogcontainer.Agent {
	t.Helper()
	md, err := kadm.NewClient(tlogtestClient(t, c.Brokers())).Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	pd, ok := md.Topics[topic].Partitions[p]
	if !ok {
		t.Fatalf("no %s/%d in metadata", topic, p)
	}
	for _, a := range c.Agents {
		if a.ID == pd.Leader {
			return a
		}
	}
	t.Fatalf("%s/%d led by %d, not one of the agents", topic, p, pd.Leader)
	return nil
}

// leaderNotController is an agent leading one of topic's partitions that
// is not the controller (a controller cut off is a scenario of its own).
func leaderNotController(t *testing.T, ctx context.Context, c *tlogcontainer.Cluster, topic string, partitions int32) *tlogcontainer.Agent {
	t.Helper()
	ctrl := controllerOf(t, ctx, c)
	for p := range partitions {
		if a := leaderOf(t, ctx, c, topic, p); a != ctrl {
			return a
		}
	}
	t.Fatalf("the controller %s leads every partition of %s", ctrl.Name, topic)
	return nil
}

// scenario runs the workload for 10 s, injects the fault (which returns
// once it is healed), runs 15 s more, drains and checks, and logs the
// figures the reliability notes quote.
func scenario(t *testing.T, partitions int32, fault func(ctx context.Context, c *tlogcontainer.Cluster) (what string)) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	c := netfaultCluster(t, ctx)
	w := startWorkload(t, ctx, c, "queue", partitions)
	time.Sleep(10 * time.Second)
	t.Logf("before the fault: controller %s, partition 0 led by %s", controllerOf(t, ctx, c).Name, leaderOf(t, ctx, c, "queue", 0).Name)
	cut := time.Now()
	what := fault(ctx, c)
	healed := time.Now()
	time.Sleep(15 * time.Second)
	r := w.finish(ctx)
	longest, toHeal := w.availability(healed)
	// What the metadata references is in MinIO, each range once.
	ranges, err := c.MinIO.CheckSegments(ctx)
	if err != nil {
		t.Errorf("bucket after the scenario (%d ranges): %v", ranges, err)
	}
	orphans := checkOrphans(t, ctx, c, healed)
	t.Logf("FIGURES %s: %s for %v; %s; longest a partition went unacknowledged: %v; acknowledging again %v after the heal; %d bucket ranges checked; %d orphaned objects left past the grace",
		t.Name(), what, healed.Sub(cut).Round(time.Second), r.Summary(), longest.Round(time.Millisecond), toHeal.Round(time.Millisecond), ranges, orphans)
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
}

// The agents' garbage collection, short so that the scenarios can see it
// finish: an unreferenced object goes once older than orphanGrace, at the
// next round (every gcInterval).
const (
	orphanGrace = 30 * time.Second
	gcInterval  = 2 * time.Second
)

// checkOrphans waits until everything uploaded up to the heal is past the
// grace and a few collection rounds have run, then checks that no object
// is left unreferenced, nor any upload incomplete, past the grace. It
// returns how many were (0 unless the test failed).
func checkOrphans(t *testing.T, ctx context.Context, c *tlogcontainer.Cluster, healed time.Time) int {
	t.Helper()
	past := orphanGrace + 3*gcInterval
	if wait := time.Until(healed.Add(past)); wait > 0 {
		time.Sleep(wait)
	}
	// An old object unreferenced a moment ago (merged, or past retention)
	// goes at the next round: look a few times before calling it left.
	var orphans []string
	for range 5 {
		var err error
		if orphans, err = c.MinIO.Orphans(ctx, past); err != nil {
			t.Errorf("orphans: %v", err)
			return 0
		}
		if len(orphans) == 0 {
			return 0
		}
		time.Sleep(gcInterval)
	}
	t.Errorf("%d objects or uploads left unreferenced past the grace (%v) and %d collection rounds: %s",
		len(orphans), orphanGrace, past/gcInterval, strings.Join(orphans, "; "))
	return len(orphans)
}

// others is every agent but a.
func others(c *tlogcontainer.Cluster, a *tlogcontainer.Agent) []*tlogcontainer.Agent {
	var out []*tlogcontainer.Agent
	for _, o := range c.Agents {
		if o != a {
			out = append(out, o)
		}
	}
	return out
}

// controllerOf is the agent the cluster names controller.
func controllerOf(t *testing.T, ctx context.Context, c *tlogcontainer.Cluster) *tlogcontainer.Agent {
	t.Helper()
	md, err := kadm.NewClient(tlogtestClient(t, c.Brokers())).BrokerMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range c.Agents {
		if a.ID == md.Controller {
			return a
		}
	}
	t.Fatalf("controller %d is not one of the agents", md.Controller)
	return nil
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// The zombie leader: a partition's leader (not the controller) is cut off
// from the other two agents (not from MinIO, nor from the clients) for
// 20 s. It must stop
// acknowledging before another is elected, and nothing it acknowledged
// may be lost.
func TestNetfaultLeaderPartitioned(t *testing.T) {
	scenario(t, 3, func(ctx context.Context, c *tlogcontainer.Cluster) string {
		leader := leaderNotController(t, ctx, c, "queue", 3)
		must(t, leader.Isolate(ctx, others(c, leader)...))
		time.Sleep(20 * time.Second)
		must(t, leader.Heal(ctx))
		return "leader " + leader.Name + " cut off from its peers"
	})
}

// The controller cut off from the other agents (not from MinIO) for 20 s.
func TestNetfaultControllerPartitioned(t *testing.T) {
	scenario(t, 3, func(ctx context.Context, c *tlogcontainer.Cluster) string {
		ctrl := controllerOf(t, ctx, c)
		must(t, ctrl.Isolate(ctx, others(c, ctrl)...))
		time.Sleep(20 * time.Second)
		must(t, ctrl.Heal(ctx))
		return "controller " + ctrl.Name + " cut off from its peers"
	})
}

// MinIO unreachable from every agent for 30 s: the WALs hold the tail.
func TestNetfaultBucketFromAll(t *testing.T) {
	scenario(t, 3, func(ctx context.Context, c *tlogcontainer.Cluster) string {
		for _, a := range c.Agents {
			must(t, a.CutBucket(ctx))
		}
		time.Sleep(30 * time.Second)
		for _, a := range c.Agents {
			must(t, a.Heal(ctx))
		}
		return "MinIO cut off from every agent"
	})
}

// MinIO unreachable from the controller alone for 30 s.
func TestNetfaultBucketFromOne(t *testing.T) {
	scenario(t, 3, func(ctx context.Context, c *tlogcontainer.Cluster) string {
		ctrl := controllerOf(t, ctx, c)
		must(t, ctrl.CutBucket(ctx))
		time.Sleep(30 * time.Second)
		must(t, ctrl.Heal(ctx))
		return "MinIO cut off from the controller " + ctrl.Name
	})
}

// One-way loss: partition 0's leader's packets to one follower are
// dropped for 20 s, the follower's to it arrive.
func TestNetfaultOneWay(t *testing.T) {
	scenario(t, 3, func(ctx context.Context, c *tlogcontainer.Cluster) string {
		leader := leaderOf(t, ctx, c, "queue", 0)
		follower := others(c, leader)[0]
		must(t, leader.DropTo(ctx, follower))
		time.Sleep(20 * time.Second)
		must(t, leader.Heal(ctx))
		return "leader " + leader.Name + " → " + follower.Name + " dropped"
	})
}

// A slow, lossy link between every pair of agents for 30 s while the
// producers run: each agent delays by 100 ms and drops 2.5% of what it
// sends to and receives from its peers, so each packet between two agents
// is 200 ms late and lost about 5% of the time.
func TestNetfaultSlowPeerLinks(t *testing.T) {
	scenario(t, 3, func(ctx context.Context, c *tlogcontainer.Cluster) string {
		for _, a := range c.Agents {
			must(t, a.Slow(ctx, 100*time.Millisecond, 0.025, others(c, a)...))
		}
		time.Sleep(30 * time.Second)
		for _, a := range c.Agents {
			must(t, a.Heal(ctx))
		}
		return "200 ms and 5% loss between the agents"
	})
}

// A rolling restart: each agent stopped (SIGTERM) and started in turn.
func TestNetfaultRollingRestart(t *testing.T) {
	scenario(t, 3, func(ctx context.Context, c *tlogcontainer.Cluster) string {
		for _, a := range c.Agents {
			must(t, a.Stop(ctx))
			must(t, a.Start(ctx))
			time.Sleep(5 * time.Second)
		}
		return "a rolling restart"
	})
}

// Every agent killed at once, then started (acknowledged writes are on
// every replica's disk: the WAL syncs before acknowledging).
func TestNetfaultAllKilled(t *testing.T) {
	t.Setenv("TLOG_NETFAULT_WAL_SYNC", "always")
	scenario(t, 3, func(ctx context.Context, c *tlogcontainer.Cluster) string {
		for _, a := range c.Agents {
			must(t, a.Kill(ctx))
		}
		for _, a := range c.Agents {
			must(t, a.Start(ctx))
		}
		return "every agent SIGKILLed at once (--wal-sync=always)"
	})
}

// lookMinIO is the static MinIO binary to build MinIO's image from, or
// skips the test.
func lookMinIO(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("no %s binary (.ci/run installs a static one)", name)
	}
	out, err := exec.Command("go", "version", "-m", path).Output()
	if err != nil || !strings.Contains(string(out), "CGO_ENABLED=0") {
		t.Skipf("%s is not a static build (CGO_ENABLED=0 go install github.com/minio/minio@…)", path)
	}
	return path
}

// walSync is the agents' --wal-sync: always for the scenario that kills
// every agent at once, else never (a process crash keeps the page cache).
func walSync() string {
	if v := os.Getenv("TLOG_NETFAULT_WAL_SYNC"); v != "" {
		return v
	}
	return "never"
}

// One agent's disk lost: its container removed with its data and a new
// one started as the same agent, which recovers from the bucket and its
// peers.
func TestNetfaultDiskWiped(t *testing.T) {
	scenario(t, 3, func(ctx context.Context, c *tlogcontainer.Cluster) string {
		a := leaderOf(t, ctx, c, "queue", 0)
		must(t, a.Replace(ctx))
		return "the disk of " + a.Name + " (partition 0's leader) wiped, the agent replaced"
	})
}
