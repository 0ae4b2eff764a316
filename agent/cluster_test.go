package agent_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier/tiertest"
)

// produceN sends n records through cl (acks=all, idempotent by default)
// and records the acknowledgements.
func produceN(t *testing.T, cl *kgo.Client, acked *tlogtest.Acked, topic string, from, n int) {
	t.Helper()
	tlogtest.Produce(t, cl, acked, n, func(i int) *kgo.Record {
		return &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", (from+i)%37), Value: fmt.Appendf(nil, "%s-%d", topic, from+i)}
	})
}

// Three agents, RF=3: every acknowledged record is on every replica, any
// agent serves metadata, and reads come back in order.
func TestClusterReplicatesToEveryReplica(t *testing.T) {
	c := tlogtest.CreateCluster(t, 3)
	c.CreateTopic("rep", 6, 3, nil)
	cl := c.Client(kgo.RequiredAcks(kgo.AllISRAcks()))
	acked := &tlogtest.Acked{}
	produceN(t, cl, acked, "rep", 0, 3000)
	tlogtest.VerifyAll(t, c.Agents[0].Kafka, acked, false)

	// Every replica's log ends where the leader's does.
	for p := int32(0); p < 6; p++ {
		mp, _ := c.PartitionMeta("rep", p)
		if len(mp.ISR) != 3 {
			t.Fatalf("partition %d ISR %v", p, mp.ISR)
		}
		lead, _ := c.Agents[mp.Leader].A.PartitionOffsets("rep", p)
		tlogtest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
			for _, m := range c.Agents {
				o, _ := m.A.PartitionOffsets("rep", p)
				if o.LEO != lead.LEO {
					return fmt.Errorf("partition %d: agent %d ends at %d, leader %d at %d", p, m.ID, o.LEO, mp.Leader, lead.LEO)
				}
			}
			return nil
		})
	}
}

// Killing a leader moves its partitions to an in-sync follower; nothing
// acknowledged is lost, and the restarted agent catches up and rejoins.
func TestClusterLeaderFailover(t *testing.T) {
	c := tlogtest.CreateCluster(t, 3)
	c.CreateTopic("fo", 4, 3, nil)
	cl := c.Client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(30*time.Second))
	acked := &tlogtest.Acked{}
	produceN(t, cl, acked, "fo", 0, 2000)

	victim := c.WaitOnLeader("fo", 0, 5*time.Second)
	before, _ := c.PartitionMeta("fo", 0)
	c.Kill(victim)
	killed := time.Now()
	newLeader := c.WaitOnLeader("fo", 0, 10*time.Second)
	after, _ := c.PartitionMeta("fo", 0)
	if newLeader == victim || after.LeaderEpoch <= before.LeaderEpoch {
		t.Fatalf("after killing %d: leader %d epoch %d (was %d)", victim, newLeader, after.LeaderEpoch, before.LeaderEpoch)
	}
	t.Logf("leader %d killed; %d leads after %v", victim, newLeader, time.Since(killed).Round(time.Millisecond))

	produceN(t, cl, acked, "fo", 2000, 2000)
	var alive string
	for _, m := range c.Running() {
		alive = m.Kafka
	}
	tlogtest.VerifyAll(t, alive, acked, false)

	c.Restart(victim)
	c.WaitISR("fo", 0, 15*time.Second, 0, 1, 2)
	produceN(t, cl, acked, "fo", 4000, 500)
	tlogtest.VerifyAll(t, c.Agents[victim].Kafka, acked, false)
}

// A producer keeps going across a leader kill: every record is
// acknowledged exactly once, in order.
func TestClusterProduceAcrossKill(t *testing.T) {
	c := tlogtest.CreateCluster(t, 3)
	c.CreateTopic("flow", 3, 3, nil)
	cl := c.Client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(60*time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
	acked := &tlogtest.Acked{}
	const total = 20000
	var wg sync.WaitGroup
	var errs atomic.Int64
	var n atomic.Int64
	for i := 0; i < total; i++ {
		wg.Add(1)
		cl.Produce(context.Background(), &kgo.Record{Topic: "flow", Key: fmt.Appendf(nil, "k%d", i%13), Value: fmt.Appendf(nil, "v-%d", i)}, func(r *kgo.Record, err error) {
			defer wg.Done()
			if err != nil {
				errs.Add(1)
				t.Errorf("produce: %v", err)
				return
			}
			n.Add(1)
			acked.Add(r)
		})
		if i == total/3 {
			tlogtest.CheckFor(t, 20*time.Second, 5*time.Millisecond, func() error {
				if n.Load() < total/6 {
					return fmt.Errorf("%d acknowledged", n.Load())
				}
				return nil
			})
			c.Kill(c.WaitOnLeader("flow", 0, 5*time.Second))
		}
	}
	wg.Wait()
	if errs.Load() > 0 {
		t.Fatalf("%d produce errors", errs.Load())
	}
	alive := c.Running()[0].Kafka
	if rep := tlogtest.VerifyAll(t, alive, acked, false); rep.Records != total {
		t.Fatalf("read %d, want %d", rep.Records, total)
	}
}

// readAll reads every record of topic/p from offset 0 to the end through
// the cluster and returns the values by offset.
func readAll(t *testing.T, c *tlogtest.Cluster, topic string, p int32) map[int64]string {
	t.Helper()
	cl := c.Client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {p: kgo.NewOffset().AtStart()}}), kgo.FetchMaxWait(100*time.Millisecond))
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var end kadm.ListedOffset
	tlogtest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		ends, err := adm.ListEndOffsets(ctx, topic) // retried while the client's metadata is stale
		if err == nil {
			end, _ = ends.Lookup(topic, p)
			err = end.Err
		}
		return err
	})
	out := map[int64]string{}
	for int64(len(out)) < end.Offset {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s/%d", len(out), end.Offset, topic, p)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if _, dup := out[r.Offset]; dup {
				t.Fatalf("offset %d read twice", r.Offset)
			}
			out[r.Offset] = string(r.Value)
		})
	}
	return out
}

