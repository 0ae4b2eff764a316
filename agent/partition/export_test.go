package partition

// The WAL-only timestamp lookups, for tests of the WAL side alone.

func (p *Partition) WALOffsetForTimestamp(ts int64) (offset, timestamp int64, ok bool) {
	offset, timestamp, ok, _ = p.walOffsetForTimestamp(p.Offsets().FlushedEnd, ts)
	return offset, timestamp, ok
}

func (p *Partition) WALMaxTimestamp() (offset, timestamp int64, ok bool) {
	offset, timestamp, ok, _ = p.walMaxTimestamp(p.Offsets().FlushedEnd)
	return offset, timestamp, ok
}

// Aborted lists the partition's aborted transactions.
func (p *Partition) Aborted() []AbortedTxn {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.producers.abortedIn(0, 1<<62)
}
