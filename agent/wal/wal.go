// Package wal is the agent's write-ahead log: the unflushed tail of every
// partition it holds, one key per record batch in a Store (Badger in
// production, see BadgerStore; MemStore in tests).
//
// Keys are 'b' | topic id (16) | partition (4, big-endian) | base offset (8,
// big-endian), so one partition's batches are contiguous and ordered by
// offset. Values are RecordBatch v2 bytes exactly as they were stamped by the
// leader. Writes from every partition and request funnel into one goroutine
// that commits whatever is queued as one Store write (group commit) and, in
// sync mode, fsyncs once for the whole group before completing any of them.
// The first failed group stops the WAL (fail-stop): everything after it is
// refused, so what the store holds stays a prefix of what was queued.
package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
)

// PartKey identifies a partition inside the WAL: topic UUID and index.
type PartKey [20]byte

// NewPartKey builds a PartKey from a topic id and a partition index.
func NewPartKey(topicID [16]byte, partition int32) PartKey {
	var k PartKey
	copy(k[:16], topicID[:])
	binary.BigEndian.PutUint32(k[16:], uint32(partition))
	return k
}

// TopicID returns the topic UUID bytes.
func (k PartKey) TopicID() [16]byte {
	var id [16]byte
	copy(id[:], k[:16])
	return id
}

// Partition returns the partition index.
func (k PartKey) Partition() int32 { return int32(binary.BigEndian.Uint32(k[16:])) }

// BatchPrefix is the prefix of every key of k's batches in the Store (for
// tests that inject faults into one partition's writes).
func (k PartKey) BatchPrefix() []byte { return partPrefix(k) }

const (
	// producerPrefix keys sort before batches, so Scan-time recovery can
	// load producer snapshots first.
	producerPrefix = 'a'
	batchPrefix    = 'b'
	keyLen         = 1 + 20 + 8
)

// ErrClosed is returned for writes after Close.
var ErrClosed = errors.New("wal closed")

func batchKey(p PartKey, base int64) []byte {
	k := make([]byte, keyLen)
	k[0] = batchPrefix
	copy(k[1:21], p[:])
	binary.BigEndian.PutUint64(k[21:], uint64(base))
	return k
}

func partPrefix(p PartKey) []byte {
	k := make([]byte, 21)
	k[0] = batchPrefix
	copy(k[1:], p[:])
	return k
}

func parseKey(k []byte) (PartKey, int64, bool) {
	var p PartKey
	if len(k) != keyLen || k[0] != batchPrefix {
		return p, 0, false
	}
	copy(p[:], k[1:21])
	return p, int64(binary.BigEndian.Uint64(k[21:])), true
}

// Options configure a WAL.
type Options struct {
	// Dir is where Open keeps its store (New ignores it).
	Dir string
	// Files has Open keep the WAL in its own append-only files
	// (FileStore) rather than in Badger.
	Files bool
	// Sync makes every group commit fsync before it completes
	// (--wal-sync=always). Without it, acknowledged data relies on the
	// page cache and on replication.
	Sync bool
	// MaxGroupBytes bounds one group commit.
	MaxGroupBytes int
	// AfterGroup runs on the writer after each group's callbacks (to wake
	// readers once per group rather than once per batch).
	AfterGroup func()
	Logger     *slog.Logger
}

type write struct {
	key   []byte
	value []byte
	more  []KV // further batches written with this one (AppendAllReserved)
	done  func(error)
}

// WAL is the write-ahead log shared by all partitions of an agent.
type WAL struct {
	store Store
	opts  Options
	log   *slog.Logger
	queue chan *write
	// slots bounds the queue: a caller reserves one before taking any lock
	// the writer's callbacks need, so Append never blocks under that lock.
	slots chan struct{}
	// failed is sticky: after a commit error nothing more is written, so
	// the WAL stays a prefix of what was acknowledged.
	failed atomic.Pointer[error]
	closed chan struct{}
	wg     sync.WaitGroup
	sets   []KV // the writer's group, reused

	mu       sync.RWMutex // guards isClosed against concurrent Append
	isClosed bool

	statsMu sync.Mutex
	stats   Stats
}

