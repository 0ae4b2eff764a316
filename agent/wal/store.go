package wal

// Store is what the WAL needs from the storage below it: an ordered
// key-value store. The group committer, its queue slots, the sticky
// fail-stop, the stats and the callbacks live in the WAL above it, the same
// for every store; a Store only writes, syncs, deletes and iterates keys.
//
// BadgerStore is the one agents run on; MemStore keeps everything in memory
// for tests; agent/wal/waltest wraps either to inject faults.
//
// A Store must be safe for concurrent use: the WAL's writer applies and
// syncs groups while partitions read, delete and put producer snapshots.
type Store interface {
	// Apply writes sets, in order, as one group; a later Apply or Iterate
	// sees all of them. On error the WAL treats the whole group as
	// failed, whatever part of it was stored. MemStore applies a group
	// atomically; Badger's WriteBatch may commit a large group as several
	// transactions. The caller may reuse the sets slice once Apply
	// returns; the keys and values in it are never modified.
	Apply(sets []KV) error
	// Sync makes everything applied or deleted so far durable (fsync).
	Sync() error
	// Delete removes keys; absent keys are not an error.
	Delete(keys [][]byte) error
	// Iterate calls fn for each key that starts with prefix, in ascending
	// key order, from the first at or after from (nil: the first with the
	// prefix), until fn returns false or an error, which Iterate returns.
	// It sees a consistent snapshot taken when it starts. prefetch hints
	// that fn will read most values, so the store may read them ahead.
	Iterate(prefix, from []byte, prefetch bool, fn func(Item) (more bool, err error)) error
	// Size reports the bytes held: lsm for keys and small values, vlog
	// for values kept apart (Badger's value log). A store without that
	// split reports key bytes and value bytes.
	Size() (lsm, vlog int64)
	// Close releases the store. The WAL calls it once, last.
	Close() error
}

// KV is one key and its value.
type KV struct {
	Key, Value []byte
}

// Item is one key during Iterate. Key's bytes, and the slice Value passes
// to fn, are valid only until fn (Iterate's or Value's) returns: copy what
// you keep. *badger.Item implements it.
type Item interface {
	Key() []byte
	Value(fn func(v []byte) error) error
}
