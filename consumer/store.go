package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"sync"
)

// OffsetStore keeps an assignment-mode consumer's position: for each
// partition, the offset of the next record to process. Implementations must
// be safe for concurrent use.
type OffsetStore interface {
	// Load returns the stored offsets of the given partitions; a partition
	// with nothing stored is absent from the map.
	Load(ctx context.Context, tps []TopicPartition) (map[TopicPartition]int64, error)
	// Save stores the given offsets durably before returning; partitions
	// not in the map keep what they had.
	Save(ctx context.Context, offsets map[TopicPartition]int64) error
}

// MemoryStore is an OffsetStore in memory: positions survive a new Consumer
// in the same process (a restarted processing loop), not a process restart.
type MemoryStore struct {
	mu sync.Mutex
	m  map[TopicPartition]int64
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore { return &MemoryStore{m: map[TopicPartition]int64{}} }

// Load implements OffsetStore.
func (s *MemoryStore) Load(_ context.Context, tps []TopicPartition) (map[TopicPartition]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[TopicPartition]int64, len(tps))
	for _, tp := range tps {
		if o, ok := s.m[tp]; ok {
			out[tp] = o
		}
	}
	return out, nil
}

// Save implements OffsetStore.
func (s *MemoryStore) Save(_ context.Context, offsets map[TopicPartition]int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[TopicPartition]int64{}
	}
	maps.Copy(s.m, offsets)
	return nil
}

// Offsets returns a copy of everything stored.
func (s *MemoryStore) Offsets() map[TopicPartition]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m)
}

// FileStore is an OffsetStore in a JSON file ({"topic": {"partition":
// offset}}). Each Save writes a temporary file, syncs it and renames it over
// the old one, so a crash leaves either the old or the new positions, never
// a torn file. One FileStore per file: two processes must not share it.
type FileStore struct {
	path string
	mu   sync.Mutex
	m    map[TopicPartition]int64
}

// NewFileStore opens (or, on the first Save, creates) the store at path.
func NewFileStore(path string) (*FileStore, error) {
	s := &FileStore{path: path, m: map[TopicPartition]int64{}}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return nil, fmt.Errorf("offset store %s: %w", path, err)
	}
	var doc map[string]map[string]int64
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("offset store %s: %w", path, err)
	}
	for topic, ps := range doc {
		for p, off := range ps {
			n, err := strconv.ParseInt(p, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("offset store %s: topic %q: bad partition %q: %w", path, topic, p, err)
			}
			s.m[TopicPartition{topic, int32(n)}] = off
		}
	}
	return s, nil
}

// Load implements OffsetStore.
func (s *FileStore) Load(_ context.Context, tps []TopicPartition) (map[TopicPartition]int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[TopicPartition]int64, len(tps))
	for _, tp := range tps {
		if o, ok := s.m[tp]; ok {
			out[tp] = o
		}
	}
	return out, nil
}

// Save implements OffsetStore.
func (s *FileStore) Save(_ context.Context, offsets map[TopicPartition]int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := maps.Clone(s.m)
	maps.Copy(next, offsets)
	doc := map[string]map[string]int64{}
	for tp, off := range next {
		if doc[tp.Topic] == nil {
			doc[tp.Topic] = map[string]int64{}
		}
		doc[tp.Topic][strconv.Itoa(int(tp.Partition))] = off
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return fmt.Errorf("offset store %s: %w", s.path, err)
	}
	if err := writeFileAtomic(s.path, b); err != nil {
		return fmt.Errorf("offset store %s: %w", s.path, err)
	}
	s.m = next
	return nil
}

// Offsets returns a copy of everything stored.
func (s *FileStore) Offsets() map[TopicPartition]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.m)
}

func writeFileAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op once renamed
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	// The rename is durable only once the directory is synced.
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