// A leader cut off from its peers (but not from clients or the bucket)
// stops acknowledging acks=all; the controller elects another leader;
// after healing, the old leader truncates what it took with acks=1 and
// never got replicated, and follows. Nothing acknowledged with acks=all is
// lost.
func TestClusterCutOffLeader(t *testing.T) {
	// Slow failure detection leaves time to write to the cut-off leader.
	c := tlogtest.CreateCluster(t, 3, func(cfg *agent.Config) {
		cfg.SessionTimeout, cfg.DisconnectGrace = 3*time.Second, 3*time.Second
	})
	ctl := c.Controller(5 * time.Second)
	// A partition led by an agent other than the controller.
	c.CreateTopic("cut", 6, 3, nil)
	var p, old int32 = -1, -1
	for i := int32(0); i < 6; i++ {
		if l := c.WaitOnLeader("cut", i, 5*time.Second); l != ctl.ID {
			p, old = i, l
			break
		}
	}
	if p < 0 {
		t.Fatal("every partition is led by the controller")
	}
	cl := c.Client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(60*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
	acked := &tlogtest.Acked{}
	mk := func(base int) func(i int) *kgo.Record {
		return func(i int) *kgo.Record {
			return &kgo.Record{Topic: "cut", Partition: p, Value: fmt.Appendf(nil, "all-%d", base+i)}
		}
	}
	tlogtest.Produce(t, cl, acked, 500, mk(0))
	before, _ := c.PartitionMeta("cut", p)

	c.Cut(old)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// acks=1 still lands in the cut-off leader's own log...
	code, off, err := tlogtest.ProduceTo(ctx, c.Agents[old].Kafka, "cut", p, 1, "lost-acks1")
	if err != nil || code != 0 {
		t.Fatalf("acks=1 on the cut-off leader: code %d err %v", code, err)
	}
	// ...but acks=all is never acknowledged there.
	code, _, err = tlogtest.ProduceTo(ctx, c.Agents[old].Kafka, "cut", p, -1, "never-acked")
	if err == nil && code == 0 {
		t.Fatal("the cut-off leader acknowledged acks=all")
	}
	t.Logf("acks=all on the cut-off leader: error code %d (%v)", code, err)

	// The rest of the cluster moves on.
	tlogtest.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		mp, _ := ctl.A.PartitionMeta("cut", p)
		if mp.Leader == old || mp.Leader < 0 || mp.LeaderEpoch <= before.LeaderEpoch {
			return fmt.Errorf("leader %d epoch %d", mp.Leader, mp.LeaderEpoch)
		}
		return nil
	})
	tlogtest.Produce(t, cl, acked, 500, mk(500))
	// By now its session has lapsed (or it has read the new leader from
	// the journal): acks=1 is refused with NOT_LEADER_OR_FOLLOWER.
	if code, off, err := tlogtest.ProduceTo(ctx, c.Agents[old].Kafka, "cut", p, 1, "refused-acks1"); code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("acks=1 on the cut-off leader after its session: code %d offset %d err %v, want NOT_LEADER_OR_FOLLOWER", code, off, err)
	}

	c.Heal(old)
	c.WaitISR("cut", p, 20*time.Second, 0, 1, 2)
	tlogtest.Produce(t, cl, acked, 500, mk(1000))

	got := readAll(t, c, "cut", p)
	for off, v := range got {
		if v == "lost-acks1" || v == "never-acked" {
			t.Errorf("offset %d holds %q, written only on the cut-off leader", off, v)
		}
	}
	for off, v := range acked.M["cut"][p] {
		if got[off] != v {
			t.Fatalf("offset %d: read %q, acknowledged %q", off, got[off], v)
		}
	}
	t.Logf("acks=1 record went to offset %d on the cut-off leader; %d records read back", off, len(got))

	// The old leader's log now matches: make it lead and read again.
	cur, _ := c.PartitionMeta("cut", p)
	c.Kill(cur.Leader)
	tlogtest.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		mp, ok := c.PartitionMeta("cut", p)
		if !ok || mp.Leader < 0 || mp.Leader == cur.Leader || c.Agents[mp.Leader].A == nil || !c.Agents[mp.Leader].A.Leads("cut", p) {
			return fmt.Errorf("no new leader yet")
		}
		return nil
	})
	again := readAll(t, c, "cut", p)
	if len(again) != len(got) {
		t.Fatalf("after another failover: %d records, before %d", len(again), len(got))
	}
	for off, v := range got {
		if again[off] != v {
			t.Fatalf("offset %d: %q, before %q", off, again[off], v)
		}
	}
}

