// Package peertest holds test support for the peer transport: a wrapper
// that cuts an agent off from its peers, or one peer from it.
package peertest

import (
	"context"
	"errors"
	"net"
	"sync"

	"github.com/tlog-io/tlog/agent/peer"
)

// ErrCut is what a cut-off transport answers.
var ErrCut = errors.New("peer transport cut off (fault injection)")

// Faults wraps a peer.Transport so a test can cut one agent off from all of its
// peers and heal it again: while cut, its dials fail, connections it
// accepts are closed at once, and every connection it had is closed. Each
// agent gets its own Faults; cutting one isolates that agent only.
type Faults struct {
	Inner peer.Transport

	mu      sync.Mutex
	cut     bool
	blocked map[string]bool // dial targets refused (one-way partitions)
	conns   map[net.Conn]struct{}
}

// NewFaults wraps inner (TCP if nil).
func NewFaults(inner peer.Transport) *Faults {
	if inner == nil {
		inner = peer.TCP{}
	}
	return &Faults{Inner: inner, conns: map[net.Conn]struct{}{}, blocked: map[string]bool{}}
}

// Block refuses this agent's dials to addr and closes its connections to
// it: a one-way partition (addr may still dial in).
func (f *Faults) Block(addr string) {
	f.mu.Lock()
	f.blocked[addr] = true
	var doomed []net.Conn
	for c := range f.conns {
		if tc, ok := c.(*trackedConn); ok && tc.dialed == addr {
			doomed = append(doomed, c)
		}
	}
	f.mu.Unlock()
	for _, c := range doomed {
		c.Close()
	}
}

// Unblock lifts Block.
func (f *Faults) Unblock(addr string) {
	f.mu.Lock()
	delete(f.blocked, addr)
	f.mu.Unlock()
}

// Cut isolates the agent: existing connections close, new ones fail.
func (f *Faults) Cut() {
	f.mu.Lock()
	f.cut = true
	conns := f.conns
	f.conns = map[net.Conn]struct{}{}
	f.mu.Unlock()
	for c := range conns {
		c.Close()
	}
}

// Heal lets connections through again.
func (f *Faults) Heal() {
	f.mu.Lock()
	f.cut = false
	f.mu.Unlock()
}

// IsCut reports whether the agent is cut off.
func (f *Faults) IsCut() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cut
}

func (f *Faults) track(c net.Conn, dialed string) (net.Conn, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cut || f.blocked[dialed] && dialed != "" {
		return nil, false
	}
	tc := &trackedConn{Conn: c, f: f, dialed: dialed}
	f.conns[tc] = struct{}{}
	return tc, true
}

func (f *Faults) Dial(ctx context.Context, addr string) (net.Conn, error) {
	f.mu.Lock()
	refused := f.cut || f.blocked[addr]
	f.mu.Unlock()
	if refused {
		return nil, ErrCut
	}
	c, err := f.Inner.Dial(ctx, addr)
	if err != nil {
		return nil, err
	}
	tc, ok := f.track(c, addr)
	if !ok {
		c.Close()
		return nil, ErrCut
	}
	return tc, nil
}

func (f *Faults) Listen(addr string) (net.Listener, error) {
	l, err := f.Inner.Listen(addr)
	if err != nil {
		return nil, err
	}
	return &faultListener{Listener: l, f: f}, nil
}

type faultListener struct {
	net.Listener
	f *Faults
}

func (l *faultListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if tc, ok := l.f.track(c, ""); ok {
			return tc, nil
		}
		c.Close() // cut: the caller sees its connection drop
	}
}

type trackedConn struct {
	net.Conn
	f      *Faults
	dialed string // the address this side dialed ("" if accepted)
	once   sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.f.mu.Lock()
		delete(c.f.conns, c)
		c.f.mu.Unlock()
	})
	return c.Conn.Close()
}
