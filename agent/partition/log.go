package partition

// The log itself: appending (offsets, stamping, the WAL write and the
// high watermark that completes waiting produces), reading whole batches,
// and the bounds that flushing and retention move.

import (
	"errors"
	"fmt"
	"sort"

	"github.com/tlog-io/tlog/tier/batch"
)

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
		if h.BaseOffset > p.producersEnd && p.missingProducers < 0 {
			p.producersGap = true // batches the snapshot does not cover are gone
		}
		if h.BaseOffset >= p.producersEnd {
			p.baseProducers.update(entryOf(h, b, 0, 0))
			p.producersEnd = h.LastOffset() + 1
			p.producers.update(entryOf(h, b, 0, 0))
		}
		return true, nil
	}
	if len(p.index) > 0 && h.BaseOffset != p.leo {
		return false, fmt.Errorf("partition %s/%d: recover: batch at %d after log end %d: %w",
			p.cfg.Topic, p.cfg.Index, h.BaseOffset, p.leo, batch.ErrCorrupt)
	}
	p.appendLocked(h, b, false)
	p.durable = p.leo
	return false, nil
}

// Recovered ends recovery (after every Load): producer state restored
// from the WAL's snapshot must reach the batches the WAL holds, or the log
// start if it holds none. A gap (batches neither snapshotted nor in the
// WAL, which a version that kept the snapshot over an emptied log could
// leave) would hide their producers and aborted transactions, so the state
// is loaded from the bucket instead.
func (p *Partition) Recovered() error {
	p.mu.Lock()
	gap := p.producersGap
	p.producersGap = false
	if p.missingProducers >= 0 {
		p.mu.Unlock()
		return nil
	}
	start := max(p.flushed, p.logStart)
	reach := start
	if len(p.index) > 0 {
		reach = min(reach, p.index[0].base)
	}
	if !gap && p.producersEnd >= reach {
		p.mu.Unlock()
		return nil
	}
	p.forgetProducersLocked(start)
	p.mu.Unlock()
	if err := p.cfg.WAL.DeleteProducerSnapshot(p.cfg.Key); err != nil {
		return fmt.Errorf("partition %s/%d: %w", p.cfg.Topic, p.cfg.Index, err)
	}
	return nil
}

// entryOf indexes batch b (header h) of size bytes.
func entryOf(h batch.Header, b []byte, size int, now int64) entry {
	e := entry{
		base: h.BaseOffset, last: h.LastOffset(), maxTS: h.MaxTimestamp,
		size: int32(size), epoch: h.PartitionLeaderEpoch,
		pid: h.ProducerID, pepoch: h.ProducerEpoch, firstSeq: h.BaseSequence, lastSeq: h.LastSequence(),
		txn: h.Transactional(), control: -1,
		appended: now,
	}
	if h.Control() {
		// An unreadable marker (none is written so) counts as an abort:
		// read_committed consumers then skip, never show, what it ends.
		e.control = batch.ControlAbort
		if typ, err := batch.ControlType(b); err == nil {
			e.control = typ
		}
	}
	return e
}

