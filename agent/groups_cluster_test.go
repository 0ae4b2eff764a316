package agent_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tests/tlogtest"
)

// groupWorker is one consumer of a group, processing at least once:
// records are processed, then their offsets committed, and rebalances wait
// for that (BlockRebalanceOnPoll).
type groupWorker struct {
	id     int
	d      *tlogtest.FaultyDialer
	cl     *kgo.Client
	cancel context.CancelFunc
	done   chan struct{}
}

// groupChaos collects what workers processed and what the checks found.
type groupChaos struct {
	consumerProtocol bool // KIP-848 (ServerSideBalancer) instead of classic

	mu        sync.Mutex
	processed map[string]int
	errs      []string
	// owners: partition → workers that hold it by their own callbacks
	// (assigned, not yet revoked or lost). A crashed worker is dropped
	// from it: its process is gone.
	owners map[int32]map[int]bool
	events []string // callbacks, for a failure's story
}

func (g *groupChaos) eventLocked(format string, args ...any) {
	g.events = append(g.events, time.Now().Format("15:04:05.000 ")+fmt.Sprintf(format, args...))
}

func (g *groupChaos) assigned(id int, ps map[string][]int32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.eventLocked("worker %d assigned %v", id, ps["work"])
	for _, p := range ps["work"] {
		for other := range g.owners[p] {
			if other != id {
				g.errs = append(g.errs, fmt.Sprintf("%s: partition %d assigned to worker %d while worker %d still holds it", time.Now().Format("15:04:05.000"), p, id, other))
			}
		}
		if g.owners[p] == nil {
			g.owners[p] = map[int]bool{}
		}
		g.owners[p][id] = true
	}
}

func (g *groupChaos) released(id int, how string, ps map[string][]int32) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.eventLocked("worker %d %s %v", id, how, ps["work"])
	for _, p := range ps["work"] {
		delete(g.owners[p], id)
	}
}

func (g *groupChaos) gone(id int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.eventLocked("worker %d crashed", id)
	for _, ws := range g.owners {
		delete(ws, id)
	}
}

func (g *groupChaos) fail(format string, args ...any) {
	g.mu.Lock()
	g.errs = append(g.errs, fmt.Sprintf(format, args...))
	g.mu.Unlock()
}

func startWorker(t *testing.T, c *tlogtest.Cluster, g *groupChaos, id int) *groupWorker {
	w := &groupWorker{id: id, d: tlogtest.NewFaultyDialer(), done: make(chan struct{})}
	opts := []kgo.Opt{kgo.SeedBrokers(c.Seeds()...), kgo.Dialer(w.d.Dial), kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.ConsumerGroup("workers"), kgo.ConsumeTopics("work"), kgo.DisableAutoCommit(), kgo.BlockRebalanceOnPoll(),
		kgo.SessionTimeout(6 * time.Second), kgo.HeartbeatInterval(200 * time.Millisecond), kgo.RebalanceTimeout(10 * time.Second),
		kgo.FetchMaxWait(100 * time.Millisecond), kgo.RetryTimeout(30 * time.Second),
		kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { g.assigned(id, ps) }),
		kgo.OnPartitionsRevoked(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { g.released(id, "revoked", ps) }),
		kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, ps map[string][]int32) { g.released(id, "lost", ps) }),
	}
	if g.consumerProtocol {
		opts = append(opts, kgo.ServerSideBalancer())
	}
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatal(err)
	}
	w.cl = cl
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			fs := cl.PollRecords(ctx, 500)
			fs.EachRecord(func(r *kgo.Record) {
				g.mu.Lock()
				g.processed[string(r.Value)]++
				g.mu.Unlock()
			})
			if len(fs.Records()) > 0 {
				cctx, ccancel := context.WithTimeout(ctx, 10*time.Second)
				cl.CommitRecords(cctx, fs.Records()...)
				ccancel()
			}
			cl.AllowRebalance()
		}
	}()
	return w
}

// crash makes the worker vanish the way a killed process does: its
// connections drop and it never says goodbye.
func (w *groupWorker) crash(g *groupChaos) {
	g.gone(w.id)
	w.d.Cut()
	w.cancel()
	<-w.done
	go w.cl.Close() // its LeaveGroup cannot get through
}

func (w *groupWorker) stop() {
	w.cancel()
	<-w.done
	w.cl.Close()
}

// Three consumers of one group over 12 partitions, processing at least
// once, while one consumer crashes and the coordinator's agent is killed,
// and both come back; with the classic protocol and with the consumer
// protocol (KIP-848). Checked all along: committed offsets never move
// backwards; whenever the group is Stable no partition is assigned to two
// members; and no worker is handed a partition (OnPartitionsAssigned)
// while another live worker still holds it. (The session timeout, 6s, is
// well above what a coordinator move takes, so no live worker is expired
// as a zombie on the way.) At the end every produced record was processed.
func TestClusterGroupChaos(t *testing.T) {
	t.Run("classic", func(t *testing.T) { groupChaosRun(t, false) })
	t.Run("consumer", func(t *testing.T) { groupChaosRun(t, true) })
}

