package tlogtest

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// FaultyDialer is a franz-go dialer (kgo.Dialer(d.Dial)) that a test can
// turn against its client: Cut drops every connection and refuses new
// ones (the client looks crashed or partitioned to the agents), and
// DropResponses swallows some responses from the agents, so requests
// that were carried out are retried by the client.
type FaultyDialer struct {
	mu    sync.Mutex
	cut   bool
	conns map[*faultyConn]struct{}
	// dropEvery > 0: every dropEvery-th response to a dropKey request is
	// swallowed and its connection closed (the client sees the request
	// fail and retries it).
	dropEvery atomic.Int64
	dropKey   atomic.Int32
	frames    atomic.Int64
	Dropped   atomic.Int64
}

// NewFaultyDialer returns a dialer with no faults.
func NewFaultyDialer() *FaultyDialer {
	return &FaultyDialer{conns: map[*faultyConn]struct{}{}}
}

// Dial is the kgo.Dialer function.
func (d *FaultyDialer) Dial(ctx context.Context, network, host string) (net.Conn, error) {
	d.mu.Lock()
	cut := d.cut
	d.mu.Unlock()
	if cut {
		return nil, errors.New("faulty dialer: cut off")
	}
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, host)
	if err != nil {
		return nil, err
	}
	fc := &faultyConn{Conn: c, d: d}
	d.mu.Lock()
	if d.cut {
		d.mu.Unlock()
		c.Close()
		return nil, errors.New("faulty dialer: cut off")
	}
	d.conns[fc] = struct{}{}
	d.mu.Unlock()
	return fc, nil
}

// Cut closes every connection and refuses new ones until Heal.
func (d *FaultyDialer) Cut() {
	d.mu.Lock()
	d.cut = true
	conns := d.conns
	d.conns = map[*faultyConn]struct{}{}
	d.mu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
}

// Heal lets connections through again.
func (d *FaultyDialer) Heal() {
	d.mu.Lock()
	d.cut = false
	d.mu.Unlock()
}

// DropResponses swallows every n-th response to requests of API key
// (0 = Produce; n 0: none).
func (d *FaultyDialer) DropResponses(key int16, n int) {
	d.dropKey.Store(int32(key))
	d.dropEvery.Store(int64(n))
}

type faultyConn struct {
	net.Conn
	d *FaultyDialer

	rmu sync.Mutex
	buf []byte // bytes of a frame read but not yet returned

	wmu     sync.Mutex
	pending []byte          // request bytes written, not yet framed
	keys    map[int32]int16 // correlation id → API key of requests sent
}

// Write notes each request's API key by correlation id, so Read knows
// what a response answers.
func (c *faultyConn) Write(p []byte) (int, error) {
	c.wmu.Lock()
	c.pending = append(c.pending, p...)
	for len(c.pending) >= 12 {
		n := int(binary.BigEndian.Uint32(c.pending))
		if len(c.pending) < 4+n {
			break
		}
		key := int16(binary.BigEndian.Uint16(c.pending[4:]))
		corr := int32(binary.BigEndian.Uint32(c.pending[8:]))
		if c.keys == nil {
			c.keys = map[int32]int16{}
		}
		c.keys[corr] = key
		c.pending = c.pending[4+n:]
	}
	c.wmu.Unlock()
	return c.Conn.Write(p)
}

func (c *faultyConn) keyOf(corr int32) (int16, bool) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	k, ok := c.keys[corr]
	delete(c.keys, corr)
	return k, ok
}

// Read passes the agent's response frames through whole, or drops one
// and closes the connection.
func (c *faultyConn) Read(p []byte) (int, error) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if len(c.buf) == 0 {
		var hdr [4]byte
		if _, err := io.ReadFull(c.Conn, hdr[:]); err != nil {
			return 0, err
		}
		n := int(binary.BigEndian.Uint32(hdr[:]))
		if n > 256<<20 {
			return 0, errors.New("faulty dialer: response frame too large")
		}
		frame := make([]byte, 4+n)
		copy(frame, hdr[:])
		if _, err := io.ReadFull(c.Conn, frame[4:]); err != nil {
			return 0, err
		}
		key, _ := c.keyOf(int32(binary.BigEndian.Uint32(frame[4:])))
		if every := c.d.dropEvery.Load(); every > 0 && int32(key) == c.d.dropKey.Load() && c.d.frames.Add(1)%every == 0 {
			c.d.Dropped.Add(1)
			c.Conn.Close()
			return 0, io.ErrUnexpectedEOF
		}
		c.buf = frame
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	return n, nil
}

func (c *faultyConn) Close() error {
	c.d.mu.Lock()
	delete(c.d.conns, c)
	c.d.mu.Unlock()
	return c.Conn.Close()
}