// Two agents hold a topic; a third joins: the controller moves replicas
// and leaders to it, it copies only the unflushed tail, and serves history
// from the bucket.
func TestClusterScaleOut(t *testing.T) {
	c := tlogtest.CreateCluster(t, 2)
	const parts = 12
	c.CreateTopic("grow", parts, 2, nil)
	cl := c.Client(kgo.RequiredAcks(kgo.AllISRAcks()))
	acked := &tlogtest.Acked{}
	produceN(t, cl, acked, "grow", 0, 12000)
	// Let the flusher put history in the bucket.
	tlogtest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		for p := int32(0); p < parts; p++ {
			mp, _ := c.PartitionMeta("grow", p)
			if o, _ := c.Agents[mp.Leader].A.PartitionOffsets("grow", p); mp.FlushedEnd < o.HW {
				return fmt.Errorf("partition %d flushed to %d of %d", p, mp.FlushedEnd, o.HW)
			}
		}
		return nil
	})

	start := time.Now()
	m := c.Add("")
	var moved time.Duration
	tlogtest.CheckFor(t, 60*time.Second, 20*time.Millisecond, func() error {
		replicas, leads := 0, 0
		for p := int32(0); p < parts; p++ {
			mp, _ := c.PartitionMeta("grow", p)
			if len(mp.Target) > 0 {
				return fmt.Errorf("partition %d still moving to %v", p, mp.Target)
			}
			if slices.Contains(mp.Replicas, m.ID) {
				replicas++
			}
			if mp.Leader == m.ID && m.A.Leads("grow", p) {
				leads++
			}
		}
		if replicas < parts*2/3 || leads < parts/3 {
			return fmt.Errorf("new agent holds %d replicas and leads %d partitions", replicas, leads)
		}
		return nil
	})
	moved = time.Since(start)
	t.Logf("third agent took %d-partition share in %v", parts, moved.Round(time.Millisecond))

	// It copied only the tail: far less than the topic's bytes.
	var total int64
	for p := int32(0); p < parts; p++ {
		o, _ := m.A.PartitionOffsets("grow", p)
		total += o.LEO - o.FlushedEnd
	}
	if total > 1000 {
		t.Errorf("the new agent holds %d unflushed records; the tail should be nearly empty", total)
	}
	// It serves everything from offset 0 (history from the bucket).
	tlogtest.VerifyAll(t, m.Kafka, acked, false)
	produceN(t, cl, acked, "grow", 12000, 3000)
	tlogtest.VerifyAll(t, m.Kafka, acked, false)
}

// Draining an agent moves every replica and leader off it.
func TestClusterDrain(t *testing.T) {
	c := tlogtest.CreateCluster(t, 3)
	c.CreateTopic("drain", 6, 2, nil)
	cl := c.Client(kgo.RequiredAcks(kgo.AllISRAcks()))
	acked := &tlogtest.Acked{}
	produceN(t, cl, acked, "drain", 0, 3000)
	ctl := c.Controller(5 * time.Second)
	if err := ctl.A.SetDraining(context.Background(), 1, true); err != nil {
		t.Fatal(err)
	}
	tlogtest.CheckFor(t, 60*time.Second, 20*time.Millisecond, func() error {
		for p := int32(0); p < 6; p++ {
			mp, _ := c.PartitionMeta("drain", p)
			if slices.Contains(mp.Replicas, 1) || mp.Leader == 1 || len(mp.Target) > 0 {
				return fmt.Errorf("partition %d: leader %d replicas %v target %v", p, mp.Leader, mp.Replicas, mp.Target)
			}
		}
		return nil
	})
	c.Kill(1)
	produceN(t, cl, acked, "drain", 3000, 3000)
	tlogtest.VerifyAll(t, c.Agents[0].Kafka, acked, false)
}

