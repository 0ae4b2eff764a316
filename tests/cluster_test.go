package tests

// Clusters of real `tlog agent` processes on loopback: a zombie leader
// paused with SIGSTOP past its failover, and (heavy, on MinIO) leaders
// killed with SIGKILL every 10 s for two minutes under an idempotent
// acks=all producer and a consumer.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier/miniotest"
)

// clusterFlags are the timings the process tests run agents with.
var clusterFlags = []string{
	"--lease-ttl", "2s", "--heartbeat-interval", "100ms", "--session-timeout", "1500ms",
	"--replica-lag-max", "3s",
}

// partitionView is what a client's Metadata request says of a partition.
type partitionView struct {
	leader, epoch int32
	isr           []int32
}

// describe asks the agent at addr itself (not whichever broker a client
// picks, which may be the one paused or killed) for a topic's partitions
// and the controller.
func describe(ctx context.Context, addr, topic string) (map[int32]partitionView, int32, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		return nil, -1, err
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].Request(rctx, req)
	if err != nil {
		return nil, -1, err
	}
	md := resp.(*kmsg.MetadataResponse)
	if len(md.Topics) != 1 || md.Topics[0].ErrorCode != 0 {
		return nil, -1, fmt.Errorf("topic %s: %+v", topic, md.Topics)
	}
	out := map[int32]partitionView{}
	for _, pd := range md.Topics[0].Partitions {
		out[pd.Partition] = partitionView{leader: pd.Leader, epoch: pd.LeaderEpoch, isr: pd.ISR}
	}
	return out, md.ControllerID, nil
}

// A leader paused (SIGSTOP) past its failover and then resumed: nothing
// it takes afterwards becomes visible, its flushes do not reach the
// manifest, and every acks=all record is there. The bucket is a shared
// directory (the filesystem bucket locks across processes).
func TestProcClusterZombieLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three tlog processes")
	}
	bin := tlogtest.BuildTlog(t)
	bucket := "file://" + t.TempDir()
	c := tlogtest.StartProcCluster(t, bin, bucket, 3, append([]string{"--flush-interval", "1s"}, clusterFlags...)...)
	seeds := c.Seeds()
	adm := kadm.NewClient(tlogtest.NewClient(t, seeds[0], kgo.SeedBrokers(seeds...)))
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 3, 3, nil, "zombie"); err != nil {
		t.Fatal(err)
	}
	var views map[int32]partitionView
	var ctl int32
	tlogtest.CheckFor(t, 20*time.Second, 50*time.Millisecond, func() error {
		var err error
		views, ctl, err = describe(ctx, seeds[0], "zombie")
		if err == nil && len(views) == 3 {
			for _, v := range views {
				if v.leader < 0 || len(v.isr) != 3 {
					return fmt.Errorf("not settled: %+v", views)
				}
			}
		}
		return err
	})
	var p, z int32 = -1, -1
	for i := int32(0); i < 3; i++ {
		if views[i].leader != ctl {
			p, z = i, views[i].leader
			break
		}
	}
	if p < 0 {
		t.Fatalf("every partition is led by the controller %d: %+v", ctl, views)
	}
	t.Logf("partition %d led by agent %d (controller %d)", p, z, ctl)

	prod := tlogtest.NewClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MetadataMinAge(100*time.Millisecond),
		kgo.RecordDeliveryTimeout(90*time.Second), kgo.RetryBackoffFn(func(int) time.Duration { return 50 * time.Millisecond }))
	acked := &tlogtest.Acked{}
	mk := func(base int) func(i int) *kgo.Record {
		return func(i int) *kgo.Record {
			return &kgo.Record{Topic: "zombie", Partition: p, Value: fmt.Appendf(nil, "all-%d", base+i)}
		}
	}
	tlogtest.Produce(t, prod, acked, 2000, mk(0))

	t.Cleanup(func() {
		if t.Failed() || testing.Verbose() {
			for _, a := range c.Agents {
				if a.P != nil {
					t.Logf("agent %d log:\n%s", a.ID, tlogtest.Tail(a.P.Output(), 60))
				}
			}
		}
	})
	zp := c.Agents[z].P
	zp.Pause()
	paused := time.Now()
	other := seeds[(z+1)%3]
	tlogtest.CheckFor(t, 30*time.Second, 50*time.Millisecond, func() error {
		v, _, err := describe(ctx, other, "zombie")
		if err == nil && (v[p].leader == z || v[p].leader < 0 || v[p].epoch <= views[p].epoch) {
			err = fmt.Errorf("leader %d epoch %d", v[p].leader, v[p].epoch)
		}
		return err
	})
	t.Logf("new leader for partition %d after %v", p, time.Since(paused).Round(time.Millisecond))
	tlogtest.Produce(t, prod, acked, 2000, mk(2000))
	time.Sleep(2 * time.Second) // well past its failover

	// Writes reach the zombie while it is stopped; they are served when
	// it resumes, before or after it learns it was replaced.
	type result struct {
		code int16
		off  int64
		err  error
	}
	results := make(chan result, 8)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acks := int16(1)
			if i%2 == 1 {
				acks = -1
			}
			code, off, err := tlogtest.ProduceTo(ctx, c.Agents[z].Kafka, "zombie", p, acks, fmt.Sprintf("zombie-%d", i))
			results <- result{code, off, err}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	zp.Resume()
	wg.Wait()
	close(results)
	for r := range results {
		t.Logf("write to the zombie: code %d offset %d err %v", r.code, r.off, r.err)
	}

	tlogtest.CheckFor(t, 60*time.Second, 100*time.Millisecond, func() error {
		v, _, err := describe(ctx, other, "zombie")
		if err == nil && len(v[p].isr) != 3 {
			err = fmt.Errorf("ISR %v", v[p].isr)
		}
		return err
	})
	tlogtest.Produce(t, prod, acked, 2000, mk(4000))
	rep := tlogtest.VerifyAll(t, other, acked, false)
	t.Logf("read back %d records; none written to the zombie", rep.Records)
	out := zp.Output()
	switch {
	case strings.Contains(out, "segment commit refused"):
		t.Logf("the zombie's segment commit was refused")
	default:
		t.Logf("the zombie learned it was replaced before its flusher ran; no commit was attempted")
	}
}

