// Package peertest holds test support for the peer transport: a wrapper
// that cuts an agent off from its peers (refused at once, or a blackhole
// where nothing fails fast), or one peer from it, or slows what it sends.
package peertest

import (
	"context"
	"errors"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

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
	// dark: a blackhole, as a firewall that drops packets makes: dials
	// hang until their deadline, writes vanish, reads wait; nothing is
	// refused or closed. healed is closed when it ends.
	dark   bool
	healed chan struct{}
	// delay: what this agent writes arrives this late (a slow link, one
	// way), in order.
	delay time.Duration
}

// NewFaults wraps inner (TCP if nil).
func NewFaults(inner peer.Transport) *Faults {
	if inner == nil {
		inner = peer.TCP{}
	}
	return &Faults{Inner: inner, conns: map[net.Conn]struct{}{}, blocked: map[string]bool{}, healed: make(chan struct{})}
}

// Blackhole cuts the agent off as a packet-dropping firewall does: its
// dials hang until their context ends, what it or its peers write on
// open connections is lost, reads wait; nothing fails fast. Heal ends
// it (connections then carry on, having lost what was written).
func (f *Faults) Blackhole() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.dark {
		f.dark = true
		f.healed = make(chan struct{})
	}
}

// Delay makes what the agent writes on its peer connections arrive d
// late, in order, as a slow link does; Heal (or Delay(0)) ends it for
// what is written after.
func (f *Faults) Delay(d time.Duration) {
	f.mu.Lock()
	f.delay = d
	f.mu.Unlock()
}

func (f *Faults) currentDelay() time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.delay
}

// darkness is the channel closed when the blackhole ends, or nil if there
// is none.
func (f *Faults) darkness() chan struct{} {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.dark {
		return nil
	}
	return f.healed
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
	f.delay = 0
	if f.dark {
		f.dark = false
		close(f.healed)
	}
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
	tc := &trackedConn{Conn: c, f: f, dialed: dialed, closed: make(chan struct{})}
	f.conns[tc] = struct{}{}
	return tc, true
}

func (f *Faults) Dial(ctx context.Context, addr string) (net.Conn, error) {
	if dark := f.darkness(); dark != nil {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-dark:
		}
	}
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
	closed chan struct{}

	mu                          sync.Mutex
	readDeadline, writeDeadline time.Time

	// Delayed writes: once a write is delayed, every later one goes
	// through the queue too, so the order holds.
	delayOnce sync.Once
	delaying  atomic.Bool
	delayed   chan delayedWrite
	delayErr  error // the first failed delayed write (under mu)
	delayWG   sync.WaitGroup
}

type delayedWrite struct {
	b   []byte
	due time.Time
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.f.mu.Lock()
		delete(c.f.conns, c)
		c.f.mu.Unlock()
		close(c.closed)
	})
	err := c.Conn.Close()
	c.delayWG.Wait()
	return err
}

// writeLater queues b to be written once d has passed.
func (c *trackedConn) writeLater(b []byte, d time.Duration) (int, error) {
	c.delayOnce.Do(func() {
		c.delayed = make(chan delayedWrite, 4096)
		c.delayWG.Add(1)
		go c.writeDelayed()
		c.delaying.Store(true)
	})
	c.mu.Lock()
	err := c.delayErr
	c.mu.Unlock()
	if err != nil {
		return 0, err
	}
	select {
	case c.delayed <- delayedWrite{b: append([]byte(nil), b...), due: time.Now().Add(d)}:
		return len(b), nil
	case <-c.closed:
		return 0, net.ErrClosed
	}
}

func (c *trackedConn) writeDelayed() {
	defer c.delayWG.Done()
	for {
		select {
		case <-c.closed:
			return
		case w := <-c.delayed:
			if wait := time.Until(w.due); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-c.closed:
					t.Stop()
					return
				}
			}
			if _, err := c.Conn.Write(w.b); err != nil {
				c.mu.Lock()
				c.delayErr = err
				c.mu.Unlock()
				return
			}
		}
	}
}

func (c *trackedConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.readDeadline, c.writeDeadline = t, t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *trackedConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.readDeadline = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

func (c *trackedConn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.writeDeadline = t
	c.mu.Unlock()
	return c.Conn.SetWriteDeadline(t)
}

// waitLight waits out a blackhole, as TCP holds its segments until the
// path is back: it returns at once without one, or the deadline's error,
// or net.ErrClosed.
func (c *trackedConn) waitLight(write bool) error {
	dark := c.f.darkness()
	if dark == nil {
		return nil
	}
	c.mu.Lock()
	deadline := c.readDeadline
	if write {
		deadline = c.writeDeadline
	}
	c.mu.Unlock()
	var expire <-chan time.Time
	if !deadline.IsZero() {
		t := time.NewTimer(time.Until(deadline))
		defer t.Stop()
		expire = t.C
	}
	select {
	case <-dark:
		return nil
	case <-c.closed:
		return net.ErrClosed
	case <-expire:
		return os.ErrDeadlineExceeded
	}
}

// Write waits out a blackhole before sending, and queues what a slow
// link delays.
func (c *trackedConn) Write(b []byte) (int, error) {
	if err := c.waitLight(true); err != nil {
		return 0, err
	}
	if d := c.f.currentDelay(); d > 0 || c.delaying.Load() {
		return c.writeLater(b, d)
	}
	return c.Conn.Write(b)
}

// Read waits out a blackhole before reading, and holds what arrives
// during one until it ends.
func (c *trackedConn) Read(b []byte) (int, error) {
	if err := c.waitLight(false); err != nil {
		return 0, err
	}
	n, err := c.Conn.Read(b)
	if n > 0 {
		if werr := c.waitLight(false); werr != nil {
			return 0, werr
		}
	}
	return n, err
}
