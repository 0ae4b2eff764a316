package partition

// Lookups by leader epoch and by timestamp over the batches the WAL holds.

import (
	"fmt"
	"sort"

	"github.com/tlog-io/tlog/tier/batch"
)

// EpochStart is one entry of the leader-epoch cache: the first offset
// written in an epoch.
type EpochStart struct {
	Epoch       int32
	StartOffset int64
}

// walOffsetForTimestamp returns the earliest offset at or after from and the
// log start, below the HW, whose record timestamp is at or after ts, with
// that record's timestamp (for LogAppendTime batches, the batch's max
// timestamp), or HW (with ok=false) if there is none. The index narrows the
// search to batches whose max timestamp qualifies; each is read from the
// WAL and its records walked. A batch that cannot be read or decoded is
// answered at batch granularity instead: its first offset (or the log
// start) and its max timestamp.
//
// The batches from from on are the WAL's while it walks unless a flush
// commits them: then it stops and returns resume, the first offset it has
// not searched (in the bucket now); resume is -1 when the walk finished.
func (p *Partition) walOffsetForTimestamp(from, ts int64) (offset, timestamp int64, ok bool, resume int64) {
	for {
		p.mu.Lock()
		if p.flushed > from {
			p.mu.Unlock()
			return 0, -1, false, from
		}
		logStart, hw := max(p.logStart, from), p.hw
		var e entry
		found := false
		i := sort.Search(len(p.index), func(i int) bool { return p.index[i].last >= logStart })
		for _, x := range p.index[i:] {
			if x.base >= hw {
				break
			}
			if x.maxTS >= ts {
				e, found = x, true
				break
			}
		}
		p.mu.Unlock()
		if !found {
			return hw, -1, false, -1
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
			p.mu.Lock()
			moved := p.flushed > e.base
			p.mu.Unlock()
			if moved {
				// Flushed and dropped between the index and the read;
				// the batches before it did not qualify.
				return 0, -1, false, max(from, e.base)
			}
			err = fmt.Errorf("batch %d not in the WAL", e.base)
		}
		var off, rts int64
		var hit bool
		if err == nil {
			off, rts, hit, err = batch.FirstAtOrAfterFrom(b, logStart, ts, maxTimestampDecompressed)
		}
		switch {
		case err == nil && hit && off >= e.base && off <= e.last:
			return off, rts, true, -1
		case err != nil || hit: // unreadable, undecodable, or at odds with the index
			return max(e.base, logStart), e.maxTS, true, -1
		}
		// No record at or after the log start qualifies (the max
		// timestamp belongs to a record before it): try later batches.
		from = e.last + 1
	}
}

// walMaxTimestamp returns the offset and timestamp of the batch with the
// largest timestamp at or after from, below the HW (ListOffsets -3), or
// ok=false if there is none. If a flush has committed offsets from from on,
// it returns resume = from instead (else -1), as walOffsetForTimestamp does.
func (p *Partition) walMaxTimestamp(from int64) (offset, timestamp int64, ok bool, resume int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.flushed > from {
		return 0, -1, false, from
	}
	timestamp = -1
	i := sort.Search(len(p.index), func(i int) bool { return p.index[i].last >= from })
	for _, e := range p.index[i:] {
		if e.base >= p.hw {
			break
		}
		if e.maxTS > timestamp {
			offset, timestamp, ok = e.last, e.maxTS, true
		}
	}
	return offset, timestamp, ok, -1
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
