package replica

// Replication is pushed by the leader. For each follower agent the leader
// keeps one link (one connection) carrying every partition it leads that
// the follower replicates. Per partition the leader first probes the
// follower (its log end and last epoch), decides where the follower's log
// agrees with its own (the end of that epoch in the leader's epoch cache)
// and streams whole batches from there: the first append tells the
// follower to cut a divergent suffix, or, when the follower is behind what
// the leader's WAL still holds, to restart its log at the flushed end (the
// rest is in the bucket, so only the unflushed tail is ever copied).
// Appends are pipelined; the follower acknowledges its log end once the
// batches are in its WAL, and the leader's high watermark is the smallest
// log end in the ISR. The high watermark reaches followers on the next
// append, or on an empty one when nothing else is going.
//
// Followers accept appends only from the leader of the epoch their
// metadata shows: a deposed leader is refused (Fenced), and a leader of an
// epoch they have not applied yet is asked to retry.
//
// The leader also keeps the ISR: a follower missing data for longer than
// ReplicaLagMax is dropped, and one that has caught up with the high
// watermark (and the current epoch) is added, through the controller.
// Until an addition is journaled the high watermark already waits for the
// new member.

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/peer"
	"github.com/tlog-io/tlog/agent/wal"
	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/metadata/clock"
	"github.com/tlog-io/tlog/tier/batch"
)

const (
	// appendBytes is the most one append carries (at least one batch).
	appendBytes = 1 << 20
	// linkWindow bounds appends in flight on a link, so neither side's
	// send queue ever fills (see peer.Conn).
	linkWindow = 256
	// feedWindow bounds bytes in flight per partition.
	feedWindow = 8 << 20
	// hwEvery paces high-watermark-only appends per partition.
	hwEvery = 20 * time.Millisecond
)

// Host is what replication needs from the agent it runs in.
type Host interface {
	// Partitions returns every partition the agent holds.
	Partitions() []partition.Held
	// Partition returns one (ok false: not held, or not yet).
	Partition(topic uuid.UUID, idx int32) (partition.Held, bool)
	// Dial opens a peer connection to agent id.
	Dial(ctx context.Context, id int32) (*peer.Conn, error)
	// State is the agent's current metadata; Poke asks it to read the
	// journal now (a leader's message shows it is behind).
	State() *metadata.State
	Poke()
	// Propose journals commands through the controller.
	Propose(ctx context.Context, cmds ...metadata.Command) (*metadata.State, error)
	// RestoreProducers rebuilds a follower partition's producer state
	// after its log restarted at the leader's flushed end.
	RestoreProducers(topic uuid.UUID, idx int32, p *partition.Partition)
}

// Config is replication's share of the agent's configuration.
type Config struct {
	ID            int32
	ReplicaLagMax time.Duration // agent.Config documents it
	Logger        *slog.Logger
	// Clock times the feeds: when a restarted feed probes again, and the
	// pacing of high-watermark-only appends (nil: clock.Real). The lag the
	// ISR upkeep compares with ReplicaLagMax is the partitions' own
	// (partition.Config.Clock; the agent gives both the same clock). The
	// loops themselves (a link's wake-ups, the ISR pass) tick in real
	// time.
	Clock clock.Clock
}

// Replicator is both sides of replication for one agent: the links that
// feed the followers of what it leads, the handlers of what its leaders
// send it, and the ISR upkeep of what it leads.
type Replicator struct {
	cfg  Config
	host Host
	log  *slog.Logger
	ctx  context.Context
	// wg owns the links' goroutines and the ISR loop; Wait waits.
	wg sync.WaitGroup

	mu    sync.Mutex
	links map[int32]*link
	// byKey maps a partition to the links feeding it. It is replaced
	// whole, so wake reads it without a lock: wake runs from answer
	// callbacks that hold a link's lock, which reconcile takes under mu.
	byKey atomic.Pointer[map[wal.PartKey][]*link]
}

// New makes a replicator acting until ctx ends.
func New(ctx context.Context, cfg Config, host Host) *Replicator {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Clock = clock.Or(cfg.Clock)
	r := &Replicator{cfg: cfg, host: host, log: cfg.Logger, ctx: ctx, links: map[int32]*link{}}
	r.byKey.Store(&map[wal.PartKey][]*link{})
	return r
}

// Wake tells the links feeding partition k that there is something to send.
func (r *Replicator) Wake(k wal.PartKey) {
	for _, l := range (*r.byKey.Load())[k] {
		l.poke()
	}
}

