package kafka

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime/debug"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func base64URL(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// A handler runs in the connection's reader goroutine, in request order, and
// does everything that must happen in order (validation, offset assignment,
// queueing to the WAL). What may wait (durability, long polls) goes in the
// reply it returns, which the writer goroutine runs, also in order. A nil
// reply sends nothing (acks=0 produce).
type reply func() kmsg.Response

type handlerFunc func(s *Server, r *request) (reply, error)

type apiHandler struct {
	min, max int16
	fn       handlerFunc
}

// handlers is filled by each API file's init, keyed by API key.
var handlers = map[int16]apiHandler{}

func register(key, min, max int16, fn handlerFunc) {
	handlers[key] = apiHandler{min: min, max: max, fn: fn}
}

// request is one decoded request on a connection.
type request struct {
	c        *conn
	kreq     kmsg.Request
	clientID string
	corr     int32
	ctx      context.Context
}

func (r *request) version() int16 { return r.kreq.GetVersion() }

// now returns a reply that is already computed.
func now(resp kmsg.Response) reply { return func() kmsg.Response { return resp } }

// conn is one client connection. Requests are decoded and handled in order
// by the reader; replies are completed and written in the same order by the
// writer, so a client may pipeline requests (several produces in flight)
// while still seeing responses in order, as Kafka guarantees.
type conn struct {
	s       *Server
	nc      net.Conn
	remote  string
	lst     Listener
	ip      string // the client's address, for max.connections.per.ip
	pending chan pendingReply
	done    chan struct{}
	// auth is the connection's authentication (sasl.go); the reader
	// goroutine alone touches it.
	auth authState
	// internal marks requests another agent sent over the peer port
	// (Server.HandleInternal): they run as the cluster, not a principal.
	internal bool
}

type pendingReply struct {
	corr  int32
	key   int16
	fn    reply
	start time.Time // when the request was read, for its latency
}

// maxPipelined bounds how many requests of one connection may be in flight;
// the reader stops reading beyond it, which is backpressure on the client.
const maxPipelined = 16

func (s *Server) serve(ln net.Listener, l Listener) {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			s.log.Warn("accept", "err", err)
			time.Sleep(50 * time.Millisecond)
			continue
		}
		c := &conn{
			s:       s,
			nc:      nc,
			lst:     l,
			remote:  nc.RemoteAddr().String(),
			pending: make(chan pendingReply, maxPipelined),
			done:    make(chan struct{}),
		}
		c.ip = remoteIP(c.remote)
		s.connsMu.Lock()
		if s.closing {
			s.connsMu.Unlock()
			nc.Close()
			return
		}
		if limit := s.cfg.MaxConnectionsPerIP; limit > 0 && s.perIP[c.ip] >= limit {
			s.connsMu.Unlock()
			s.log.Warn("closing connection: too many from one address", "client", c.remote, "listener", l.Name, "max_connections_per_ip", limit)
			nc.Close()
			continue
		}
		s.perIP[c.ip]++
		s.conns[c] = struct{}{}
		s.connsMu.Unlock()
		s.wg.Add(2)
		go func() {
			defer s.wg.Done()
			c.read()
		}()
		go func() {
			defer s.wg.Done()
			c.write()
		}()
	}
}

// clientHost is the client's address as Kafka reports it in groups
// ("/ip").
func (c *conn) clientHost() string {
	host, _, err := net.SplitHostPort(c.remote)
	if err != nil {
		host = c.remote
	}
	return "/" + host
}

func (c *conn) close() {
	c.nc.Close()
	c.s.connsMu.Lock()
	if _, ok := c.s.conns[c]; ok {
		delete(c.s.conns, c)
		if c.s.perIP[c.ip]--; c.s.perIP[c.ip] <= 0 {
			delete(c.s.perIP, c.ip)
		}
	}
	c.s.connsMu.Unlock()
}

// remoteIP is the address part of host:port.
func remoteIP(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return remote
	}
	return host
}

