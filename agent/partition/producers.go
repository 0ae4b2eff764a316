package partition

// Producer state: the last five batches of each idempotent producer, the
// sequence check a produce passes before it is given offsets, each
// producer's open transaction, the completed transactions whose markers
// the high watermark has not passed (together they bound the last stable
// offset), the aborted transactions (read_committed consumers skip them),
// and the snapshots that carry all of it through flushes and restarts.

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"

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

// AbortedTxn is one aborted transaction in a partition: its producer, its
// first offset here and the offset of its ABORT marker.
type AbortedTxn struct {
	ProducerID  int64
	FirstOffset int64
	LastOffset  int64
}

// txnSpan is a completed transaction's first offset and marker offset.
type txnSpan struct{ first, marker int64 }

// producerTable is producer state as of some offset.
type producerTable struct {
	byID map[int64]*producer
	// open maps producers with a transaction open here to its first
	// offset; unstable holds completed transactions until the high
	// watermark passes their marker; aborted is ordered by marker offset.
	open     map[int64]int64
	unstable []txnSpan
	aborted  []AbortedTxn
}

func newProducerTable() *producerTable {
	return &producerTable{byID: map[int64]*producer{}, open: map[int64]int64{}}
}

func (t *producerTable) clone() *producerTable {
	c := &producerTable{
		byID:     make(map[int64]*producer, len(t.byID)),
		open:     make(map[int64]int64, len(t.open)),
		unstable: slices.Clone(t.unstable),
		aborted:  slices.Clone(t.aborted),
	}
	for id, ps := range t.byID {
		cp := *ps
		c.byID[id] = &cp
	}
	for id, first := range t.open {
		c.open[id] = first
	}
	return c
}

// update applies batch e.
func (t *producerTable) update(e entry) {
	if e.pid < 0 {
		return
	}
	if e.control >= 0 {
		// A marker ends the producer's transaction here (if it wrote
		// anything here); it carries no sequence. One from a newer
		// epoch than the producer's known one (the coordinator fenced
		// it) moves the producer to that epoch: its next batch must
		// start at sequence 0. A producer with no state here stays
		// unknown (any sequence is taken, as Kafka does): a marker
		// says nothing of its sequences.
		if ps := t.byID[e.pid]; ps != nil && e.pepoch > ps.epoch {
			t.byID[e.pid] = &producer{epoch: e.pepoch}
		}
		if first, ok := t.open[e.pid]; ok {
			delete(t.open, e.pid)
			t.unstable = append(t.unstable, txnSpan{first: first, marker: e.base})
			if e.control == batch.ControlAbort {
				t.aborted = append(t.aborted, AbortedTxn{ProducerID: e.pid, FirstOffset: first, LastOffset: e.base})
			}
		}
		return
	}
	if _, ok := t.open[e.pid]; e.txn && !ok {
		t.open[e.pid] = e.base
	}
	ps := t.byID[e.pid]
	if ps == nil || ps.epoch != e.pepoch {
		ps = &producer{epoch: e.pepoch}
		t.byID[e.pid] = ps
	}
	if e.firstSeq < 0 {
		return // a coordinator's write for the producer: no sequence
	}
	ps.add(seqEntry{firstSeq: e.firstSeq, lastSeq: e.lastSeq, base: e.base, last: e.last})
}

// firstUnstable is the last stable offset given high watermark hw: the
// first offset of a transaction open, or completed by a marker the HW has
// not passed, else hw. It forgets completed transactions the HW passed.
func (t *producerTable) firstUnstable(hw int64) int64 {
	lso := hw
	for _, first := range t.open {
		lso = min(lso, first)
	}
	keep := t.unstable[:0]
	for _, s := range t.unstable {
		if s.marker >= hw {
			keep = append(keep, s)
			lso = min(lso, s.first)
		}
	}
	t.unstable = keep
	return lso
}

// abortedIn lists the aborted transactions overlapping [from, to).
func (t *producerTable) abortedIn(from, to int64) []AbortedTxn {
	i := sort.Search(len(t.aborted), func(i int) bool { return t.aborted[i].LastOffset >= from })
	var out []AbortedTxn
	for _, a := range t.aborted[i:] {
		if a.FirstOffset < to {
			out = append(out, a)
		}
	}
	return out
}

// dropBelow forgets aborted transactions wholly below offset (retention).
func (t *producerTable) dropBelow(offset int64) {
	i := sort.Search(len(t.aborted), func(i int) bool { return t.aborted[i].LastOffset >= offset })
	if i > 0 {
		t.aborted = slices.Clone(t.aborted[i:])
	}
}

// producersAtLocked is producer state as of end: the base state plus the
// index's batches from producersEnd up to end.
func (p *Partition) producersAtLocked(end int64) *producerTable {
	m := p.baseProducers.clone()
	for _, e := range p.index {
		if e.base < p.producersEnd {
			continue
		}
		if e.last >= end {
			break
		}
		m.update(e)
	}
	return m
}