type feedState int

const (
	needProbe feedState = iota
	probing
	streaming
)

type feed struct {
	r        *Replicator
	p        *partition.Partition
	topic    uuid.UUID
	idx      int32
	epoch    int32
	gen      uint64 // bumped whenever the feed restarts; stale answers are ignored
	state    feedState
	retryAt  time.Time
	next     int64 // next offset to send
	truncate int64 // for the next append; -1: none
	reset    int64
	inflight int // bytes
	sentHW   int64
	hwAt     time.Time
}

func (f *feed) restart(delay time.Duration) {
	f.gen++
	f.state = needProbe
	f.retryAt = f.r.cfg.Clock.Now().Add(delay)
	f.inflight = 0
	f.truncate, f.reset = -1, -1
	f.sentHW = -1
}

// link feeds one follower agent.
type link struct {
	r    *Replicator
	to   int32
	wake chan struct{}
	stop chan struct{}
	done chan struct{}

	mu       sync.Mutex
	feeds    map[wal.PartKey]*feed
	inflight int // appends and probes in flight on conn
	// conns counts connections: an answer from an earlier one (its
	// callbacks fail after a redial reset inflight) must not count
	// against the current one's window.
	conns uint64
	// blocked: a pump left something unsent for a full window; the next
	// answer pumps again.
	blocked bool
	conn    *peer.Conn
}

// redialed makes nc the link's connection: nothing is in flight on it,
// and every feed starts again with a probe.
func (l *link) redialed(nc *peer.Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.conn = nc
	l.conns++
	l.inflight = 0
	for _, f := range l.feeds {
		f.restart(0)
	}
}

// answered takes one message sent on connection cg out of the window.
func (l *link) answered(cg uint64) {
	if cg == l.conns {
		l.inflight--
	}
}

func (l *link) poke() {
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

type want struct {
	p     *partition.Partition
	topic uuid.UUID
	idx   int32
	epoch int32
}

// Reconcile makes the links match what this agent leads now.
func (r *Replicator) Reconcile() {
	self := r.cfg.ID
	desired := map[int32]map[wal.PartKey]want{}
	for _, h := range r.host.Partitions() {
		if !h.P.IsLeader() {
			continue
		}
		for _, id := range h.Meta.Replicas {
			if id == self {
				continue
			}
			if desired[id] == nil {
				desired[id] = map[wal.PartKey]want{}
			}
			desired[id][h.P.Key()] = want{p: h.P, topic: h.Topic, idx: h.Index, epoch: h.Meta.LeaderEpoch}
		}
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	for id, l := range r.links {
		if _, ok := desired[id]; !ok {
			close(l.stop)
			delete(r.links, id)
		}
	}
	byKey := map[wal.PartKey][]*link{}
	for id, ws := range desired {
		l := r.links[id]
		if l == nil {
			l = &link{r: r, to: id, wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}), feeds: map[wal.PartKey]*feed{}}
			r.links[id] = l
			r.wg.Add(1)
			go func() {
				defer r.wg.Done()
				l.run()
			}()
		}
		l.mu.Lock()
		for k, f := range l.feeds {
			if w, ok := ws[k]; !ok || w.p != f.p {
				delete(l.feeds, k)
			}
		}
		for k, w := range ws {
			f := l.feeds[k]
			if f == nil {
				f = &feed{r: r, p: w.p, topic: w.topic, idx: w.idx, epoch: w.epoch}
				f.restart(0)
				l.feeds[k] = f
			} else if f.epoch != w.epoch {
				f.epoch = w.epoch
				f.restart(0)
			}
			byKey[k] = append(byKey[k], l)
		}
		l.mu.Unlock()
		l.poke()
	}
	r.byKey.Store(&byKey)
}

// StopAll ends every link (agent shutdown).
func (r *Replicator) StopAll() {
	r.mu.Lock()
	links := r.links
	r.links = map[int32]*link{}
	r.byKey.Store(&map[wal.PartKey][]*link{})
	r.mu.Unlock()
	for _, l := range links {
		close(l.stop)
	}
}

