// Package peer is the agent-to-agent protocol on the peer port: framed,
// multiplexed messages over one TCP connection per (caller, callee) pair.
// Either side may send requests; responses are matched by correlation id,
// so a caller can pipeline many requests (replication does) and read the
// answers as they come. Requests are handled in arrival order, one at a
// time, which gives per-connection ordering to whatever they start.
//
// A frame is: u32 length of the rest | u8 type | u32 correlation id |
// body. Correlation id 0 marks a one-way message. The length is checked
// against MaxFrame before anything is allocated.
package peer

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// MaxFrame bounds one frame: a replication append carries at most a few
// MiB of batches, control messages far less.
const MaxFrame = 64 << 20

// ErrClosed is returned for calls on a closed connection, and given to
// callbacks of calls still waiting when it closed.
var ErrClosed = errors.New("peer connection closed")

// Frame is one received message.
type Frame struct {
	Type uint8
	Corr uint32
	Body []byte
}

// IsResponse reports whether the frame answers a request.
func (f Frame) IsResponse() bool { return f.Type&responseBit != 0 }

// Handler handles a request arriving on c. It runs on c's reader, so the
// next request waits for it: long work belongs elsewhere, with the reply
// sent later through c.Reply.
type Handler func(c *Conn, f Frame)

// Conn is one peer connection.
type Conn struct {
	nc     net.Conn
	handle Handler

	mu       sync.Mutex
	nextCorr uint32
	pending  map[uint32]func([]byte, error)
	closed   bool
	err      error

	out  chan outFrame
	done chan struct{}
	wg   sync.WaitGroup

	// Remote is whatever the owner wants to remember about the other end
	// (the agent id after Hello). Set it before handling requests.
	Remote int32
	// Challenge is the nonce this end sent the caller to prove the
	// cluster secret over (single use; the connection's reader alone
	// touches it).
	Challenge []byte
}

// NewConn starts serving nc: requests go to handle (nil: every request is
// answered by closing the connection).
func NewConn(nc net.Conn, handle Handler) *Conn {
	c := &Conn{
		nc:      nc,
		handle:  handle,
		pending: map[uint32]func([]byte, error){},
		out:     make(chan outFrame, 512),
		done:    make(chan struct{}),
		Remote:  -1,
	}
	c.wg.Add(2)
	go c.reader()
	go c.writer()
	return c
}

// Done is closed once the connection is.
func (c *Conn) Done() <-chan struct{} { return c.done }

// Err says why the connection closed (nil while open).
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// RemoteAddr is the other end's address.
func (c *Conn) RemoteAddr() string { return c.nc.RemoteAddr().String() }

// Close closes the connection; waiting calls fail with ErrClosed.
func (c *Conn) Close() error {
	c.fail(ErrClosed)
	return nil
}

func (c *Conn) fail(err error) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed, c.err = true, err
	pending := c.pending
	c.pending = nil
	close(c.done)
	c.mu.Unlock()
	c.nc.Close()
	for _, cb := range pending {
		cb(nil, fmt.Errorf("%w: %v", ErrClosed, err))
	}
}

// outFrame is one frame to send: head, then tail as it is (a message's
// last field, Enc.TailBytes).
type outFrame struct{ head, tail []byte }

func (f outFrame) size() int { return len(f.head) + len(f.tail) }

func frame(typ uint8, corr uint32, m Message) outFrame {
	size := 64
	if s, ok := m.(sized); ok {
		size = 9 + s.encodedSize()
	}
	e := Enc{B: make([]byte, 9, size)}
	if m != nil {
		m.Encode(&e)
	}
	binary.BigEndian.PutUint32(e.B, uint32(len(e.B)+len(e.Tail)-4))
	e.B[4] = typ
	binary.BigEndian.PutUint32(e.B[5:], corr)
	return outFrame{head: e.B, tail: e.Tail}
}

// sized is a Message that knows the encoded size of what it puts in Enc.B,
// so its frame's head is allocated once rather than grown by copying.
type sized interface{ encodedSize() int }

func (c *Conn) enqueue(f outFrame) error {
	if f.size()-4 > MaxFrame {
		return fmt.Errorf("peer: frame of %d bytes exceeds %d", f.size()-4, MaxFrame)
	}
	select {
	case c.out <- f:
		return nil
	case <-c.done:
		return ErrClosed
	}
}