// A zombie leader: cut off from its peers and unable to read metadata (as
// if paused), it is replaced; meanwhile it still takes acks=1 writes.
// When it comes back, its segment commit is refused (stale epoch), it
// learns it is deposed, and nothing it wrote in between ever becomes
// visible; acknowledged acks=all records all are.
func TestClusterZombieLeader(t *testing.T) {
	c := tlogtest.CreateCluster(t, 3, func(cfg *agent.Config) {
		cfg.FlushInterval = 500 * time.Millisecond
	})
	ctl := c.Controller(5 * time.Second)
	c.CreateTopic("z", 3, 3, nil)
	var p, z int32 = -1, -1
	for i := int32(0); i < 3; i++ {
		if l := c.WaitOnLeader("z", i, 5*time.Second); l != ctl.ID {
			p, z = i, l
			break
		}
	}
	if p < 0 {
		t.Fatal("every partition is led by the controller")
	}
	cl := c.Client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(60*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
	acked := &tlogtest.Acked{}
	mk := func(base int) func(i int) *kgo.Record {
		return func(i int) *kgo.Record {
			return &kgo.Record{Topic: "z", Partition: p, Value: fmt.Appendf(nil, "all-%d", base+i)}
		}
	}
	tlogtest.Produce(t, cl, acked, 300, mk(0))
	before, _ := c.PartitionMeta("z", p)
	zm := c.Agents[z]

	// "Pause": no peers, no journal.
	c.Cut(z)
	zm.Bucket.SetError(tiertest.OpGet, tiertest.ErrInjected)
	zm.Bucket.SetError(tiertest.OpList, tiertest.ErrInjected)
	tlogtest.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		mp, _ := ctl.A.PartitionMeta("z", p)
		if mp.Leader == z || mp.Leader < 0 || mp.LeaderEpoch <= before.LeaderEpoch {
			return fmt.Errorf("leader %d epoch %d", mp.Leader, mp.LeaderEpoch)
		}
		return nil
	})
	tlogtest.Produce(t, cl, acked, 300, mk(300))

	// Writes to the zombie after its failover. It still believes it
	// leads (it has heard nothing), but its session has lapsed on its own
	// clock: acks=1, which no follower guards, is refused at once with
	// NOT_LEADER_OR_FOLLOWER, so the client looks for the new leader;
	// acks=all is never acknowledged (the followers refuse it).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if !zm.A.Leads("z", p) {
		t.Fatal("the zombie learned of its failover; the test needs it not to")
	}
	for i := 0; i < 5; i++ {
		code, off, err := tlogtest.ProduceTo(ctx, zm.Kafka, "z", p, 1, fmt.Sprintf("zombie-%d", i))
		if code != kerr.NotLeaderForPartition.Code {
			t.Fatalf("acks=1 to the zombie after its session lapsed: code %d offset %d err %v, want NOT_LEADER_OR_FOLLOWER", code, off, err)
		}
	}
	if code, _, err := tlogtest.ProduceTo(ctx, zm.Kafka, "z", p, -1, "zombie-all"); err == nil && code == 0 {
		t.Fatal("the zombie acknowledged acks=all")
	}

	// "Resume" its peers: its flush of what it holds is refused.
	refusedBefore := zm.A.Stats().CommitsRefused
	c.Heal(z)
	tlogtest.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		if n := zm.A.Stats().CommitsRefused; n <= refusedBefore {
			return fmt.Errorf("%d commits refused", n)
		}
		return nil
	})
	// Its heartbeats are answered again, but it has not applied what the
	// controller journaled meanwhile: still no acks=1. And its followers
	// refuse its epoch, which it takes as deposition: acks=all fails at
	// once with NOT_LEADER_OR_FOLLOWER instead of waiting out its timeout.
	if !zm.A.Leads("z", p) {
		t.Fatal("the zombie learned of its failover; the test needs it not to")
	}
	if code, _, _ := tlogtest.ProduceTo(ctx, zm.Kafka, "z", p, 1, "zombie-healed"); code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("acks=1 to the zombie before it caught up: code %d, want NOT_LEADER_OR_FOLLOWER", code)
	}
	tlogtest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if code, _, err := tlogtest.ProduceTo(ctx, zm.Kafka, "z", p, -1, "zombie-all-healed"); code != kerr.NotLeaderForPartition.Code {
			return fmt.Errorf("acks=all to the deposed zombie: code %d err %v", code, err)
		}
		return nil
	})
	// Then its journal reads: it learns, steps down and follows.
	zm.Bucket.SetError(tiertest.OpGet, nil)
	zm.Bucket.SetError(tiertest.OpList, nil)
	tlogtest.CheckFor(t, 15*time.Second, 20*time.Millisecond, func() error {
		if zm.A.Leads("z", p) {
			return fmt.Errorf("the zombie still leads")
		}
		return nil
	})
	c.WaitISR("z", p, 20*time.Second, 0, 1, 2)
	tlogtest.Produce(t, cl, acked, 300, mk(600))

	got := readAll(t, c, "z", p)
	for off, v := range got {
		if len(v) >= 6 && v[:6] == "zombie" {
			t.Errorf("offset %d holds %q, written to the zombie", off, v)
		}
	}
	for off, v := range acked.M["z"][p] {
		if got[off] != v {
			t.Fatalf("offset %d: read %q, acknowledged %q", off, got[off], v)
		}
	}
	t.Logf("the zombie refused acks=1; none of its writes visible; %d records read", len(got))
}