func (l *link) run() {
	r := l.r
	defer close(l.done)
	// Dial backoff and the wake-up tick are real time: they pace the
	// loop; pump decides by the Clock.
	backoff := 50 * time.Millisecond
	tick := time.NewTicker(hwEvery)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			l.closeConn()
			return
		case <-r.ctx.Done():
			l.closeConn()
			return
		default:
		}
		l.mu.Lock()
		c := l.conn
		l.mu.Unlock()
		if c == nil || c.Err() != nil {
			ctx, cancel := context.WithTimeout(r.ctx, 2*time.Second)
			nc, err := r.host.Dial(ctx, l.to)
			cancel()
			if err != nil {
				r.log.Debug("replication link down", "follower", l.to, "err", err)
				select {
				case <-l.stop:
					return
				case <-r.ctx.Done():
					return
				case <-time.After(backoff):
				}
				backoff = min(2*backoff, time.Second)
				continue
			}
			backoff = 50 * time.Millisecond
			l.redialed(nc)
			c = nc
		}
		l.pump(c)
		select {
		case <-l.stop:
		case <-r.ctx.Done():
		case <-l.wake:
		case <-tick.C:
		case <-c.Done():
		}
	}
}

func (l *link) closeConn() {
	l.mu.Lock()
	c := l.conn
	l.conn = nil
	l.mu.Unlock()
	if c != nil {
		c.Close()
	}
}

type outMsg struct {
	typ  uint8
	msg  peer.Message
	cb   func([]byte, error)
	size int
}

// pump sends what the feeds have: probes, appends, high watermarks. The
// messages are chosen under the lock and sent after it, so a full send
// queue never holds the lock the answers need.
func (l *link) pump(c *peer.Conn) {
	r := l.r
	now := r.cfg.Clock.Now()
	var out []outMsg
	l.mu.Lock()
	for _, f := range l.feeds {
		switch f.state {
		case needProbe:
			if now.Before(f.retryAt) {
				continue
			}
			if l.inflight >= linkWindow {
				l.blocked = true
				continue
			}
			f.state = probing
			gen, cg := f.gen, l.conns
			l.inflight++
			ff := f
			out = append(out, outMsg{typ: peer.TypeProbe, msg: &peer.Probe{Topic: f.topic, Partition: f.idx, Epoch: f.epoch},
				cb: func(b []byte, err error) { l.onProbe(ff, gen, cg, b, err) }})
		case streaming:
			for f.inflight < feedWindow && l.inflight < linkWindow {
				data, next, err := f.p.ReadForFollower(f.next, appendBytes)
				if errors.Is(err, partition.ErrFlushed) {
					// Behind the WAL: the follower restarts at the
					// flushed end; the rest is in the bucket.
					f.reset = f.p.Offsets().FlushedEnd
					f.truncate, f.next = -1, f.reset
					continue
				}
				if err != nil {
					if !errors.Is(err, partition.ErrNotLeader) {
						r.log.Warn("read for follower", "follower", l.to, "err", err)
					}
					f.restart(100 * time.Millisecond)
					break
				}
				hw := f.p.Offsets().HW
				if len(data) == 0 && f.truncate < 0 && f.reset < 0 {
					// Nothing new: send the high watermark, paced. Every
					// append carries it too, so under a steady stream
					// this rarely goes; a follower needs it only to let
					// go of memory and as a start if it comes to lead,
					// neither of which waits, and an answer per batch
					// would double the messages at low rates.
					if hw > f.sentHW && now.Sub(f.hwAt) >= hwEvery {
						f.sentHW, f.hwAt = hw, now
						l.appendMsg(&out, f, nil, hw)
					}
					break
				}
				l.appendMsg(&out, f, data, hw)
				f.sentHW, f.hwAt = hw, now
				f.truncate, f.reset = -1, -1
				f.next = next
				if len(data) == 0 {
					break
				}
			}
			if f.inflight >= feedWindow || l.inflight >= linkWindow {
				l.blocked = true
			}
		}
	}
	l.mu.Unlock()
	for _, m := range out {
		if err := c.Go(m.typ, m.msg, m.cb); err != nil {
			return // the callbacks fail through c closing; run redials
		}
	}
}

func (l *link) appendMsg(out *[]outMsg, f *feed, data []byte, hw int64) {
	gen, cg, size := f.gen, l.conns, len(data)
	f.inflight += size
	l.inflight++
	ff := f
	*out = append(*out, outMsg{typ: peer.TypeAppend, size: size,
		msg: &peer.Append{Topic: f.topic, Partition: f.idx, Epoch: f.epoch, Truncate: f.truncate, Reset: f.reset, HW: hw, Data: data},
		cb:  func(b []byte, err error) { l.onAppendResp(ff, gen, cg, size, b, err) }})
}

