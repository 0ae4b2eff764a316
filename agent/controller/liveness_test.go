package controller_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/tlog-io/tlog/agent/controller"
	"github.com/tlog-io/tlog/agent/peer"
	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/metadata/clock/clocktest"
	"github.com/tlog-io/tlog/tier"
)

// newController runs a controller over a metadata store on an in-memory
// bucket, both on clk, holding the lease as agent 0. Its loop does not
// run: the test ticks it.
func newController(t *testing.T, clk *clocktest.Fake, session time.Duration) (*controller.Controller, *metadata.Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	bucket := tier.NewMemBucket()
	log := slog.New(slog.DiscardHandler)
	var store *metadata.Store
	ct := controller.New(ctx, controller.Config{
		ID: 0, SessionTimeout: session, DisconnectGrace: session / 6, BalanceInterval: time.Hour,
		NoAutoBalance: true, LeaseTTL: time.Minute, Bucket: bucket, Logger: log, Clock: clk,
		Propose: func(ctx context.Context, cmds ...metadata.Command) (*metadata.State, error) {
			return store.Propose(ctx, cmds...)
		},
		Journaled: func() {},
	})
	store, err := metadata.Open(ctx, metadata.Config{
		Bucket: bucket, AgentID: 0, LeaseTTL: time.Minute, PollInterval: time.Hour,
		Logger: log, Clock: clk, OnAppend: ct.OnAppend,
	})
	if err != nil {
		t.Fatal(err)
	}
	ct.SetStore(store)
	t.Cleanup(func() {
		cancel()
		store.Close()
		ct.Wait()
	})
	if ok, err := store.Campaign(ctx); !ok || err != nil {
		t.Fatalf("campaign: %v %v", ok, err)
	}
	ct.OnChange(true, store.ControllerEpoch())
	return ct, store
}

// start is where the tests' fake clocks begin: far from the real time,
// so an instant read from the real clock where the fake one should be
// stands out.
var start = time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)

func heartbeat(t *testing.T, ct *controller.Controller, id int32) { heartbeatOn(t, ct, nil, id) }

// heartbeatOn delivers agent id's heartbeat as if it came on c (nil: the
// controller's own agent).
func heartbeatOn(t *testing.T, ct *controller.Controller, c *peer.Conn, id int32) {
	t.Helper()
	hb := peer.Heartbeat{ID: id, Addr: fmt.Sprintf("127.0.0.1:%d", 9092+id), PeerAddr: fmt.Sprintf("127.0.0.1:%d", 9192+id), Incarnation: 1}
	if resp := ct.OnHeartbeat(c, hb); resp.Code != peer.OK {
		t.Fatalf("heartbeat of agent %d: %+v", id, resp)
	}
}

func tick(t *testing.T, ct *controller.Controller) {
	t.Helper()
	if err := ct.Tick(); err != nil {
		t.Fatal(err)
	}
}

// fenced lists the fenced agents among ids.
func fenced(s *metadata.Store, ids ...int32) []int32 {
	var out []int32
	for _, id := range ids {
		if s.State().Agents[id].Fenced {
			out = append(out, id)
		}
	}
	return out
}

// An agent not heard from for longer than SessionTimeout on the
// controller's clock is fenced at the next tick; one heard within the
// window is not. Time moves by the fake clock alone.
func TestFencesAgentSilentForASession(t *testing.T) {
	const session = 3 * time.Second
	clk := clocktest.NewFake(start)
	ct, store := newController(t, clk, session)

	// Three agents register with their first heartbeats (the controller
	// itself is 0 and never fences itself).
	for id := range int32(3) {
		heartbeat(t, ct, id)
	}
	tick(t, ct)
	for id := range int32(3) {
		if info, ok := store.State().Agents[id]; !ok || info.Fenced {
			t.Fatalf("agent %d after registering: %+v %v", id, info, ok)
		}
	}

	// Agent 2 heartbeats again 2s on; agent 1 falls silent.
	clk.Advance(2 * time.Second)
	heartbeat(t, ct, 2)
	tick(t, ct)
	// Agent 1 has been silent exactly a session: not more than one.
	clk.Advance(session - 2*time.Second)
	tick(t, ct)
	if f := fenced(store, 1, 2); len(f) != 0 {
		t.Fatalf("fenced %v within the session", f)
	}
	clk.Advance(time.Millisecond)
	tick(t, ct)
	if f := fenced(store, 1, 2); len(f) != 1 || f[0] != 1 {
		t.Fatalf("fenced %v after agent 1 was silent for more than a session; want [1]", f)
	}
	// Heard again, it is unfenced.
	heartbeat(t, ct, 1)
	tick(t, ct)
	if f := fenced(store, 1, 2); len(f) != 0 {
		t.Fatalf("fenced %v after agent 1 was heard again", f)
	}
}

// An agent whose heartbeat connection dropped is fenced once it has
// stayed down for longer than DisconnectGrace on the controller's clock,
// well within its session.
func TestFencesAgentWhoseConnectionStaysDown(t *testing.T) {
	const session, grace = 3 * time.Second, 500 * time.Millisecond
	clk := clocktest.NewFake(start)
	ct, store := newController(t, clk, session)
	near, far := net.Pipe()
	c := peer.NewConn(near, nil)
	c.Remote = 2
	other := peer.NewConn(far, nil)
	defer other.Close()
	for id := range int32(2) {
		heartbeat(t, ct, id)
	}
	heartbeatOn(t, ct, c, 2)
	tick(t, ct)

	c.Close()
	// The controller's goroutines for c (its pushes, the watch that notes
	// the drop) end once it has noted it; nothing else runs.
	ct.Wait()
	clk.Advance(grace)
	heartbeat(t, ct, 1)
	tick(t, ct)
	if f := fenced(store, 1, 2); len(f) != 0 {
		t.Fatalf("fenced %v with the connection down for exactly the grace", f)
	}
	clk.Advance(time.Millisecond)
	tick(t, ct)
	if f := fenced(store, 1, 2); len(f) != 1 || f[0] != 2 {
		t.Fatalf("fenced %v with agent 2's connection down past the grace; want [2]", f)
	}
}

// A controller that takes over gives every registered agent a whole
// session from then, on its clock, however long they were silent before.
func TestNewControllerGivesEveryAgentASession(t *testing.T) {
	const session = 3 * time.Second
	clk := clocktest.NewFake(start)
	ct, store := newController(t, clk, session)
	for id := range int32(2) {
		heartbeat(t, ct, id)
	}
	tick(t, ct)

	// The lease lapsed meanwhile; the store takes it again.
	clk.Advance(time.Hour)
	if ok, err := store.Campaign(context.Background()); !ok || err != nil {
		t.Fatalf("campaign: %v %v", ok, err)
	}
	ct.OnChange(true, store.ControllerEpoch()) // as the store reports the takeover
	tick(t, ct)
	clk.Advance(session)
	tick(t, ct)
	if f := fenced(store, 1); len(f) != 0 {
		t.Fatalf("fenced %v within the first session after the takeover", f)
	}
	clk.Advance(time.Millisecond)
	tick(t, ct)
	if f := fenced(store, 1); len(f) != 1 {
		t.Fatalf("fenced %v a session after the takeover; want [1]", f)
	}
}