// The controller dies: another agent takes the lease within seconds and
// the cluster keeps changing (topics created, leaders elected).
func TestClusterControllerFailover(t *testing.T) {
	c := tlogtest.CreateCluster(t, 3)
	c.CreateTopic("before", 3, 3, nil)
	old := c.Controller(5 * time.Second)
	c.Kill(old.ID)
	killed := time.Now()
	next := c.Controller(15 * time.Second)
	if next.ID == old.ID {
		t.Fatalf("agent %d is controller again", next.ID)
	}
	t.Logf("controller %d killed; %d took over after %v", old.ID, next.ID, time.Since(killed).Round(time.Millisecond))
	// Partitions it led moved; new topics work through the new controller.
	for p := int32(0); p < 3; p++ {
		if l := c.WaitOnLeader("before", p, 10*time.Second); l == old.ID {
			t.Fatalf("partition %d still led by the dead controller", p)
		}
	}
	c.CreateTopic("after", 2, 2, nil)
	cl := c.Client(kgo.RequiredAcks(kgo.AllISRAcks()))
	acked := &tlogtest.Acked{}
	produceN(t, cl, acked, "after", 0, 500)
	produceN(t, cl, acked, "before", 0, 500)
	tlogtest.VerifyAll(t, next.Kafka, acked, false)
}

// A follower the leader cannot reach (while the controller still hears
// from it) falls out of the ISR through the leader, and rejoins once it
// catches up.
func TestClusterSlowFollowerLeavesAndRejoinsISR(t *testing.T) {
	c := tlogtest.CreateCluster(t, 3)
	c.CreateTopic("isr", 1, 3, nil)
	leader := c.WaitOnLeader("isr", 0, 5*time.Second)
	mp, _ := c.PartitionMeta("isr", 0)
	ctl := c.Controller(5 * time.Second)
	// A follower that is not the controller: the leader still reaches
	// the controller while it cannot reach the follower.
	var f int32 = -1
	for _, id := range mp.Replicas {
		if id != leader && id != ctl.ID {
			f = id
			break
		}
	}
	cl := c.Client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(30*time.Second))
	acked := &tlogtest.Acked{}
	produceN(t, cl, acked, "isr", 0, 500)

	c.Agents[leader].Faults.Block(c.Agents[f].Peer)
	start := time.Now()
	// acks=all waits for the follower until it is dropped (replica lag
	// 2s in tests), then goes on with two in sync.
	produceN(t, cl, acked, "isr", 500, 500)
	waited := time.Since(start)
	others := []int32{}
	for _, id := range mp.Replicas {
		if id != f {
			others = append(others, id)
		}
	}
	c.WaitISR("isr", 0, 10*time.Second, others...)
	if a, _ := c.PartitionMeta("isr", 0); a.Leader != leader {
		t.Fatalf("leadership moved to %d; only the follower was slow", a.Leader)
	}
	t.Logf("follower %d left the ISR; produce waited %v", f, waited.Round(time.Millisecond))

	c.Agents[leader].Faults.Unblock(c.Agents[f].Peer)
	c.WaitISR("isr", 0, 15*time.Second, mp.Replicas...)
	produceN(t, cl, acked, "isr", 1000, 500)
	tlogtest.VerifyAll(t, c.Agents[leader].Kafka, acked, false)
}

// With fewer in-sync replicas than min.insync.replicas, acks=all is
// refused (retriable NOT_ENOUGH_REPLICAS) while acks=1 still writes; once
// replicas return, acks=all works again.
func TestClusterMinInsyncReplicas(t *testing.T) {
	c := tlogtest.CreateCluster(t, 3)
	c.CreateTopic("mis", 1, 3, nil) // min.insync.replicas defaults to 2
	leader := c.WaitOnLeader("mis", 0, 5*time.Second)
	var down []int32
	for _, m := range c.Agents {
		if m.ID != leader {
			down = append(down, m.ID)
		}
	}
	// The leader must not be the controller's only reason to stay: kill
	// the two others and wait until the ISR is the leader alone.
	for _, id := range down {
		c.Kill(id)
	}
	// With the controller gone (if it was one of them), the leader takes
	// over the lease and shrinks the ISR.
	c.WaitISR("mis", 0, 20*time.Second, leader)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, _, _ := tlogtest.ProduceTo(ctx, c.Agents[leader].Kafka, "mis", 0, -1, "all")
	if code != kerr.NotEnoughReplicas.Code {
		t.Fatalf("acks=all with ISR 1 < 2: code %d, want NOT_ENOUGH_REPLICAS", code)
	}
	if code, _, err := tlogtest.ProduceTo(ctx, c.Agents[leader].Kafka, "mis", 0, 1, "one"); code != 0 || err != nil {
		t.Fatalf("acks=1 with ISR 1: code %d err %v", code, err)
	}
	c.Restart(down[0])
	c.WaitISR("mis", 0, 20*time.Second, leader, down[0])
	if code, _, err := tlogtest.ProduceTo(ctx, c.Agents[leader].Kafka, "mis", 0, -1, "all-again"); code != 0 || err != nil {
		t.Fatalf("acks=all with ISR 2: code %d err %v", code, err)
	}
}