// answer handles the common part of a follower's answer: a stale answer,
// a broken connection, or a refusal restart the feed.
func (l *link) answer(f *feed, gen uint64, code int8, msg string, err error) bool {
	r := l.r
	if f.gen != gen {
		return false
	}
	if err != nil {
		f.restart(50 * time.Millisecond)
		return false
	}
	switch code {
	case peer.OK:
		return true
	case peer.Fenced:
		// The follower knows a newer epoch than ours: we have been
		// deposed and not heard yet. Nothing waiting can be
		// acknowledged any more; tell the producers now.
		f.p.Deposed(f.epoch)
		r.host.Poke()
		f.restart(200 * time.Millisecond)
	case peer.Retry:
		f.restart(50 * time.Millisecond)
	case peer.NotReplica:
		f.restart(500 * time.Millisecond)
	default:
		r.log.Warn("follower refused replication", "follower", l.to, "partition", f.idx, "code", code, "msg", msg)
		f.restart(100 * time.Millisecond)
	}
	return false
}

func (l *link) onProbe(f *feed, gen, cg uint64, body []byte, err error) {
	var resp peer.ProbeResp
	if err == nil {
		err = peer.Decode(body, &resp)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	defer l.poke()
	l.answered(cg)
	if !l.answer(f, gen, resp.Code, resp.Msg, err) {
		return
	}
	o := f.p.Offsets()
	end := resp.LEO
	if resp.LastEpoch >= 0 {
		if e, eo := f.p.EndOffsetForEpoch(resp.LastEpoch); e >= 0 {
			end = min(end, eo)
		} else {
			end = min(end, o.FlushedEnd) // an epoch this leader never saw
		}
	}
	end = min(end, o.LEO)
	f.truncate, f.reset = -1, -1
	switch {
	case end < o.FlushedEnd:
		f.reset = o.FlushedEnd
		f.next = o.FlushedEnd
	case end < resp.LEO:
		f.truncate = end
		f.next = end
	default:
		f.next = end
	}
	f.state = streaming
	// The follower's log up to next is a prefix of ours.
	f.p.FollowerAck(l.to, f.next)
}

func (l *link) onAppendResp(f *feed, gen, cg uint64, size int, body []byte, err error) {
	var resp peer.AppendResp
	if err == nil {
		err = peer.Decode(body, &resp)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answered(cg)
	if f.gen == gen {
		f.inflight -= size
	}
	if !l.answer(f, gen, resp.Code, resp.Msg, err) {
		l.poke()
		return
	}
	f.p.FollowerAck(l.to, resp.LEO)
	// New data wakes the link itself (Wake); an answer needs to only
	// when a window held something back.
	if l.blocked {
		l.blocked = false
		l.poke()
	}
}

// FollowerCheck decides whether this agent takes replication for a
// partition from agent from at epoch.
func (r *Replicator) FollowerCheck(from int32, topicID [16]byte, idx, epoch int32) (*partition.Partition, int8, string) {
	h, ok := r.host.Partition(uuid.UUID(topicID), idx)
	if !ok {
		r.host.Poke() // perhaps created a moment ago
		return nil, peer.Retry, "unknown partition"
	}
	mp, p := h.Meta, h.P
	switch {
	case epoch > mp.LeaderEpoch:
		r.host.Poke()
		return nil, peer.Retry, "metadata behind"
	case epoch < mp.LeaderEpoch || mp.Leader != from:
		return nil, peer.Fenced, "not the leader of this epoch"
	case !slices.Contains(mp.Replicas, r.cfg.ID):
		return nil, peer.NotReplica, "not a replica"
	case p.IsLeader():
		// Metadata says from leads this epoch and this agent has not
		// stepped down yet: a moment, not a deposition (Fenced would
		// make the rightful leader stop taking writes).
		return nil, peer.Retry, "this agent is still stepping down"
	}
	return p, peer.OK, ""
}

func (r *Replicator) OnProbe(from int32, m peer.Probe) peer.ProbeResp {
	p, code, msg := r.FollowerCheck(from, m.Topic, m.Partition, m.Epoch)
	if code != peer.OK {
		return peer.ProbeResp{Code: code, Msg: msg}
	}
	leo, last := p.FollowerEnd()
	return peer.ProbeResp{Code: peer.OK, LEO: leo, LastEpoch: last}
}

func (r *Replicator) OnAppend(c *peer.Conn, f peer.Frame, m peer.Append) {
	p, code, msg := r.FollowerCheck(c.Remote, m.Topic, m.Partition, m.Epoch)
	if code != peer.OK {
		c.Reply(f, &peer.AppendResp{Code: code, Msg: msg})
		return
	}
	err := p.AppendReplicated(m.Data, m.Truncate, m.Reset, m.HW, func(leo int64, err error) {
		if err != nil {
			c.Reply(f, &peer.AppendResp{Code: replicationCode(err), Msg: err.Error(), LEO: leo})
			return
		}
		c.Reply(f, &peer.AppendResp{Code: peer.OK, LEO: leo})
	})
	if err != nil {
		leo, _ := p.FollowerEnd()
		c.Reply(f, &peer.AppendResp{Code: replicationCode(err), Msg: err.Error(), LEO: leo})
		return
	}
	if m.Reset >= 0 {
		r.host.RestoreProducers(uuid.UUID(m.Topic), m.Partition, p)
	}
}

func replicationCode(err error) int8 {
	switch {
	case errors.Is(err, partition.ErrLogMismatch):
		return peer.OutOfOrder
	case errors.Is(err, partition.ErrNotFollower):
		return peer.Fenced
	case errors.Is(err, batch.ErrCorrupt):
		return peer.Invalid
	case errors.Is(err, partition.ErrClosed):
		return peer.NotReplica
	default:
		return peer.Storage
	}
}

// RunISR keeps the ISRs of the partitions this agent leads.
// The pass is paced in real time; the lag it compares is timed by the
// partitions' Clock.
func (r *Replicator) RunISR() {
	t := time.NewTicker(max(r.cfg.ReplicaLagMax/10, 50*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-t.C:
		}
		r.updateISRs()
	}
}

func (r *Replicator) updateISRs() {
	st := r.host.State()
	type change struct {
		p     *partition.Partition
		added []int32
	}
	var cmds []metadata.Command
	var changes []change
	for _, h := range r.host.Partitions() {
		p, mp, i := h.P, h.Meta, h.Index
		rs, ok := p.ReplicationState()
		if !ok || len(rs.Followers) == 0 {
			continue
		}
		if mp.LeaderEpoch != rs.Epoch {
			continue // metadata moved on; the next sync settles it
		}
		isr := slices.Clone(mp.ISR)
		var added []int32
		changed := false
		for _, f := range rs.Followers {
			switch {
			case f.InISR && f.Lag > r.cfg.ReplicaLagMax:
				lvl := slog.LevelDebug
				if f.Lag < r.cfg.ReplicaLagMax+time.Second { // once, not at every retry
					lvl = slog.LevelWarn
				}
				r.log.Log(r.ctx, lvl, "follower fell behind; leaving the ISR", "topic", h.Name, "partition", i, "follower", f.ID, "lag", f.Lag.Round(time.Millisecond), "leo", f.LEO, "leader_leo", rs.LEO)
				isr = slices.DeleteFunc(isr, func(id int32) bool { return id == f.ID })
				changed = true
			case !f.InISR && f.LEO >= 0 && f.LEO >= rs.HW && f.LEO >= rs.EpochStart && st.AgentLive(f.ID) && !slices.Contains(rs.Pending, f.ID):
				isr = append(isr, f.ID)
				added = append(added, f.ID)
				changed = true
			}
		}
		if !changed {
			continue
		}
		cmds = append(cmds, metadata.SetISR{TopicID: h.Topic, Partition: i, LeaderEpoch: mp.LeaderEpoch, ISRVersion: mp.ISRVersion, ISR: isr})
		changes = append(changes, change{p: p, added: added})
	}
	if len(cmds) == 0 {
		return
	}
	for _, ch := range changes {
		for _, id := range ch.added {
			ch.p.AddPending(id)
		}
	}
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	defer cancel()
	_, err := r.host.Propose(ctx, cmds...)
	if err != nil && len(cmds) > 1 {
		// One stale change must not hold back the others.
		err = nil
		for i, cmd := range cmds {
			if _, e := r.host.Propose(ctx, cmd); e != nil {
				for _, id := range changes[i].added {
					changes[i].p.ClearPending(id)
				}
				err = e
			}
		}
	} else if err != nil {
		for _, id := range changes[0].added {
			changes[0].p.ClearPending(id)
		}
	}
	if err != nil && r.ctx.Err() == nil {
		r.log.Debug("ISR change refused", "err", err)
	}
}

// Wait waits for the goroutines the replicator started; call it after
// StopAll, once the context New was given has ended.
func (r *Replicator) Wait() { r.wg.Wait() }
