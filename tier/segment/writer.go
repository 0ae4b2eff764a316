package segment

import (
	"fmt"
	"hash/crc32"
	"math"
	"slices"
	"time"

	"github.com/tlog-io/tlog/tier/batch"
)

// Writer builds one segment object in memory. It is not safe for
// concurrent use.
type Writer struct {
	agentID   int32
	createdAt time.Time
	parts     map[key]*part
	dataLen   int64
	footerLen int // footer length if encoded now
}

// part is one partition's accumulated data and footer entry (Pos unset;
// Index always holds every block, even a single one).
type part struct {
	e    Entry
	data []byte
}

// NewWriter starts an empty segment written by agentID, stamped with the
// current time.
func NewWriter(agentID int32) *Writer {
	return &Writer{
		agentID:   agentID,
		createdAt: time.Now(),
		parts:     make(map[key]*part),
		footerLen: FooterHeaderSize,
	}
}

// SetCreatedAt overrides the creation time (stored in milliseconds), for
// reproducible objects.
func (w *Writer) SetCreatedAt(t time.Time) { w.createdAt = t }

// Len is the number of partitions added so far.
func (w *Writer) Len() int { return len(w.parts) }

// Size is the length of the object Bytes would return now; flushers compare
// it with their seal threshold.
func (w *Writer) Size() int64 { return w.dataLen + int64(w.footerLen) + TrailerSize }

// newBlock is a block boundary found while validating an Add.
type newBlock struct {
	offset int64
	rel    int // position within the Add's batches
}

// Add appends batches, one or more whole RecordBatch v2 of one partition
// in offset order, to the segment. Framing and CRCs are checked (a corrupt
// WAL entry must not become durable) and offsets must be dense. A partition
// may be added again only with the same leader epoch and batches that
// continue exactly at its last offset + 1; the data is then appended and
// producerSnapshot replaces the earlier one, since it must describe the
// state as of the new last offset. On error nothing is changed. batches
// and producerSnapshot are copied.
func (w *Writer) Add(topicID [16]byte, partition int32, leaderEpoch int32, batches []byte, producerSnapshot []byte) error {
	return w.add(topicID, partition, leaderEpoch, batches, producerSnapshot, false)
}

// AddOwned is Add for a caller that hands batches over: the first Add of
// a partition keeps them rather than copying them, and the caller must
// not change them afterwards. Flushes and compactions build segments of
// up to 64 MiB from buffers made for the purpose; the copy doubled what
// they allocated, and the collector's work with it.
func (w *Writer) AddOwned(topicID [16]byte, partition int32, leaderEpoch int32, batches []byte, producerSnapshot []byte) error {
	return w.add(topicID, partition, leaderEpoch, batches, producerSnapshot, true)
}