// Stats are cumulative counters for observability and benchmarks.
type Stats struct {
	Groups  int64 // group commits
	Batches int64 // batches written
	Bytes   int64 // value bytes written
	Syncs   int64 // fsyncs
}

// Open opens (creating if needed) the WAL in a Badger store in opts.Dir.
func Open(opts Options) (*WAL, error) {
	var s Store
	var err error
	if opts.Files {
		s, err = OpenFileStore(opts.Dir, opts.Logger)
	} else {
		s, err = OpenBadger(opts.Dir, opts.Logger)
	}
	if err != nil {
		return nil, err
	}
	return New(s, opts), nil
}

// New starts a WAL on store, which it owns from then on (Close closes it).
// opts.Dir is not used.
func New(store Store, opts Options) *WAL {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxGroupBytes <= 0 {
		opts.MaxGroupBytes = 32 << 20
	}
	w := &WAL{
		store:  store,
		opts:   opts,
		log:    opts.Logger,
		queue:  make(chan *write, queueSlots),
		slots:  make(chan struct{}, queueSlots),
		closed: make(chan struct{}),
	}
	w.wg.Add(1)
	go w.writer()
	return w
}

const queueSlots = 4096

// Reserve takes a queue slot for one later Append. Call it before taking
// locks that Append's done callback needs; it blocks while the queue is
// full (backpressure) and fails once the WAL is closed.
func (w *WAL) Reserve() error {
	select {
	case w.slots <- struct{}{}:
		return nil
	case <-w.closed:
		return ErrClosed
	}
}

// Release returns a reserved slot that will not be used.
func (w *WAL) Release() { <-w.slots }

// Append reserves a slot and queues batch (see AppendReserved). It may
// block while the queue is full, so callers must not hold a lock that done
// takes.
func (w *WAL) Append(p PartKey, base int64, batch []byte, done func(error)) error {
	if err := w.Reserve(); err != nil {
		return err
	}
	return w.AppendReserved(p, base, batch, done)
}

// AppendReserved queues batch for partition p at base offset, using a slot
// taken with Reserve; it never blocks. done is called, from
// the WAL's writer goroutine, once the batch is durable to the configured
// level (or with an error). Appends complete in the order they were queued,
// so callers that queue under a partition lock get offset order for free.
// The WAL keeps a reference to batch: callers must not modify it afterwards.
// After Close it returns ErrClosed and never calls done (callers typically
// hold a lock that done takes).
func (w *WAL) AppendReserved(p PartKey, base int64, batch []byte, done func(error)) error {
	return w.enqueue(&write{key: batchKey(p, base), value: batch, done: done})
}

// enqueue queues wr with a reserved slot (released on failure).
func (w *WAL) enqueue(wr *write) error {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.isClosed {
		w.Release()
		return ErrClosed
	}
	if errp := w.failed.Load(); errp != nil {
		w.Release()
		return *errp
	}
	// Never blocks: at most queueSlots writes are reserved.
	w.queue <- wr
	return nil
}

// AppendAllReserved queues several consecutive batches of p with one
// reserved slot, completing them together (a follower appending what its
// leader sent in one message). bases[i] is the base offset of batches[i].
func (w *WAL) AppendAllReserved(p PartKey, bases []int64, batches [][]byte, done func(error)) error {
	if len(batches) == 0 || len(bases) != len(batches) {
		w.Release()
		return fmt.Errorf("wal: %d bases for %d batches", len(bases), len(batches))
	}
	wr := &write{key: batchKey(p, bases[0]), value: batches[0], done: done}
	for i := 1; i < len(batches); i++ {
		wr.more = append(wr.more, KV{batchKey(p, bases[i]), batches[i]})
	}
	return w.enqueue(wr)
}