// Three agents on MinIO, RF=3, 12 partitions; an idempotent acks=all
// producer and a consumer run while the leader of a partition is killed
// with SIGKILL every 10 s for 2 minutes and restarted. Heavy
// (TLOG_HEAVY=1); needs MinIO. See runProcChaos for what is checked.
func TestProcClusterChaos(t *testing.T) {
	runProcChaos(t, chaosKill)
}

// The same cluster and load, but every 20 s the agent leading the most
// partitions is paused with SIGSTOP for 15 s (far past the session
// timeout, so it is fenced and its partitions move) and then resumed
// with SIGCONT: a zombie leader that wakes with client connections,
// requests in flight and replication streams it believes current.
func TestProcClusterPause(t *testing.T) {
	runProcChaos(t, chaosPause)
}

type chaosMode int

const (
	chaosKill chaosMode = iota
	chaosPause
)

// runProcChaos runs the chaos scenario of mode and checks: no acknowledged
// record lost, no record stored at two offsets, no offset read with two
// values, sequence numbers increasing with offsets in every partition,
// the tailing consumer's reads monotonic, and a fresh consumer at the end
// reading the same. Reported: the longest time any partition went
// without an acknowledgement after each fault. TLOG_CHAOS_CLIENT_DEFAULTS=1
// leaves franz-go's request deadlines at their defaults. TLOG_CHAOS_DURATION
// shortens or lengthens it; TLOG_CHAOS_BUCKET=file runs on a shared
// directory instead of MinIO.
func runProcChaos(t *testing.T, mode chaosMode) {
	if os.Getenv("TLOG_HEAVY") == "" {
		t.Skip("heavy (2 minutes of chaos); set TLOG_HEAVY=1")
	}
	var bucket string
	if os.Getenv("TLOG_CHAOS_BUCKET") == "file" {
		bucket = "file://" + t.TempDir()
	} else {
		m := miniotest.StartProcess(t)
		miniotest.CreateBucket(t, m.Endpoint(), m.AccessKey(), m.SecretKey(), "chaos")
		miniotest.SetCredentialsEnv(t, m)
		bucket = fmt.Sprintf("s3://chaos/c?endpoint=%s&region=us-east-1", m.Endpoint())
	}
	bin := tlogtest.BuildTlog(t)
	flags := clusterFlags
	period, pause := 10*time.Second, time.Duration(0)
	if mode == chaosPause {
		// The agents' default timings: a 3 s session, so a 15 s pause
		// is five sessions long.
		flags = nil
		period, pause = 20*time.Second, 15*time.Second
	}
	c := tlogtest.StartProcCluster(t, bin, bucket, 3, flags...)
	seeds := c.Seeds()

	const (
		topic  = "chaos"
		parts  = 12
		length = 2 * time.Minute
		rate   = 2000 // records per second
	)
	duration := length
	if d, err := time.ParseDuration(os.Getenv("TLOG_CHAOS_DURATION")); err == nil {
		duration = d
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration+5*time.Minute)
	defer cancel()
	adm := kadm.NewClient(tlogtest.NewClient(t, seeds[0], kgo.SeedBrokers(seeds...)))
	if _, err := adm.CreateTopic(ctx, parts, 3, nil, topic); err != nil {
		t.Fatal(err)
	}
	tlogtest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		v, _, err := describe(ctx, seeds[0], topic)
		if err == nil && len(v) != parts {
			err = fmt.Errorf("%d partitions", len(v))
		}
		for _, pv := range v {
			if err == nil && (pv.leader < 0 || len(pv.isr) != 3) {
				err = fmt.Errorf("not settled: %+v", v)
			}
		}
		return err
	})
	t.Cleanup(func() {
		if path := os.Getenv("TLOG_CHAOS_KGO_LOG"); path != "" {
			for _, a := range c.Agents {
				if a.P != nil {
					os.WriteFile(fmt.Sprintf("%s.agent%d", path, a.ID), []byte(a.P.Output()), 0o644)
				}
			}
		}
		if t.Failed() {
			for _, a := range c.Agents {
				if a.P != nil {
					t.Logf("agent %d log:\n%s", a.ID, tlogtest.Tail(a.P.Output(), 200))
				}
			}
		}
	})

	// The producer: idempotent, acks=all, unlimited retries; each record
	// is keyed by and carries a sequence number n (increasing in every
	// partition, since partition = n % parts) and its partition.
	var kgoLog strings.Builder
	var kgoLogMu sync.Mutex
	// A paused agent answers nothing, so a request in flight to it when it
	// stops waits for the client's own deadline (franz-go: the produce
	// timeout, 10 s, plus 10 s): no broker can shorten that. In pause mode
	// the producer bounds it at 3.5 s + 1 s, as a client that wants
	// failover in seconds must. Not shorter than the session (3 s): the
	// metadata refresh franz-go makes when the deadline fires must already
	// name the new leaders. One that comes earlier finds the old leader,
	// and the next refresh, round-robin, may be queued behind the
	// producer's reconnects to the paused agent (franz-go serves one
	// broker's requests in order, each new connection there costing a 1 s
	// ApiVersions timeout), where it waits until the agent wakes: the
	// whole 15 s (seen with 2 s + 1 s; docs/reliability.md).
	var timeouts []kgo.Opt
	if mode == chaosPause && os.Getenv("TLOG_CHAOS_CLIENT_DEFAULTS") == "" {
		timeouts = []kgo.Opt{kgo.ProduceRequestTimeout(3500 * time.Millisecond), kgo.RequestTimeoutOverhead(time.Second)}
	}
	prod := tlogtest.NewClient(t, seeds[0], append(timeouts, kgo.SeedBrokers(seeds...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.MetadataMinAge(250*time.Millisecond),
		kgo.RecordDeliveryTimeout(2*time.Minute), kgo.ProducerLinger(time.Millisecond),
		kgo.RecordRetries(math.MaxInt32),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
		kgo.WithLogger(chaosLogger(t, writerFunc(func(b []byte) (int, error) {
			if bytes.Contains(b, []byte("metadata update triggered")) {
				return len(b), nil // one per retry: noise
			}
			kgoLogMu.Lock()
			defer kgoLogMu.Unlock()
			if kgoLog.Len() < 1<<20 {
				kgoLog.Write(b)
			}
			return len(b), nil
		}))))...)
	t.Cleanup(func() {
		if t.Failed() {
			kgoLogMu.Lock()
			t.Logf("producer log:\n%s", tlogtest.Tail(kgoLog.String(), 100))
			kgoLogMu.Unlock()
		}
	})
	acked := &tlogtest.Acked{}
	type ack struct {
		sent, at time.Time
	}
	var ackMu sync.Mutex
	acks := map[int32][]ack{}
	var produceErrs atomic.Int64
	var firstErr atomic.Value
	var failedMu sync.Mutex
	failedParts := map[int32]int{}
	var inflight sync.WaitGroup
	stopProduce := make(chan struct{})
	produced := make(chan struct{})
	var sent atomic.Int64
	go func() {
		defer close(produced)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for n := 0; ; {
			select {
			case <-stopProduce:
				inflight.Wait()
				return
			case <-tick.C:
			}
			for range rate / 100 {
				p := int32(n % parts)
				now := time.Now()
				inflight.Add(1)
				r := &kgo.Record{Topic: topic, Partition: p, Key: fmt.Appendf(nil, "%d", n),
					Value: fmt.Appendf(nil, "p%d-n%d-%s", p, n, strings.Repeat("x", 230))}
				prod.Produce(ctx, r, func(r *kgo.Record, err error) {
					defer inflight.Done()
					if err != nil {
						produceErrs.Add(1)
						firstErr.CompareAndSwap(nil, err)
						failedMu.Lock()
						failedParts[r.Partition]++
						failedMu.Unlock()
						return
					}
					acked.Add(r)
					ackMu.Lock()
					acks[r.Partition] = append(acks[r.Partition], ack{sent: now, at: time.Now()})
					ackMu.Unlock()
				})
				n++
				sent.Add(1)
			}
		}
	}()

	// The consumer reads every partition from the start, all along,
	// by direct assignment, recording what each offset held.
	obs := newChaosObserver(parts)
	cons := tlogtest.NewClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(obs.startOffsets(topic)),
		kgo.FetchMaxWait(200*time.Millisecond), kgo.MetadataMinAge(250*time.Millisecond))
	cctx, stopConsume := context.WithCancel(ctx)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for cctx.Err() == nil {
			cons.PollFetches(cctx).EachRecord(obs.add)
		}
	}()

	// The chaos. Kill: every period, SIGKILL the leader of one partition
	// (rotating) and restart it. Pause: every period, SIGSTOP the agent
	// leading the most partitions, SIGCONT it after pause.
	type fault struct {
		at     time.Time
		victim int32
		parts  []int32
	}
	var faults []fault
	var failovers []time.Duration
	start := time.Now()
	for i := 0; time.Duration(i+1)*period < duration; i++ {
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * period)))
		v, _, err := describe(ctx, seeds[(i+1)%len(seeds)], topic)
		if err != nil {
			t.Logf("metadata before fault %d: %v", i, err)
			continue
		}
		victim := v[int32(i%parts)].leader
		if mode == chaosPause {
			led := map[int32]int{}
			for _, pv := range v {
				if pv.leader >= 0 {
					led[pv.leader]++
				}
			}
			victim = -1
			for id, n := range led {
				if victim < 0 || n > led[victim] || (n == led[victim] && id < victim) {
					victim = id
				}
			}
		}
		if victim < 0 {
			continue
		}
		var led []int32
		for p, pv := range v {
			if pv.leader == victim {
				led = append(led, p)
			}
		}
		sort.Slice(led, func(a, b int) bool { return led[a] < led[b] })
		switch mode {
		case chaosKill:
			c.Kill(victim)
			faults = append(faults, fault{at: time.Now(), victim: victim, parts: led})
			c.Start(victim)
		case chaosPause:
			pr := c.Agents[victim].P
			pr.Pause()
			at := time.Now()
			t.Logf("%s paused agent %d (leading %v)", at.Format("15:04:05.000"), victim, led)
			faults = append(faults, fault{at: at, victim: victim, parts: led})
			// The cluster's own failover: until another agent's
			// metadata names new leaders for all the victim led.
			other := seeds[(victim+1)%int32(len(seeds))]
			for time.Since(at) < pause {
				v, _, err := describe(ctx, other, topic)
				moved := err == nil
				for _, p := range led {
					moved = moved && v[p].leader >= 0 && v[p].leader != victim
				}
				if moved {
					failovers = append(failovers, time.Since(at))
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			time.Sleep(time.Until(at.Add(pause)))
			pr.Resume()
		}
	}
	time.Sleep(time.Until(start.Add(duration)))
	close(stopProduce)
	select {
	case <-produced:
	case <-time.After(3 * time.Minute):
		t.Fatalf("producer did not finish: %d sent", sent.Load())
	}
	if n := produceErrs.Load(); n > 0 {
		// Reported with the rest below; the checks still run.
		failedMu.Lock()
		t.Errorf("%d produces failed (by partition: %v), first: %v", n, failedParts, firstErr.Load())
		failedMu.Unlock()
	}

	// The consumer must reach the end of every partition.
	ends, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	tlogtest.CheckFor(t, 2*time.Minute, 200*time.Millisecond, func() error { return obs.reached(ends, topic) })
	stopConsume()
	<-consumed

	// A fresh consumer reads everything again; it must see what the
	// tailing one saw.
	fresh := newChaosObserver(parts)
	fcons := tlogtest.NewClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.ConsumePartitions(fresh.startOffsets(topic)),
		kgo.FetchMaxWait(200*time.Millisecond))
	tlogtest.CheckFor(t, 2*time.Minute, 10*time.Millisecond, func() error {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		defer pcancel()
		fcons.PollFetches(pctx).EachRecord(fresh.add)
		return fresh.reached(ends, topic)
	})
	fcons.Close()

	obs.mu.Lock()
	defer obs.mu.Unlock()
	fresh.mu.Lock()
	defer fresh.mu.Unlock()
	for p := int32(0); p < parts; p++ {
		for off, v := range fresh.values[p] {
			if old, ok := obs.values[p][off]; ok && old != v {
				obs.errs = append(obs.errs, fmt.Sprintf("%d@%d read as %.20q by the tailing consumer and %.20q at the end", p, off, old, v))
			}
		}
	}
	obs.errs = append(obs.errs, fresh.errs...)
	lost := 0
	for p, offs := range acked.M[topic] {
		for off, v := range offs {
			if fresh.values[p][off] != v {
				lost++
				if lost < 5 {
					t.Errorf("%d@%d acknowledged %.20q, read %.20q", p, off, v, fresh.values[p][off])
				}
			}
		}
	}
	dups, reorders := fresh.check()
	for _, s := range dups[:min(5, len(dups))] {
		t.Errorf("duplicate: %s", s)
	}
	for _, s := range reorders[:min(5, len(reorders))] {
		t.Errorf("out of order: %s", s)
	}

	// Unavailability: for each fault, the longest wait on a partition the
	// victim led for the first acknowledgement of a record sent after it;
	// and over the whole run, the longest gap between two
	// acknowledgements of one partition.
	var worst, worstGap time.Duration
	var per []string
	ackMu.Lock()
	for _, f := range faults {
		var w time.Duration
		for _, p := range f.parts {
			as := acks[p]
			i := sort.Search(len(as), func(i int) bool { return !as[i].sent.Before(f.at) })
			first := time.Duration(-1)
			for _, a := range as[i:] {
				if d := a.at.Sub(f.at); first < 0 || d < first {
					first = d
				}
			}
			w = max(w, first)
		}
		worst = max(worst, w)
		per = append(per, fmt.Sprintf("agent %d (%d partitions): %v", f.victim, len(f.parts), w.Round(time.Millisecond)))
	}
	gapPart := int32(-1)
	var gapFrom time.Time
	for p, as := range acks {
		ats := make([]time.Time, len(as))
		for i, a := range as {
			ats[i] = a.at
		}
		sort.Slice(ats, func(i, j int) bool { return ats[i].Before(ats[j]) })
		for i := 1; i < len(ats); i++ {
			if g := ats[i].Sub(ats[i-1]); g > worstGap {
				worstGap, gapPart, gapFrom = g, p, ats[i-1]
			}
		}
	}
	ackMu.Unlock()
	what := map[chaosMode]string{chaosKill: "kill", chaosPause: "pause"}[mode]
	t.Logf("%d %ss over %v; %d records acknowledged, %d read; %d lost, %d duplicated, %d out of order, %d inconsistent reads",
		len(faults), what, time.Since(start).Round(time.Second), acked.N, fresh.n, lost, len(dups), len(reorders), len(obs.errs))
	t.Logf("produce unavailable after each %s: %s", what, strings.Join(per, "; "))
	if mode == chaosPause {
		var fs []string
		for _, f := range failovers {
			fs = append(fs, f.Round(time.Millisecond).String())
		}
		t.Logf("failover (another agent's metadata names new leaders) after each pause: %s", strings.Join(fs, ", "))
	}
	t.Logf("longest produce unavailability after a %s: %v; longest gap between acknowledgements of one partition: %v (partition %d, from %s)",
		what, worst.Round(time.Millisecond), worstGap.Round(time.Millisecond), gapPart, gapFrom.Format("15:04:05.000"))
	if len(obs.errs) > 0 {
		t.Errorf("%d inconsistencies in what the consumers read, first: %s", len(obs.errs), obs.errs[0])
	}
	if lost > 0 || len(dups) > 0 || len(reorders) > 0 {
		t.Fatalf("%d acknowledged records lost, %d duplicated, %d out of order", lost, len(dups), len(reorders))
	}
	if len(faults) < int(duration/period)-2 {
		t.Fatalf("only %d faults", len(faults))
	}
	if mode == chaosPause && worstGap > 10*time.Second {
		t.Fatalf("a partition went %v without an acknowledgement (at most 10 s)", worstGap.Round(time.Millisecond))
	}
}

