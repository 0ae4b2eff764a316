package agent

import "encoding/json"

// Stats are cumulative counters of the agent's background work.
type Stats struct {
	Flushes      int64 // segment objects committed by the flusher
	FlushedBytes int64
	// CommitsRefused counts segment commits the controller refused: this
	// agent's leader epoch was stale (it had been deposed) or its view
	// of the flushed end was.
	CommitsRefused int64
	Compactions    int64 // runs of ranges merged
	LogStartMoves  int64 // partitions moved by retention
	DeletedObjects int64 // unreferenced objects collected
	UnflushedBytes int64 // held in the WAL now
	// KeyCompactions counts key-compaction passes (cleanup.policy=
	// compact), KeyCompactedBytes the bytes they took out of the bucket,
	// KeyCompactedRecords the records (superseded values, expired
	// tombstones, aborted records, COMMIT markers).
	KeyCompactions, KeyCompactedBytes, KeyCompactedRecords int64
}

// Stats returns the agent's counters.
func (a *Agent) Stats() Stats {
	ts := a.tier.Stats()
	return Stats{
		Flushes:        ts.Flushes,
		FlushedBytes:   ts.FlushedBytes,
		CommitsRefused: ts.CommitsRefused,
		Compactions:    ts.Compactions,
		LogStartMoves:  ts.LogStartMoves,
		DeletedObjects: ts.DeletedObjects,
		UnflushedBytes: a.unflushedBytes(),

		KeyCompactions:      ts.KeyCompactions,
		KeyCompactedBytes:   ts.KeyCompactedBytes,
		KeyCompactedRecords: ts.KeyCompactedRecords,
	}
}

// unflushedBytes is what all partitions hold in the WAL.
func (a *Agent) unflushedBytes() int64 { return a.walBytes.Load() }

// MetadataBytes is the size of a metadata snapshot of the current state
// (what a starting agent loads before the journal tail).
func (a *Agent) MetadataBytes() (int, error) {
	b, err := json.Marshal(a.meta.State())
	return len(b), err
}