// appendLocked records stamped batch b in the index, epoch cache and
// producer state; keep holds b in memory (the leader, until the HW passes
// it).
func (p *Partition) appendLocked(h batch.Header, b []byte, keep bool) {
	size := len(b)
	var data []byte
	if keep {
		data = b
	}
	if len(p.index) == 0 && h.BaseOffset > p.leo {
		// The log starts at the first batch kept (logStart may fall
		// inside it).
		p.leo = h.BaseOffset
	}
	e := entryOf(h, b, size, p.cfg.Clock.Now().UnixNano())
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
		p.producers.update(e)
	}
	p.leo = h.LastOffset() + 1
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
	if h.ProducerID >= 0 && (h.Control() || h.BaseSequence < 0) {
		// A marker, or records a coordinator writes for a producer
		// (TxnOffsetCommit), carry no sequence (clients' batches always
		// do: ValidateProduce); they may not come from an epoch older
		// than the producer's (a fenced coordinator or producer).
		if ps := p.producers.byID[h.ProducerID]; ps != nil && h.ProducerEpoch < ps.epoch {
			p.mu.Unlock()
			return AppendResult{}, fmt.Errorf("%w: batch without sequence for producer %d at epoch %d, producer is at %d",
				ErrInvalidProducerEpoch, h.ProducerID, h.ProducerEpoch, ps.epoch)
		}
	} else if h.ProducerID >= 0 {
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
	p.appendLocked(h, b, true)
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

// Offsets is a consistent view of the partition's bounds. LSO, the last
// stable offset, is the HW or, below it, the first offset of a
// transaction not yet completed (or whose marker the HW has not passed):
// read_committed consumers read below it; it is -1 while producer state
// (which holds the transactions) is loading.
type Offsets struct {
	LogStart, FlushedEnd, HW, LEO, LSO int64
	Epoch                              int32
}

// Offsets returns the current bounds.
func (p *Partition) Offsets() Offsets {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.offsetsLocked()
}

func (p *Partition) offsetsLocked() Offsets {
	lso := p.producers.firstUnstable(p.hw)
	if p.missingProducers >= 0 {
		lso = -1 // the transactions are not known until producer state loads
	}
	return Offsets{LogStart: p.logStart, FlushedEnd: p.flushed, HW: p.hw, LEO: p.leo, LSO: lso, Epoch: p.epoch}
}

// readWAL is Read from the WAL alone: an offset below what it holds is
// ErrFlushed (Read goes to the bucket for it).
func (p *Partition) readWAL(offset int64, maxBytes int, minOne bool) ([]byte, Offsets, error) {
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
	data, err := p.collectAndUnlock(offset, p.hw, maxBytes, minOne)
	if errors.Is(err, ErrFlushed) {
		// Flushed under the read: the caller goes to the bucket, up
		// to the flushed end as it is now.
		return nil, p.Offsets(), err
	}
	if err != nil {
		return nil, off, err
	}
	return data, off, nil
}

// collectAndUnlock reads whole batches from the one holding offset, below
// limit, up to maxBytes (the first regardless with minOne): from kept
// data where the index has it, else from the WAL. It releases p.mu.
func (p *Partition) collectAndUnlock(offset, limit int64, maxBytes int, minOne bool) ([]byte, error) {
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
	bases := make([]int64, 0, j-k)
	for _, e := range p.index[k:j] {
		bases = append(bases, e.base)
	}
	p.mu.Unlock()
	// The batches must come back as the index listed them: a flush that
	// commits meanwhile drops them from the WAL, and the read would then
	// start at a later batch, a gap a consumer takes for compaction.
	n := 0
	err := p.cfg.WAL.Read(p.cfg.Key, bases[0], func(base int64, b []byte) bool {
		if n == len(bases) || base != bases[n] || len(out)+len(b) > want {
			return false
		}
		out = append(out, b...)
		n++
		return true
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	if n < len(bases) && len(out) == 0 {
		return nil, ErrFlushed // in the bucket now
	}
	return out, nil // what was read is whole and contiguous
}

// DropLog empties the log of a partition this agent no longer replicates
// (it restarts at the flushed end if it becomes a replica again).
func (p *Partition) DropLog() error {
	p.mu.Lock()
	if p.role.Leader || (len(p.index) == 0 && p.leo == p.flushed) {
		p.mu.Unlock()
		return nil
	}
	return p.resetAndUnlock(p.flushed)
}

// findLocked returns the index of the batch holding offset, or -1.
func (p *Partition) findLocked(offset int64) int {
	i := sort.Search(len(p.index), func(i int) bool { return p.index[i].last >= offset })
	if i == len(p.index) || p.index[i].base > offset {
		return -1
	}
	return i
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
			return p.resetAndUnlock(offset)
		}
	}
	p.logStart = offset
	return p.dropBelowLogStartAndUnlock()
}

// DropStale removes WAL batches wholly below the log start or flushed end
// that recovery found (a crash between journaling and truncating).
func (p *Partition) DropStale() error {
	p.mu.Lock()
	return p.dropBelowLogStartAndUnlock()
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
		return p.resetAndUnlock(end)
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
	return p.dropBelowLogStartAndUnlock()
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
	if err == nil && len(data) != want {
		err = fmt.Errorf("read %d unflushed bytes, index says %d", len(data), want)
	}
	if err != nil {
		// A partition closed meanwhile (its topic deleted) has its WAL
		// batches dropped under the read: nothing is lost, nothing to
		// flush.
		p.mu.Lock()
		closed := p.closed
		p.mu.Unlock()
		if closed {
			return nil, first, first, fmt.Errorf("%w: %v", ErrClosed, err)
		}
		return nil, first, first, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	return data, first, end, nil
}

// WALBytes is the size of the batches this partition holds in the WAL.
func (p *Partition) WALBytes() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.walBytes
}

// dropBelowLogStartAndUnlock drops WAL batches below max(logStart,
// flushedEnd). Called with p.mu held; releases it.
func (p *Partition) dropBelowLogStartAndUnlock() error {
	offset := max(p.logStart, p.flushed)
	i := sort.Search(len(p.index), func(i int) bool { return p.index[i].last >= offset })
	keepBase := offset
	if i < len(p.index) {
		keepBase = p.index[i].base
	}
	// The batches about to go are where producer state is rebuilt from
	// (after a truncation, for snapshots): fold them into the base state
	// first, and no further than the first batch kept. A truncation never
	// cuts below the flushed end, so it never cuts into what the base
	// state claims; folding up to the HW instead left the base claiming
	// batches a truncation then replaced, and the replacements (data and
	// markers of other transactions) never reached producer state.
	missing := p.missingProducers >= 0
	if !missing && keepBase > p.producersEnd {
		p.baseProducers = p.producersAtLocked(keepBase)
		p.producersEnd = keepBase
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
	if missing {
		// Without state yet, the batches dropped cannot be folded in: it
		// must now come from the footer where the log starts, and no
		// snapshot is written (it would claim state this replica lacks).
		if keepBase > p.missingProducers {
			p.forgetProducersLocked(keepBase)
		}
		p.mu.Unlock()
		return p.cfg.WAL.DeleteBefore(p.cfg.Key, keepBase)
	}
	p.baseProducers.dropBelow(p.logStart)
	p.producers.dropBelow(p.logStart)
	snap := encodeProducers(p.baseProducers, p.producersEnd)
	p.mu.Unlock()
	if err := p.cfg.WAL.PutProducerSnapshot(p.cfg.Key, snap); err != nil {
		return err
	}
	return p.cfg.WAL.DeleteBefore(p.cfg.Key, keepBase)
}

// AppendMarker appends the COMMIT (commit) or ABORT marker ending producer
// pid's transaction at epoch, as Append does with acks=all: done runs once
// every in-sync replica has it.
func (p *Partition) AppendMarker(pid int64, epoch int16, commit bool, coordinatorEpoch int32, done func(error)) (AppendResult, error) {
	b := batch.EncodeControl(pid, epoch, commit, coordinatorEpoch, p.cfg.Clock.Now().UnixMilli())
	h, err := batch.ParseHeader(b)
	if err != nil {
		return AppendResult{}, err
	}
	return p.Append(b, h, -1, done)
}
