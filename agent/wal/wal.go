// Package wal is the agent's write-ahead log: the unflushed tail of every
// partition it holds, one Badger key per record batch.
//
// Keys are 'b' | topic id (16) | partition (4, big-endian) | base offset (8,
// big-endian), so one partition's batches are contiguous and ordered by
// offset. Values are RecordBatch v2 bytes exactly as they were stamped by the
// leader. Writes from every partition and request funnel into one goroutine
// that commits whatever is queued as one Badger write (group commit) and, in
// sync mode, fsyncs once for the whole group before completing any of them.
package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
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
	Dir string
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
	more  []kv // further batches written with this one (AppendAllReserved)
	done  func(error)
}

type kv struct{ key, value []byte }

// WAL is a Badger-backed write-ahead log shared by all partitions of an agent.
type WAL struct {
	db    *badger.DB
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

// Open opens (creating if needed) the WAL in opts.Dir.
func Open(opts Options) (*WAL, error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.MaxGroupBytes <= 0 {
		opts.MaxGroupBytes = 32 << 20
	}
	bo := badger.DefaultOptions(opts.Dir).
		WithLogger(badgerLogger{opts.Logger}).
		WithSyncWrites(false). // we fsync once per group instead
		// Batches above 4 KiB go to the value log, so LSM compaction
		// does not rewrite record data.
		WithValueThreshold(4 << 10).
		WithNumVersionsToKeep(1).
		WithCompactL0OnClose(false)
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("wal: open badger in %s: %w", opts.Dir, err)
	}
	w := &WAL{
		db:     db,
		opts:   opts,
		log:    opts.Logger,
		queue:  make(chan *write, queueSlots),
		slots:  make(chan struct{}, queueSlots),
		closed: make(chan struct{}),
	}
	w.wg.Add(2)
	go w.writer()
	go w.gcLoop()
	return w, nil
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
		wr.more = append(wr.more, kv{batchKey(p, bases[i]), batches[i]})
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
		n += len(m.value)
	}
	return n
}

