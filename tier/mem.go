package tier

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// MemBucket is an in-memory Bucket for tests and single-process setups.
// Byte slices are copied on the way in and out, so callers never share
// storage with it. Close is a no-op and keeps the data, so buckets shared
// through bucketurl.Open("mem://NAME") survive one user closing them.
type MemBucket struct {
	mu   sync.RWMutex
	objs map[string]memObject
	gen  uint64 // bumped on every write; ETags never repeat within a bucket
}

type memObject struct {
	data []byte
	etag string
	mod  time.Time
}

var _ Bucket = (*MemBucket)(nil)

// NewMemBucket returns an empty in-memory bucket.
func NewMemBucket() *MemBucket {
	return &MemBucket{objs: make(map[string]memObject)}
}

func (m *MemBucket) info(key string, o memObject) ObjectInfo {
	return ObjectInfo{Key: key, Size: int64(len(o.data)), ETag: o.etag, Modified: o.mod}
}

func memCheck(ctx context.Context, op, key string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem bucket: %s %q: %w", op, key, err)
	}
	if err := ValidateKey(key); err != nil {
		return fmt.Errorf("mem bucket: %s: %w", op, err)
	}
	return nil
}

// store writes body under the lock (held by the caller) and returns the ETag.
func (m *MemBucket) store(key string, body []byte) string {
	m.gen++
	etag := "m" + strconv.FormatUint(m.gen, 16)
	m.objs[key] = memObject{data: slices.Clone(body), etag: etag, mod: time.Now()}
	return etag
}

// Put implements Bucket.
func (m *MemBucket) Put(ctx context.Context, key string, body []byte) (string, error) {
	if err := memCheck(ctx, "put", key); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.store(key, body), nil
}

// PutIfAbsent implements Bucket.
func (m *MemBucket) PutIfAbsent(ctx context.Context, key string, body []byte) (string, error) {
	if err := memCheck(ctx, "put-if-absent", key); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.objs[key]; ok {
		return "", fmt.Errorf("mem bucket: put-if-absent %q: %w", key, ErrPreconditionFailed)
	}
	return m.store(key, body), nil
}

// PutIfMatch implements Bucket.
func (m *MemBucket) PutIfMatch(ctx context.Context, key string, body []byte, etag string) (string, error) {
	if err := memCheck(ctx, "put-if-match", key); err != nil {
		return "", err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objs[key]
	if !ok {
		return "", fmt.Errorf("mem bucket: put-if-match %q: key missing: %w", key, ErrPreconditionFailed)
	}
	if o.etag != etag {
		return "", fmt.Errorf("mem bucket: put-if-match %q: etag %q is not current: %w", key, etag, ErrPreconditionFailed)
	}
	return m.store(key, body), nil
}

// Get implements Bucket.
func (m *MemBucket) Get(ctx context.Context, key string) ([]byte, ObjectInfo, error) {
	if err := memCheck(ctx, "get", key); err != nil {
		return nil, ObjectInfo{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	o, ok := m.objs[key]
	if !ok {
		return nil, ObjectInfo{}, fmt.Errorf("mem bucket: get %q: %w", key, ErrNotFound)
	}
	return slices.Clone(o.data), m.info(key, o), nil
}

// GetRange implements Bucket.
func (m *MemBucket) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	if err := memCheck(ctx, "get-range", key); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	o, ok := m.objs[key]
	if !ok {
		return nil, fmt.Errorf("mem bucket: get-range %q: %w", key, ErrNotFound)
	}
	start, end, err := RangeBounds(offset, length, int64(len(o.data)))
	if err != nil {
		return nil, fmt.Errorf("mem bucket: get-range %q: %w", key, err)
	}
	return slices.Clone(o.data[start:end:end]), nil
}

// Stat implements Bucket.
func (m *MemBucket) Stat(ctx context.Context, key string) (ObjectInfo, error) {
	if err := memCheck(ctx, "stat", key); err != nil {
		return ObjectInfo{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	o, ok := m.objs[key]
	if !ok {
		return ObjectInfo{}, fmt.Errorf("mem bucket: stat %q: %w", key, ErrNotFound)
	}
	return m.info(key, o), nil
}

// List implements Bucket.
func (m *MemBucket) List(ctx context.Context, prefix string) ([]ObjectInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("mem bucket: list %q: %w", prefix, err)
	}
	m.mu.RLock()
	out := make([]ObjectInfo, 0)
	for k, o := range m.objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, m.info(k, o))
		}
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Delete implements Bucket.
func (m *MemBucket) Delete(ctx context.Context, key string) error {
	if err := memCheck(ctx, "delete", key); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.objs, key)
	return nil
}

// Close implements Bucket. It keeps the data (see MemBucket).
func (m *MemBucket) Close() error { return nil }