// A client with stale metadata that produces to (or fetches from) a
// replica that does not lead gets NOT_LEADER_OR_FOLLOWER.
func TestClusterFollowerAnswersNotLeader(t *testing.T) {
	c := tlogtest.CreateCluster(t, 3)
	c.CreateTopic("nl", 1, 3, nil)
	leader := c.WaitOnLeader("nl", 0, 5*time.Second)
	f := (leader + 1) % 3
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	code, _, _ := tlogtest.ProduceTo(ctx, c.Agents[f].Kafka, "nl", 0, -1, "x")
	if code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("produce to follower %d: code %d", f, code)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Agents[f].Kafka))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	md, err := kadm.NewClient(cl).Metadata(ctx, "nl")
	if err != nil {
		t.Fatal(err)
	}
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = 10
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic = "nl"
	rt.TopicID = md.Topics["nl"].ID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes = 1 << 20
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if got := resp.(*kmsg.FetchResponse).Topics[0].Partitions[0].ErrorCode; got != kerr.NotLeaderForPartition.Code {
		t.Fatalf("fetch from follower: code %d", got)
	}
	// Metadata from any agent names the leader.
	for _, m := range c.Agents {
		mp, _ := m.A.PartitionMeta("nl", 0)
		if mp.Leader != leader {
			t.Fatalf("agent %d names leader %d, want %d", m.ID, mp.Leader, leader)
		}
	}
}

// Replicas of a partition spread over zones.
func TestClusterZonePlacement(t *testing.T) {
	c := tlogtest.CreateCluster(t, 0)
	for _, z := range []string{"a", "a", "b", "b", "c", "c"} {
		c.Add(z)
	}
	c.CreateTopic("zones", 12, 3, nil)
	for p := int32(0); p < 12; p++ {
		mp, _ := c.PartitionMeta("zones", p)
		seen := map[string]bool{}
		for _, id := range mp.Replicas {
			seen[c.Agents[id].Zone] = true
		}
		if len(seen) != 3 {
			t.Fatalf("partition %d replicas %v span zones %v", p, mp.Replicas, seen)
		}
	}
}

// The controller itself is cut off from its peers (it still reaches the
// bucket): it fences nobody, gives the lease up, and the majority elects
// a controller and leaders among themselves; after healing it follows.
func TestClusterCutOffController(t *testing.T) {
	cutOffController(t, (*tlogtest.Cluster).Cut)
}

// The same with the link a blackhole (packets dropped, as by a
// firewall): the others' heartbeats to the controller hang until their
// deadline instead of failing, and they must still tell it through the
// bucket that they cannot reach it.
func TestClusterBlackholedController(t *testing.T) {
	cutOffController(t, (*tlogtest.Cluster).Blackhole)
}

func cutOffController(t *testing.T, cutOff func(c *tlogtest.Cluster, id int32)) {
	c := tlogtest.CreateCluster(t, 3)
	c.CreateTopic("cc", 6, 3, nil)
	ctl := c.Controller(5 * time.Second)
	cl := c.Client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(60*time.Second),
		kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
	acked := &tlogtest.Acked{}
	produceN(t, cl, acked, "cc", 0, 1000)

	cutOff(c, ctl.ID)
	cut := time.Now()
	// Meanwhile a metadata change sent to another agent cannot reach the
	// controller: it is refused with a code clients retry, never -1.
	var other *tlogtest.Member
	for _, m := range c.Running() {
		if m.ID != ctl.ID {
			other = m
			break
		}
	}
	oc := dialRaw(t, other.Kafka)
	refused := 0
	for i := range 8 {
		resp := do[*kmsg.CreateTopicsResponse](oc, 7, createTopicsReq(false, topicSpec{fmt.Sprintf("cc-cut-%d", i), 1, 1, nil}))
		switch code := resp.Topics[0].ErrorCode; code {
		case 0:
		case kerr.NotController.Code, kerr.RequestTimedOut.Code:
			refused++
		default:
			t.Errorf("CreateTopics %d on agent %d with the controller cut off: error %d (%s)", i, other.ID, code, deref(resp.Topics[0].ErrorMessage))
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d of 8 creations refused retriably while the controller was cut off", refused)
	var next *tlogtest.Member
	tlogtest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		for _, m := range c.Running() {
			if m.ID != ctl.ID && m.A.IsController() {
				next = m
				return nil
			}
		}
		return fmt.Errorf("no controller among the majority yet")
	})
	t.Logf("controller %d cut off; %d took over after %v", ctl.ID, next.ID, time.Since(cut).Round(time.Millisecond))
	tlogtest.CheckFor(t, 20*time.Second, 20*time.Millisecond, func() error {
		for p := int32(0); p < 6; p++ {
			mp, _ := next.A.PartitionMeta("cc", p)
			if mp.Leader == ctl.ID || mp.Leader < 0 {
				return fmt.Errorf("partition %d led by %d", p, mp.Leader)
			}
		}
		return nil
	})
	produceN(t, cl, acked, "cc", 1000, 1000)

	c.Heal(ctl.ID)
	for p := int32(0); p < 6; p++ {
		c.WaitISR("cc", p, 30*time.Second, 0, 1, 2)
	}
	produceN(t, cl, acked, "cc", 2000, 500)
	tlogtest.VerifyAll(t, ctl.Kafka, acked, false)
}

