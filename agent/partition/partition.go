// Package partition is one partition's log on an agent: offset assignment,
// the high watermark, the leader-epoch cache, idempotent-producer state and
// the index of batches held in the WAL.
//
// Offsets are assigned under the partition lock and the batch is queued to
// the WAL before the lock is released, so WAL order is offset order. The
// high watermark moves only when the WAL reports a write durable, and only
// offsets below it are ever served.
package partition

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/tlog-io/tlog/agent/batch"
	"github.com/tlog-io/tlog/agent/wal"
)

// Errors mapped to Kafka codes by the wire layer.
var (
	ErrOffsetOutOfRange     = errors.New("offset out of range")
	ErrOutOfOrderSequence   = errors.New("out of order sequence number")
	ErrInvalidProducerEpoch = errors.New("invalid producer epoch")
	ErrStorage              = errors.New("storage error")
	ErrClosed               = errors.New("partition closed")
	// ErrFlushed: the offset is below flushedEnd; read it from the bucket.
	ErrFlushed = errors.New("offset flushed to the bucket")
	// ErrNotLeader: this replica does not lead the partition (any more).
	ErrNotLeader = errors.New("not the leader of this partition")
	// ErrNotFollower: replication traffic for a partition this replica
	// does not follow.
	ErrNotFollower = errors.New("not a follower of this partition")
	// ErrNotEnoughReplicas: acks=all with fewer in-sync replicas than
	// min.insync.replicas.
	ErrNotEnoughReplicas = errors.New("not enough in-sync replicas")
	// ErrLogMismatch: a replicated batch does not start at this replica's
	// log end.
	ErrLogMismatch = errors.New("replicated batch does not start at the log end")
	// ErrProducersLoading: an idempotent batch reached a leader still
	// loading the producer state of what precedes its log (retriable).
	ErrProducersLoading = errors.New("producer state still loading")
)

// producerWindow is how many recent batches per producer are remembered for
// duplicate detection; Kafka clients keep at most 5 requests in flight.
const producerWindow = 5

// EpochStart is one entry of the leader-epoch cache: the first offset
// written in an epoch.
type EpochStart struct {
	Epoch       int32
	StartOffset int64
}

type entry struct {
	base, last int64
	maxTS      int64
	size       int32
	epoch      int32
	// Producer fields, so producer state can be rebuilt after a
	// truncation and computed as of any offset.
	pid               int64
	pepoch            int16
	firstSeq, lastSeq int32
	appended          int64 // unix nanos this replica got the batch
	// data holds the batch on the leader until the high watermark passes
	// it, so followers are fed from memory while it is still in flight to
	// the WAL.
	data []byte
}

type seqEntry struct {
	firstSeq, lastSeq int32
	base, last        int64
}

type producer struct {
	epoch   int16
	recent  [producerWindow]seqEntry
	n, next int // entries used, ring position of the next write
}

func (ps *producer) add(e seqEntry) {
	ps.recent[ps.next] = e
	ps.next = (ps.next + 1) % producerWindow
	if ps.n < producerWindow {
		ps.n++
	}
}

func (ps *producer) lastEntry() seqEntry {
	return ps.recent[(ps.next+producerWindow-1)%producerWindow]
}

func (ps *producer) find(first, last int32) (seqEntry, bool) {
	for i := 0; i < ps.n; i++ {
		e := ps.recent[i]
		if e.firstSeq == first && e.lastSeq == last {
			return e, true
		}
	}
	return seqEntry{}, false
}

// Config describes a partition being opened.
type Config struct {
	Key         wal.PartKey
	Topic       string
	Index       int32
	LeaderEpoch int32
	// LogStart is the first retained offset (from metadata).
	LogStart int64
	// FlushedEnd: every offset below it is in a committed segment (from
	// metadata); the WAL holds only what follows.
	FlushedEnd int64
	WAL        *wal.WAL
	// OnAdvance is called (without locks held) after the high watermark
	// moves, to wake long-polling fetches.
	OnAdvance func()
	// OnAppend is called (without locks held) after the leader appends, to
	// wake whatever feeds the followers.
	OnAppend func()
	// OnWALBytes is told how the bytes this partition holds in the WAL
	// change (may be nil), so the agent can bound its total cheaply.
	OnWALBytes func(delta int64)
}

// Role is what metadata says this replica is for the partition.
type Role struct {
	Leader bool
	Epoch  int32
	Self   int32   // this agent's id
	ISR    []int32 // in-sync replicas, including the leader
	// Replicas lists every replica, including the leader; the leader
	// feeds all of them, in the ISR or not.
	Replicas []int32
	// MinISR is min.insync.replicas: acks=all needs that many in-sync
	// replicas, and nothing becomes visible with fewer.
	MinISR int
}

type follower struct {
	leo int64 // acknowledged log end; -1 until it reports
}

// Partition is one partition's log.
type Partition struct {
	cfg Config

	mu       sync.Mutex
	cond     *sync.Cond // broadcast when durable moves
	epoch    int32
	role     Role
	since    time.Time // when this role (epoch) began
	pending  map[int32]bool
	replicas map[int32]*follower // leader: every other replica
	logStart int64
	flushed  int64 // flushedEnd
	walBytes int64 // bytes of the batches in index
	hw       int64
	durable  int64 // end of what the WAL holds
	leo      int64
	leaderHW int64 // follower: the HW the leader last sent
	index    []entry
	dataFrom int // index[:dataFrom] have no data kept
	epochs   []EpochStart
	// producers is the idempotent-producer state as of the log end;
	// baseProducers as of producersEnd, where the WAL's batches for it
	// begin (restored from, and written to, WAL snapshots).
	producers     map[int64]*producer
	baseProducers map[int64]*producer
	producersEnd  int64
	// missingProducers ≥ 0: the log starts there without the producer
	// state of what came before (a restart at the flushed end, or a lost
	// WAL); a segment footer can supply it (AdoptProducers).
	missingProducers int64
	waiters          []waiter
	gen              uint64 // bumped when the log is cut: stale WAL completions are ignored
	failed           error  // sticky WAL failure
	closed           bool
	// lapsed: this agent's session with the controller may have ended
	// (see SetSessionLapsed).
	lapsed bool
	// deposed: a follower refused this leader's epoch (it knows a newer
	// one); cleared by the next role.
	deposed bool
}

type waiter struct {
	end    int64
	needHW bool // acks=all: wait for the HW; acks=1: for the local WAL
	dup    bool // a duplicate waiting for its original
	done   func(error)
}