func (c *conn) read() {
	defer close(c.pending)
	ctx, cancel := context.WithCancel(c.s.ctx)
	defer cancel()
	if err := c.authenticateTransport(); err != nil {
		c.s.log.Info("closing connection: transport", "client", c.remote, "listener", c.lst.Name, "err", err)
		return
	}
	if c.auth.principal == "" {
		// The SASL exchange must finish in time: a connection that never
		// authenticates holds nothing for long.
		c.auth.deadline = true
		c.nc.SetReadDeadline(time.Now().Add(authTimeout))
	}
	br := bufio.NewReaderSize(c.nc, connBufferBytes)
	var size [4]byte
	for {
		if _, err := io.ReadFull(br, size[:]); err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.s.log.Debug("read request size", "client", c.remote, "err", err)
			}
			return
		}
		n := int32(binary.BigEndian.Uint32(size[:]))
		// Check before allocating: the size is client-controlled, and
		// before authentication it is a SASL message at most.
		limit := c.s.cfg.MaxRequestBytes
		if c.auth.principal == "" {
			limit = min(limit, maxPreAuthBytes)
		}
		if n < 8 || n > limit {
			c.s.log.Warn("closing connection: request size out of bounds",
				"client", c.remote, "size", n, "max", limit)
			return
		}
		body := make([]byte, n)
		if _, err := io.ReadFull(br, body); err != nil {
			c.s.log.Debug("read request body", "client", c.remote, "err", err)
			return
		}
		received := time.Now()
		// Refused before decoding: an unauthenticated client gets nothing
		// parsed but the SASL exchange.
		if err := c.admit(int16(binary.BigEndian.Uint16(body)), received); err != nil {
			c.s.log.Warn("closing connection: not authenticated", "client", c.remote, "listener", c.lst.Name,
				"api", kmsg.NameForKey(int16(binary.BigEndian.Uint16(body))), "err", err)
			return
		}
		r, early, err := c.decode(body)
		if err != nil {
			c.s.log.Warn("closing connection: bad request", "client", c.remote, "err", err)
			return
		}
		var p pendingReply
		if early != nil {
			p = *early // answered without a handler (unsupported ApiVersions)
		} else {
			r.ctx = ctx
			fn, err := c.handle(r)
			if err != nil {
				c.s.log.Warn("closing connection: request failed", "client", c.remote,
					"api", kmsg.NameForKey(r.kreq.Key()), "version", r.version(), "err", err)
				return
			}
			if fn == nil {
				c.s.metrics.request(r.kreq.Key(), nil, time.Since(received)) // acks=0
				continue
			}
			p = pendingReply{corr: r.corr, key: r.kreq.Key(), fn: fn}
		}
		p.start = received
		select {
		case c.pending <- p:
		case <-c.done:
			return
		}
		if c.auth.failed {
			// Kafka closes a connection whose SASL exchange failed, once
			// the client has the error.
			return
		}
		if c.auth.deadline && c.auth.principal != "" {
			c.auth.deadline = false
			c.nc.SetReadDeadline(time.Time{})
		}
	}
}

// decode parses the request header and body. An unknown key or version is an
// error (Kafka closes the connection), except ApiVersions, which is answered
// at v0 with UNSUPPORTED_VERSION so the client can retry (KIP-511).
func (c *conn) decode(body []byte) (*request, *pendingReply, error) {
	rd := kbin.Reader{Src: body}
	key := rd.Int16()
	version := rd.Int16()
	corr := rd.Int32()
	clientID := rd.NullableString()
	if !rd.Ok() {
		return nil, nil, fmt.Errorf("truncated request header")
	}
	h, ok := handlers[key]
	kreq := kmsg.RequestForKey(key)
	if !ok || kreq == nil {
		return nil, nil, fmt.Errorf("unsupported api key %d", key)
	}
	if version < h.min || version > h.max {
		if key == 18 {
			resp := kmsg.NewPtrApiVersionsResponse()
			resp.Version = 0
			resp.ErrorCode = kerr.UnsupportedVersion.Code
			resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{{ApiKey: 18, MinVersion: h.min, MaxVersion: h.max}}
			return nil, &pendingReply{corr: corr, key: 18, fn: now(resp)}, nil
		}
		return nil, nil, fmt.Errorf("unsupported version %d of %s (serving %d-%d)", version, kmsg.NameForKey(key), h.min, h.max)
	}
	kreq.SetVersion(version)
	if kreq.IsFlexible() && !skipTags(&rd) {
		return nil, nil, fmt.Errorf("bad tagged fields in %s header", kmsg.NameForKey(key))
	}
	if err := kreq.ReadFrom(rd.Src); err != nil {
		return nil, nil, fmt.Errorf("decode %s v%d: %w", kmsg.NameForKey(key), version, err)
	}
	r := &request{c: c, kreq: kreq, corr: corr}
	if clientID != nil {
		r.clientID = *clientID
	}
	return r, nil, nil
}

// skipTags skips a tagged-field section. Unlike kmsg.SkipTags it refuses a
// count larger than the bytes left (each tag takes at least two), which would
// otherwise spin through billions of empty iterations.
func skipTags(rd *kbin.Reader) bool {
	n := rd.Uvarint()
	if int64(n) > int64(len(rd.Src))/2 {
		return false
	}
	for ; n > 0 && rd.Ok(); n-- {
		rd.Uvarint()
		rd.Span(int(rd.Uvarint()))
	}
	return rd.Ok()
}