// The bucket goes away for every agent, longer than a session: no
// controller can hold the lease, so nobody can fence anybody. acks=all
// produce goes on (the in-sync followers guard it); acks=1 is refused
// retriably once the sessions lapse, since a leader then cannot prove it
// has not been replaced; everything comes back when the bucket does.
func TestClusterBucketOutage(t *testing.T) {
	c := tlogtest.CreateCluster(t, 3)
	c.CreateTopic("out", 3, 3, nil)
	c.WaitISR("out", 0, 10*time.Second, 0, 1, 2)
	leader := c.WaitOnLeader("out", 0, 5*time.Second)
	cl := c.Client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(60*time.Second),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
	acked := &tlogtest.Acked{}
	mk := func(base int) func(i int) *kgo.Record {
		return func(i int) *kgo.Record {
			return &kgo.Record{Topic: "out", Partition: 0, Value: fmt.Appendf(nil, "v-%d", base+i)}
		}
	}
	tlogtest.Produce(t, cl, acked, 200, mk(0))

	for _, m := range c.Agents {
		m.Bucket.SetOutage(tiertest.ErrInjected)
	}
	time.Sleep(3 * time.Second) // past the lease and a session
	tlogtest.Produce(t, cl, acked, 200, mk(200))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if code, _, err := tlogtest.ProduceTo(ctx, c.Agents[leader].Kafka, "out", 0, 1, "acks1-in-outage"); code != kerr.NotLeaderForPartition.Code {
		t.Fatalf("acks=1 during the outage: code %d err %v, want NOT_LEADER_OR_FOLLOWER", code, err)
	}
	for _, m := range c.Agents {
		m.Bucket.SetOutage(nil)
	}
	tlogtest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		l, _ := c.PartitionMeta("out", 0)
		if code, _, err := tlogtest.ProduceTo(ctx, c.Agents[l.Leader].Kafka, "out", 0, 1, fmt.Sprintf("acks1-after-%d", time.Now().UnixNano())); code != 0 || err != nil {
			return fmt.Errorf("acks=1 after the outage: code %d err %v", code, err)
		}
		return nil
	})
	tlogtest.Produce(t, cl, acked, 200, mk(400))
	got := readAll(t, c, "out", 0)
	for off, v := range acked.M["out"][0] {
		if got[off] != v {
			t.Fatalf("offset %d: read %q, acknowledged %q", off, got[off], v)
		}
	}
}

// An agent that dies and stays away has its replicas moved to the live
// agents once it has been fenced for --replace-fenced-after: every
// partition is back to three replicas without it, in sync, and takes
// acks=all writes; nothing acknowledged before or after is lost.
func TestClusterReplacesLongFencedAgent(t *testing.T) {
	c := tlogtest.CreateCluster(t, 4, func(cfg *agent.Config) {
		cfg.ReplaceFencedAfter = 2 * time.Second
		cfg.NoAutoBalance = true // the moves must come from the replacement alone
	})
	c.CreateTopic("gone", 4, 3, nil)
	cl := c.Client(kgo.RequiredAcks(kgo.AllISRAcks()))
	acked := &tlogtest.Acked{}
	produceN(t, cl, acked, "gone", 0, 2000)
	ctl := c.Controller(5 * time.Second)
	victim := int32(-1)
	for id := int32(0); id < 4 && victim < 0; id++ {
		if id == ctl.ID {
			continue
		}
		for p := int32(0); p < 4; p++ {
			if mp, _ := c.PartitionMeta("gone", p); slices.Contains(mp.Replicas, id) {
				victim = id
				break
			}
		}
	}
	if victim < 0 {
		t.Fatal("no agent but the controller holds a replica")
	}
	c.Kill(victim)
	tlogtest.CheckFor(t, 60*time.Second, 50*time.Millisecond, func() error {
		for p := int32(0); p < 4; p++ {
			mp, _ := ctl.A.PartitionMeta("gone", p)
			if slices.Contains(mp.Replicas, victim) || len(mp.Target) > 0 || len(mp.Replicas) != 3 || len(mp.ISR) != 3 {
				return fmt.Errorf("partition %d: replicas %v target %v isr %v", p, mp.Replicas, mp.Target, mp.ISR)
			}
		}
		return nil
	})
	produceN(t, cl, acked, "gone", 2000, 2000)
	tlogtest.VerifyAll(t, ctl.Kafka, acked, false)
}

