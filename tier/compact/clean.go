package compact

import (
	"fmt"
	"math"

	"github.com/tlog-io/tlog/tier/batch"
)

// Options say which records a pass counts and drops.
type Options struct {
	// MaxDecompressed bounds one batch's decompressed records.
	MaxDecompressed int
	// Aborted says whether producer pid's transactional batch at offset
	// belongs to an aborted transaction: its records never count as a
	// key's latest value and are dropped (the batch header and the
	// transaction's marker stay). Nil: none is.
	Aborted func(pid, offset int64) bool
	// DeleteTombstonesBefore drops a tombstone (a null value) that is its
	// key's latest record when its timestamp is below it (unix ms):
	// delete.retention.ms before the pass. math.MinInt64 keeps them all.
	// A marker older than it goes too, once no record of its
	// transaction is left (Markers).
	DeleteTombstonesBefore int64
	// Markers follows a pass's ranges, oldest first from the log start,
	// to know which transactions still have records. Nil keeps every
	// marker.
	Markers *Markers
}

// Markers is what a pass knows of transactions: the producers whose
// current transaction kept a record so far. A marker, COMMIT or ABORT,
// goes once none of its transaction's records is left (an aborted one's
// never are). The aborted-transaction index still names an aborted one;
// a read_committed fetch leaves out an entry whose marker falls inside
// what it returns but is gone (partition.ReadCommitted), so a reader does
// not skip the producer's later batches waiting for it.
type Markers struct{ kept map[int64]bool }

// NewMarkers is the state for one pass.
func NewMarkers() *Markers { return &Markers{kept: map[int64]bool{}} }

// droppable reports whether the marker batch b of producer pid may be
// blanked, and ends pid's transaction.
func (m *Markers) droppable(h batch.Header, b []byte, before int64) (bool, error) {
	if m == nil {
		return false, nil
	}
	kept := m.kept[h.ProducerID]
	delete(m.kept, h.ProducerID)
	if kept || h.MaxTimestamp >= before || before == math.MinInt64 || h.NumRecords == 0 {
		return false, nil
	}
	if _, err := batch.ControlType(b); err != nil {
		return false, err // not a marker tlog knows: kept, and said
	}
	return true, nil
}

// record notes that a transactional batch of pid kept n records.
func (m *Markers) record(h batch.Header, n int) {
	if m != nil && h.Transactional() && n > 0 {
		m.kept[h.ProducerID] = true
	}
}

func (o Options) aborted(h batch.Header) bool {
	return h.Transactional() && o.Aborted != nil && o.Aborted(h.ProducerID, h.BaseOffset)
}

// AddToMap puts the offset of every keyed record of data (a range's
// batches, in offset order) at or after from into m, a whole batch at a
// time, and returns the offset the map is complete up to: every key of a
// counted record below next has its latest such offset in m. full says
// the map ran out of room before data did (start the next pass at next).
// Control batches and aborted transactions' records do not count.
func AddToMap(m *OffsetMap, data []byte, from int64, o Options) (next int64, full bool, err error) {
	next = from
	err = batch.Iterate(data, func(h batch.Header, b []byte) bool {
		if h.LastOffset() < from {
			return true
		}
		if h.Control() || o.aborted(h) || h.NumRecords == 0 {
			next = h.LastOffset() + 1
			return true
		}
		// A batch is taken whole or not at all, so the map's end is a
		// batch boundary.
		if m.Len()+int(h.NumRecords) > m.capacity {
			full = true
			return false
		}
		recs, rerr := batch.Records(b, o.MaxDecompressed)
		if rerr != nil {
			err = fmt.Errorf("compact: batch at %d: %w", h.BaseOffset, rerr)
			return false
		}
		for _, r := range recs {
			if r.Offset < from || r.Key == nil {
				continue
			}
			if !m.Put(r.Key, r.Offset) {
				full = true // fewer distinct slots than records counted: cannot happen
				return false
			}
		}
		next = h.LastOffset() + 1
		return true
	})
	return next, full, err
}

// Stats count what a clean dropped, and the tombstones it kept.
type Stats struct {
	Records, Tombstones, Aborted int // records dropped as superseded, expired tombstones, aborted
	Markers                      int // markers blanked
	// KeptTombstones are tombstones kept because they have not expired;
	// OldestKeptTombstone is the earliest timestamp among them (when the
	// next pass can drop one).
	KeptTombstones      int
	OldestKeptTombstone int64
}