// New creates an empty partition that is no replica yet (SetRole makes it
// one); call Load for each batch recovered from the WAL, in offset order,
// before serving.
func New(cfg Config) *Partition {
	start := max(cfg.FlushedEnd, cfg.LogStart)
	p := &Partition{
		cfg:              cfg,
		epoch:            cfg.LeaderEpoch,
		logStart:         cfg.LogStart,
		flushed:          start,
		hw:               start,
		durable:          start,
		leo:              start,
		leaderHW:         -1,
		producers:        make(map[int64]*producer),
		baseProducers:    make(map[int64]*producer),
		since:            time.Now(),
		missingProducers: -1,
	}
	if start > 0 {
		p.missingProducers = start // until the WAL's snapshot says otherwise
	}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// Key returns the partition's WAL key.
func (p *Partition) Key() wal.PartKey { return p.cfg.Key }

// Load adds a batch recovered from the WAL. Batches wholly below logStart are
// reported as stale (the caller deletes them).
func (p *Partition) Load(b []byte) (stale bool, err error) {
	h, err := batch.ParseHeader(b)
	if err != nil {
		return false, fmt.Errorf("partition %s/%d: recover: %w", p.cfg.Topic, p.cfg.Index, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if h.LastOffset() < max(p.logStart, p.flushed) {
		// Below the log start or already in the bucket, but its producer
		// state still counts until DropStale snapshots it.
		if h.BaseOffset >= p.producersEnd {
			updateProducer(p.baseProducers, entryOf(h, 0, 0))
			p.producersEnd = h.LastOffset() + 1
			updateProducer(p.producers, entryOf(h, 0, 0))
		}
		return true, nil
	}
	if len(p.index) > 0 && h.BaseOffset != p.leo {
		return false, fmt.Errorf("partition %s/%d: recover: batch at %d after log end %d: %w",
			p.cfg.Topic, p.cfg.Index, h.BaseOffset, p.leo, batch.ErrCorrupt)
	}
	p.appendLocked(h, len(b), nil)
	p.durable = p.leo
	return false, nil
}

func entryOf(h batch.Header, size int, now int64) entry {
	return entry{
		base: h.BaseOffset, last: h.LastOffset(), maxTS: h.MaxTimestamp,
		size: int32(size), epoch: h.PartitionLeaderEpoch,
		pid: h.ProducerID, pepoch: h.ProducerEpoch, firstSeq: h.BaseSequence, lastSeq: h.LastSequence(),
		appended: now,
	}
}

// appendLocked records a stamped batch in the index, epoch cache and
// producer state.
func (p *Partition) appendLocked(h batch.Header, size int, data []byte) {
	if len(p.index) == 0 && h.BaseOffset > p.leo {
		// The log starts at the first batch kept (logStart may fall
		// inside it).
		p.leo = h.BaseOffset
	}
	e := entryOf(h, size, time.Now().UnixNano())
	e.data = data
	if data == nil && p.dataFrom == len(p.index) {
		p.dataFrom++
	}
	p.index = append(p.index, e)
	p.walBytes += int64(size)
	if p.cfg.OnWALBytes != nil {
		p.cfg.OnWALBytes(int64(size))
	}
	if n := len(p.epochs); n == 0 || p.epochs[n-1].Epoch < h.PartitionLeaderEpoch {
		p.epochs = append(p.epochs, EpochStart{Epoch: h.PartitionLeaderEpoch, StartOffset: h.BaseOffset})
	}
	if e.base >= p.producersEnd { // else a restored snapshot covers it
		updateProducer(p.producers, e)
	}
	p.leo = h.LastOffset() + 1
}

// updateProducer records batch e in a producer table.
func updateProducer(m map[int64]*producer, e entry) {
	if e.pid < 0 {
		return
	}
	ps := m[e.pid]
	if ps == nil || ps.epoch != e.pepoch {
		ps = &producer{epoch: e.pepoch}
		m[e.pid] = ps
	}
	ps.add(seqEntry{firstSeq: e.firstSeq, lastSeq: e.lastSeq, base: e.base, last: e.last})
}

// producersAtLocked is producer state as of end: the base state plus the
// index's batches from producersEnd up to end.
func (p *Partition) producersAtLocked(end int64) map[int64]*producer {
	m := make(map[int64]*producer, len(p.baseProducers))
	for id, ps := range p.baseProducers {
		cp := *ps
		m[id] = &cp
	}
	for _, e := range p.index {
		if e.base < p.producersEnd {
			continue
		}
		if e.last >= end {
			break
		}
		updateProducer(m, e)
	}
	return m
}

// SetRole installs what metadata says about this partition. A new epoch,
// or losing the lead, fails every produce still waiting with ErrNotLeader;
// becoming leader starts with every follower's position unknown.
func (p *Partition) SetRole(r Role) {
	p.mu.Lock()
	if r.Epoch < p.epoch {
		p.mu.Unlock()
		return // older metadata than what is installed
	}
	old := p.role
	var failed []waiter
	newEpoch := r.Epoch > p.epoch
	if r.Epoch > p.epoch {
		p.epoch = r.Epoch
	}
	r.ISR = slices.Clone(r.ISR)
	r.Replicas = slices.Clone(r.Replicas)
	if r.MinISR < 1 {
		r.MinISR = 1
	}
	if newEpoch || !r.Leader {
		p.deposed = false
	}
	lost := old.Leader && (!r.Leader || newEpoch)
	if lost {
		failed = p.waiters
		p.waiters = nil
	}
	if r.Leader && (!old.Leader || newEpoch) {
		p.replicas = map[int32]*follower{}
		p.pending = map[int32]bool{}
		p.since = time.Now()
		p.leaderHW = -1
	}
	if !r.Leader {
		p.replicas, p.pending = nil, nil
		if old.Leader || newEpoch {
			p.since = time.Now()
		}
	}
	if r.Leader {
		for _, id := range r.Replicas {
			if id != r.Self && p.replicas[id] == nil {
				p.replicas[id] = &follower{leo: -1}
			}
		}
		for id := range p.replicas {
			if !slices.Contains(r.Replicas, id) {
				delete(p.replicas, id)
			}
		}
		for id := range p.pending {
			if slices.Contains(r.ISR, id) || !slices.Contains(r.Replicas, id) {
				delete(p.pending, id)
			}
		}
	}
	p.role = r
	ready := p.advanceLocked()
	p.mu.Unlock()
	for _, w := range failed {
		w.done(fmt.Errorf("%w: leadership moved (epoch %d)", ErrNotLeader, r.Epoch))
	}
	p.finish(ready)
}

// IsLeader reports whether this replica currently leads.
func (p *Partition) IsLeader() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.role.Leader
}

// SetSessionLapsed says whether this agent's session with the controller
// may have ended: the controller may then have fenced it and elected
// another leader, which this replica has not heard of yet. While it has,
// the leader takes and acknowledges only what its in-sync followers
// must take first (acks=all with another in-sync replica): a follower
// refuses a deposed leader's appends as soon as it knows the new epoch,
// and the new leader is one of them, so nothing acknowledged that way
// can be lost or taken twice. Everything else (acks=0 and 1, a leader
// alone in its ISR) is refused with ErrNotLeader, and produces waiting
// for it fail at once, so clients look for the new leader instead of
// trusting a zombie.
func (p *Partition) SetSessionLapsed(lapsed bool) {
	p.mu.Lock()
	if p.lapsed == lapsed {
		p.mu.Unlock()
		return
	}
	p.lapsed = lapsed
	var failed []waiter
	if lapsed && p.role.Leader {
		keep := p.waiters[:0]
		for _, w := range p.waiters {
			if w.needHW && p.followersFenceLocked(-1) {
				keep = append(keep, w)
			} else {
				failed = append(failed, w)
			}
		}
		p.waiters = keep
	}
	epoch := p.epoch
	p.mu.Unlock()
	for _, w := range failed {
		w.done(lapsedErr(epoch, nil))
	}
}

// Deposed records that a follower refused this leader's appends at epoch
// because its metadata shows a newer epoch: leadership has moved, though
// this agent has not applied the change yet. Produces waiting fail at
// once with ErrNotLeader (they can never be acknowledged here) and new
// ones are refused, until SetRole installs a newer role.
func (p *Partition) Deposed(epoch int32) {
	p.mu.Lock()
	if !p.role.Leader || p.epoch != epoch || p.deposed {
		p.mu.Unlock()
		return
	}
	p.deposed = true
	failed := p.waiters
	p.waiters = nil
	p.mu.Unlock()
	for _, w := range failed {
		w.done(deposedErr(epoch))
	}
}

// lapsedErr is ErrNotLeader for a leader whose session may have ended,
// with the refusal it replaces (a sequence error), if any, as text only.
func lapsedErr(epoch int32, instead error) error {
	if instead != nil {
		return fmt.Errorf("%w: this agent's session with the controller may have ended (epoch %d; %v)", ErrNotLeader, epoch, instead)
	}
	return fmt.Errorf("%w: this agent's session with the controller may have ended (epoch %d)", ErrNotLeader, epoch)
}

func deposedErr(epoch int32) error {
	return fmt.Errorf("%w: a follower knows a leader epoch newer than %d", ErrNotLeader, epoch)
}

// followersFenceLocked reports whether a write with acks is acknowledged
// only once another in-sync replica has it.
func (p *Partition) followersFenceLocked(acks int16) bool {
	if acks != -1 {
		return false
	}
	for _, id := range p.role.ISR {
		if id != p.role.Self {
			return true
		}
	}
	return false
}

// AddPending counts a follower the leader has asked to add to the ISR in
// the high watermark until metadata settles it: the HW must not pass what
// a member-to-be lacks, or the new member could later lead without it.
func (p *Partition) AddPending(id int32) {
	p.mu.Lock()
	if p.role.Leader && p.pending != nil && slices.Contains(p.role.Replicas, id) {
		p.pending[id] = true
	}
	p.mu.Unlock()
}

// ClearPending drops a pending ISR addition that was refused.
func (p *Partition) ClearPending(id int32) {
	p.mu.Lock()
	delete(p.pending, id)
	ready := p.advanceLocked()
	p.mu.Unlock()
	p.finish(ready)
}

// advanceLocked recomputes the high watermark and returns the waiters it
// releases (run them with finish, after unlocking).
func (p *Partition) advanceLocked() []waiter {
	hw := p.hw
	if p.role.Leader {
		if len(p.role.ISR) >= p.role.MinISR {
			next := p.durable
			ok := true
			for _, id := range p.role.ISR {
				if id == p.role.Self {
					continue
				}
				f := p.replicas[id]
				if f == nil || f.leo < 0 {
					ok = false
					break
				}
				next = min(next, f.leo)
			}
			for id := range p.pending {
				if f := p.replicas[id]; f == nil || f.leo < 0 {
					ok = false
				} else {
					next = min(next, f.leo)
				}
			}
			if ok && next > hw {
				hw = next
			}
		}
	} else if p.leaderHW >= 0 {
		hw = max(hw, min(p.leaderHW, p.durable))
	}
	moved := hw > p.hw
	p.hw = hw
	// Data below the HW is on every in-sync replica: lagging followers
	// read it from the WAL.
	for p.dataFrom < len(p.index) && p.index[p.dataFrom].last < p.hw {
		p.index[p.dataFrom].data = nil
		p.dataFrom++
	}
	var ready []waiter
	if len(p.waiters) > 0 {
		keep := p.waiters[:0]
		for _, w := range p.waiters {
			if (w.needHW && w.end <= p.hw) || (!w.needHW && w.end <= p.durable) {
				ready = append(ready, w)
			} else {
				keep = append(keep, w)
			}
		}
		p.waiters = keep
	}
	if moved {
		ready = append(ready, waiter{end: -1}) // marks "call OnAdvance"
	}
	return ready
}

// finish completes released waiters and reports a HW move.
func (p *Partition) finish(ready []waiter) {
	advanced := false
	for _, w := range ready {
		if w.done == nil {
			advanced = true
			continue
		}
		w.done(nil)
	}
	if advanced && p.cfg.OnAdvance != nil {
		p.cfg.OnAdvance()
	}
}

// AppendResult says where a produced batch landed.
type AppendResult struct {
	BaseOffset int64
	LogStart   int64
	Duplicate  bool
}

// Append assigns offsets to a validated batch, stamps it, and queues it to
// the WAL. done is called once the batch is durable in the local WAL
// (acks=1) or below the high watermark (acks=all, -1), or with an error. It
// returns without waiting.
func (p *Partition) Append(b []byte, h batch.Header, acks int16, done func(error)) (AppendResult, error) {
	// Take the WAL slot before the lock: the WAL's completion callback
	// takes the lock, so waiting for queue space while holding it could
	// deadlock.
	if err := p.cfg.WAL.Reserve(); err != nil {
		return AppendResult{}, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	queued := false
	defer func() {
		if !queued {
			p.cfg.WAL.Release()
		}
	}()
	needHW := acks != 1
	p.mu.Lock()
	switch {
	case p.closed:
		p.mu.Unlock()
		return AppendResult{}, ErrClosed
	case p.failed != nil:
		p.mu.Unlock()
		return AppendResult{}, fmt.Errorf("%w: %v", ErrStorage, p.failed)
	case !p.role.Leader:
		p.mu.Unlock()
		return AppendResult{}, ErrNotLeader
	case p.deposed:
		p.mu.Unlock()
		return AppendResult{}, deposedErr(p.epoch)
	case p.lapsed && !p.followersFenceLocked(acks):
		p.mu.Unlock()
		return AppendResult{}, lapsedErr(p.epoch, nil)
	case acks == -1 && len(p.role.ISR) < p.role.MinISR:
		n, m := len(p.role.ISR), p.role.MinISR
		p.mu.Unlock()
		return AppendResult{}, fmt.Errorf("%w: %d in sync, min.insync.replicas is %d", ErrNotEnoughReplicas, n, m)
	}
	if h.ProducerID >= 0 && p.missingProducers >= 0 {
		p.mu.Unlock()
		return AppendResult{}, ErrProducersLoading // deciding duplicates needs it
	}
	if h.ProducerID >= 0 {
		dup, isDup, err := p.checkSequenceLocked(h)
		if err != nil && p.lapsed {
			// A leader that may have been replaced may also be behind
			// the producer, which has moved on with the new leader:
			// sending it there is the answer, not a sequence error,
			// which makes clients renumber and resend.
			p.mu.Unlock()
			return AppendResult{}, lapsedErr(p.epoch, err)
		}
		if err != nil {
			p.mu.Unlock()
			return AppendResult{}, err
		}
		if isDup {
			res := AppendResult{BaseOffset: dup.base, LogStart: p.logStart, Duplicate: true}
			if dup.last < p.hw || (!needHW && dup.last < p.durable) {
				p.mu.Unlock()
				done(nil)
			} else {
				p.waiters = append(p.waiters, waiter{end: dup.last + 1, needHW: needHW, dup: true, done: done})
				p.mu.Unlock()
			}
			return res, nil
		}
	}
	base := p.leo
	batch.SetBaseOffset(b, base)
	batch.SetPartitionLeaderEpoch(b, p.epoch)
	h.BaseOffset = base
	h.PartitionLeaderEpoch = p.epoch
	p.appendLocked(h, len(b), b)
	end := p.leo
	res := AppendResult{BaseOffset: base, LogStart: p.logStart}
	p.waiters = append(p.waiters, waiter{end: end, needHW: needHW, done: done})
	gen := p.gen
	// Queue while holding the lock so WAL order is offset order.
	queued = true // Append uses or releases the slot
	if err := p.cfg.WAL.AppendReserved(p.cfg.Key, base, b, func(err error) { p.written(gen, end, err) }); err != nil {
		// The offsets just assigned will never be durable; refuse
		// everything after them rather than leave a hole.
		p.failed = err
		p.waiters = p.waiters[:len(p.waiters)-1]
		p.mu.Unlock()
		return AppendResult{}, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	p.mu.Unlock()
	if p.cfg.OnAppend != nil {
		p.cfg.OnAppend()
	}
	return res, nil
}

func (p *Partition) checkSequenceLocked(h batch.Header) (seqEntry, bool, error) {
	ps := p.producers[h.ProducerID]
	switch {
	case ps == nil:
		// No state for this producer (new, or its batches are gone with
		// retention or a lost disk): Kafka accepts any sequence.
		return seqEntry{}, false, nil
	case h.ProducerEpoch > ps.epoch:
		if h.BaseSequence != 0 {
			return seqEntry{}, false, fmt.Errorf("%w: producer %d epoch %d starts at sequence %d, want 0",
				ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		return seqEntry{}, false, nil
	case h.ProducerEpoch < ps.epoch:
		return seqEntry{}, false, fmt.Errorf("%w: producer %d epoch %d is older than %d",
			ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, ps.epoch)
	}
	if e, ok := ps.find(h.BaseSequence, h.LastSequence()); ok {
		return e, true, nil
	}
	last := ps.lastEntry().lastSeq
	want := last + 1
	if last == 1<<31-1 {
		want = 0
	}
	if h.BaseSequence != want {
		return seqEntry{}, false, fmt.Errorf("%w: producer %d sent sequence %d, want %d",
			ErrOutOfOrderSequence, h.ProducerID, h.BaseSequence, want)
	}
	return seqEntry{}, false, nil
}

// written runs on the WAL writer when the batch ending at end is written.
func (p *Partition) written(gen uint64, end int64, err error) {
	p.mu.Lock()
	if gen != p.gen {
		// The log was cut below this batch meanwhile; its waiters were
		// failed then.
		p.mu.Unlock()
		return
	}
	if err == nil && p.failed != nil {
		// An earlier batch was lost: moving past it would serve a hole.
		err = p.failed
	}
	if err != nil {
		if p.failed == nil {
			p.failed = err
		}
		ws := p.waiters
		p.waiters = nil
		p.cond.Broadcast()
		p.mu.Unlock()
		for _, w := range ws {
			w.done(fmt.Errorf("%w: %v", ErrStorage, err))
		}
		return
	}
	if end > p.durable {
		p.durable = end
	}
	p.cond.Broadcast()
	ready := p.advanceLocked()
	p.mu.Unlock()
	p.finish(ready)
}

// Offsets is a consistent view of the partition's bounds.
type Offsets struct {
	LogStart, FlushedEnd, HW, LEO int64
	Epoch                         int32
}

// Offsets returns the current bounds.
func (p *Partition) Offsets() Offsets {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.offsetsLocked()
}

func (p *Partition) offsetsLocked() Offsets {
	return Offsets{LogStart: p.logStart, FlushedEnd: p.flushed, HW: p.hw, LEO: p.leo, Epoch: p.epoch}
}

// Read returns whole batches starting with the one holding offset, up to the
// high watermark and maxBytes. With minOne the first batch is returned even
// if larger, so a consumer can always make progress (KIP-74). offset == HW
// yields nothing.
func (p *Partition) Read(offset int64, maxBytes int, minOne bool) ([]byte, Offsets, error) {
	p.mu.Lock()
	off := p.offsetsLocked()
	// Between the HW and the log end is in flight, not out of range: the
	// fetch waits, as Kafka's does.
	if offset < p.logStart || offset > p.leo {
		p.mu.Unlock()
		return nil, off, fmt.Errorf("%w: %d not in [%d, %d]", ErrOffsetOutOfRange, offset, off.LogStart, off.LEO)
	}
	if offset >= p.hw {
		p.mu.Unlock()
		return nil, off, nil
	}
	if offset < p.flushed {
		p.mu.Unlock()
		return nil, off, ErrFlushed
	}
	data, err := p.collectLocked(offset, p.hw, maxBytes, minOne)
	if err != nil {
		return nil, off, err
	}
	return data, off, nil
}

// collectLocked reads whole batches from the one holding offset, below
// limit, up to maxBytes (the first regardless with minOne): from kept
// data where the index has it, else from the WAL. It releases p.mu.
func (p *Partition) collectLocked(offset, limit int64, maxBytes int, minOne bool) ([]byte, error) {
	i := p.findLocked(offset)
	if i < 0 {
		p.mu.Unlock()
		return nil, fmt.Errorf("%w: offset %d has no batch", ErrOffsetOutOfRange, offset)
	}
	// Size the read from the index so WAL iteration stops at the right place.
	want, j := 0, i
	for ; j < len(p.index) && p.index[j].base < limit; j++ {
		if want+int(p.index[j].size) > maxBytes && (want > 0 || !minOne) {
			break
		}
		want += int(p.index[j].size)
	}
	if want == 0 {
		p.mu.Unlock()
		return nil, nil
	}
	out := make([]byte, 0, want)
	// Kept data first (it may not be in the WAL yet); stop at the first
	// batch without, and read the rest from the WAL.
	k := i
	for ; k < j && p.index[k].data != nil; k++ {
		out = append(out, p.index[k].data...)
	}
	if k == j {
		p.mu.Unlock()
		return out, nil
	}
	start, stop := p.index[k].base, p.index[j-1].last
	p.mu.Unlock()
	err := p.cfg.WAL.Read(p.cfg.Key, start, func(base int64, b []byte) bool {
		if base > stop || len(out)+len(b) > want {
			return false
		}
		out = append(out, b...)
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	return out, nil
}

// ReadForFollower returns whole batches from the one holding offset up to
// the log end (in flight to the WAL or not), at most maxBytes (at least one
// batch), and the offset after them. Leader only. An offset below what the
// WAL holds is ErrFlushed: the follower restarts from the flushed end.
func (p *Partition) ReadForFollower(offset int64, maxBytes int) ([]byte, int64, error) {
	p.mu.Lock()
	switch {
	case !p.role.Leader:
		p.mu.Unlock()
		return nil, 0, ErrNotLeader
	case offset >= p.leo:
		leo := p.leo
		p.mu.Unlock()
		return nil, leo, nil
	case offset < p.flushed || len(p.index) == 0 || offset < p.index[0].base:
		p.mu.Unlock()
		return nil, 0, ErrFlushed
	}
	i := p.findLocked(offset)
	if i < 0 {
		p.mu.Unlock()
		return nil, 0, fmt.Errorf("%w: offset %d has no batch", ErrOffsetOutOfRange, offset)
	}
	want, j := 0, i
	for ; j < len(p.index); j++ {
		if want > 0 && want+int(p.index[j].size) > maxBytes {
			break
		}
		want += int(p.index[j].size)
	}
	next := p.index[j-1].last + 1
	data, err := p.collectLocked(offset, next, want, true)
	if err != nil {
		return nil, 0, err
	}
	if len(data) != want {
		return nil, 0, fmt.Errorf("%w: read %d bytes for a follower, index says %d", ErrStorage, len(data), want)
	}
	return data, next, nil
}

// FollowerAck records a follower's acknowledged log end (leader only) and
// moves the high watermark if it can.
func (p *Partition) FollowerAck(id int32, leo int64) {
	p.mu.Lock()
	f := p.replicas[id]
	if f == nil || !p.role.Leader {
		p.mu.Unlock()
		return
	}
	f.leo = leo
	ready := p.advanceLocked()
	p.mu.Unlock()
	p.finish(ready)
}

// ReplicaState is the leader's view of one follower.
type ReplicaState struct {
	ID    int32
	LEO   int64 // -1: not heard from in this epoch
	InISR bool
	// Lag is how long the follower has been missing data the leader
	// has: since the oldest batch it lacks arrived (0 when caught up).
	Lag time.Duration
}

// Replication is the leader's view of its followers, for ISR decisions.
type Replication struct {
	Epoch        int32
	HW, LEO      int64
	EpochStart   int64 // first offset of the current epoch (LEO if none yet)
	ISR, Pending []int32
	Followers    []ReplicaState
}

// ReplicationState reports the followers' positions (leader only; ok is
// false otherwise).
func (p *Partition) ReplicationState() (Replication, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.role.Leader {
		return Replication{}, false
	}
	r := Replication{Epoch: p.epoch, HW: p.hw, LEO: p.leo, EpochStart: p.leo, ISR: slices.Clone(p.role.ISR)}
	if n := len(p.epochs); n > 0 && p.epochs[n-1].Epoch == p.epoch {
		r.EpochStart = p.epochs[n-1].StartOffset
	}
	for id := range p.pending {
		r.Pending = append(r.Pending, id)
	}
	now := time.Now()
	for id, f := range p.replicas {
		st := ReplicaState{ID: id, LEO: f.leo, InISR: slices.Contains(p.role.ISR, id)}
		switch {
		case f.leo >= p.leo:
		case f.leo < 0:
			st.Lag = now.Sub(p.since)
		default:
			i := sort.Search(len(p.index), func(i int) bool { return p.index[i].last >= f.leo })
			if i < len(p.index) {
				st.Lag = now.Sub(time.Unix(0, p.index[i].appended))
			} else {
				st.Lag = now.Sub(p.since)
			}
			st.Lag = min(st.Lag, now.Sub(p.since))
		}
		r.Followers = append(r.Followers, st)
	}
	sort.Slice(r.Followers, func(i, j int) bool { return r.Followers[i].ID < r.Followers[j].ID })
	return r, true
}

// FollowerEnd is a follower's answer to a probe: its log end and the epoch
// of its last batch (-1 if it holds none).
func (p *Partition) FollowerEnd() (leo int64, lastEpoch int32) {
	p.mu.Lock()
	defer p.mu.Unlock()
	lastEpoch = -1
	if n := len(p.index); n > 0 {
		lastEpoch = p.index[n-1].epoch
	} else if n := len(p.epochs); n > 0 {
		lastEpoch = p.epochs[n-1].Epoch
	}
	return p.leo, lastEpoch
}

// waitDurableLocked waits until everything queued to the WAL is written
// (or the WAL failed), so the log can be cut without a queued write landing
// after the cut.
func (p *Partition) waitDurableLocked() {
	for p.durable < p.leo && p.failed == nil && !p.closed {
		p.cond.Wait()
	}
}

// AppendReplicated appends batches the leader sent (stamped, concatenated)
// on a follower. Before them, truncate ≥ 0 cuts the log there and reset ≥ 0
// empties it to start at reset. hw is the leader's high watermark. done is
// called with the log end once the batches are in the WAL.
func (p *Partition) AppendReplicated(data []byte, truncate, reset, hw int64, done func(leo int64, err error)) error {
	// Validate before touching anything: the bytes came over the network.
	var hdrs []batch.Header
	var sizes []int
	for rest := data; len(rest) > 0; {
		h, n, err := batch.Next(rest)
		if err != nil {
			return fmt.Errorf("partition %s/%d: replicated batch: %w", p.cfg.Topic, p.cfg.Index, err)
		}
		if k := len(hdrs); k > 0 && h.BaseOffset != hdrs[k-1].LastOffset()+1 {
			return fmt.Errorf("partition %s/%d: replicated batches not contiguous at %d: %w", p.cfg.Topic, p.cfg.Index, h.BaseOffset, batch.ErrCorrupt)
		}
		hdrs = append(hdrs, h)
		sizes = append(sizes, n)
		rest = rest[n:]
	}
	// One WAL slot for all of them, taken before the lock (see Append).
	if err := p.cfg.WAL.Reserve(); err != nil {
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	reserved := true
	defer func() {
		if reserved {
			p.cfg.WAL.Release()
		}
	}()
	p.mu.Lock()
	switch {
	case p.closed:
		p.mu.Unlock()
		return ErrClosed
	case p.failed != nil:
		p.mu.Unlock()
		return fmt.Errorf("%w: %v", ErrStorage, p.failed)
	case p.role.Leader:
		p.mu.Unlock()
		return ErrNotFollower
	}
	if reset >= 0 {
		if err := p.resetLocked(reset); err != nil {
			return err // resetLocked released the lock
		}
		p.mu.Lock()
	} else if truncate >= 0 && truncate < p.leo {
		if err := p.truncateLocked(truncate); err != nil {
			return err
		}
		p.mu.Lock()
	}
	if hw >= 0 {
		p.leaderHW = max(p.leaderHW, hw)
	}
	if len(hdrs) > 0 {
		first := hdrs[0]
		fits := first.BaseOffset == p.leo ||
			(len(p.index) == 0 && first.BaseOffset < p.leo && first.LastOffset() >= p.leo)
		if !fits {
			leo := p.leo
			p.mu.Unlock()
			return fmt.Errorf("%w: batch at %d, log end %d", ErrLogMismatch, first.BaseOffset, leo)
		}
	}
	gen := p.gen
	if len(hdrs) == 0 {
		ready := p.advanceLocked()
		durable := p.durable
		p.mu.Unlock()
		p.finish(ready)
		done(durable, nil)
		return nil
	}
	bases := make([]int64, len(hdrs))
	batches := make([][]byte, len(hdrs))
	pos := 0
	for i, h := range hdrs {
		batches[i] = data[pos : pos+sizes[i]]
		bases[i] = h.BaseOffset
		pos += sizes[i]
		p.appendLocked(h, sizes[i], nil)
	}
	end := p.leo
	reserved = false
	err := p.cfg.WAL.AppendAllReserved(p.cfg.Key, bases, batches, func(err error) {
		p.written(gen, end, err)
		p.mu.Lock()
		leo := p.durable
		p.mu.Unlock()
		done(leo, err)
	})
	if err != nil {
		p.failed = err
		p.mu.Unlock()
		return fmt.Errorf("%w: %v", ErrStorage, err)
	}
	p.mu.Unlock()
	return nil
}

// truncateLocked cuts the log at to (a follower's divergent suffix after a
// leader change): batches at or above it leave the index, the epoch cache,
// producer state and the WAL. Releases p.mu.
func (p *Partition) truncateLocked(to int64) error {
	p.waitDurableLocked()
	i := sort.Search(len(p.index), func(i int) bool { return p.index[i].last >= to })
	if i < len(p.index) && p.index[i].base < to {
		to = p.index[i].base // batches are whole: cut before the one holding to
	}
	var dropped int64
	for _, e := range p.index[i:] {
		dropped += int64(e.size)
	}
	p.index = p.index[:i:i]
	p.dataFrom = min(p.dataFrom, i)
	p.walBytes -= dropped
	if p.cfg.OnWALBytes != nil && dropped > 0 {
		p.cfg.OnWALBytes(-dropped)
	}
	to = max(to, p.flushed)
	p.leo = to
	p.durable = min(p.durable, to)
	p.hw = min(p.hw, to)
	for len(p.epochs) > 0 && p.epochs[len(p.epochs)-1].StartOffset >= to {
		p.epochs = p.epochs[:len(p.epochs)-1]
	}
	p.producers = p.producersAtLocked(to)
	p.gen++
	p.mu.Unlock()
	if err := p.cfg.WAL.DeleteFrom(p.cfg.Key, to); err != nil {
		p.mu.Lock()
		p.failed = err
		p.mu.Unlock()
		return fmt.Errorf("%w: truncate: %v", ErrStorage, err)
	}
	return nil
}

// resetLocked empties the log and starts it at at (a follower too far
// behind: everything below at is in the bucket). Releases p.mu.
func (p *Partition) resetLocked(at int64) error {
	p.waitDurableLocked()
	at = max(at, p.logStart)
	dropped := p.walBytes
	p.index, p.dataFrom, p.walBytes = nil, 0, 0
	if p.cfg.OnWALBytes != nil && dropped > 0 {
		p.cfg.OnWALBytes(-dropped)
	}
	p.flushed = max(p.flushed, at)
	p.leo, p.durable, p.hw = at, at, at
	p.epochs = nil
	// Producer state of what was flushed is not here: producers start
	// fresh, as Kafka treats expired producer state.
	p.baseProducers = map[int64]*producer{}
	p.producers = map[int64]*producer{}
	p.producersEnd = at
	if at > 0 {
		p.missingProducers = at
	}
	p.gen++
	p.mu.Unlock()
	if err := p.cfg.WAL.DeleteFrom(p.cfg.Key, 0); err != nil {
		p.mu.Lock()
		p.failed = err
		p.mu.Unlock()
		return fmt.Errorf("%w: reset: %v", ErrStorage, err)
	}
	return nil
}

// DropLog empties the log of a partition this agent no longer replicates
// (it restarts at the flushed end if it becomes a replica again).
func (p *Partition) DropLog() error {
	p.mu.Lock()
	if p.role.Leader || (len(p.index) == 0 && p.leo == p.flushed) {
		p.mu.Unlock()
		return nil
	}
	return p.resetLocked(p.flushed)
}

// findLocked returns the index of the batch holding offset, or -1.
func (p *Partition) findLocked(offset int64) int {
	i := sort.Search(len(p.index), func(i int) bool { return p.index[i].last >= offset })
	if i == len(p.index) || p.index[i].base > offset {
		return -1
	}
	return i
}

// OffsetForTimestamp returns the earliest offset at or after the log start,
// below the HW, whose record timestamp is at or after ts, with that record's
// timestamp (for LogAppendTime batches, the batch's max timestamp), or HW
// (with ok=false) if there is none. The index narrows the search to batches
// whose max timestamp qualifies; each is read from the WAL and its records
// walked. A batch that cannot be read or decoded is answered at batch
// granularity instead: its first offset (or the log start) and its max
// timestamp.
func (p *Partition) OffsetForTimestamp(ts int64) (offset, timestamp int64, ok bool) {
	// Bounds decompressing a batch; batches are far smaller in practice.
	const maxDecompressed = 64 << 20
	from := int64(math.MinInt64) // batches before this base are done
	for {
		p.mu.Lock()
		logStart, hw := p.logStart, p.hw
		var e entry
		found := false
		i := sort.Search(len(p.index), func(i int) bool { return p.index[i].base >= from })
		for _, x := range p.index[i:] {
			if x.base >= hw {
				break
			}
			if x.maxTS >= ts && x.last >= logStart {
				e, found = x, true
				break
			}
		}
		p.mu.Unlock()
		if !found {
			return hw, -1, false
		}

		// Read and walk the batch without the lock.
		var b []byte
		err := p.cfg.WAL.Read(p.cfg.Key, e.base, func(base int64, v []byte) bool {
			if base == e.base {
				b = append([]byte(nil), v...)
			}
			return false
		})
		if err == nil && b == nil {
			err = fmt.Errorf("batch %d not in the WAL", e.base)
		}
		var off, rts int64
		var hit bool
		if err == nil {
			off, rts, hit, err = batch.FirstAtOrAfterFrom(b, logStart, ts, maxDecompressed)
		}
		switch {
		case err == nil && hit && off >= e.base && off <= e.last:
			return off, rts, true
		case err != nil || hit: // unreadable, undecodable, or at odds with the index
			return max(e.base, logStart), e.maxTS, true
		}
		// No record at or after the log start qualifies (the max
		// timestamp belongs to a record before it): try later batches.
		from = e.last + 1
	}
}

// MaxTimestamp returns the offset and timestamp of the batch with the largest
// timestamp below the HW (ListOffsets -3), or ok=false if the log is empty.
func (p *Partition) MaxTimestamp() (offset, timestamp int64, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	timestamp = -1
	for _, e := range p.index {
		if e.base >= p.hw {
			break
		}
		if e.maxTS > timestamp {
			offset, timestamp, ok = e.last, e.maxTS, true
		}
	}
	return
}

// EndOffsetForEpoch answers OffsetForLeaderEpoch: the largest epoch ≤ the
// requested one and the start of the epoch after it (or LEO).
func (p *Partition) EndOffsetForEpoch(epoch int32) (int32, int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	// As Kafka's leader-epoch cache answers: the current epoch ends at the
	// log end; a future one is unknown; one before the first known epoch
	// ends where the first known one starts.
	switch {
	case epoch == p.epoch:
		return p.epoch, p.leo
	case epoch > p.epoch || epoch < 0:
		return -1, -1
	case len(p.epochs) == 0:
		return p.epoch, p.leo
	}
	i := sort.Search(len(p.epochs), func(i int) bool { return p.epochs[i].Epoch > epoch })
	if i == 0 {
		return epoch, p.epochs[0].StartOffset
	}
	if i == len(p.epochs) {
		return p.epochs[i-1].Epoch, p.leo
	}
	return p.epochs[i-1].Epoch, p.epochs[i].StartOffset
}

// EpochAt returns the leader epoch of the batch holding offset, from the
// epoch cache (-1 if unknown).
func (p *Partition) EpochAt(offset int64) int32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	i := sort.Search(len(p.epochs), func(i int) bool { return p.epochs[i].StartOffset > offset })
	if i == 0 {
		return -1
	}
	return p.epochs[i-1].Epoch
}

// SetLogStart moves logStart forward (DeleteRecords, retention) and drops
// WAL batches wholly below it. On the leader offset may not pass the HW.
func (p *Partition) SetLogStart(offset int64) error {
	p.mu.Lock()
	if offset <= p.logStart {
		p.mu.Unlock()
		return nil
	}
	if offset > p.hw {
		if p.role.Leader {
			p.mu.Unlock()
			return fmt.Errorf("%w: %d beyond high watermark %d", ErrOffsetOutOfRange, offset, p.hw)
		}
		// A follower behind the leader's HW still takes the leader's
		// log start (metadata says it is committed).
		if offset > p.leo {
			p.logStart = offset
			return p.resetLocked(offset)
		}
	}
	p.logStart = offset
	return p.dropBelowLogStartLocked()
}

// DropStale removes WAL batches wholly below the log start or flushed end
// that recovery found (a crash between journaling and truncating).
func (p *Partition) DropStale() error {
	p.mu.Lock()
	return p.dropBelowLogStartLocked()
}

// SetFlushedEnd records that every offset below end is in a committed
// segment and drops those batches from the WAL. A follower whose log ends
// below end restarts its log there.
func (p *Partition) SetFlushedEnd(end int64) error {
	p.mu.Lock()
	if end <= p.flushed {
		p.mu.Unlock()
		return nil
	}
	if !p.role.Leader && end > p.leo {
		return p.resetLocked(end)
	}
	if end > p.hw {
		if p.role.Leader {
			p.mu.Unlock()
			return fmt.Errorf("partition %s/%d: flushed end %d beyond high watermark %d", p.cfg.Topic, p.cfg.Index, end, p.hw)
		}
		// Committed in the bucket, so committed here too.
		p.hw = end
	}
	p.flushed = end
	return p.dropBelowLogStartLocked()
}

// Unflushed returns whole batches from flushedEnd up to the high watermark,
// at most maxBytes of them (at least one), for the flusher, with the offset
// range they cover: [first, end).
func (p *Partition) Unflushed(maxBytes int) (data []byte, first, end int64, err error) {
	p.mu.Lock()
	// The first batch may start below flushedEnd when a log start moved
	// inside it; the range still serves from flushedEnd.
	first = p.flushed
	i := sort.Search(len(p.index), func(i int) bool { return p.index[i].last >= first })
	want, j := 0, i
	for ; j < len(p.index) && p.index[j].last < p.hw; j++ {
		if want > 0 && want+int(p.index[j].size) > maxBytes {
			break
		}
		want += int(p.index[j].size)
	}
	if want == 0 {
		p.mu.Unlock()
		return nil, first, first, nil
	}
	end = p.index[j-1].last + 1
	start := p.index[i].base
	p.mu.Unlock()
	data = make([]byte, 0, want)
	err = p.cfg.WAL.Read(p.cfg.Key, start, func(base int64, b []byte) bool {
		if base >= end {
			return false
		}
		data = append(data, b...)
		return true
	})
	if err != nil {
		return nil, first, first, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	if len(data) != want {
		return nil, first, first, fmt.Errorf("%w: read %d unflushed bytes, index says %d", ErrStorage, len(data), want)
	}
	return data, first, end, nil
}

// WALBytes is the size of the batches this partition holds in the WAL.
func (p *Partition) WALBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.walBytes
}

// dropBelowLogStartLocked drops WAL batches below max(logStart,
// flushedEnd). Called with p.mu held; releases it.
func (p *Partition) dropBelowLogStartLocked() error {
	offset := max(p.logStart, p.flushed)
	i := sort.Search(len(p.index), func(i int) bool { return p.index[i].last >= offset })
	keepBase := offset
	if i < len(p.index) {
		keepBase = p.index[i].base
	}
	// The batches about to go are where producer state is rebuilt from
	// (after a truncation, for snapshots): fold them into the base state
	// first, as of the HW (what is above may yet be lost), or as of the
	// first batch kept when the log start passed the HW (a follower told
	// it is committed). Dropping them first would lose every producer
	// batch between the last snapshot point and the cut.
	end := p.hw
	if offset > end {
		end = keepBase
	}
	if end > p.producersEnd {
		p.baseProducers = p.producersAtLocked(end)
		p.producersEnd = end
	}
	var dropped int64
	for _, e := range p.index[:i] {
		dropped += int64(e.size)
	}
	p.index = append(p.index[:0:0], p.index[i:]...)
	p.dataFrom = max(p.dataFrom-i, 0)
	p.walBytes -= dropped
	if p.cfg.OnWALBytes != nil && dropped > 0 {
		p.cfg.OnWALBytes(-dropped)
	}
	snap := encodeProducers(p.baseProducers, p.producersEnd)
	p.mu.Unlock()
	if err := p.cfg.WAL.PutProducerSnapshot(p.cfg.Key, snap); err != nil {
		return err
	}
	return p.cfg.WAL.DeleteBefore(p.cfg.Key, keepBase)
}

// ProducerSnapshot encodes idempotent-producer state as of end (for a
// segment footer: the state at the end of the range flushed).
func (p *Partition) ProducerSnapshot(end int64) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	if end < p.producersEnd {
		end = p.producersEnd
	}
	return encodeProducers(p.producersAtLocked(end), end)
}

// encodeProducers serialises producer state as of end: end offset, then
// per producer id, epoch and its recent batches.
func encodeProducers(m map[int64]*producer, end int64) []byte {
	ids := make([]int64, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b := binary.BigEndian.AppendUint64(nil, uint64(end))
	b = binary.BigEndian.AppendUint32(b, uint32(len(m)))
	for _, id := range ids {
		ps := m[id]
		b = binary.BigEndian.AppendUint64(b, uint64(id))
		b = binary.BigEndian.AppendUint16(b, uint16(ps.epoch))
		b = append(b, byte(ps.n), byte(ps.next))
		for i := 0; i < producerWindow; i++ {
			e := ps.recent[i]
			b = binary.BigEndian.AppendUint32(b, uint32(e.firstSeq))
			b = binary.BigEndian.AppendUint32(b, uint32(e.lastSeq))
			b = binary.BigEndian.AppendUint64(b, uint64(e.base))
			b = binary.BigEndian.AppendUint64(b, uint64(e.last))
		}
	}
	return b
}

const producerRecordSize = 8 + 2 + 2 + producerWindow*24

// RestoreProducers loads a snapshot (from the WAL, or a segment footer).
// Call it before Load; batches below the snapshot's end are then not
// re-applied to producer state.
func (p *Partition) RestoreProducers(snap []byte) error {
	if len(snap) < 12 {
		return fmt.Errorf("partition %s/%d: producer snapshot of %d bytes: %w", p.cfg.Topic, p.cfg.Index, len(snap), batch.ErrCorrupt)
	}
	end := int64(binary.BigEndian.Uint64(snap))
	n := int(binary.BigEndian.Uint32(snap[8:]))
	rest := snap[12:]
	if n < 0 || len(rest) != n*producerRecordSize {
		return fmt.Errorf("partition %s/%d: producer snapshot length mismatch: %w", p.cfg.Topic, p.cfg.Index, batch.ErrCorrupt)
	}
	producers := make(map[int64]*producer, n)
	for i := 0; i < n; i++ {
		r := rest[i*producerRecordSize:]
		ps := &producer{epoch: int16(binary.BigEndian.Uint16(r[8:])), n: int(r[10]), next: int(r[11])}
		if ps.n > producerWindow || ps.next >= producerWindow {
			return fmt.Errorf("partition %s/%d: producer snapshot window: %w", p.cfg.Topic, p.cfg.Index, batch.ErrCorrupt)
		}
		for j := 0; j < producerWindow; j++ {
			e := r[12+j*24:]
			ps.recent[j] = seqEntry{
				firstSeq: int32(binary.BigEndian.Uint32(e)), lastSeq: int32(binary.BigEndian.Uint32(e[4:])),
				base: int64(binary.BigEndian.Uint64(e[8:])), last: int64(binary.BigEndian.Uint64(e[16:])),
			}
		}
		producers[int64(binary.BigEndian.Uint64(r))] = ps
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.baseProducers = producers
	p.producersEnd = end
	p.producers = p.producersAtLocked(p.leo + 1)
	p.missingProducers = -1
	return nil
}

// ProducersMissing reports whether the log starts without the producer
// state of what precedes it, and where.
func (p *Partition) ProducersMissing() (int64, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.missingProducers, p.missingProducers >= 0
}

// AdoptProducers installs producer state from a segment footer for a log
// that starts without it; batches the log holds now are applied on top.
// A snapshot from past where the log starts is refused (it would claim
// batches this replica does not have). An empty snapshot (the bucket holds
// none: every range expired, or none carries one) starts the producers
// fresh, as after Kafka's producer-state expiry.
func (p *Partition) AdoptProducers(snap []byte) error {
	p.mu.Lock()
	missing := p.missingProducers
	if missing >= 0 && len(snap) == 0 {
		p.baseProducers = map[int64]*producer{}
		p.producersEnd = missing
		p.producers = p.producersAtLocked(p.leo + 1)
		p.missingProducers = -1
		p.mu.Unlock()
		return nil
	}
	p.mu.Unlock()
	if missing < 0 {
		return nil
	}
	if len(snap) >= 8 {
		if end := int64(binary.BigEndian.Uint64(snap)); end > missing {
			return fmt.Errorf("partition %s/%d: producer snapshot ends at %d, past the log start %d", p.cfg.Topic, p.cfg.Index, end, missing)
		}
	}
	return p.RestoreProducers(snap)
}

// Stats summarises the partition for admin views.
type Stats struct {
	Offsets
	Batches   int
	WALBytes  int64
	Producers int
	LastWrite time.Time
}

// Stats returns a summary.
func (p *Partition) Stats() Stats {
	p.mu.Lock()
	defer p.mu.Unlock()
	var bytes int64
	for _, e := range p.index {
		bytes += int64(e.size)
	}
	return Stats{
		Offsets:   p.offsetsLocked(),
		Batches:   len(p.index),
		WALBytes:  bytes,
		Producers: len(p.producers),
	}
}

// Close stops accepting appends. Duplicates waiting for their original
// fail; appends already queued complete as the WAL writes them.
func (p *Partition) Close() {
	p.mu.Lock()
	p.closed = true
	var ws []waiter
	keep := p.waiters[:0]
	for _, w := range p.waiters {
		if w.dup {
			ws = append(ws, w)
		} else {
			keep = append(keep, w)
		}
	}
	p.waiters = keep
	p.cond.Broadcast()
	p.mu.Unlock()
	for _, w := range ws {
		w.done(ErrClosed)
	}
}
