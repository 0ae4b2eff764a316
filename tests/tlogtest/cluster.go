package tlogtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/agent/peer/peertest"
	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/tiertest"
)

// Cluster is N agents in this process on one in-memory bucket, each with
// its own data directory, fixed loopback addresses (so restarts keep
// them) and a fault-injecting peer transport.
type Cluster struct {
	t      testing.TB
	Bucket tier.Bucket
	mod    []func(*agent.Config)

	mu     sync.Mutex
	Agents []*Member
}

// Member is one agent slot of a Cluster; A is nil while it is down.
type Member struct {
	ID     int32
	Dir    string
	Kafka  string
	Peer   string
	Zone   string
	Faults *peertest.Faults
	// Bucket is this agent's own view of the shared bucket, for
	// injecting faults into one agent's bucket calls only.
	Bucket   *tiertest.Faulty
	A        *agent.Agent
	Restarts int
}

// ClusterConfig is the test timing every cluster agent starts with:
// failures are noticed in about a second.
func ClusterConfig(cfg *agent.Config) {
	cfg.LeaseTTL = time.Second
	cfg.HeartbeatInterval = 100 * time.Millisecond
	cfg.SessionTimeout = time.Second
	cfg.DisconnectGrace = 300 * time.Millisecond
	cfg.ReplicaLagMax = 2 * time.Second
	cfg.BalanceInterval = time.Second
}

// CreateCluster starts n agents (ids 0..n-1) and waits until every one is
// registered. mod adjusts every agent's config after ClusterConfig.
func CreateCluster(t testing.TB, n int, mod ...func(*agent.Config)) *Cluster {
	t.Helper()
	c := &Cluster{t: t, Bucket: tier.NewMemBucket(), mod: mod}
	for range n {
		c.newMember()
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.start(c.Agents[i])
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("start agent %d: %v", i, err)
		}
	}
	return c
}

func (c *Cluster) newMember() *Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := &Member{
		ID:     int32(len(c.Agents)),
		Dir:    c.t.TempDir(),
		Kafka:  FreeAddr(c.t),
		Peer:   FreeAddr(c.t),
		Faults: peertest.NewFaults(nil),
		Bucket: tiertest.NewFaulty(c.Bucket),
	}
	c.Agents = append(c.Agents, m)
	// After TempDir's cleanup is registered, so it runs first: the agent
	// stops before its directory goes.
	c.t.Cleanup(func() {
		c.mu.Lock()
		a := m.A
		c.mu.Unlock()
		if a != nil {
			a.Abandon()
		}
	})
	return m
}

func (c *Cluster) start(m *Member) error {
	cfg := agent.Config{
		ID:         m.ID,
		DataDir:    m.Dir,
		Listen:     m.Kafka,
		PeerListen: m.Peer,
		Zone:       m.Zone,
		Bucket:     nopClose{m.Bucket},
		Transport:  m.Faults,
		Logger:     testLogger(m.ID),
	}
	ClusterConfig(&cfg)
	for _, f := range c.mod {
		f(&cfg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a, err := agent.Start(ctx, cfg)
	if err != nil {
		return err
	}
	c.mu.Lock()
	m.A = a
	c.mu.Unlock()
	return nil
}

// nopClose keeps an agent from closing the bucket its peers share.
type nopClose struct{ tier.Bucket }

func (nopClose) Close() error { return nil }

// testLogger logs warnings (everything with TLOG_TEST_LOG=debug).
func testLogger(id int32) *slog.Logger {
	lvl := slog.LevelWarn
	if os.Getenv("TLOG_TEST_LOG") == "debug" {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})).With("test_agent", id)
}

// Add starts one more agent (optionally in a zone) and returns it.
func (c *Cluster) Add(zone string) *Member {
	c.t.Helper()
	m := c.newMember()
	m.Zone = zone
	if err := c.start(m); err != nil {
		c.t.Fatalf("start agent %d: %v", m.ID, err)
	}
	return m
}

// Kill stops agent id abruptly (no lease hand-over).
func (c *Cluster) Kill(id int32) {
	c.t.Helper()
	m := c.Agents[id]
	if m.A == nil {
		c.t.Fatalf("agent %d is not running", id)
	}
	m.A.Abandon()
	c.mu.Lock()
	m.A = nil
	c.mu.Unlock()
}

// Stop stops agent id gracefully.
func (c *Cluster) Stop(id int32) {
	c.t.Helper()
	m := c.Agents[id]
	m.A.Close()
	c.mu.Lock()
	m.A = nil
	c.mu.Unlock()
}