// Dropped is how many records were dropped.
func (s Stats) Dropped() int { return s.Records + s.Tombstones + s.Aborted + s.Markers }

// Clean rewrites data (a range's batches, in offset order) for a pass
// whose map m is complete below mapEnd: a record below mapEnd is dropped
// when its key's latest offset is later, when its transaction aborted, or
// when it is its key's latest and an expired tombstone. Records at or past
// mapEnd and keyless ones are kept, and so are markers but expired ones
// of transactions none of whose records is left (o.Markers), which become
// empty batches; every batch keeps its
// header and offsets (batch.Rewrite), so offsets of what remains do not
// move, except that a run of batches left empty becomes one empty batch
// spanning their offsets (batch.MergeEmpty). The ranges of a pass must be committed oldest first: a tombstone
// is then dropped only once the older values it hides are gone.
func Clean(data []byte, m *OffsetMap, mapEnd int64, o Options) (out []byte, st Stats, err error) {
	changed := false
	out = make([]byte, 0, len(data))
	emptyAt := -1 // where out's last batch starts, if it is an empty one
	err = batch.Iterate(data, func(h batch.Header, b []byte) bool {
		if h.BaseOffset >= mapEnd {
			o.Markers.record(h, int(h.NumRecords))
			out = append(out, b...)
			emptyAt = -1
			return true
		}
		if h.Control() {
			drop, derr := o.Markers.droppable(h, b, o.DeleteTombstonesBefore)
			if derr != nil {
				err = fmt.Errorf("compact: marker at %d: %w", h.BaseOffset, derr)
				return false
			}
			if !drop {
				out = append(out, b...)
				emptyAt = -1
				return true
			}
			blank, berr := batch.Blank(b)
			if berr != nil {
				err = fmt.Errorf("compact: marker at %d: %w", h.BaseOffset, berr)
				return false
			}
			st.Markers++
			changed = true
			out, _ = appendEmptyMerged(out, &emptyAt, blank)
			return true
		}
		aborted := o.aborted(h)
		nb, kept, rerr := batch.Rewrite(b, o.MaxDecompressed, func(r batch.RecordRef) bool {
			switch {
			case r.Offset >= mapEnd:
				return true
			case aborted:
				st.Aborted++
				return false
			case r.Key == nil:
				return true
			}
			latest, ok := m.Get(r.Key)
			switch {
			case ok && latest > r.Offset:
				st.Records++
				return false
			case r.Value == nil && r.Timestamp < o.DeleteTombstonesBefore && o.DeleteTombstonesBefore != math.MinInt64:
				st.Tombstones++
				return false
			case r.Value == nil:
				if st.KeptTombstones == 0 || r.Timestamp < st.OldestKeptTombstone {
					st.OldestKeptTombstone = r.Timestamp
				}
				st.KeptTombstones++
			}
			return true
		})
		if rerr != nil {
			err = fmt.Errorf("compact: batch at %d: %w", h.BaseOffset, rerr)
			return false
		}
		o.Markers.record(h, kept)
		if kept != int(h.NumRecords) {
			changed = true
		}
		if kept != 0 {
			emptyAt = -1
			out = append(out, nb...)
			return true
		}
		var merged bool
		if out, merged = appendEmptyMerged(out, &emptyAt, nb); merged {
			changed = true
		}
		return true
	})
	if err != nil {
		return nil, Stats{}, err
	}
	if !changed {
		return data, st, nil
	}

	return out, st, nil
}

// appendEmptyMerged appends the empty batch nb to out, folding it into
// the empty batch out ends with (at *emptyAt, -1: none) when they adjoin:
// a run of emptied batches becomes one. It reports whether it folded.
func appendEmptyMerged(out []byte, emptyAt *int, nb []byte) ([]byte, bool) {
	if *emptyAt >= 0 {
		if merged, err := batch.MergeEmpty(out[*emptyAt:], nb); err == nil {
			return append(out[:*emptyAt], merged...), true
		}
	}
	*emptyAt = -1
	if len(nb) == batch.HeaderSize {
		*emptyAt = len(out)
	}
	return append(out, nb...), false
}