// chaosObserver records what a consumer read: the value at each offset,
// and where it read last.
type chaosObserver struct {
	mu     sync.Mutex
	values map[int32]map[int64]string
	next   map[int32]int64
	errs   []string
	n      int
}

func newChaosObserver(parts int32) *chaosObserver {
	o := &chaosObserver{values: map[int32]map[int64]string{}, next: map[int32]int64{}}
	for p := range parts {
		o.values[p] = map[int64]string{}
	}
	return o
}

func (o *chaosObserver) startOffsets(topic string) map[string]map[int32]kgo.Offset {
	offsets := map[int32]kgo.Offset{}
	for p := range o.values {
		offsets[p] = kgo.NewOffset().AtStart()
	}
	return map[string]map[int32]kgo.Offset{topic: offsets}
}

func (o *chaosObserver) add(r *kgo.Record) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if prev, ok := o.values[r.Partition][r.Offset]; ok && prev != string(r.Value) {
		o.errs = append(o.errs, fmt.Sprintf("%d@%d read as %.20q and %.20q", r.Partition, r.Offset, prev, r.Value))
	}
	if _, ok := o.values[r.Partition][r.Offset]; !ok {
		o.n++
	}
	o.values[r.Partition][r.Offset] = string(r.Value)
	if want := o.next[r.Partition]; r.Offset != want {
		o.errs = append(o.errs, fmt.Sprintf("%d: read offset %d after %d", r.Partition, r.Offset, want-1))
	}
	o.next[r.Partition] = r.Offset + 1
}