func (w *Writer) add(topicID [16]byte, partition int32, leaderEpoch int32, batches []byte, producerSnapshot []byte, owned bool) error {
	k := key{topicID, partition}
	switch {
	case topicID == [16]byte{}:
		return fmt.Errorf("segment: add %x/%d: zero topic id: %w", topicID, partition, ErrInvalid)
	case partition < 0:
		return fmt.Errorf("segment: add %x/%d: negative partition: %w", topicID, partition, ErrInvalid)
	case len(batches) == 0:
		return fmt.Errorf("segment: add %x/%d: no batches: %w", topicID, partition, ErrInvalid)
	}
	p := w.parts[k]
	var (
		next      int64 = -1 // offset the next batch must start at; -1 any
		blockLen  int        // bytes in the current (last) block
		blocks    []newBlock
		nBatches  int
		records   int64
		minTS     int64 = math.MaxInt64
		maxTS     int64 = math.MinInt64
		firstBase int64
	)
	if p != nil {
		if p.e.LeaderEpoch != leaderEpoch {
			return fmt.Errorf("segment: add %x/%d: leader epoch %d, earlier add had %d: %w",
				topicID, partition, leaderEpoch, p.e.LeaderEpoch, ErrInvalid)
		}
		next = p.e.LastOffset + 1
		blockLen = len(p.data) - int(p.e.Index[len(p.e.Index)-1].Pos)
	}
	it := batch.NewIterator(batches, batch.IterOptions{VerifyCRC: true})
	for it.Next() {
		h := it.Header()
		at := it.Pos() - h.Size()
		switch {
		case h.BaseOffset < 0 || h.LastOffsetDelta < 0 || h.BaseOffset > math.MaxInt64-1-int64(h.LastOffsetDelta):
			return fmt.Errorf("segment: add %x/%d: batch at byte %d: offsets %d+%d: %w",
				topicID, partition, at, h.BaseOffset, h.LastOffsetDelta, ErrInvalid)
		case h.NumRecords < 0 || int64(h.NumRecords) > int64(h.LastOffsetDelta)+1:
			return fmt.Errorf("segment: add %x/%d: batch at byte %d: %d records for last offset delta %d: %w",
				topicID, partition, at, h.NumRecords, h.LastOffsetDelta, ErrInvalid)
		case next >= 0 && h.BaseOffset != next:
			return fmt.Errorf("segment: add %x/%d: batch at byte %d starts at offset %d, want %d: %w",
				topicID, partition, at, h.BaseOffset, next, ErrNotContiguous)
		}
		if nBatches == 0 {
			firstBase = h.BaseOffset
		}
		next = h.LastOffset() + 1
		// Block 0 of a new partition starts here too, so Index is never
		// empty while building.
		if p == nil && nBatches == 0 || blockLen >= BlockSize {
			blocks = append(blocks, newBlock{h.BaseOffset, at})
			blockLen = 0
		}
		blockLen += h.Size()
		nBatches++
		records += int64(h.NumRecords)
		first := h.FirstTimestamp
		if h.LogAppendTime() {
			first = h.MaxTimestamp // every record carries the append time
		}
		minTS, maxTS = min(minTS, first, h.MaxTimestamp), max(maxTS, h.MaxTimestamp)
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("segment: add %x/%d: %w: %w", topicID, partition, ErrInvalid, err)
	}

	oldEntry := 0
	var old Entry
	if p != nil {
		old = p.e
		oldEntry = footerEntryLen(old)
	}
	e := old
	if p == nil {
		e = Entry{TopicID: topicID, Partition: partition, LeaderEpoch: leaderEpoch, FirstOffset: firstBase,
			MinTimestamp: minTS, MaxTimestamp: maxTS}
	}
	e.Index = slices.Clip(e.Index) // never write into the old entry's array
	for _, b := range blocks {
		e.Index = append(e.Index, IndexEntry{Offset: b.offset, Pos: e.Len + int64(b.rel)})
	}
	e.LastOffset = next - 1
	e.MinTimestamp, e.MaxTimestamp = min(e.MinTimestamp, minTS), max(e.MaxTimestamp, maxTS)
	e.Records += records
	e.Batches += nBatches
	e.ProducerSnapshot = producerSnapshot // sized here, copied on commit
	if int64(e.Batches) > math.MaxUint32 {
		return fmt.Errorf("segment: add %x/%d: %d batches: %w", topicID, partition, e.Batches, ErrTooLarge)
	}
	footerLen := w.footerLen - oldEntry + footerEntryLen(e)
	if footerLen > MaxFooterLen {
		return fmt.Errorf("segment: add %x/%d: footer would be %d bytes, limit %d: %w",
			topicID, partition, footerLen, MaxFooterLen, ErrTooLarge)
	}

	// Committed: update CRCs as the bytes go in.
	if p == nil {
		p = &part{}
		w.parts[k] = p
	}
	start := len(p.data)
	if owned && start == 0 {
		p.data = batches
	} else {
		p.data = append(p.data, batches...)
	}
	e.CRC = crc32.Update(e.CRC, castagnoli, batches)
	for i := len(old.Index); i <= len(e.Index); i++ {
		// Extend block i-1 (the last block before this Add, or a new one)
		// with its share of the new bytes.
		if i == 0 {
			continue
		}
		bs, be := e.Index[i-1].Pos, int64(len(p.data))
		if i < len(e.Index) {
			be = e.Index[i].Pos
		}
		bs = max(bs, int64(start))
		e.Index[i-1].CRC = crc32.Update(e.Index[i-1].CRC, castagnoli, p.data[bs:be])
	}
	e.Len = int64(len(p.data))
	e.ProducerSnapshot = nil
	if len(producerSnapshot) > 0 {
		e.ProducerSnapshot = slices.Clone(producerSnapshot)
	}
	p.e = e
	w.dataLen += int64(len(batches))
	w.footerLen = footerLen
	return nil
}

// footerEntryLen is the encoded size of a building entry, whose Index is
// dropped when it holds a single block.
func footerEntryLen(e Entry) int {
	n := entryFixedSize + len(e.ProducerSnapshot)
	if len(e.Index) > 1 {
		n += indexEntrySize * len(e.Index)
	}
	return n
}

// footer lays out the entries in key order and returns the footer.
func (w *Writer) footer() *Footer {
	f := &Footer{
		Version:   Version,
		CreatedAt: time.UnixMilli(w.createdAt.UnixMilli()),
		AgentID:   w.agentID,
		DataLen:   w.dataLen,
		Entries:   make([]Entry, 0, len(w.parts)),
	}
	for _, p := range w.parts {
		e := p.e
		if len(e.Index) < 2 {
			e.Index = nil
		}
		f.Entries = append(f.Entries, e)
	}
	slices.SortFunc(f.Entries, func(a, b Entry) int {
		return compareKey(key{a.TopicID, a.Partition}, key{b.TopicID, b.Partition})
	})
	var pos int64
	for i := range f.Entries {
		f.Entries[i].Pos = pos
		pos += f.Entries[i].Len
	}
	return f
}

// Entries returns the index as the footer will hold it: sorted by (topic
// id, partition), with data positions. Slices are copies.
func (w *Writer) Entries() []Entry {
	es := w.footer().Entries
	for i := range es {
		es[i].Index = slices.Clone(es[i].Index)
		es[i].ProducerSnapshot = slices.Clone(es[i].ProducerSnapshot)
	}
	return es
}

// Bytes encodes the segment object. The Writer stays usable; later Adds
// show up in later calls.
func (w *Writer) Bytes() []byte {
	f := w.footer()
	out := make([]byte, 0, w.Size())
	for _, e := range f.Entries {
		out = append(out, w.parts[key{e.TopicID, e.Partition}].data...)
	}
	footerStart := len(out)
	out = appendFooter(out, f)
	return appendTrailer(out, out[footerStart:])
}
