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
	// OnWALBytes is told how the bytes this partition holds in the WAL
	// change (may be nil), so the agent can bound its total cheaply.
	OnWALBytes func(delta int64)
}

// Partition is one partition's log.
type Partition struct {
	cfg Config

	mu        sync.Mutex
	epoch     int32
	logStart  int64
	flushed   int64 // flushedEnd
	walBytes  int64 // bytes of the batches in index
	hw        int64
	leo       int64
	index     []entry // batches in the WAL, ascending
	epochs    []EpochStart
	producers map[int64]*producer
	// durableProducers is producer state as of the high watermark: what a
	// snapshot may record, since batches above it may yet be lost.
	durableProducers map[int64]*producer
	waiters          []waiter // duplicates waiting for the HW to pass them
	// producersEnd: producer state already covers batches below this
	// offset (restored from a snapshot), so recovery skips them.
	producersEnd int64
	failed       error // sticky WAL failure
	closed       bool
}

type waiter struct {
	end  int64
	done func(error)
}

// New creates an empty partition; call Load for each batch recovered from the
// WAL, in offset order, before serving.
func New(cfg Config) *Partition {
	return &Partition{
		cfg:              cfg,
		epoch:            cfg.LeaderEpoch,
		logStart:         cfg.LogStart,
		flushed:          max(cfg.FlushedEnd, cfg.LogStart),
		hw:               max(cfg.FlushedEnd, cfg.LogStart),
		leo:              max(cfg.FlushedEnd, cfg.LogStart),
		producers:        make(map[int64]*producer),
		durableProducers: make(map[int64]*producer),
	}
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
		updateProducer(p.producers, h, p.producersEnd)
		updateProducer(p.durableProducers, h, p.producersEnd)
		return true, nil
	}
	if len(p.index) > 0 && h.BaseOffset != p.leo {
		return false, fmt.Errorf("partition %s/%d: recover: batch at %d after log end %d: %w",
			p.cfg.Topic, p.cfg.Index, h.BaseOffset, p.leo, batch.ErrCorrupt)
	}
	p.appendLocked(h, len(b))
	updateProducer(p.durableProducers, h, p.producersEnd)
	p.hw = p.leo
	return false, nil
}

// appendLocked records a stamped batch in the index, epoch cache and
// producer state.
func (p *Partition) appendLocked(h batch.Header, size int) {
	if len(p.index) == 0 && h.BaseOffset > p.leo {
		// The log starts at the first batch kept (logStart may fall
		// inside it).
		p.leo = h.BaseOffset
	}
	p.index = append(p.index, entry{
		base: h.BaseOffset, last: h.LastOffset(), maxTS: h.MaxTimestamp,
		size: int32(size), epoch: h.PartitionLeaderEpoch,
	})
	p.walBytes += int64(size)
	if p.cfg.OnWALBytes != nil {
		p.cfg.OnWALBytes(int64(size))
	}
	if n := len(p.epochs); n == 0 || p.epochs[n-1].Epoch < h.PartitionLeaderEpoch {
		p.epochs = append(p.epochs, EpochStart{Epoch: h.PartitionLeaderEpoch, StartOffset: h.BaseOffset})
	}
	updateProducer(p.producers, h, p.producersEnd)
	p.leo = h.LastOffset() + 1
}

// updateProducer records batch h in a producer table, unless a restored
// snapshot (ending at snapEnd) already covers it.
func updateProducer(m map[int64]*producer, h batch.Header, snapEnd int64) {
	if h.ProducerID < 0 || h.BaseOffset < snapEnd {
		return
	}
	ps := m[h.ProducerID]
	if ps == nil || ps.epoch != h.ProducerEpoch {
		ps = &producer{epoch: h.ProducerEpoch}
		m[h.ProducerID] = ps
	}
	ps.add(seqEntry{firstSeq: h.BaseSequence, lastSeq: h.LastSequence(), base: h.BaseOffset, last: h.LastOffset()})
}