func (w *WAL) writer() {
	defer w.wg.Done()
	var group []*write
	for {
		first, ok := <-w.queue
		if !ok {
			return
		}
		<-w.slots
		group = append(group[:0], first)
		size := first.size()
	drain:
		for size < w.opts.MaxGroupBytes {
			select {
			case wr, ok := <-w.queue:
				if !ok {
					break drain
				}
				<-w.slots
				group = append(group, wr)
				size += wr.size()
			default:
				break drain
			}
		}
		var err error
		if errp := w.failed.Load(); errp != nil {
			err = *errp
		} else if err = w.commit(group); err != nil {
			// Fail-stop: writing later groups would leave a hole
			// before them.
			w.log.Error("wal: write failed; refusing all further writes", "err", err)
			w.failed.Store(&err)
		}
		for _, wr := range group {
			wr.done(err)
		}
		// Drop references so request bodies can be collected.
		clear(group)
		if w.opts.AfterGroup != nil {
			w.opts.AfterGroup()
		}
	}
}

func (wr *write) size() int {
	n := len(wr.value)
	for _, m := range wr.more {
		n += len(m.Value)
	}
	return n
}

// commit writes one group to the store and, in sync mode, fsyncs it.
func (w *WAL) commit(group []*write) error {
	sets := w.sets[:0]
	var bytes int64
	for _, wr := range group {
		sets = append(sets, KV{wr.key, wr.value})
		sets = append(sets, wr.more...)
		bytes += int64(wr.size())
	}
	batches := int64(len(sets))
	err := w.store.Apply(sets)
	clear(sets) // drop references so request bodies can be collected
	w.sets = sets[:0]
	if err != nil {
		return fmt.Errorf("wal: group write: %w", err)
	}
	synced := int64(0)
	if w.opts.Sync {
		if err := w.store.Sync(); err != nil {
			return fmt.Errorf("wal: fsync: %w", err)
		}
		synced = 1
	}
	w.statsMu.Lock()
	w.stats.Groups++
	w.stats.Batches += batches
	w.stats.Bytes += bytes
	w.stats.Syncs += synced
	w.statsMu.Unlock()
	return nil
}

// Stats returns cumulative counters.
func (w *WAL) Stats() Stats {
	w.statsMu.Lock()
	defer w.statsMu.Unlock()
	return w.stats
}