// A slow link is not a dead agent: with what one agent sends arriving
// 1.2 s late (heartbeats answered past a second), the controller fences
// no one and the agent's partitions keep taking writes. (A heartbeat that
// ran out of time used to close its connection, which the controller
// takes for a killed process and fences within DisconnectGrace.)
func TestClusterSlowLinkFencesNobody(t *testing.T) {
	c := tlogtest.CreateCluster(t, 3, func(cfg *agent.Config) {
		// The shipped timings, not the test clusters' faster ones.
		cfg.HeartbeatInterval = agent.Defaults.HeartbeatInterval
		cfg.SessionTimeout = agent.Defaults.SessionTimeout
		cfg.DisconnectGrace = agent.Defaults.DisconnectGrace
		cfg.LeaseTTL = agent.Defaults.LeaseTTL
	})
	c.CreateTopic("slow", 3, 3, nil)
	ctl := c.Controller(5 * time.Second)
	cl := c.Client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(60*time.Second))
	acked := &tlogtest.Acked{}
	produceN(t, cl, acked, "slow", 0, 300)
	slow := (ctl.ID + 1) % 3
	c.Agents[slow].Faults.Delay(1200 * time.Millisecond)
	start := time.Now()
	for time.Since(start) < 8*time.Second {
		for _, ag := range ctl.A.Agents() {
			if ag.Fenced {
				t.Fatalf("agent %d fenced %v into a 1.2 s slow link on agent %d", ag.ID, time.Since(start).Round(time.Millisecond), slow)
			}
		}
		if !ctl.A.IsController() {
			t.Fatalf("agent %d lost the controller role over a slow link on agent %d", ctl.ID, slow)
		}
		time.Sleep(50 * time.Millisecond)
	}
	produceN(t, cl, acked, "slow", 300, 300)
	c.Heal(slow)
	produceN(t, cl, acked, "slow", 600, 300)
	tlogtest.VerifyAll(t, ctl.Kafka, acked, false)
}

// A graceful stop hands leadership over before the agent goes (Kafka's
// controlled shutdown): when Stop returns, none of the partitions it led
// is led by it, so clients move at their next metadata refresh rather
// than after its session; the controller stopped the same way resigns
// too. Started again, the agent is unfenced, rejoins every ISR and (the
// balancer) gets its preferred leaderships back. Nothing acknowledged is
// lost on the way.
func TestClusterControlledShutdown(t *testing.T) {
	c := tlogtest.CreateCluster(t, 3, func(cfg *agent.Config) { cfg.BalanceInterval = 500 * time.Millisecond })
	c.CreateTopic("cs", 6, 3, nil)
	cl := c.Client(kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordDeliveryTimeout(60*time.Second))
	acked := &tlogtest.Acked{}
	produceN(t, cl, acked, "cs", 0, 600)
	ctl := c.Controller(5 * time.Second)
	for _, victim := range []int32{(ctl.ID + 1) % 3, ctl.ID} {
		led := 0
		for p := int32(0); p < 6; p++ {
			if mp, _ := c.PartitionMeta("cs", p); mp.Leader == victim {
				led++
			}
		}
		if led == 0 {
			t.Fatalf("agent %d leads nothing to hand over", victim)
		}
		start := time.Now()
		c.Stop(victim)
		took := time.Since(start)
		var other *tlogtest.Member
		for _, m := range c.Running() {
			other = m
		}
		// The handover is journaled before Close returns; another
		// agent sees it at its next journal read, which is allowed
		// half the session timeout here (fencing the victim and
		// electing new leaders would take longer than that).
		tlogtest.CheckFor(t, 500*time.Millisecond, 10*time.Millisecond, func() error {
			for p := int32(0); p < 6; p++ {
				mp, _ := other.A.PartitionMeta("cs", p)
				if mp.Leader == victim || mp.Leader < 0 {
					return fmt.Errorf("agent %d stopped (in %v) with partition %d led by %d", victim, took, p, mp.Leader)
				}
			}
			return nil
		})
		t.Logf("agent %d handed %d leaderships over in %v", victim, led, took.Round(time.Millisecond))
		produceN(t, cl, acked, "cs", 600+int(victim)*1000, 300)
		c.Restart(victim)
		for p := int32(0); p < 6; p++ {
			c.WaitISR("cs", p, 30*time.Second, 0, 1, 2)
		}
		tlogtest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
			for p := int32(0); p < 6; p++ {
				if mp, _ := c.PartitionMeta("cs", p); mp.Leader != mp.Replicas[0] {
					return fmt.Errorf("partition %d led by %d, preferred %d", p, mp.Leader, mp.Replicas[0])
				}
			}
			return nil
		})
	}
	tlogtest.VerifyAll(t, c.Seeds()[0], acked, false)
}
