package wal

import (
	"bytes"
	"errors"
	"slices"
	"sync"
)

// ErrStoreClosed is returned by a MemStore used after Close.
var ErrStoreClosed = errors.New("wal: store closed")

// MemStore is a Store in memory, for tests of the WAL and of what runs on it
// (partitions, agents) that need no directory. Keys are kept sorted; Apply
// is atomic and Sync does nothing. Nothing survives the process, and a
// closed MemStore refuses every call, like a closed Badger DB.
type MemStore struct {
	mu     sync.RWMutex
	kvs    []KV // sorted by key; stored slices are never modified
	closed bool
}

var _ Store = (*MemStore)(nil)

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore { return &MemStore{} }

func (s *MemStore) find(key []byte) (int, bool) {
	return slices.BinarySearchFunc(s.kvs, key, func(kv KV, k []byte) int { return bytes.Compare(kv.Key, k) })
}

// Apply copies sets in, all of them or (once closed) none.
func (s *MemStore) Apply(sets []KV) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	for _, kv := range sets {
		kv = KV{bytes.Clone(kv.Key), bytes.Clone(kv.Value)}
		if kv.Value == nil {
			kv.Value = []byte{}
		}
		i, ok := s.find(kv.Key)
		if ok {
			s.kvs[i] = kv // replaced, not overwritten: iterators may hold the old slice
		} else {
			s.kvs = slices.Insert(s.kvs, i, kv)
		}
	}
	return nil
}

// Sync does nothing (but fails once closed).
func (s *MemStore) Sync() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrStoreClosed
	}
	return nil
}

// Delete removes keys.
func (s *MemStore) Delete(keys [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	if len(keys) == 0 {
		return nil
	}
	gone := make(map[string]bool, len(keys))
	for _, k := range keys {
		gone[string(k)] = true
	}
	s.kvs = slices.DeleteFunc(s.kvs, func(kv KV) bool { return gone[string(kv.Key)] })
	return nil
}

// Iterate walks a snapshot of the keys in range, taken under the lock, so
// fn may call the store (or block) without holding it.
func (s *MemStore) Iterate(prefix, from []byte, _ bool, fn func(Item) (bool, error)) error {
	if bytes.Compare(from, prefix) < 0 {
		from = prefix
	}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrStoreClosed
	}
	i, _ := s.find(from)
	j := i
	for j < len(s.kvs) && bytes.HasPrefix(s.kvs[j].Key, prefix) {
		j++
	}
	snap := slices.Clone(s.kvs[i:j])
	s.mu.RUnlock()
	for _, kv := range snap {
		more, err := fn(memItem{kv})
		if err != nil || !more {
			return err
		}
	}
	return nil
}

// memItem hands out copies, so a caller that keeps or modifies what it was
// given (against the Item contract) cannot change the store.
type memItem struct{ kv KV }

func (it memItem) Key() []byte { return bytes.Clone(it.kv.Key) }

func (it memItem) Value(fn func([]byte) error) error { return fn(bytes.Clone(it.kv.Value)) }

// Size returns the bytes of keys and of values held.
func (s *MemStore) Size() (keys, values int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, kv := range s.kvs {
		keys += int64(len(kv.Key))
		values += int64(len(kv.Value))
	}
	return keys, values
}

// Close drops the contents; later calls fail with ErrStoreClosed.
func (s *MemStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	s.kvs = nil
	return nil
}