// Read calls fn for each batch of partition p in offset order, starting with
// the batch whose base offset is fromBase (the caller's index knows it), and
// stops when fn returns false. The slice passed to fn is valid only during
// the call: copy what you keep.
func (w *WAL) Read(p PartKey, fromBase int64, fn func(base int64, batch []byte) bool) error {
	// Values are read one at a time as the caller asks: prefetching would
	// copy batches the caller may not want.
	return w.store.Iterate(partPrefix(p), batchKey(p, fromBase), false, func(it Item) (bool, error) {
		_, base, ok := parseKey(it.Key())
		if !ok {
			return true, nil
		}
		more := true
		err := it.Value(func(v []byte) error {
			more = fn(base, v)
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("wal: read %x@%d: %w", p, base, err)
		}
		return more, nil
	})
}

// Scan calls fn for every stored batch of every partition, in key order
// (partition, then offset). It is how an agent rebuilds its partitions after
// a restart.
func (w *WAL) Scan(fn func(p PartKey, base int64, batch []byte) error) error {
	return w.store.Iterate([]byte{batchPrefix}, nil, true, func(it Item) (bool, error) {
		p, base, ok := parseKey(it.Key())
		if !ok {
			return true, nil
		}
		if err := it.Value(func(v []byte) error { return fn(p, base, v) }); err != nil {
			return false, err
		}
		return true, nil
	})
}

// DeleteBefore removes every batch of p whose base offset is below base.
// The caller passes the base of the first batch it keeps.
func (w *WAL) DeleteBefore(p PartKey, base int64) error {
	var keys [][]byte
	end := batchKey(p, base)
	err := w.store.Iterate(partPrefix(p), nil, false, func(it Item) (bool, error) {
		k := it.Key()
		if bytes.Compare(k, end) >= 0 {
			return false, nil
		}
		keys = append(keys, bytes.Clone(k))
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("wal: scan for delete: %w", err)
	}
	return w.deleteKeys(keys)
}

// DeleteFrom removes every batch of p whose base offset is at or above base
// (truncation of an uncommitted suffix).
func (w *WAL) DeleteFrom(p PartKey, base int64) error {
	var keys [][]byte
	err := w.store.Iterate(partPrefix(p), batchKey(p, base), false, func(it Item) (bool, error) {
		keys = append(keys, bytes.Clone(it.Key()))
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("wal: scan for truncate: %w", err)
	}
	return w.deleteKeys(keys)
}

// DropPartition removes everything stored for p.
func (w *WAL) DropPartition(p PartKey) error {
	if err := w.DeleteFrom(p, 0); err != nil {
		return err
	}
	return w.deleteKeys([][]byte{producerKey(p)})
}

func producerKey(p PartKey) []byte {
	k := make([]byte, 21)
	k[0] = producerPrefix
	copy(k[1:], p[:])
	return k
}

// PutProducerSnapshot stores p's idempotent-producer state. A partition
// writes it before dropping batches from the WAL, because those batches are
// where the state would otherwise be rebuilt from. It goes to the store
// directly, not through the group committer (nor its fail-stop).
func (w *WAL) PutProducerSnapshot(p PartKey, snap []byte) error {
	if err := w.store.Apply([]KV{{producerKey(p), snap}}); err != nil {
		return fmt.Errorf("wal: producer snapshot: %w", err)
	}
	if w.opts.Sync {
		if err := w.store.Sync(); err != nil {
			return fmt.Errorf("wal: fsync: %w", err)
		}
	}
	return nil
}

// DeleteProducerSnapshot removes p's producer state (the partition no
// longer has it: it loads it from the bucket instead).
func (w *WAL) DeleteProducerSnapshot(p PartKey) error {
	if err := w.deleteKeys([][]byte{producerKey(p)}); err != nil {
		return fmt.Errorf("wal: delete producer snapshot: %w", err)
	}
	return nil
}

// ProducerSnapshots calls fn for every stored producer snapshot.
func (w *WAL) ProducerSnapshots(fn func(p PartKey, snap []byte) error) error {
	return w.store.Iterate([]byte{producerPrefix}, nil, true, func(it Item) (bool, error) {
		k := it.Key()
		if len(k) != 21 {
			return true, nil
		}
		var p PartKey
		copy(p[:], k[1:])
		if err := it.Value(func(v []byte) error { return fn(p, v) }); err != nil {
			return false, err
		}
		return true, nil
	})
}

func (w *WAL) deleteKeys(keys [][]byte) error {
	if len(keys) == 0 {
		return nil
	}
	if err := w.store.Delete(keys); err != nil {
		return fmt.Errorf("wal: delete: %w", err)
	}
	if w.opts.Sync {
		if err := w.store.Sync(); err != nil {
			return fmt.Errorf("wal: fsync: %w", err)
		}
	}
	return nil
}

// Size returns the store's sizes in bytes (for Badger: LSM and value log).
func (w *WAL) Size() (lsm, vlog int64) { return w.store.Size() }

// Close drains queued writes, then syncs and closes the store.
func (w *WAL) Close() error {
	w.mu.Lock()
	if w.isClosed {
		w.mu.Unlock()
		return nil
	}
	w.isClosed = true
	close(w.queue)
	close(w.closed)
	w.mu.Unlock()
	w.wg.Wait()
	if err := w.store.Sync(); err != nil {
		w.log.Warn("wal: final sync", "err", err)
	}
	if err := w.store.Close(); err != nil {
		return fmt.Errorf("wal: close store: %w", err)
	}
	return nil
}