// reached says which partition, if any, the consumer has not read to
// its end offset yet.
func (o *chaosObserver) reached(ends kadm.ListedOffsets, topic string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	for p := range o.values {
		if e, _ := ends.Lookup(topic, p); o.next[p] < e.Offset {
			return fmt.Errorf("partition %d: consumer at %d of %d", p, o.next[p], e.Offset)
		}
	}
	return nil
}

// check lists sequence numbers stored at two offsets, and offsets whose
// sequence number is not above the one before them in their partition.
func (o *chaosObserver) check() (dups, reorders []string) {
	where := map[int]string{}
	for p, offs := range o.values {
		sorted := make([]int64, 0, len(offs))
		for off := range offs {
			sorted = append(sorted, off)
		}
		sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
		prev, prevOff := -1, int64(-1)
		for _, off := range sorted {
			var pp, n int
			if _, err := fmt.Sscanf(offs[off], "p%d-n%d-", &pp, &n); err != nil {
				dups = append(dups, fmt.Sprintf("%d@%d: unreadable value %.20q", p, off, offs[off]))
				continue
			}
			at := fmt.Sprintf("%d@%d", p, off)
			if w, ok := where[n]; ok {
				dups = append(dups, fmt.Sprintf("sequence %d at %s and %s", n, w, at))
			}
			where[n] = at
			if n <= prev {
				reorders = append(reorders, fmt.Sprintf("sequence %d at %s after %d at %d@%d", n, at, prev, p, prevOff))
			}
			prev, prevOff = n, off
		}
	}
	return dups, reorders
}