// handle runs the handler, turning a panic (a bug, never expected on any
// input) into a closed connection rather than a dead agent.
func (c *conn) handle(r *request) (fn reply, err error) {
	defer func() {
		if p := recover(); p != nil {
			c.s.log.Error("handler panic", "api", kmsg.NameForKey(r.kreq.Key()), "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("internal error in %s", kmsg.NameForKey(r.kreq.Key()))
		}
	}()
	return handlers[r.kreq.Key()].fn(c.s, r)
}

// connBufferBytes sizes each connection's read and write buffers. They
// only gather small requests and responses into fewer syscalls: a large
// request body is read straight into its own slice, and a large response
// written straight from it. At 64 KiB each, a thousand idle connections
// held 128 MiB.
const connBufferBytes = 16 << 10

func (c *conn) write() {
	defer c.close()
	defer close(c.done)
	bw := bufio.NewWriterSize(c.nc, connBufferBytes)
	var buf []byte
	for p := range c.pending {
		resp := c.complete(p)
		if resp == nil {
			continue
		}
		// A throttled client (quotas.go) is muted: clients that
		// throttle themselves (KIP-219) get the answer first, older
		// ones after the wait, as Kafka does; either way nothing more
		// of this connection is answered meanwhile.
		var muteAfter time.Duration
		if tr, ok := resp.(kmsg.ThrottleResponse); ok {
			if ms, clientThrottles := tr.Throttle(); ms > 0 {
				d := time.Duration(ms) * time.Millisecond
				if clientThrottles {
					muteAfter = d
				} else if !c.mute(d) {
					return
				}
			}
		}
		// Counted before sending, so a client that has its answer sees
		// it in the metrics.
		c.s.metrics.request(p.key, resp, time.Since(p.start))
		// Sized up front for responses carrying records, which would
		// otherwise be copied again each time the buffer grows.
		if need := 9 + encodedSizeHint(resp); cap(buf) < need {
			buf = make([]byte, 0, need)
		}
		buf = append(buf[:0], 0, 0, 0, 0, 0, 0, 0, 0)
		// ApiVersions responses always use header v0 so that a client
		// can parse them before it knows our versions.
		if resp.IsFlexible() && p.key != 18 {
			buf = append(buf, 0)
		}
		buf = resp.AppendTo(buf)
		binary.BigEndian.PutUint32(buf[0:], uint32(len(buf)-4))
		binary.BigEndian.PutUint32(buf[4:], uint32(p.corr))
		if _, err := bw.Write(buf); err != nil {
			return
		}
		// Flush when nothing else is ready, so pipelined responses share
		// a syscall.
		if len(c.pending) == 0 {
			if err := bw.Flush(); err != nil {
				return
			}
		}
		if cap(buf) > 1<<20 {
			buf = nil
		}
		if muteAfter > 0 {
			if err := bw.Flush(); err != nil || !c.mute(muteAfter) {
				return
			}
		}
	}
}

// mute waits d before the connection's next answer; false if the agent
// is stopping.
func (c *conn) mute(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.s.ctx.Done():
		return false
	}
}

// encodedSizeHint is about how many bytes resp encodes to, for the
// responses that can be large (0 for the others).
func encodedSizeHint(resp kmsg.Response) int {
	fr, ok := resp.(*kmsg.FetchResponse)
	if !ok {
		return 0
	}
	n := 64
	for i := range fr.Topics {
		t := &fr.Topics[i]
		n += 32 + len(t.Topic)
		for j := range t.Partitions {
			n += 64 + len(t.Partitions[j].RecordBatches)
		}
	}
	return n
}

func (c *conn) complete(p pendingReply) (resp kmsg.Response) {
	defer func() {
		if r := recover(); r != nil {
			c.s.log.Error("reply panic", "api", kmsg.NameForKey(p.key), "panic", r, "stack", string(debug.Stack()))
			c.nc.Close()
			resp = nil
		}
	}()
	return p.fn()
}

// apiKeys lists what we serve, for ApiVersions.
func apiKeys() []kmsg.ApiVersionsResponseApiKey {
	keys := make([]kmsg.ApiVersionsResponseApiKey, 0, len(handlers))
	for k, h := range handlers {
		keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: k, MinVersion: h.min, MaxVersion: h.max})
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].ApiKey < keys[j].ApiKey })
	return keys
}
