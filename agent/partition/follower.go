package partition

// Replication: the leader's view of its followers (acknowledged log ends,
// pending ISR additions), and the follower's side: appending what the
// leader sent, truncating a divergent tail, resetting past a gap.

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/tlog-io/tlog/tier/batch"
)

type follower struct {
	leo int64 // acknowledged log end; -1 until it reports
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
	data, err := p.collectAndUnlock(offset, next, want, true)
	if err != nil {
		return nil, 0, err
	}
	if len(data) < want {
		// Flushed and dropped from the WAL under the read.
		p.mu.Lock()
		moved := p.flushed > offset
		p.mu.Unlock()
		if moved {
			return nil, 0, ErrFlushed
		}
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
	now := p.cfg.Clock.Now()
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
		if err := p.resetAndUnlock(reset); err != nil {
			return err // resetAndUnlock released the lock
		}
		p.mu.Lock()
	} else if truncate >= 0 && truncate < p.leo {
		if err := p.truncateAndUnlock(truncate); err != nil {
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
		p.appendLocked(h, batches[i], false)
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

// truncateAndUnlock cuts the log at to (a follower's divergent suffix after a
// leader change): batches at or above it leave the index, the epoch cache,
// producer state and the WAL. Releases p.mu.
func (p *Partition) truncateAndUnlock(to int64) error {
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
	forget := to < p.producersEnd
	if forget {
		// The base state claims batches the cut removes (a snapshot
		// from a version that folded it further): rebuild it from the
		// bucket at the flushed end, and replay what the WAL holds.
		p.forgetProducersLocked(p.flushed)
	} else {
		p.producers = p.producersAtLocked(to)
	}
	p.gen++
	p.mu.Unlock()
	if forget {
		if err := p.cfg.WAL.DeleteProducerSnapshot(p.cfg.Key); err != nil {
			p.mu.Lock()
			p.failed = err
			p.mu.Unlock()
			return fmt.Errorf("%w: truncate: %v", ErrStorage, err)
		}
	}
	if err := p.cfg.WAL.DeleteFrom(p.cfg.Key, to); err != nil {
		p.mu.Lock()
		p.failed = err
		p.mu.Unlock()
		return fmt.Errorf("%w: truncate: %v", ErrStorage, err)
	}
	return nil
}

// resetAndUnlock empties the log and starts it at at (a follower too far
// behind: everything below at is in the bucket). Releases p.mu.
func (p *Partition) resetAndUnlock(at int64) error {
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
	p.forgetProducersLocked(at)
	p.gen++
	p.mu.Unlock()
	// The WAL's producer snapshot goes too: kept, a restart would take it
	// for the state at the log start and miss every batch in between.
	if err := p.cfg.WAL.DropPartition(p.cfg.Key); err != nil {
		p.mu.Lock()
		p.failed = err
		p.mu.Unlock()
		return fmt.Errorf("%w: reset: %v", ErrStorage, err)
	}
	return nil
}
