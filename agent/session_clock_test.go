package agent_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/metadata/clock/clocktest"
	"github.com/tlog-io/tlog/tests/tlogtest"
)

// The session rule on the agent's own clock: a leader cut off from the
// controller counts its session as lapsed 0.9 × SessionTimeout after it
// sent the last heartbeat the controller answered. acks=1 is taken until
// that instant and refused from it on. Time moves by a fake clock on
// that agent alone; real time decides nothing while the test runs (the
// session, lease and lag limits are far longer than it takes, and than
// the fake clock moves).
func TestSessionLapsesOnTheAgentsClock(t *testing.T) {
	const session = 10 * time.Second
	lapse := session - session/10
	clk := clocktest.NewFake(time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC))
	c := tlogtest.CreateCluster(t, 2, func(cfg *agent.Config) {
		cfg.SessionTimeout, cfg.DisconnectGrace = session, session
		cfg.LeaseTTL, cfg.ReplicaLagMax = 5*time.Minute, 5*time.Minute
		cfg.NoAutoBalance = true
		if cfg.ID == 2 {
			cfg.Clock = clk
		}
	})
	c.Controller(5 * time.Second)
	// Agent 2 joins once the lease is held, so it is not the controller.
	z := c.Add("")
	c.CreateTopic("sess", 3, 3, nil)
	var p int32 = -1
	for i := range int32(3) {
		if c.WaitOnLeader("sess", i, 5*time.Second) == z.ID {
			p = i
			break
		}
	}
	if p < 0 {
		t.Fatal("agent 2 leads no partition")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	acks1 := func(v string) int16 {
		t.Helper()
		code, _, err := tlogtest.ProduceTo(ctx, z.Kafka, "sess", p, 1, v)
		if err != nil && code == 0 {
			t.Fatalf("acks=1 %q: %v", v, err)
		}
		return code
	}
	live := func(v string) {
		t.Helper()
		tlogtest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
			if code := acks1(v); code != 0 {
				return fmt.Errorf("acks=1 refused: code %d", code)
			}
			return nil
		})
	}
	// cutAndLapse cuts agent 2 off: every heartbeat the controller
	// answered was sent at the fake clock's current instant, which has not
	// moved while they were answered. Its session ends lapse after it.
	cutAndLapse := func(round int) {
		t.Helper()
		c.Cut(z.ID)
		clk.Advance(lapse - time.Millisecond)
		if code := acks1(fmt.Sprintf("before-%d", round)); code != 0 {
			t.Fatalf("round %d: acks=1 a millisecond before the session lapses: code %d", round, code)
		}
		clk.Advance(time.Millisecond)
		if code := acks1(fmt.Sprintf("after-%d", round)); code != kerr.NotLeaderForPartition.Code {
			t.Fatalf("round %d: acks=1 once the session lapsed: code %d, want NOT_LEADER_OR_FOLLOWER", round, code)
		}
		if !z.A.Leads("sess", p) {
			t.Fatalf("round %d: agent 2 learned it no longer leads; the test needs it to believe it does", round)
		}
	}

	live("first")
	cutAndLapse(1)
	// Heard again: its next answered heartbeat, sent at the instant its
	// session lapsed, starts a new one once it has caught up.
	c.Heal(z.ID)
	live("healed")
	cutAndLapse(2)

	// Cut off for a whole session on its clock, it tells the controller
	// through the bucket that it cannot reach it (the vote a controller
	// that hears too few agents looks for).
	votes := func() int {
		t.Helper()
		objs, err := c.Bucket.List(ctx, "meta/unreachable/")
		if err != nil {
			t.Fatal(err)
		}
		return len(objs)
	}
	if n := votes(); n != 0 {
		t.Fatalf("%d unreachable-controller votes after less than a session cut off", n)
	}
	// Its first failed heartbeat starts the count whenever it comes: the
	// clock moves on a little at every look.
	tlogtest.CheckFor(t, 5*time.Second, 20*time.Millisecond, func() error {
		if n := votes(); n != 1 {
			clk.Advance(session / 20)
			return fmt.Errorf("%d unreachable-controller votes", n)
		}
		return nil
	})
	c.Heal(z.ID)
}