// Go sends a request and calls cb with the response body (or an error)
// from the connection's reader: cb must not block. It blocks only while
// the send queue is full.
func (c *Conn) Go(typ uint8, m Message, cb func(body []byte, err error)) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return ErrClosed
	}
	c.nextCorr++
	if c.nextCorr == 0 {
		c.nextCorr = 1
	}
	corr := c.nextCorr
	c.pending[corr] = cb
	c.mu.Unlock()
	if err := c.enqueue(frame(typ, corr, m)); err != nil {
		c.mu.Lock()
		_, mine := c.pending[corr]
		delete(c.pending, corr)
		c.mu.Unlock()
		if !mine {
			return nil // fail already called cb
		}
		return err
	}
	return nil
}

// Call sends a request and waits for its response, decoded into resp.
func (c *Conn) Call(ctx context.Context, typ uint8, m Message, resp Message) error {
	type result struct {
		body []byte
		err  error
	}
	ch := make(chan result, 1)
	if err := c.Go(typ, m, func(b []byte, err error) { ch <- result{b, err} }); err != nil {
		return err
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return r.err
		}
		return Decode(r.body, resp)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Send sends a one-way message.
func (c *Conn) Send(typ uint8, m Message) error { return c.enqueue(frame(typ, 0, m)) }

// Reply answers request f.
func (c *Conn) Reply(f Frame, m Message) error {
	if f.Corr == 0 {
		return nil // one-way: nobody waits
	}
	return c.enqueue(frame(f.Type|responseBit, f.Corr, m))
}

// Small frames gather in the writer's buffer; a tail this large goes to
// the socket from where it is, beside the buffer, in one writev.
const (
	writeBuffer = 256 << 10
	directTail  = 16 << 10
)

func (c *Conn) writer() {
	defer c.wg.Done()
	buf := make([]byte, 0, writeBuffer)
	iovs := make(net.Buffers, 0, 3)
	// write sends the buffer, then more as it is.
	write := func(more ...[]byte) error {
		iov := append(append(iovs[:0], buf), more...)
		_, err := iov.WriteTo(c.nc) // consumes iov (a copy of iovs), not the bytes
		buf = buf[:0]
		return err
	}
	for {
		select {
		case f := <-c.out:
			// The buffer never grows past its size: what does not fit
			// goes beside it, in order.
			var err error
			switch {
			case len(f.tail) < directTail && len(buf)+f.size() <= writeBuffer:
				buf = append(append(buf, f.head...), f.tail...)
			case len(buf)+len(f.head) <= writeBuffer:
				buf = append(buf, f.head...)
				err = write(f.tail)
			default:
				err = write(f.head, f.tail)
			}
			if err != nil {
				c.fail(fmt.Errorf("write: %w", err))
				return
			}
			// Write once nothing else is queued, so pipelined frames
			// share syscalls.
			if len(c.out) == 0 && len(buf) > 0 {
				if err := write(); err != nil {
					c.fail(fmt.Errorf("write: %w", err))
					return
				}
			}
		case <-c.done:
			return
		}
	}
}

func (c *Conn) reader() {
	defer c.wg.Done()
	br := bufio.NewReaderSize(c.nc, 256<<10)
	var hdr [9]byte
	for {
		if _, err := io.ReadFull(br, hdr[:4]); err != nil {
			c.fail(fmt.Errorf("read: %w", err))
			return
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		// Checked before allocating: the length comes from the network.
		if n < 5 || n > MaxFrame {
			c.fail(fmt.Errorf("%w: frame length %d", ErrMalformed, n))
			return
		}
		if _, err := io.ReadFull(br, hdr[4:9]); err != nil {
			c.fail(fmt.Errorf("read: %w", err))
			return
		}
		body := make([]byte, n-5)
		if _, err := io.ReadFull(br, body); err != nil {
			c.fail(fmt.Errorf("read: %w", err))
			return
		}
		f := Frame{Type: hdr[4], Corr: binary.BigEndian.Uint32(hdr[5:9]), Body: body}
		if f.IsResponse() {
			c.mu.Lock()
			cb := c.pending[f.Corr]
			delete(c.pending, f.Corr)
			c.mu.Unlock()
			if cb != nil {
				cb(f.Body, nil)
			}
			continue
		}
		if c.handle == nil {
			c.fail(fmt.Errorf("%w: unexpected request type %d", ErrMalformed, f.Type))
			return
		}
		c.handle(c, f)
	}
}

// Transport opens peer connections. The default is plain TCP; tests wrap
// it to cut agents off from each other.
type Transport interface {
	Listen(addr string) (net.Listener, error)
	Dial(ctx context.Context, addr string) (net.Conn, error)
}

// TCP is the real transport.
type TCP struct{}

func (TCP) Listen(addr string) (net.Listener, error) { return net.Listen("tcp", addr) }

func (TCP) Dial(ctx context.Context, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 2 * time.Second, KeepAlive: 5 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := nc.(*net.TCPConn); ok {
		tc.SetNoDelay(true)
	}
	return nc, nil
}
