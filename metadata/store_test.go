package metadata

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/tiertest"
)

const testTTL = 200 * time.Millisecond

// logBuf collects log output for assertions.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

type opt func(*Config)

func withLog(w *logBuf) opt {
	return func(c *Config) {
		c.Logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
}

func open(t *testing.T, b tier.Bucket, id int32, opts ...opt) *Store {
	t.Helper()
	cfg := Config{
		Bucket:        b,
		AgentID:       id,
		LeaseTTL:      testTTL,
		SnapshotEvery: 1000,
		PollInterval:  time.Hour, // tests poll explicitly (Sync, Poke)
		Logger:        slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&cfg)
	}
	s, err := Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("Open(agent %d): %v", id, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func campaign(t *testing.T, s *Store) {
	t.Helper()
	ok, err := s.Campaign(context.Background())
	if err != nil || !ok {
		t.Fatalf("Campaign(agent %d) = %v, %v; want true", s.cfg.AgentID, ok, err)
	}
}

func propose(t *testing.T, s *Store, cmds ...Command) *State {
	t.Helper()
	st, err := s.Propose(context.Background(), cmds...)
	if err != nil {
		t.Fatalf("Propose: %v", err)
	}
	return st
}

// zombie makes s believe it holds the lease at epoch until told otherwise,
// as a controller whose clock stalled would.
func zombie(s *Store, epoch int64) {
	s.leaseMu.Lock()
	defer s.leaseMu.Unlock()
	s.lease.held, s.lease.epoch, s.lease.deadline = true, epoch, time.Now().Add(time.Hour)
}

func keys(t *testing.T, b tier.Bucket, prefix string) []uint64 {
	t.Helper()
	objs, err := b.List(context.Background(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	var out []uint64
	for _, o := range objs {
		seq, ok := parseSeqKey(prefix, o.Key)
		if !ok {
			t.Fatalf("unexpected key %q", o.Key)
		}
		out = append(out, seq)
	}
	return out
}

func topicCmd(name string) CreateTopic {
	return CreateTopic{ID: uuid.New(), Name: name, Partitions: []PartitionSpec{{Replicas: []int32{1}, Leader: 1}}}
}

func sameState(t *testing.T, a, b *Store) {
	t.Helper()
	ja, jb := mustJSON(t, a.State()), mustJSON(t, b.State())
	if ja != jb {
		t.Fatalf("states differ:\nagent %d: %s\nagent %d: %s", a.cfg.AgentID, ja, b.cfg.AgentID, jb)
	}
}

func TestProposeAndFollow(t *testing.T) {
	t.Parallel()
	b := tier.NewMemBucket()
	ctrl := open(t, b, 1)
	follower := open(t, b, 2)
	campaign(t, ctrl)
	if _, err := follower.Propose(context.Background(), agent(2)); !errors.Is(err, ErrNotController) {
		t.Fatalf("follower Propose = %v, want ErrNotController", err)
	}
	changes := ctrl.Subscribe()
	st := propose(t, ctrl, RegisterAgent{Agent: AgentInfo{ID: 1, Addr: "h:1"}})
	select {
	case <-changes:
	default:
		t.Fatal("no change signal after Propose")
	}
	if st.Agents[1].Registered.IsZero() {
		t.Fatal("Propose did not stamp the registration time")
	}
	st = propose(t, ctrl, AllocateProducerIDs{Agent: 1, Count: 100})
	if st.ProducerBlocks[1] != (ProducerBlock{First: 0, Count: 100}) || st.Seq != 2 || st.ControllerEpoch != 1 {
		t.Fatalf("state after allocation: %s", mustJSON(t, st))
	}
	if ctrl.State() != st {
		t.Fatal("State() is not the state Propose returned")
	}
	_, err := ctrl.Propose(context.Background(), topicCmd("bad name"))
	if !errors.Is(err, ErrInvalidTopic) {
		t.Fatalf("invalid Propose = %v", err)
	}
	if got := keys(t, b, JournalPrefix); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("journal = %v; a refused command must not be journaled", got)
	}
	if err := follower.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	sameState(t, ctrl, follower)
}

func TestRaceForSequence(t *testing.T) {
	t.Parallel()
	for i := range 20 {
		b := tier.NewMemBucket()
		a := open(t, b, 1)
		z := open(t, b, 2)
		campaign(t, a) // epoch 1
		propose(t, a, agent(1))
		if err := z.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		zombie(z, 2) // both now believe they are controller, both at seq 1

		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for j, s := range []*Store{a, z} {
			wg.Go(func() {
				<-start
				_, errs[j] = s.Propose(context.Background(), topicCmd(fmt.Sprintf("topic-%d", j)))
			})
		}
		close(start)
		wg.Wait()

		winner, loser := 0, 1
		if errs[0] != nil {
			winner, loser = 1, 0
		}
		if errs[winner] != nil || !errors.Is(errs[loser], ErrConflict) {
			t.Fatalf("round %d: errors %v; want exactly one ErrConflict", i, errs)
		}
		if got := keys(t, b, JournalPrefix); !slices.Equal(got, []uint64{1, 2}) {
			t.Fatalf("round %d: journal = %v", i, got)
		}
		// The loser caught up before returning.
		sameState(t, a, z)

		// A loser with the lower epoch saw the newer controller and stepped
		// down; one with the higher epoch may retry once and win.
		stores := []*Store{a, z}
		_, err := stores[loser].Propose(context.Background(), topicCmd("retry"))
		if loser == 0 {
			if !errors.Is(errs[0], ErrNotController) || !errors.Is(err, ErrNotController) || a.IsController() {
				t.Fatalf("round %d: old-epoch loser: conflict %v, retry %v, IsController %v", i, errs[0], err, a.IsController())
			}
		} else if err != nil {
			t.Fatalf("round %d: retry by the newer controller: %v", i, err)
		}
		if err := a.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := z.Sync(context.Background()); err != nil {
			t.Fatal(err)
		}
		sameState(t, a, z)
		a.Close()
		z.Close()
	}
}

func putEntry(t *testing.T, b tier.Bucket, e Entry) {
	t.Helper()
	body, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutIfAbsent(context.Background(), JournalKey(e.Seq), body); err != nil {
		t.Fatal(err)
	}
}

func TestStaleEpochEntryIgnored(t *testing.T) {
	t.Parallel()
	b := tier.NewMemBucket()
	putEntry(t, b, Entry{Seq: 1, Epoch: 2, Agent: 1, Cmds: []Command{agent(1)}})
	putEntry(t, b, Entry{Seq: 2, Epoch: 1, Agent: 3, Cmds: []Command{topicCmd("from-zombie")}})
	putEntry(t, b, Entry{Seq: 3, Epoch: 2, Agent: 1, Cmds: []Command{topicCmd("fresh")}})
	putEntry(t, b, Entry{Seq: 4, Epoch: 3, Agent: 2, Cmds: []Command{topicCmd("newer")}})

	var logs logBuf
	s := open(t, b, 5, withLog(&logs))
	st := s.State()
	if st.Seq != 4 || st.ControllerEpoch != 3 {
		t.Fatalf("seq %d epoch %d", st.Seq, st.ControllerEpoch)
	}
	if _, ok := st.TopicByName("from-zombie"); ok {
		t.Fatal("entry with a stale epoch was applied")
	}
	for _, n := range []string{"fresh", "newer"} {
		if _, ok := st.TopicByName(n); !ok {
			t.Fatalf("topic %q missing", n)
		}
	}
	if !strings.Contains(logs.String(), "stale controller epoch 1 < 2") {
		t.Fatalf("skip not logged:\n%s", logs.String())
	}

	// A controller taking over picks an epoch above every journaled one.
	campaign(t, s)
	if e := s.ControllerEpoch(); e != 4 {
		t.Fatalf("new controller epoch %d, want 4", e)
	}
	st = propose(t, s, topicCmd("mine"))
	if st.ControllerEpoch != 4 || st.Seq != 5 {
		t.Fatalf("after propose: seq %d epoch %d", st.Seq, st.ControllerEpoch)
	}
}

func TestCorruptJournalEntry(t *testing.T) {
	t.Parallel()
	b := tier.NewMemBucket()
	putEntry(t, b, Entry{Seq: 1, Epoch: 1, Agent: 1, Cmds: []Command{agent(1)}})
	if _, err := b.Put(context.Background(), JournalKey(2), []byte("{garbage")); err != nil {
		t.Fatal(err)
	}
	var logs logBuf
	_, err := Open(context.Background(), Config{Bucket: b, AgentID: 1, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), JournalKey(2)) {
		t.Fatalf("Open = %v, want ErrCorrupt naming the key", err)
	}
	if !strings.Contains(logs.String(), "corrupt journal entry") {
		t.Fatalf("corruption not logged:\n%s", logs.String())
	}
}

// waitSnapshots lets background snapshots finish, for determinism.
func waitSnapshots(s *Store) { s.snapWG.Wait() }

func TestSnapshotsPruneAndRestart(t *testing.T) {
	t.Parallel()
	b := tier.NewMemBucket()
	ctrl := open(t, b, 1, func(c *Config) { c.SnapshotEvery = 5 })
	campaign(t, ctrl)
	propose(t, ctrl, agent(1))
	lagging := open(t, b, 2) // at seq 1; will miss entries deleted under it
	var logs logBuf
	lagging.log = slog.New(slog.NewTextHandler(&logs, nil))

	for i := 2; i <= 13; i++ {
		propose(t, ctrl, topicCmd(fmt.Sprintf("t%d", i)))
		waitSnapshots(ctrl)
	}
	if got := keys(t, b, SnapshotPrefix); !slices.Equal(got, []uint64{5, 10}) {
		t.Fatalf("snapshots = %v", got)
	}
	if got := keys(t, b, JournalPrefix); !slices.Equal(got, []uint64{11, 12, 13}) {
		t.Fatalf("journal = %v; entries at or below the snapshot must be deleted", got)
	}
	// Restart: snapshot 10 plus entries 11..13.
	sameState(t, ctrl, open(t, b, 3))

	for i := 14; i <= 16; i++ {
		propose(t, ctrl, topicCmd(fmt.Sprintf("t%d", i)))
		waitSnapshots(ctrl)
	}
	if got := keys(t, b, SnapshotPrefix); !slices.Equal(got, []uint64{10, 15}) {
		t.Fatalf("snapshots = %v; want the newest two", got)
	}
	if got := keys(t, b, JournalPrefix); !slices.Equal(got, []uint64{16}) {
		t.Fatalf("journal = %v", got)
	}
	sameState(t, ctrl, open(t, b, 4))

	// The lagging reader's next entry (2) is gone: it reloads snapshot 15.
	if err := lagging.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	sameState(t, ctrl, lagging)
	if !strings.Contains(logs.String(), `msg="loaded snapshot" seq=15 previous_seq=1`) {
		t.Fatalf("lagging reader did not reload the snapshot:\n%s", logs.String())
	}

	// A restarted controller keeps going from the restored state.
	ctrl.Close()
	again := open(t, b, 1, func(c *Config) { c.SnapshotEvery = 5 })
	campaign(t, again) // same agent: immediate, next epoch
	st := propose(t, again, topicCmd("after-restart"))
	if st.Seq != 17 || st.ControllerEpoch != 2 || len(st.Topics) != 16 {
		t.Fatalf("after restart: seq %d epoch %d topics %d", st.Seq, st.ControllerEpoch, len(st.Topics))
	}
}

func TestExplicitSnapshotAndCorruptFallback(t *testing.T) {
	t.Parallel()
	b := tier.NewMemBucket()
	ctrl := open(t, b, 1)
	if err := ctrl.Snapshot(context.Background()); !errors.Is(err, ErrNotController) {
		t.Fatalf("Snapshot by non-controller = %v", err)
	}
	campaign(t, ctrl)
	propose(t, ctrl, agent(1))
	propose(t, ctrl, topicCmd("a"))
	if err := ctrl.Snapshot(context.Background()); err != nil {
		t.Fatal(err)
	}
	propose(t, ctrl, topicCmd("b"))
	// A damaged newer snapshot: readers fall back to the older one and the
	// journal after it.
	if _, err := b.Put(context.Background(), SnapshotKey(3), []byte("not json")); err != nil {
		t.Fatal(err)
	}
	sameState(t, ctrl, open(t, b, 2))
}

func TestRunPokeAndSubscribe(t *testing.T) {
	t.Parallel()
	b := tier.NewMemBucket()
	ctrl := open(t, b, 1)
	follower := open(t, b, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 2)
	go func() { runErr <- ctrl.Run(ctx) }()
	waitFor(t, "agent 1 to become controller", ctrl.IsController)
	go func() { runErr <- follower.Run(ctx) }()
	if err := ctrl.Run(ctx); err == nil {
		t.Fatal("second Run accepted")
	}

	changes := follower.Subscribe()
	propose(t, ctrl, agent(1))
	follower.Poke() // PollInterval is an hour: only the poke can deliver it
	select {
	case <-changes:
	case <-time.After(2 * time.Second):
		t.Fatal("follower saw no change after Poke")
	}
	sameState(t, ctrl, follower)
	if follower.ControllerID() != 1 || follower.IsController() {
		t.Fatalf("follower: ControllerID %d IsController %v", follower.ControllerID(), follower.IsController())
	}

	// The follower keeps campaigning but cannot take a lease being renewed.
	time.Sleep(3 * testTTL)
	if !ctrl.IsController() || follower.IsController() {
		t.Fatal("live lease changed hands")
	}
	follower.Unsubscribe(changes)
	ctrl.Close()
	if err := <-runErr; err != nil {
		t.Fatalf("Run after Close = %v", err)
	}
	cancel()
	if err := <-runErr; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run after cancel = %v", err)
	}
	if _, err := ctrl.Propose(context.Background(), agent(1)); !errors.Is(err, ErrClosed) {
		t.Fatalf("Propose after Close = %v", err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestAmbiguousJournalWrite(t *testing.T) {
	t.Parallel()
	f := tiertest.NewFaulty(tier.NewMemBucket())
	s := open(t, f, 1)
	campaign(t, s)
	propose(t, s, agent(1))

	// Applied, but the reply was lost: Propose finds its entry and succeeds.
	f.FailNextAfter(tiertest.OpPutIfAbsent, 1, tiertest.ErrInjected)
	st := propose(t, s, topicCmd("landed"))
	if st.Seq != 2 {
		t.Fatalf("seq %d", st.Seq)
	}
	// Not applied, and the check cannot tell: an error, then the next
	// proposal re-reads before writing and does not conflict.
	f.FailNext(tiertest.OpPutIfAbsent, 1, tiertest.ErrInjected)
	f.FailNext(tiertest.OpGet, 1, tiertest.ErrInjected)
	if _, err := s.Propose(context.Background(), topicCmd("lost")); !errors.Is(err, tiertest.ErrInjected) || !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Propose = %v, want the injected error as ErrUnavailable", err)
	}
	if k := ErrorKind(fmt.Errorf("x: %w: %w", ErrUnavailable, tiertest.ErrInjected)); k != "unavailable" {
		t.Fatalf("kind %q, want unavailable (it crosses the peer protocol)", k)
	}
	st = propose(t, s, topicCmd("next"))
	if st.Seq != 3 {
		t.Fatalf("seq %d", st.Seq)
	}
	if _, ok := st.TopicByName("lost"); ok {
		t.Fatal("failed write applied")
	}
}

// The controller's pushed entries apply on another agent without reading
// the bucket; a gap makes the receiver read the journal instead.
func TestDeliverPushedEntries(t *testing.T) {
	b := tier.NewMemBucket()
	type pushed struct {
		seq  uint64
		body []byte
	}
	var mu sync.Mutex
	var out []pushed
	ctrl := open(t, b, 1, func(c *Config) {
		c.OnAppend = func(seq uint64, body []byte) {
			mu.Lock()
			out = append(out, pushed{seq, bytes.Clone(body)})
			mu.Unlock()
		}
	})
	campaign(t, ctrl)
	other := open(t, b, 2)
	propose(t, ctrl, agent(1))
	propose(t, ctrl, agent(2))
	propose(t, ctrl, agent(3))
	mu.Lock()
	got := slices.Clone(out)
	mu.Unlock()
	if len(got) != 3 || got[0].seq != 1 || got[2].seq != 3 {
		t.Fatalf("pushed %d entries: %+v", len(got), got)
	}
	ctx := context.Background()
	if err := other.Deliver(ctx, got[0].seq, got[0].body); err != nil {
		t.Fatal(err)
	}
	if st := other.State(); st.Seq != 1 || len(st.Agents) != 1 {
		t.Fatalf("after delivering 1: seq %d agents %d", st.Seq, len(st.Agents))
	}
	if err := other.Deliver(ctx, got[0].seq, got[0].body); err != nil || other.State().Seq != 1 {
		t.Fatalf("redelivery: %v, seq %d", err, other.State().Seq)
	}
	// Entry 2 is lost on the way: entry 3 makes the receiver catch up.
	if err := other.Deliver(ctx, got[2].seq, got[2].body); err != nil {
		t.Fatal(err)
	}
	if st := other.State(); st.Seq != 3 || len(st.Agents) != 3 {
		t.Fatalf("after the gap: seq %d agents %d", st.Seq, len(st.Agents))
	}
	if err := other.Deliver(ctx, 4, []byte("{garbage")); err == nil {
		t.Fatal("a corrupt push was accepted")
	}
	if other.State().Seq != 3 {
		t.Fatal("a corrupt push changed the state")
	}
}

// Proposals that arrive while a journal write is in flight are written
// together: 200 agents registering at once over a bucket whose writes take
// 20 ms make far fewer entries than proposals; each proposal sees its own
// effect in the state it gets back; one refused is refused alone; and a
// follower reading the journal ends with the same state.
func TestGroupCommit(t *testing.T) {
	t.Parallel()
	b := tiertest.NewFaulty(tier.NewMemBucket())
	ctrl := open(t, b, 1)
	follower := open(t, b, 2)
	campaign(t, ctrl)
	zombie(ctrl, ctrl.ControllerEpoch()) // a lease that outlasts the writes
	b.SetLatency(tiertest.OpPutIfAbsent, 20*time.Millisecond)

	const n = 200
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var st *State
			if i%50 == 7 {
				_, errs[i] = ctrl.Propose(context.Background(), topicCmd("bad name"))
				return
			}
			st, errs[i] = ctrl.Propose(context.Background(), RegisterAgent{Agent: AgentInfo{ID: int32(100 + i), Addr: fmt.Sprintf("h:%d", i)}})
			if errs[i] == nil {
				if _, ok := st.Agents[int32(100+i)]; !ok {
					errs[i] = fmt.Errorf("the state returned at seq %d lacks agent %d", st.Seq, 100+i)
				}
			}
		}()
	}
	wg.Wait()
	refused := 0
	for i, err := range errs {
		switch {
		case i%50 == 7 && errors.Is(err, ErrInvalidTopic):
			refused++
		case i%50 == 7:
			t.Errorf("proposal %d (a bad topic name): %v, want ErrInvalidTopic", i, err)
		case err != nil:
			t.Errorf("proposal %d: %v", i, err)
		}
	}
	entries, proposals := ctrl.GroupStats()
	journal := keys(t, b, JournalPrefix)
	t.Logf("%d proposals (%d refused) in %d entries", n, refused, entries)
	if proposals != n-int64(refused) || int64(len(journal)) != entries {
		t.Fatalf("%d proposals journaled in %d entries; the journal holds %d", proposals, entries, len(journal))
	}
	if entries > n/4 {
		t.Fatalf("%d entries for %d concurrent proposals: not grouped", entries, n)
	}
	st := ctrl.State()
	if len(st.Agents) != n-refused {
		t.Fatalf("%d agents registered, want %d", len(st.Agents), n-refused)
	}
	if err := follower.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	sameState(t, ctrl, follower)
}

// Flush commits wait for company: while only flush commits are queued,
// the journal takes at most one write per FlushCommitInterval, and those
// that arrive meanwhile share it. Any other proposal is written at once,
// taking the waiting flush commits with it.
func TestFlushCommitsWaitForCompany(t *testing.T) {
	t.Parallel()
	b := tier.NewMemBucket()
	ctrl := open(t, b, 1, func(c *Config) { c.FlushCommitInterval = time.Hour })
	campaign(t, ctrl)
	zombie(ctrl, ctrl.ControllerEpoch())
	id := uuid.New()
	const parts = 5
	specs := make([]PartitionSpec, parts)
	for i := range specs {
		specs[i] = PartitionSpec{Replicas: []int32{1}, Leader: 1}
	}
	st := propose(t, ctrl, RegisterAgent{Agent: AgentInfo{ID: 1, Addr: "h:1"}}, CreateTopic{ID: id, Name: "fc", Partitions: specs})
	p0, _ := st.Partition(id, 0)
	epoch := p0.LeaderEpoch
	commit := func(part int32) error {
		key := fmt.Sprintf("data/1/%d.seg", part)
		if _, err := b.Put(context.Background(), key, []byte("0123456789")); err != nil {
			return err
		}
		_, err := ctrl.Propose(context.Background(), CommitSegments{Commits: []CommitSegment{{TopicID: id, Partition: part, LeaderEpoch: epoch,
			Ref: SegmentRef{Object: key, Length: 10, FirstOffset: 0, LastOffset: 9, LeaderEpoch: epoch}}}})
		return err
	}
	// The first flush commit after the topic's creation waits: the last
	// group began less than an hour ago.
	entries0, _ := ctrl.GroupStats()
	done := make(chan error, parts)
	for i := range int32(parts) {
		go func() { done <- commit(i) }()
	}
	select {
	case err := <-done:
		t.Fatalf("a flush commit was written at once (%v), not held for company", err)
	case <-time.After(300 * time.Millisecond):
	}
	// An agent registering does not wait, and takes the flush commits
	// with it in one entry.
	if _, err := ctrl.Propose(context.Background(), RegisterAgent{Agent: AgentInfo{ID: 2, Addr: "h:2"}}); err != nil {
		t.Fatal(err)
	}
	for range parts {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("flush commits still waiting after a registration was written")
		}
	}
	entries, _ := ctrl.GroupStats()
	if entries-entries0 > 2 {
		t.Fatalf("%d entries for %d flush commits and a registration; want them grouped", entries-entries0, parts)
	}
	st = ctrl.State()
	for i := range int32(parts) {
		if p, _ := st.Partition(id, i); p.FlushedEnd != 10 {
			t.Fatalf("partition %d flushed to %d", i, p.FlushedEnd)
		}
	}
}

// gcCluster is a controller with one agent and a topic of one partition it
// leads, for the garbage-collection tests.
func gcCluster(t *testing.T, b tier.Bucket) (*Store, uuid.UUID, int32) {
	t.Helper()
	ctrl := open(t, b, 1)
	campaign(t, ctrl)
	zombie(ctrl, ctrl.ControllerEpoch())
	id := uuid.New()
	st := propose(t, ctrl, RegisterAgent{Agent: AgentInfo{ID: 1, Addr: "h:1"}},
		CreateTopic{ID: id, Name: "gc", Partitions: []PartitionSpec{{Replicas: []int32{1}, Leader: 1}}})
	p, _ := st.Partition(id, 0)
	return ctrl, id, p.LeaderEpoch
}

// A commit naming an object the bucket does not hold is refused (its
// flusher writes the range again), and so is one naming an object garbage
// collection has doomed, however late the proposal comes.
func TestCommitNamesObjectsInTheBucket(t *testing.T) {
	t.Parallel()
	b := tier.NewMemBucket()
	ctrl, id, epoch := gcCluster(t, b)
	commit := func(key string, first int64) error {
		_, err := ctrl.Propose(context.Background(), CommitSegments{Commits: []CommitSegment{{TopicID: id, Partition: 0, LeaderEpoch: epoch,
			Ref: SegmentRef{Object: key, Length: 10, FirstOffset: first, LastOffset: first + 9, LeaderEpoch: epoch}}}})
		return err
	}
	if err := commit("data/1/missing.seg", 0); !errors.Is(err, ErrInvalidSegment) || !strings.Contains(err.Error(), "not in the bucket") {
		t.Fatalf("commit of a missing object: %v", err)
	}
	for _, k := range []string{"data/1/a.seg", "data/1/b.seg", "data/1/c.seg"} {
		if _, err := b.Put(context.Background(), k, []byte("0123456789")); err != nil {
			t.Fatal(err)
		}
	}
	if err := commit("data/1/a.seg", 0); err != nil {
		t.Fatal(err)
	}
	// b.seg and c.seg are uploaded but not committed: orphans to
	// collect. A commit of b.seg that arrives once it is doomed is refused,
	// before and after its deletion.
	doomed, err := ctrl.Doom(context.Background(), func(st *State) []string {
		p, _ := st.Partition(id, 0)
		if len(p.Segments) != 1 || p.Segments[0].Object != "data/1/a.seg" {
			t.Errorf("settled state: %+v", p.Segments)
		}
		return []string{"data/1/b.seg", "data/1/c.seg"}
	})
	if err != nil || len(doomed) != 2 {
		t.Fatalf("Doom: %v, %v", doomed, err)
	}
	if err := commit("data/1/b.seg", 10); !errors.Is(err, ErrInvalidSegment) || !strings.Contains(err.Error(), "being deleted") {
		t.Fatalf("commit of a doomed object: %v", err)
	}
	for _, k := range doomed {
		if err := b.Delete(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	ctrl.Forget(doomed)
	if err := commit("data/1/b.seg", 10); !errors.Is(err, ErrInvalidSegment) || !strings.Contains(err.Error(), "not in the bucket") {
		t.Fatalf("commit of a deleted object: %v", err)
	}
	if p, _ := ctrl.State().Partition(id, 0); p.FlushedEnd != 10 {
		t.Fatalf("flushed end %d, want 10: a refused commit moved it", p.FlushedEnd)
	}
}

// A new controller settles the journal before deciding what is garbage:
// with nothing written in its epoch yet, it writes an entry first, which
// takes the sequence number a former controller's held-up write would
// land at (so that write can never land after the decision).
func TestDoomWritesInItsEpochFirst(t *testing.T) {
	t.Parallel()
	b := tier.NewMemBucket()
	old, _, _ := gcCluster(t, b)
	last := old.State().Seq
	old.Close()
	next := open(t, b, 2)
	// The old lease names agent 1; taking it needs a whole TTL of it
	// unchanged.
	deadline := time.Now().Add(10 * testTTL)
	for !next.IsController() {
		if time.Now().After(deadline) {
			t.Fatal("agent 2 never took the lease")
		}
		if _, err := next.Campaign(context.Background()); err != nil {
			t.Fatal(err)
		}
		time.Sleep(testTTL / 4)
	}
	zombie(next, next.ControllerEpoch())
	if _, err := next.Doom(context.Background(), func(st *State) []string { return nil }); err != nil {
		t.Fatal(err)
	}
	journal := keys(t, b, JournalPrefix)
	if got := journal[len(journal)-1]; got != last+1 {
		t.Fatalf("journal ends at %d, want %d: no entry written before deciding", got, last+1)
	}
	// A write the old controller had in flight for that number now fails.
	if _, err := b.PutIfAbsent(context.Background(), JournalKey(last+1), []byte("{}")); !errors.Is(err, tier.ErrPreconditionFailed) {
		t.Fatalf("a held-up write at %d: %v, want it refused", last+1, err)
	}
	// Settled once in its epoch, it writes nothing more.
	if _, err := next.Doom(context.Background(), func(st *State) []string { return nil }); err != nil {
		t.Fatal(err)
	}
	if got := keys(t, b, JournalPrefix); len(got) != len(journal) {
		t.Fatalf("a second Doom wrote again: %v", got)
	}
}
