package partition

// Idempotent-producer state: the last five batches of each producer, the
// sequence check a produce passes before it is given offsets, and the
// snapshots that carry the state through flushes and restarts.

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/tlog-io/tlog/tier/batch"
)

// producerWindow is how many recent batches per producer are remembered for
// duplicate detection; Kafka clients keep at most 5 requests in flight.
const producerWindow = 5

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
