package peertest_test

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/tlog-io/tlog/agent/peer"
	"github.com/tlog-io/tlog/agent/peer/peertest"
)

func TestFaultsCutAndHeal(t *testing.T) {
	f := peertest.NewFaults(nil)
	l := probeServer(t, f)
	other := peertest.NewFaults(nil)
	cl := probeClient(t, other, l)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.Call(ctx, peer.TypeProbe, &peer.Probe{}, &peer.ProbeResp{}); err != nil {
		t.Fatal(err)
	}
	f.Cut()
	select {
	case <-cl.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("connection to a cut agent stayed open")
	}
	if _, err := f.Dial(ctx, l.Addr().String()); !errors.Is(err, peertest.ErrCut) {
		t.Fatalf("dial from a cut agent: %v", err)
	}
	// A new connection to it is accepted by TCP, then dropped.
	nc2, err := other.Dial(ctx, l.Addr().String())
	if err == nil {
		c2 := peer.NewConn(nc2, nil)
		if err := c2.Call(ctx, peer.TypeProbe, &peer.Probe{}, &peer.ProbeResp{}); err == nil {
			t.Fatal("a call reached a cut agent")
		}
		c2.Close()
	}
	f.Heal()
	nc3, err := other.Dial(ctx, l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c3 := peer.NewConn(nc3, nil)
	defer c3.Close()
	if err := c3.Call(ctx, peer.TypeProbe, &peer.Probe{}, &peer.ProbeResp{}); err != nil {
		t.Fatalf("after heal: %v", err)
	}
}

// A blackholed agent fails nothing fast: a call to it waits until its
// deadline, its own dials wait until theirs, and after Heal the same
// connection carries calls again.
func TestFaultsBlackhole(t *testing.T) {
	f := peertest.NewFaults(nil)
	l := probeServer(t, f)
	other := peertest.NewFaults(nil)
	cl := probeClient(t, other, l)
	call := func(d time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		return cl.Call(ctx, peer.TypeProbe, &peer.Probe{}, &peer.ProbeResp{})
	}
	if err := call(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	f.Blackhole()
	start := time.Now()
	if err := call(300 * time.Millisecond); err == nil {
		t.Fatal("a call reached a blackholed agent")
	}
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Fatalf("the call failed after %v, before its deadline", waited)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	_, err := f.Dial(ctx, l.Addr().String())
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("dial from a blackholed agent: %v, want its deadline", err)
	}
	select {
	case <-cl.Done():
		t.Fatal("a blackhole closed the connection")
	default:
	}
	f.Heal()
	c2 := probeClient(t, other, l)
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c2.Call(ctx, peer.TypeProbe, &peer.Probe{}, &peer.ProbeResp{}); err != nil {
		t.Fatalf("after healing: %v", err)
	}
}

// probeServer listens through f and answers every probe, until the test
// ends.
func probeServer(t *testing.T, f *peertest.Faults) net.Listener {
	t.Helper()
	l, err := f.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			peer.NewConn(nc, func(c *peer.Conn, fr peer.Frame) { c.Reply(fr, &peer.ProbeResp{LEO: 1}) })
		}
	}()
	return l
}

// probeClient is a peer connection from an agent behind from to the probe
// server l, closed when the test ends.
func probeClient(t *testing.T, from *peertest.Faults, l net.Listener) *peer.Conn {
	t.Helper()
	nc, err := from.Dial(context.Background(), l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	cl := peer.NewConn(nc, nil)
	t.Cleanup(func() { cl.Close() })
	return cl
}

// A delayed agent's calls are answered late by about the delay, in order,
// and on time again once healed.
func TestFaultsDelay(t *testing.T) {
	other := peertest.NewFaults(nil)
	l := probeServer(t, peertest.NewFaults(nil))
	cl := probeClient(t, other, l)
	call := func() time.Duration {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		start := time.Now()
		if err := cl.Call(ctx, peer.TypeProbe, &peer.Probe{}, &peer.ProbeResp{}); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	call()
	other.Delay(300 * time.Millisecond)
	// Pipelined calls share the link: five take about one delay, not five.
	start := time.Now()
	errs := make(chan error, 5)
	for range 5 {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			errs <- cl.Call(ctx, peer.TypeProbe, &peer.Probe{}, &peer.ProbeResp{})
		}()
	}
	for range 5 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took < 300*time.Millisecond || took > 2*time.Second {
		t.Fatalf("five pipelined calls over a 300 ms link took %v", took)
	}
	other.Heal()
	if took := call(); took >= 300*time.Millisecond {
		t.Fatalf("healed, a call took %v", took)
	}
}
