package partition

// Lookups by leader epoch and by timestamp over the batches the WAL holds.

import (
	"fmt"
	"math"
	"sort"

	"github.com/tlog-io/tlog/tier/batch"
)

// EpochStart is one entry of the leader-epoch cache: the first offset
// written in an epoch.
type EpochStart struct {
	Epoch       int32
	StartOffset int64
}

// walOffsetForTimestamp returns the earliest offset at or after the log start,
// below the HW, whose record timestamp is at or after ts, with that record's
// timestamp (for LogAppendTime batches, the batch's max timestamp), or HW
// (with ok=false) if there is none. The index narrows the search to batches
// whose max timestamp qualifies; each is read from the WAL and its records
// walked. A batch that cannot be read or decoded is answered at batch
// granularity instead: its first offset (or the log start) and its max
// timestamp.
func (p *Partition) walOffsetForTimestamp(ts int64) (offset, timestamp int64, ok bool) {
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
			off, rts, hit, err = batch.FirstAtOrAfterFrom(b, logStart, ts, maxTimestampDecompressed)
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

// walMaxTimestamp returns the offset and timestamp of the batch with the largest
// timestamp below the HW (ListOffsets -3), or ok=false if the log is empty.
func (p *Partition) walMaxTimestamp() (offset, timestamp int64, ok bool) {
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