// Restart starts agent id again on its data directory and addresses.
func (c *Cluster) Restart(id int32) {
	c.t.Helper()
	m := c.Agents[id]
	if m.A != nil {
		c.Kill(id)
	}
	m.Restarts++
	if err := c.start(m); err != nil {
		c.t.Fatalf("restart agent %d: %v", id, err)
	}
}

// Cut isolates agent id from its peers (not from clients or the bucket);
// Heal reconnects it.
func (c *Cluster) Cut(id int32) { c.Agents[id].Faults.Cut() }

// Blackhole cuts agent id off from its peers as a packet-dropping
// firewall does: nothing fails fast, everything waits (Heal ends it).
func (c *Cluster) Blackhole(id int32) { c.Agents[id].Faults.Blackhole() }
func (c *Cluster) Heal(id int32)      { c.Agents[id].Faults.Heal() }

// Running lists the agents that are up.
func (c *Cluster) Running() []*Member {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Member
	for _, m := range c.Agents {
		if m.A != nil {
			out = append(out, m)
		}
	}
	return out
}

// Seeds are the Kafka addresses of every agent slot (down ones too: a
// client skips them).
func (c *Cluster) Seeds() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var s []string
	for _, m := range c.Agents {
		s = append(s, m.Kafka)
	}
	return s
}

// Client is a franz-go client on every agent, closed when the test ends.
func (c *Cluster) Client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.Seeds()...), kgo.MetadataMinAge(100 * time.Millisecond)}, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// CreateTopic creates a topic through the cluster and waits until every
// partition has a leader that serves it.
func (c *Cluster) CreateTopic(name string, partitions int32, rf int16, configs map[string]*string) {
	c.t.Helper()
	adm := kadm.NewClient(c.Client())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	resp, err := adm.CreateTopic(ctx, partitions, rf, configs, name)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		c.t.Fatalf("create topic %s: %v", name, err)
	}
	for p := range partitions {
		c.WaitOnLeader(name, p, 10*time.Second)
	}
}

// PartitionMeta is the partition's metadata as a running agent sees it
// (the controller's view if it runs).
func (c *Cluster) PartitionMeta(topic string, p int32) (metadata.Partition, bool) {
	var best metadata.Partition
	found := false
	for _, m := range c.Running() {
		mp, ok := m.A.PartitionMeta(topic, p)
		if ok && (!found || mp.LeaderEpoch > best.LeaderEpoch || m.A.IsController()) {
			best, found = mp, true
			if m.A.IsController() {
				break
			}
		}
	}
	return best, found
}

// WaitOnLeader waits until the partition's leader is running and leads it,
// and returns the leader's id.
func (c *Cluster) WaitOnLeader(topic string, p int32, timeout time.Duration) int32 {
	c.t.Helper()
	var leader int32 = -1
	CheckFor(c.t, timeout, 20*time.Millisecond, func() error {
		mp, ok := c.PartitionMeta(topic, p)
		if !ok {
			return fmt.Errorf("%s/%d not in metadata", topic, p)
		}
		if mp.Leader < 0 || int(mp.Leader) >= len(c.Agents) {
			return fmt.Errorf("%s/%d has no leader", topic, p)
		}
		m := c.Agents[mp.Leader]
		if m.A == nil {
			return fmt.Errorf("%s/%d: leader %d is down", topic, p, mp.Leader)
		}
		if !m.A.Leads(topic, p) {
			return fmt.Errorf("%s/%d: agent %d does not lead it yet", topic, p, mp.Leader)
		}
		leader = mp.Leader
		return nil
	})
	return leader
}

// Controller waits for a running controller and returns it.
func (c *Cluster) Controller(timeout time.Duration) *Member {
	c.t.Helper()
	var ctl *Member
	CheckFor(c.t, timeout, 20*time.Millisecond, func() error {
		for _, m := range c.Running() {
			if m.A.IsController() {
				ctl = m
				return nil
			}
		}
		return fmt.Errorf("no running agent holds the controller lease")
	})
	return ctl
}

// WaitISR waits until the partition's ISR is exactly want (any order).
func (c *Cluster) WaitISR(topic string, p int32, timeout time.Duration, want ...int32) {
	c.t.Helper()
	CheckFor(c.t, timeout, 20*time.Millisecond, func() error {
		mp, _ := c.PartitionMeta(topic, p)
		got := slices.Clone(mp.ISR)
		slices.Sort(got)
		w := slices.Clone(want)
		slices.Sort(w)
		if !slices.Equal(got, w) {
			return fmt.Errorf("%s/%d ISR %v, want %v", topic, p, mp.ISR, want)
		}
		return nil
	})
}