// writerFunc adapts a function to io.Writer.
type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// tlog cluster status and drain against three agent processes.
func TestProcClusterStatusAndDrain(t *testing.T) {
	if testing.Short() {
		t.Skip("runs three tlog processes")
	}
	bin := tlogtest.BuildTlog(t)
	c := tlogtest.StartProcCluster(t, bin, "file://"+t.TempDir(), 3, clusterFlags...)
	seeds := strings.Join(c.Seeds(), ",")
	cliOK(t, bin, seeds, "", "topic", "create", "orders", "--partitions", "6", "--replication-factor", "2")
	lines := ""
	for i := 0; i < 300; i++ {
		lines += fmt.Sprintf("k%d:v%d\n", i%17, i)
	}
	cliOK(t, bin, seeds, lines, "produce", "orders", "--key-separator", ":")

	type status struct {
		ClusterID  string `json:"cluster_id"`
		Controller int32  `json:"controller"`
		Agents     []struct {
			ID       int32  `json:"id"`
			State    string `json:"state"`
			Leads    int    `json:"leads"`
			Replicas int    `json:"replicas"`
		} `json:"agents"`
		Partitions []struct {
			Topic         string  `json:"topic"`
			Partition     int32   `json:"partition"`
			Leader        int32   `json:"leader"`
			Replicas      []int32 `json:"replicas"`
			ISR           []int32 `json:"isr"`
			FlushedEnd    int64   `json:"flushed_end"`
			HighWatermark int64   `json:"high_watermark"`
			BucketBytes   int64   `json:"bucket_bytes"`
		} `json:"partitions"`
		BucketBytes int64 `json:"bucket_bytes"`
	}
	get := func() status {
		var st status
		r := cliOK(t, bin, seeds, "", "cluster", "status", "--format", "json")
		if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
			t.Fatalf("status JSON: %v\n%s", err, r.stdout)
		}
		return st
	}
	// Once flushed, every partition's flushed end reaches its HW and the
	// bucket holds the bytes.
	var st status
	tlogtest.CheckFor(t, 20*time.Second, 200*time.Millisecond, func() error {
		st = get()
		var hw int64
		for _, p := range st.Partitions {
			if p.Topic != "orders" {
				continue
			}
			hw += p.HighWatermark
			if p.FlushedEnd != p.HighWatermark || len(p.ISR) != 2 {
				return fmt.Errorf("partition %d: flushed %d of %d, ISR %v", p.Partition, p.FlushedEnd, p.HighWatermark, p.ISR)
			}
		}
		if hw != 300 || st.BucketBytes == 0 {
			return fmt.Errorf("%d records, %d bucket bytes", hw, st.BucketBytes)
		}
		return nil
	})
	if len(st.Agents) != 3 || st.ClusterID == "" || st.Controller < 0 {
		t.Fatalf("status: %+v", st)
	}
	text := cliOK(t, bin, seeds, "", "cluster", "status").stdout
	for _, w := range []string{"Controller: agent", "FLUSHED-END", "orders", "(controller)", "live"} {
		if !strings.Contains(text, w) {
			t.Fatalf("status text lacks %q:\n%s", w, text)
		}
	}

	// Every agent is ready: registered and heard by the controller.
	for _, a := range c.Agents {
		resp, err := http.Get("http://" + a.Admin + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("agent %d /readyz: %d %s", a.ID, resp.StatusCode, body)
		}
	}

	cliFails(t, bin, seeds, 2, []string{"bad agent id"}, "cluster", "drain", "x")
	cliFails(t, bin, seeds, 1, []string{"agent 9", "not registered"}, "cluster", "drain", "9")
	// With a topic on all three agents there is nowhere to move its
	// replicas: refused at once, saying why, and nothing is marked.
	cliOK(t, bin, seeds, "", "topic", "create", "everywhere", "--partitions", "1", "--replication-factor", "3")
	began := time.Now()
	cliFails(t, bin, seeds, 1, []string{"cannot be drained", "everywhere/0", "replication factor"}, "cluster", "drain", "2")
	if d := time.Since(began); d > 10*time.Second {
		t.Fatalf("the refusal took %v", d)
	}
	for _, a := range get().Agents {
		if a.State != "live" {
			t.Fatalf("agent %d is %s after a refused drain", a.ID, a.State)
		}
	}
	cliOK(t, bin, seeds, "", "topic", "delete", "everywhere")
	r := cliOK(t, bin, seeds, "", "cluster", "drain", "1")
	if !strings.Contains(r.stdout, "agent 1 is drained") {
		t.Fatalf("drain: %s", r)
	}
	st = get()
	for _, a := range st.Agents {
		if a.ID == 1 && (a.State != "draining" || a.Replicas != 0 || a.Leads != 0) {
			t.Fatalf("drained agent: %+v", a)
		}
	}
	c.Kill(1)
	out := cliOK(t, bin, seeds, "", "consume", "orders", "-n", "300", "--format", "json").stdout
	if n := strings.Count(out, "\n"); n != 300 {
		t.Fatalf("read %d records after draining and stopping agent 1", n)
	}
	c.Start(1)
	cliOK(t, bin, seeds, "", "cluster", "undrain", "1")
	tlogtest.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		for _, a := range get().Agents {
			if a.ID == 1 && (a.State != "live" || a.Replicas == 0) {
				return fmt.Errorf("agent 1: %+v", a)
			}
		}
		return nil
	})
}

// chaosLogger logs the producer's warnings to w, or, with
// TLOG_CHAOS_KGO_LOG=path, everything it says at debug level, timestamped,
// to that file: what a stalled partition's requests did.
func chaosLogger(t *testing.T, w io.Writer) kgo.Logger {
	path := os.Getenv("TLOG_CHAOS_KGO_LOG")
	if path == "" {
		return kgo.BasicLogger(w, kgo.LogLevelInfo, nil)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	var mu sync.Mutex
	return kgo.BasicLogger(writerFunc(func(b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		w.Write(b)
		return f.Write(b)
	}), kgo.LogLevelDebug, func() string { return time.Now().Format("15:04:05.000 ") })
}
