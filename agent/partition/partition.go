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
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/tlog-io/tlog/agent/wal"
	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/metadata/clock"
)

// Errors mapped to Kafka codes by the wire layer.
var (
	ErrOffsetOutOfRange     = errors.New("offset out of range")
	ErrOutOfOrderSequence   = errors.New("out of order sequence number")
	ErrInvalidProducerEpoch = errors.New("invalid producer epoch")
	ErrStorage              = errors.New("storage error")
	ErrClosed               = errors.New("partition closed")
	// ErrFlushed: the offset is below what the WAL holds (a follower
	// restarts from the flushed end). Read never returns it.
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
	txn               bool  // a transactional batch
	control           int16 // a marker: batch.ControlAbort or ControlCommit; else -1
	appended          int64 // unix nanos this replica got the batch (Config.Clock)
	// data holds the batch on the leader until the high watermark passes
	// it, so followers are fed from memory while it is still in flight to
	// the WAL.
	data []byte
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
	// Manifest and Ranges serve reads below the flushed end from the
	// bucket (nil: the partition reads only its WAL).
	Manifest Manifest
	Ranges   RangeReader
	// Clock times the leader's view of follower lag: when each batch
	// arrived and when the role began (nil: clock.Real).
	Clock clock.Clock
}

// Held is a partition this agent holds, with its metadata as of the
// agent's last sync.
type Held struct {
	P     *Partition
	Topic uuid.UUID
	Name  string
	Index int32
	Meta  metadata.Partition
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

// Partition is one partition's log.
type Partition struct {
	cfg Config

	mu       sync.Mutex
	cond     *sync.Cond // broadcast when durable moves
	epoch    int32
	role     Role
	since    time.Time // when this role (epoch) began (Config.Clock)
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
	// begin (restored from, and written to, WAL snapshots). producersEnd
	// never passes the first batch the WAL keeps, so no truncation cuts
	// into what the base state claims.
	producers     *producerTable
	baseProducers *producerTable
	producersEnd  int64
	// missingProducers ≥ 0: the log starts there without the producer
	// state of what came before (a restart at the flushed end, or a lost
	// WAL); a segment footer can supply it (AdoptProducers).
	missingProducers int64
	producersGap     bool // recovery: the WAL skips batches the snapshot does not cover
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
	cfg.Clock = clock.Or(cfg.Clock)
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
		producers:        newProducerTable(),
		baseProducers:    newProducerTable(),
		since:            cfg.Clock.Now(),
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
		p.since = p.cfg.Clock.Now()
		p.leaderHW = -1
	}
	if !r.Leader {
		p.replicas, p.pending = nil, nil
		if old.Leader || newEpoch {
			p.since = p.cfg.Clock.Now()
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
		Producers: len(p.producers.byID),
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
