package wal

import (
	"bytes"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// BadgerStore is the Store agents run on: a Badger DB in one directory.
// Writes do not fsync themselves (SyncWrites off): the WAL calls Sync once
// per group instead. Batches above 4 KiB go to the value log, so LSM
// compaction does not rewrite record data; a background loop reclaims
// value-log space freed by deletions.
type BadgerStore struct {
	db        *badger.DB
	closed    chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

var _ Store = (*BadgerStore)(nil)

// MemTableBytes and NumMemtables bound the WAL's memtables, the part of
// its memory that does not depend on load: at most NumMemtables arenas of
// about MemTableBytes each.
const (
	MemTableBytes = 16 << 20
	NumMemtables  = 3
)

// OpenBadger opens (creating if needed) a Badger store in dir.
func OpenBadger(dir string, logger *slog.Logger) (*BadgerStore, error) {
	if logger == nil {
		logger = slog.Default()
	}
	bo := badger.DefaultOptions(dir).
		WithLogger(badgerLogger{logger}).
		WithSyncWrites(false). // the WAL fsyncs once per group instead
		// Batches above 4 KiB go to the value log, so LSM compaction
		// does not rewrite record data.
		WithValueThreshold(4 << 10).
		WithNumVersionsToKeep(1).
		WithCompactL0OnClose(false).
		// Memory (issue: RSS under produce). The LSM holds keys and
		// small values only, so 64 MiB memtables (five of them, each an
		// arena allocated up front) bought nothing but resident memory;
		// the block cache serves key lookups of a log read once.
		WithMemTableSize(MemTableBytes).
		WithNumMemtables(NumMemtables).
		WithBlockCacheSize(16 << 20).
		// Smaller value-log files, so those the WAL has trimmed are
		// collected (and unmapped) sooner.
		WithValueLogFileSize(64 << 20)
	db, err := badger.Open(bo)
	if err != nil {
		return nil, fmt.Errorf("wal: open badger in %s: %w", dir, err)
	}
	s := &BadgerStore{db: db, closed: make(chan struct{})}
	s.wg.Add(1)
	go s.gcLoop()
	return s, nil
}

// Apply writes sets with one WriteBatch.
func (s *BadgerStore) Apply(sets []KV) error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, kv := range sets {
		if err := wb.Set(kv.Key, kv.Value); err != nil {
			return fmt.Errorf("badger set: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("badger flush: %w", err)
	}
	return nil
}

// Sync fsyncs Badger's write-ahead files.
func (s *BadgerStore) Sync() error { return s.db.Sync() }

// Delete removes keys with one WriteBatch.
func (s *BadgerStore) Delete(keys [][]byte) error {
	wb := s.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return fmt.Errorf("badger delete: %w", err)
		}
	}
	if err := wb.Flush(); err != nil {
		return fmt.Errorf("badger delete flush: %w", err)
	}
	return nil
}

// Iterate runs fn over a read-only transaction's iterator.
func (s *BadgerStore) Iterate(prefix, from []byte, prefetch bool, fn func(Item) (bool, error)) error {
	return s.db.View(func(txn *badger.Txn) error {
		iopt := badger.DefaultIteratorOptions
		iopt.Prefix = prefix
		// Without prefetch values are read one at a time as fn asks:
		// prefetching would copy batches fn may not want.
		iopt.PrefetchValues = prefetch
		it := txn.NewIterator(iopt)
		defer it.Close()
		if bytes.Compare(from, prefix) < 0 {
			from = prefix // Valid stops at the first key without it
		}
		for it.Seek(from); it.Valid(); it.Next() {
			more, err := fn(it.Item())
			if err != nil || !more {
				return err
			}
		}
		return nil
	})
}

// Size returns Badger's LSM and value-log sizes in bytes.
func (s *BadgerStore) Size() (lsm, vlog int64) { return s.db.Size() }

// gcLoop reclaims value-log space freed by deletions.
func (s *BadgerStore) gcLoop() {
	defer s.wg.Done()
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-s.closed:
			return
		case <-t.C:
			for s.db.RunValueLogGC(0.5) == nil {
			}
		}
	}
}

// Close stops the value-log GC and closes Badger.
func (s *BadgerStore) Close() error {
	s.closeOnce.Do(func() { close(s.closed) })
	s.wg.Wait()
	if err := s.db.Close(); err != nil {
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