func (w *WAL) commit(group []*write) error {
	wb := w.db.NewWriteBatch()
	defer wb.Cancel()
	var bytes, batches int64
	for _, wr := range group {
		if err := wb.Set(wr.key, wr.value); err != nil {
			return fmt.Errorf("wal: group write: %w", err)
		}
		for _, m := range wr.more {
			if err := wb.Set(m.key, m.value); err != nil {
				return fmt.Errorf("wal: group write: %w", err)
			}
		}
		bytes += int64(wr.size())
		batches += 1 + int64(len(wr.more))
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("wal: group flush: %w", err)
	}
	synced := int64(0)
	if w.opts.Sync {
		if err := w.db.Sync(); err != nil {
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
	return w.db.View(func(txn *badger.Txn) error {
		iopt := badger.DefaultIteratorOptions
		iopt.Prefix = partPrefix(p)
		// Values are read one at a time as the caller asks: prefetching
		// would copy batches the caller may not want.
		iopt.PrefetchValues = false
		it := txn.NewIterator(iopt)
		defer it.Close()
		for it.Seek(batchKey(p, fromBase)); it.Valid(); it.Next() {
			item := it.Item()
			_, base, ok := parseKey(item.Key())
			if !ok {
				continue
			}
			more := true
			err := item.Value(func(v []byte) error {
				more = fn(base, v)
				return nil
			})
			if err != nil {
				return fmt.Errorf("wal: read %x@%d: %w", p, base, err)
			}
			if !more {
				return nil
			}
		}
		return nil
	})
}

// Scan calls fn for every stored batch of every partition, in key order
// (partition, then offset). It is how an agent rebuilds its partitions after
// a restart.
func (w *WAL) Scan(fn func(p PartKey, base int64, batch []byte) error) error {
	return w.db.View(func(txn *badger.Txn) error {
		iopt := badger.DefaultIteratorOptions
		iopt.Prefix = []byte{batchPrefix}
		it := txn.NewIterator(iopt)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			p, base, ok := parseKey(item.Key())
			if !ok {
				continue
			}
			err := item.Value(func(v []byte) error { return fn(p, base, v) })
			if err != nil {
				return err
			}
		}
		return nil
	})
}

// DeleteBefore removes every batch of p whose base offset is below base.
// The caller passes the base of the first batch it keeps.
func (w *WAL) DeleteBefore(p PartKey, base int64) error {
	var keys [][]byte
	end := batchKey(p, base)
	err := w.db.View(func(txn *badger.Txn) error {
		iopt := badger.DefaultIteratorOptions
		iopt.Prefix = partPrefix(p)
		iopt.PrefetchValues = false
		it := txn.NewIterator(iopt)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			k := it.Item().KeyCopy(nil)
			if bytes.Compare(k, end) >= 0 {
				break
			}
			keys = append(keys, k)
		}
		return nil
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
	err := w.db.View(func(txn *badger.Txn) error {
		iopt := badger.DefaultIteratorOptions
		iopt.Prefix = partPrefix(p)
		iopt.PrefetchValues = false
		it := txn.NewIterator(iopt)
		defer it.Close()
		for it.Seek(batchKey(p, base)); it.Valid(); it.Next() {
			keys = append(keys, it.Item().KeyCopy(nil))
		}
		return nil
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
// where the state would otherwise be rebuilt from.
func (w *WAL) PutProducerSnapshot(p PartKey, snap []byte) error {
	err := w.db.Update(func(txn *badger.Txn) error { return txn.Set(producerKey(p), snap) })
	if err != nil {
		return fmt.Errorf("wal: producer snapshot: %w", err)
	}
	if w.opts.Sync {
		if err := w.db.Sync(); err != nil {
			return fmt.Errorf("wal: fsync: %w", err)
		}
	}
	return nil
}

// ProducerSnapshots calls fn for every stored producer snapshot.
func (w *WAL) ProducerSnapshots(fn func(p PartKey, snap []byte) error) error {
	return w.db.View(func(txn *badger.Txn) error {
		iopt := badger.DefaultIteratorOptions
		iopt.Prefix = []byte{producerPrefix}
		it := txn.NewIterator(iopt)
		defer it.Close()
		for it.Rewind(); it.Valid(); it.Next() {
			item := it.Item()
			k := item.Key()
			if len(k) != 21 {
				continue
			}
			var p PartKey
			copy(p[:], k[1:])
			if err := item.Value(func(v []byte) error { return fn(p, v) }); err != nil {
				return err
			}
		}
		return nil
	})
}

func (w *WAL) deleteKeys(keys [][]byte) error {
	if len(keys) == 0 {
		return nil
	}
	wb := w.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return fmt.Errorf("wal: delete: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("wal: delete flush: %w", err)
	}
	if w.opts.Sync {
		if err := w.db.Sync(); err != nil {
			return fmt.Errorf("wal: fsync: %w", err)
		}
	}
	return nil
}

// Size returns Badger's LSM and value-log sizes in bytes.
func (w *WAL) Size() (lsm, vlog int64) { return w.db.Size() }

// gcLoop reclaims value-log space freed by deletions.
func (w *WAL) gcLoop() {
	defer w.wg.Done()
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-w.closed:
			return
		case <-t.C:
			for w.db.RunValueLogGC(0.5) == nil {
			}
		}
	}
}

// Close drains queued writes, then closes Badger.
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
	if err := w.db.Sync(); err != nil {
		w.log.Warn("wal: final sync", "err", err)
	}
	if err := w.db.Close(); err != nil {
		return fmt.Errorf("wal: close badger: %w", err)
	}
	return nil
}

// badgerLogger routes Badger's chatter to slog, keeping only warnings and
// errors at their level.
type badgerLogger struct{ l *slog.Logger }

func (b badgerLogger) Errorf(f string, a ...any)   { b.l.Error(fmt.Sprintf("badger: "+f, a...)) }
func (b badgerLogger) Warningf(f string, a ...any) { b.l.Warn(fmt.Sprintf("badger: "+f, a...)) }
func (b badgerLogger) Infof(f string, a ...any)    { b.l.Debug(fmt.Sprintf("badger: "+f, a...)) }
func (b badgerLogger) Debugf(f string, a ...any)   {}