// AppendResult says where a produced batch landed.
type AppendResult struct {
	BaseOffset int64
	LogStart   int64
	Duplicate  bool
}

// Append assigns offsets to a validated batch, stamps it, and queues it to
// the WAL. done is called once the batch is below the high watermark (or
// with an error). It returns without waiting.
func (p *Partition) Append(b []byte, h batch.Header, done func(error)) (AppendResult, error) {
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
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return AppendResult{}, ErrClosed
	}
	if p.failed != nil {
		p.mu.Unlock()
		return AppendResult{}, fmt.Errorf("%w: %v", ErrStorage, p.failed)
	}
	if h.ProducerID >= 0 {
		dup, isDup, err := p.checkSequenceLocked(h)
		if err != nil {
			p.mu.Unlock()
			return AppendResult{}, err
		}
		if isDup {
			res := AppendResult{BaseOffset: dup.base, LogStart: p.logStart, Duplicate: true}
			if dup.last < p.hw {
				p.mu.Unlock()
				done(nil)
			} else {
				p.waiters = append(p.waiters, waiter{end: dup.last + 1, done: done})
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
	p.appendLocked(h, len(b))
	end := p.leo
	res := AppendResult{BaseOffset: base, LogStart: p.logStart}
	// Queue while holding the lock so WAL order is offset order.
	queued = true // Append uses or releases the slot
	if err := p.cfg.WAL.AppendReserved(p.cfg.Key, base, b, func(err error) { p.durable(h, end, err, done) }); err != nil {
		// The offsets just assigned will never be durable; refuse
		// everything after them rather than leave a hole.
		p.failed = err
		p.mu.Unlock()
		return AppendResult{}, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	p.mu.Unlock()
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

// durable runs on the WAL writer when the batch ending at end is written.
func (p *Partition) durable(h batch.Header, end int64, err error, done func(error)) {
	p.mu.Lock()
	if err == nil && p.failed != nil {
		// An earlier batch was lost: moving the HW past it would serve a
		// hole.
		err = p.failed
	}
	if err != nil {
		if p.failed == nil {
			p.failed = err
		}
		p.mu.Unlock()
		done(fmt.Errorf("%w: %v", ErrStorage, err))
		return
	}
	if end > p.hw {
		p.hw = end
	}
	updateProducer(p.durableProducers, h, p.producersEnd)
	var ready []waiter
	keep := p.waiters[:0]
	for _, w := range p.waiters {
		if w.end <= p.hw {
			ready = append(ready, w)
		} else {
			keep = append(keep, w)
		}
	}
	p.waiters = keep
	p.mu.Unlock()
	done(nil)
	for _, w := range ready {
		w.done(nil)
	}
	if p.cfg.OnAdvance != nil {
		p.cfg.OnAdvance()
	}
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
	return Offsets{LogStart: p.logStart, FlushedEnd: p.flushed, HW: p.hw, LEO: p.leo, Epoch: p.epoch}
}

// Read returns whole batches starting with the one holding offset, up to the
// high watermark and maxBytes. With minOne the first batch is returned even
// if larger, so a consumer can always make progress (KIP-74). offset == HW
// yields nothing.
func (p *Partition) Read(offset int64, maxBytes int, minOne bool) ([]byte, Offsets, error) {
	p.mu.Lock()
	off := Offsets{LogStart: p.logStart, FlushedEnd: p.flushed, HW: p.hw, LEO: p.leo, Epoch: p.epoch}
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
	if offset == p.hw {
		p.mu.Unlock()
		return nil, off, nil
	}
	i := p.findLocked(offset)
	if i < 0 {
		p.mu.Unlock()
		return nil, off, fmt.Errorf("%w: offset %d has no batch", ErrOffsetOutOfRange, offset)
	}
	start := p.index[i].base
	// Size the read from the index so WAL iteration stops at the right place.
	want := 0
	for j := i; j < len(p.index) && p.index[j].base < p.hw; j++ {
		if want+int(p.index[j].size) > maxBytes && (want > 0 || !minOne) {
			break
		}
		want += int(p.index[j].size)
	}
	hw := p.hw
	p.mu.Unlock()
	if want == 0 {
		return nil, off, nil
	}

	out := make([]byte, 0, want)
	err := p.cfg.WAL.Read(p.cfg.Key, start, func(base int64, b []byte) bool {
		if base >= hw || len(out)+len(b) > want {
			return false
		}
		out = append(out, b...)
		return true
	})
	if err != nil {
		return nil, off, fmt.Errorf("%w: %v", ErrStorage, err)
	}
	return out, off, nil
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
// WAL batches wholly below it. offset may not pass the HW.
func (p *Partition) SetLogStart(offset int64) error {
	p.mu.Lock()
	if offset > p.hw {
		p.mu.Unlock()
		return fmt.Errorf("%w: %d beyond high watermark %d", ErrOffsetOutOfRange, offset, p.hw)
	}
	if offset <= p.logStart {
		p.mu.Unlock()
		return nil
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
// segment and drops those batches from the WAL.
func (p *Partition) SetFlushedEnd(end int64) error {
	p.mu.Lock()
	if end <= p.flushed {
		p.mu.Unlock()
		return nil
	}
	if end > p.hw {
		p.mu.Unlock()
		return fmt.Errorf("partition %s/%d: flushed end %d beyond high watermark %d", p.cfg.Topic, p.cfg.Index, end, p.hw)
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
	var dropped int64
	for _, e := range p.index[:i] {
		dropped += int64(e.size)
	}
	p.index = append(p.index[:0:0], p.index[i:]...)
	p.walBytes -= dropped
	if p.cfg.OnWALBytes != nil && dropped > 0 {
		p.cfg.OnWALBytes(-dropped)
	}
	keepBase := offset
	if len(p.index) > 0 {
		keepBase = p.index[0].base
	}
	// The batches about to go are where producer state is rebuilt from;
	// keep it first.
	snap := p.encodeProducersLocked()
	p.mu.Unlock()
	if err := p.cfg.WAL.PutProducerSnapshot(p.cfg.Key, snap); err != nil {
		return err
	}
	return p.cfg.WAL.DeleteBefore(p.cfg.Key, keepBase)
}

// encodeProducersLocked serialises producer state as of the high
// watermark: end offset, then per producer id, epoch and its recent
// batches. Batches above the HW are not durable yet; after a crash they are
// either in the WAL (and re-applied on recovery) or gone.
func (p *Partition) encodeProducersLocked() []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(p.hw))
	b = binary.BigEndian.AppendUint32(b, uint32(len(p.durableProducers)))
	for id, ps := range p.durableProducers {
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

// RestoreProducers loads a snapshot written by SetLogStart. Call it before
// Load; batches below the snapshot's end are then not re-applied to
// producer state.
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
	p.producers = producers
	p.durableProducers = make(map[int64]*producer, len(producers))
	for id, ps := range producers {
		cp := *ps
		p.durableProducers[id] = &cp
	}
	p.producersEnd = end
	return nil
}

// SetEpoch records a new leader epoch (from metadata).
func (p *Partition) SetEpoch(epoch int32) {
	p.mu.Lock()
	if epoch > p.epoch {
		p.epoch = epoch
	}
	p.mu.Unlock()
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
		Offsets:   Offsets{LogStart: p.logStart, FlushedEnd: p.flushed, HW: p.hw, LEO: p.leo, Epoch: p.epoch},
		Batches:   len(p.index),
		WALBytes:  bytes,
		Producers: len(p.producers),
	}
}

// Close stops accepting appends; pending duplicate waiters fail.
func (p *Partition) Close() {
	p.mu.Lock()
	p.closed = true
	ws := p.waiters
	p.waiters = nil
	p.mu.Unlock()
	for _, w := range ws {
		w.done(ErrClosed)
	}
}