func (p *Partition) checkSequenceLocked(h batch.Header) (seqEntry, bool, error) {
	ps := p.producers.byID[h.ProducerID]
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
	if ps.n == 0 {
		// Moved to this epoch by a marker: the epoch's first batch.
		if h.BaseSequence != 0 {
			return seqEntry{}, false, fmt.Errorf("%w: producer %d epoch %d starts at sequence %d, want 0",
				ErrOutOfOrderSequence, h.ProducerID, h.ProducerEpoch, h.BaseSequence)
		}
		return seqEntry{}, false, nil
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
// per producer id, epoch and its recent batches; then, if any transaction
// state exists, the transaction section (txnSectionMagic; open
// transactions, completed ones not yet stable, aborted ones). Snapshots
// written before transactions end after the producers and still load.
func encodeProducers(t *producerTable, end int64) []byte {
	m := t.byID
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
	if len(t.open) == 0 && len(t.unstable) == 0 && len(t.aborted) == 0 {
		return b
	}
	b = append(b, txnSectionMagic...)
	open := make([]int64, 0, len(t.open))
	for id := range t.open {
		open = append(open, id)
	}
	slices.Sort(open)
	b = binary.BigEndian.AppendUint32(b, uint32(len(open)))
	for _, id := range open {
		b = binary.BigEndian.AppendUint64(b, uint64(id))
		b = binary.BigEndian.AppendUint64(b, uint64(t.open[id]))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(t.unstable)))
	for _, s := range t.unstable {
		b = binary.BigEndian.AppendUint64(b, uint64(s.first))
		b = binary.BigEndian.AppendUint64(b, uint64(s.marker))
	}
	b = binary.BigEndian.AppendUint32(b, uint32(len(t.aborted)))
	for _, a := range t.aborted {
		b = binary.BigEndian.AppendUint64(b, uint64(a.ProducerID))
		b = binary.BigEndian.AppendUint64(b, uint64(a.FirstOffset))
		b = binary.BigEndian.AppendUint64(b, uint64(a.LastOffset))
	}
	return b
}

var txnSectionMagic = []byte("TXN1")

// decodeTxnSection reads the transaction section of a snapshot into t.
// Every count is checked against the bytes left before anything is sized
// from it.
func decodeTxnSection(b []byte, t *producerTable) error {
	if len(b) < len(txnSectionMagic) || string(b[:len(txnSectionMagic)]) != string(txnSectionMagic) {
		return fmt.Errorf("producer snapshot: unknown trailing section: %w", batch.ErrCorrupt)
	}
	b = b[len(txnSectionMagic):]
	count := func(each int) (int, error) {
		if len(b) < 4 {
			return 0, fmt.Errorf("producer snapshot: truncated transaction section: %w", batch.ErrCorrupt)
		}
		n := int(binary.BigEndian.Uint32(b))
		b = b[4:]
		if n < 0 || n > len(b)/each {
			return 0, fmt.Errorf("producer snapshot: %d transaction entries in %d bytes: %w", n, len(b), batch.ErrCorrupt)
		}
		return n, nil
	}
	u64 := func() int64 {
		v := int64(binary.BigEndian.Uint64(b))
		b = b[8:]
		return v
	}
	n, err := count(16)
	if err != nil {
		return err
	}
	for range n {
		id := u64()
		t.open[id] = u64()
	}
	if n, err = count(16); err != nil {
		return err
	}
	t.unstable = make([]txnSpan, n)
	for i := range n {
		t.unstable[i] = txnSpan{first: u64(), marker: u64()}
	}
	if n, err = count(24); err != nil {
		return err
	}
	t.aborted = make([]AbortedTxn, n)
	for i := range n {
		t.aborted[i] = AbortedTxn{ProducerID: u64(), FirstOffset: u64(), LastOffset: u64()}
	}
	if len(b) != 0 {
		return fmt.Errorf("producer snapshot: %d bytes after the transaction section: %w", len(b), batch.ErrCorrupt)
	}
	return nil
}

const producerRecordSize = 8 + 2 + 2 + producerWindow*24

// RestoreProducers loads a snapshot (from the WAL, or a segment footer).
// Call it before Load; batches below the snapshot's end are then not
// re-applied to producer state.
func (p *Partition) RestoreProducers(snap []byte) error {
	producers, end, err := p.decodeSnapshot(snap)
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.installProducersLocked(producers, end)
	return nil
}

// decodeSnapshot parses a producer snapshot: the state and its end.
func (p *Partition) decodeSnapshot(snap []byte) (*producerTable, int64, error) {
	t, end, err := decodeProducerSnapshot(snap)
	if err != nil {
		return nil, 0, fmt.Errorf("partition %s/%d: %w", p.cfg.Topic, p.cfg.Index, err)
	}
	return t, end, nil
}

// SnapshotTxns reads the transactions of a producer snapshot (from a
// segment footer) as of its end: the first offset of every transaction
// still open, and every aborted transaction since the log start, ordered
// by marker. The key compactor keeps clear of the open ones and drops
// the aborted ones' records.
func SnapshotTxns(snap []byte) (open []int64, aborted []AbortedTxn, end int64, err error) {
	t, end, err := decodeProducerSnapshot(snap)
	if err != nil {
		return nil, nil, 0, err
	}
	for _, first := range t.open {
		open = append(open, first)
	}
	slices.Sort(open)
	return open, t.aborted, end, nil
}

func decodeProducerSnapshot(snap []byte) (*producerTable, int64, error) {
	if len(snap) < 12 {
		return nil, 0, fmt.Errorf("producer snapshot of %d bytes: %w", len(snap), batch.ErrCorrupt)
	}
	end := int64(binary.BigEndian.Uint64(snap))
	n := int(binary.BigEndian.Uint32(snap[8:]))
	rest := snap[12:]
	if n < 0 || n > len(rest)/producerRecordSize {
		return nil, 0, fmt.Errorf("producer snapshot length mismatch: %w", batch.ErrCorrupt)
	}
	producers := newProducerTable()
	for i := 0; i < n; i++ {
		r := rest[i*producerRecordSize:]
		ps := &producer{epoch: int16(binary.BigEndian.Uint16(r[8:])), n: int(r[10]), next: int(r[11])}
		if ps.n > producerWindow || ps.next >= producerWindow {
			return nil, 0, fmt.Errorf("producer snapshot window: %w", batch.ErrCorrupt)
		}
		for j := 0; j < producerWindow; j++ {
			e := r[12+j*24:]
			ps.recent[j] = seqEntry{
				firstSeq: int32(binary.BigEndian.Uint32(e)), lastSeq: int32(binary.BigEndian.Uint32(e[4:])),
				base: int64(binary.BigEndian.Uint64(e[8:])), last: int64(binary.BigEndian.Uint64(e[16:])),
			}
		}
		producers.byID[int64(binary.BigEndian.Uint64(r))] = ps
	}
	if tail := rest[n*producerRecordSize:]; len(tail) > 0 {
		if err := decodeTxnSection(tail, producers); err != nil {
			return nil, 0, err
		}
	}
	return producers, end, nil
}

func (p *Partition) installProducersLocked(producers *producerTable, end int64) {
	p.baseProducers = producers
	p.producersEnd = end
	p.producers = p.producersAtLocked(p.leo + 1)
	p.missingProducers = -1
}

// forgetProducersLocked drops producer state: the log holds no state of
// what precedes at. Above 0 it is missing until a segment footer supplies
// it (AdoptProducers); the batches the index holds from at on are then
// replayed on top. Until then idempotent batches are refused and
// read_committed readers wait (the aborted transactions are part of it).
func (p *Partition) forgetProducersLocked(at int64) {
	p.baseProducers = newProducerTable()
	p.producersEnd = at
	p.producers = p.producersAtLocked(p.leo + 1)
	p.missingProducers = -1
	if at > 0 {
		p.missingProducers = at
	}
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
// fresh, as after Kafka's producer-state expiry. at is where the caller
// found the state missing: if it has moved since (the batches from at on
// were dropped), nothing is adopted and the caller looks again.
func (p *Partition) AdoptProducers(snap []byte, at int64) error {
	var producers *producerTable
	var end int64
	if len(snap) > 0 {
		var err error
		if producers, end, err = p.decodeSnapshot(snap); err != nil {
			return err
		}
		if end > at {
			return fmt.Errorf("partition %s/%d: producer snapshot ends at %d, past the log start %d", p.cfg.Topic, p.cfg.Index, end, at)
		}
	}
	// Checked and installed under one lock: a flush moving the missing
	// point in between would leave the batches from at on out.
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.missingProducers < 0 || p.missingProducers != at {
		return nil
	}
	if producers == nil {
		producers, end = newProducerTable(), at
	}
	p.installProducersLocked(producers, end)
	return nil
}

// ProducerInfo describes one producer with state in the partition
// (DescribeProducers).
type ProducerInfo struct {
	ID           int64
	Epoch        int16
	LastSequence int32 // -1: none here at this epoch
	// TxnStartOffset is the first offset of its open transaction here,
	// or -1.
	TxnStartOffset int64
}

// Producers lists the producers with state in the partition, by id.
func (p *Partition) Producers() []ProducerInfo {
	p.mu.Lock()
	defer p.mu.Unlock()
	t := p.producers
	out := make([]ProducerInfo, 0, len(t.byID))
	for id, ps := range t.byID {
		pi := ProducerInfo{ID: id, Epoch: ps.epoch, LastSequence: -1, TxnStartOffset: -1}
		if ps.n > 0 {
			pi.LastSequence = ps.lastEntry().lastSeq
		}
		if first, ok := t.open[id]; ok {
			pi.TxnStartOffset = first
		}
		out = append(out, pi)
	}
	slices.SortFunc(out, func(x, y ProducerInfo) int { return cmp.Compare(x.ID, y.ID) })
	return out
}

// InTransaction reports whether producer pid has a transaction open here
// at epoch: its batches since the first were checked with that one.
func (p *Partition) InTransaction(pid int64, epoch int16) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, open := p.producers.open[pid]
	ps := p.producers.byID[pid]
	return open && ps != nil && ps.epoch == epoch
}