func groupChaosRun(t *testing.T, consumerProtocol bool) {
	c := tlogtest.CreateCluster(t, 3, func(cfg *agent.Config) {
		cfg.GroupInitialRebalanceDelay = 200 * time.Millisecond
		cfg.GroupMinSessionTimeout = time.Second
		cfg.GroupConsumerSessionTimeout = 6 * time.Second
		cfg.GroupConsumerHeartbeatInterval = 200 * time.Millisecond
	})
	c.CreateTopic("work", 12, 3, nil)
	g := &groupChaos{processed: map[string]int{}, owners: map[int32]map[int]bool{}, consumerProtocol: consumerProtocol}
	prod := c.Client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(time.Minute),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
	acked := &tlogtest.Acked{}

	workers := []*groupWorker{}
	for i := 0; i < 3; i++ {
		workers = append(workers, startWorker(t, c, g, i))
	}
	defer func() {
		for _, w := range workers {
			w.stop()
		}
	}()

	// Monitors: committed offsets and Stable assignments.
	mctx, stopMonitors := context.WithCancel(context.Background())
	var monitors sync.WaitGroup
	var stableChecks atomic.Int64
	monitors.Add(1)
	go func() {
		defer monitors.Done()
		adm := kadm.NewClient(c.Client(kgo.RetryTimeout(time.Second)))
		high := map[int32]int64{}
		for mctx.Err() == nil {
			time.Sleep(50 * time.Millisecond)
			rctx, cancel := context.WithTimeout(mctx, 2*time.Second)
			offs, err := adm.FetchOffsets(rctx, "workers")
			described, derr := adm.DescribeGroups(rctx, "workers")
			cancel()
			if err == nil {
				offs.Each(func(o kadm.OffsetResponse) {
					if o.Err != nil || o.Topic != "work" {
						return
					}
					if o.At < high[o.Partition] {
						g.fail("partition %d: committed offset went from %d to %d", o.Partition, high[o.Partition], o.At)
					}
					high[o.Partition] = max(high[o.Partition], o.At)
				})
			}
			if derr != nil {
				continue
			}
			dg := described["workers"]
			if dg.Err != nil || dg.State != "Stable" {
				continue
			}
			stableChecks.Add(1)
			owner := map[int32]string{}
			for _, m := range dg.Members {
				ca, ok := m.Assigned.AsConsumer()
				if !ok {
					continue
				}
				for _, tp := range ca.Topics {
					for _, p := range tp.Partitions {
						if other, dup := owner[p]; dup {
							g.fail("partition %d assigned to %s and %s in a Stable group", p, other, m.MemberID)
						}
						owner[p] = m.MemberID
					}
				}
			}
		}
	}()

	// Produce a steady stream while the faults happen.
	var wg sync.WaitGroup
	var perr atomic.Value
	produced := make(chan struct{})
	go func() {
		defer close(produced)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for n := 0; n < 30000; {
			<-tick.C
			for range 20 {
				wg.Add(1)
				prod.Produce(context.Background(), &kgo.Record{Topic: "work", Key: fmt.Appendf(nil, "k%d", n%97), Value: fmt.Appendf(nil, "w-%d", n)}, func(r *kgo.Record, err error) {
					defer wg.Done()
					if err != nil {
						perr.CompareAndSwap(nil, err)
						return
					}
					acked.Add(r)
				})
				n++
			}
		}
		wg.Wait()
	}()

	time.Sleep(3 * time.Second)
	t.Log("crashing consumer 1")
	workers[1].crash(g)
	time.Sleep(3 * time.Second)
	fc := kadm.NewClient(c.Client()).FindGroupCoordinators(context.Background(), "workers")
	coord := int32(-1)
	fc.Each(func(r kadm.FindCoordinatorResponse) { coord = r.NodeID })
	if coord < 0 {
		t.Fatal("no coordinator for the group")
	}
	t.Logf("killing the coordinator, agent %d", coord)
	g.mu.Lock()
	g.eventLocked("killing agent %d", coord)
	g.mu.Unlock()
	c.Kill(coord)
	time.Sleep(4 * time.Second)
	t.Log("restarting them")
	c.Restart(coord)
	workers[1] = startWorker(t, c, g, 3)

	select {
	case <-produced:
	case <-time.After(2 * time.Minute):
		t.Fatal("producer did not finish")
	}
	if err := perr.Load(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	tlogtest.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		g.mu.Lock()
		defer g.mu.Unlock()
		missing := 0
		for _, ps := range acked.M["work"] {
			for _, v := range ps {
				if g.processed[v] == 0 {
					missing++
				}
			}
		}
		if missing > 0 {
			return fmt.Errorf("%d acknowledged records not processed yet", missing)
		}
		return nil
	})
	stopMonitors()
	monitors.Wait()
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.errs) > 0 {
		for _, e := range g.events {
			t.Log(e)
		}
		t.Fatalf("%d violations, first: %s", len(g.errs), g.errs[0])
	}
	again := 0
	for _, n := range g.processed {
		if n > 1 {
			again++
		}
	}
	if stableChecks.Load() == 0 {
		t.Fatal("the group was never seen Stable; the ownership check proved nothing")
	}
	t.Logf("%d records acknowledged, all processed; %d processed more than once (at least once); %d Stable checks", acked.N, again, stableChecks.Load())
}
