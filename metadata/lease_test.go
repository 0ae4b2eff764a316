package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/tlog-io/tlog/metadata/clock/clocktest"
	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/tiertest"
)

// events records OnControllerChange calls.
type events struct {
	mu  sync.Mutex
	got []controllerEvent
}

func (e *events) record(c *Config) {
	c.OnControllerChange = func(isController bool, epoch int64) {
		e.mu.Lock()
		defer e.mu.Unlock()
		e.got = append(e.got, controllerEvent{isController, epoch})
	}
}

func (e *events) list() []controllerEvent {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]controllerEvent(nil), e.got...)
}

func readLease(t *testing.T, b tier.Bucket) leaseRecord {
	t.Helper()
	body, _, err := b.Get(context.Background(), ControllerKey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := decodeLease(body)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLeaseTakeover(t *testing.T) {
	t.Parallel()
	b := tier.NewMemBucket()
	var ev events
	old := open(t, b, 1, ev.record)
	challenger := open(t, b, 2)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go old.Run(ctx)
	waitFor(t, "agent 1 to become controller", old.IsController)
	if l := readLease(t, b); l.Agent != 1 || l.Epoch != 1 || l.TTLMs != testTTL.Milliseconds() {
		t.Fatalf("lease = %+v", l)
	}

	// A lease being renewed cannot be taken, however long one waits.
	for end := time.Now().Add(2 * testTTL); time.Now().Before(end); time.Sleep(testTTL / 10) {
		if ok, err := challenger.Campaign(context.Background()); ok || err != nil {
			t.Fatalf("challenger took a live lease: %v, %v", ok, err)
		}
	}
	if challenger.ControllerID() != 1 {
		t.Fatalf("challenger sees controller %d", challenger.ControllerID())
	}

	// The holder stops renewing: it steps down by itself within the TTL,
	// and the challenger takes over no sooner than a TTL after.
	cancel()
	stopped := time.Now()
	waitFor(t, "the old holder to step down", func() bool { return !old.IsController() })
	var took time.Time
	waitFor(t, "the challenger to take over", func() bool {
		ok, err := challenger.Campaign(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		took = time.Now()
		return ok
	})
	if d := took.Sub(stopped); d < testTTL-testTTL/3 {
		t.Fatalf("lease taken %v after the last possible renewal; TTL is %v", d, testTTL)
	}
	if challenger.ControllerEpoch() != 2 || readLease(t, b).Epoch != 2 {
		t.Fatalf("new epoch %d, want 2", challenger.ControllerEpoch())
	}
	if _, err := old.Propose(context.Background(), agent(1)); !errors.Is(err, ErrNotController) {
		t.Fatalf("old holder Propose = %v", err)
	}
	if ok, _ := old.Campaign(context.Background()); ok {
		t.Fatal("old holder took back a live lease")
	}
	waitFor(t, "both callbacks", func() bool { return len(ev.list()) == 2 })
	if got := ev.list(); got[0] != (controllerEvent{true, 1}) || got[1] != (controllerEvent{false, 1}) {
		t.Fatalf("callbacks = %v", got)
	}
	if _, err := challenger.Propose(context.Background(), agent(2)); err != nil {
		t.Fatal(err)
	}
}

func TestLeaseSameAgentRestart(t *testing.T) {
	t.Parallel()
	b := tier.NewMemBucket()
	first := open(t, b, 7, func(c *Config) { c.LeaseTTL = time.Hour })
	campaign(t, first)
	first.Close() // no Resign: the lease stays live for an hour
	if first.IsController() {
		t.Fatal("closed Store still controller")
	}
	other := open(t, b, 8)
	if ok, _ := other.Campaign(context.Background()); ok {
		t.Fatal("another agent took a live lease")
	}
	again := open(t, b, 7)
	campaign(t, again)
	if again.ControllerEpoch() != 2 {
		t.Fatalf("epoch after restart %d, want 2", again.ControllerEpoch())
	}
}

func TestLeaseAbsentAndResign(t *testing.T) {
	t.Parallel()
	b := tier.NewMemBucket()
	a := open(t, b, 1, func(c *Config) { c.LeaseTTL = time.Hour })
	c := open(t, b, 2)
	ok1, err1 := a.Campaign(context.Background())
	ok2, err2 := c.Campaign(context.Background())
	if !ok1 || ok2 || err1 != nil || err2 != nil {
		t.Fatalf("first campaigns: %v %v, %v %v", ok1, err1, ok2, err2)
	}
	if err := a.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	if a.IsController() {
		t.Fatal("resigned Store still controller")
	}
	if l := readLease(t, b); l.TTLMs != 0 || l.Agent != 1 {
		t.Fatalf("released lease = %+v", l)
	}
	campaign(t, c) // at once, despite the hour-long TTL
	if c.ControllerEpoch() != 2 {
		t.Fatalf("epoch %d", c.ControllerEpoch())
	}
}

func TestRenewalFailureDemotes(t *testing.T) {
	t.Parallel()
	f := tiertest.NewFaulty(tier.NewMemBucket())
	var ev events
	s := open(t, f, 1, ev.record)
	campaign(t, s)
	propose(t, s, agent(1))

	// Renewals fail: still controller until TTL minus the margin has passed
	// since the last success, then not, with no renewal needed to notice.
	f.SetError(tiertest.OpPutIfMatch, tiertest.ErrInjected)
	start := time.Now()
	if ok, err := s.Campaign(context.Background()); !errors.Is(err, tiertest.ErrInjected) || !ok {
		t.Fatalf("failing renewal: %v, %v; want still controller and the error", ok, err)
	}
	waitFor(t, "demotion", func() bool { return !s.IsController() })
	if d := time.Since(start); d > testTTL {
		t.Fatalf("demoted after %v, TTL is %v", d, testTTL)
	}
	if _, err := s.Propose(context.Background(), topicCmd("late")); !errors.Is(err, ErrNotController) {
		t.Fatalf("Propose after demotion = %v", err)
	}
	if got := keys(t, f, JournalPrefix); len(got) != 1 {
		t.Fatalf("journal = %v: a demoted controller wrote", got)
	}
	waitFor(t, "the demotion callback", func() bool { return len(ev.list()) == 2 })
	if got := ev.list()[1]; got != (controllerEvent{false, 1}) {
		t.Fatalf("callback = %v", got)
	}

	// The bucket recovers; the same agent retakes at once with a new epoch.
	f.SetError(tiertest.OpPutIfMatch, nil)
	campaign(t, s)
	if s.ControllerEpoch() != 2 {
		t.Fatalf("epoch %d", s.ControllerEpoch())
	}

	// A renewal refused by the bucket demotes at once.
	f.FailNext(tiertest.OpPutIfMatch, 1, tier.ErrPreconditionFailed)
	if ok, err := s.Campaign(context.Background()); ok || err != nil {
		t.Fatalf("renewal with lost precondition: %v, %v", ok, err)
	}
	if s.IsController() {
		t.Fatal("still controller after a failed precondition")
	}
}

func TestAmbiguousRenewal(t *testing.T) {
	t.Parallel()
	f := tiertest.NewFaulty(tier.NewMemBucket())
	s := open(t, f, 1)
	campaign(t, s)
	// The renewal lands but its reply is lost, so our ETag is stale. The
	// next renewal finds its own epoch in the lease and carries on.
	f.FailNextAfter(tiertest.OpPutIfMatch, 1, tiertest.ErrInjected)
	if _, err := s.Campaign(context.Background()); !errors.Is(err, tiertest.ErrInjected) {
		t.Fatalf("renewal = %v", err)
	}
	campaign(t, s)
	if s.ControllerEpoch() != 1 {
		t.Fatalf("epoch %d; an ambiguous renewal must not cost the lease", s.ControllerEpoch())
	}
}

func TestCorruptLease(t *testing.T) {
	t.Parallel()
	b := tier.NewMemBucket()
	if _, err := b.Put(context.Background(), ControllerKey, []byte("{")); err != nil {
		t.Fatal(err)
	}
	s := open(t, b, 1)
	if ok, err := s.Campaign(context.Background()); ok || err != nil {
		t.Fatalf("first campaign on a corrupt lease: %v, %v", ok, err)
	}
	time.Sleep(testTTL)
	campaign(t, s)
	var l leaseRecord
	body, _, _ := b.Get(context.Background(), ControllerKey)
	if err := json.Unmarshal(body, &l); err != nil || l.Agent != 1 || l.Epoch != 1 {
		t.Fatalf("lease %s, %v", body, err)
	}
}

// The lease is timed by the Store's clock: a holder counts as controller
// until TTL minus the margin after it sent its last successful renewal,
// and not from that instant on; a challenger takes the lease once it has
// seen it unchanged for a whole TTL. Time moves by the fake clock alone.
func TestLeaseFollowsTheClock(t *testing.T) {
	t.Parallel()
	const ttl = 10 * time.Second
	margin := ttl / 10
	clk := clocktest.NewFake(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC))
	on := func(c *Config) { c.LeaseTTL, c.Clock = ttl, clk }
	b := tier.NewMemBucket()
	var ev events
	holder := open(t, b, 1, on, ev.record)
	challenger := open(t, b, 2, on)
	campaign(t, holder)

	clk.Advance(ttl - margin - time.Millisecond)
	if !holder.IsController() {
		t.Fatal("demoted before its deadline")
	}
	// A renewal sent now moves the deadline to TTL minus the margin from now.
	campaign(t, holder)
	clk.Advance(ttl - margin - time.Millisecond)
	if !holder.IsController() {
		t.Fatal("demoted before the deadline its renewal set")
	}
	if _, ok := holder.ControllerDeadline(); !ok {
		t.Fatal("no deadline while controller")
	}
	clk.Advance(time.Millisecond)
	if holder.IsController() {
		t.Fatal("still controller once its renewal deadline passed on its clock")
	}
	if _, ok := holder.ControllerDeadline(); ok {
		t.Fatal("a deadline after the lease lapsed")
	}
	if _, err := holder.Propose(context.Background(), topicCmd("late")); !errors.Is(err, ErrNotController) {
		t.Fatalf("Propose after the deadline = %v", err)
	}
	waitFor(t, "the demotion callback", func() bool { return len(ev.list()) == 2 })
	if got := ev.list()[1]; got != (controllerEvent{false, 1}) {
		t.Fatalf("callback = %v", got)
	}

	// The challenger starts timing the lease when it first reads it.
	for _, d := range []time.Duration{0, ttl - time.Millisecond} {
		clk.Advance(d)
		if ok, err := challenger.Campaign(context.Background()); ok || err != nil {
			t.Fatalf("challenger after seeing the lease unchanged for %v: %v, %v", d, ok, err)
		}
	}
	clk.Advance(time.Millisecond)
	if ok, err := challenger.Campaign(context.Background()); !ok || err != nil {
		t.Fatalf("challenger after a whole TTL: %v, %v", ok, err)
	}
	if l := readLease(t, b); l.Agent != 2 || l.Epoch != 2 {
		t.Fatalf("lease = %+v", l)
	}
}
