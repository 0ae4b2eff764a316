// Package rangecache reads partition ranges of segment objects from the
// bucket and keeps recently read ones in memory: a bounded LRU by bytes,
// one GET per range even when many fetches ask at once, read-ahead of the
// next range for sequential readers, and ranges read to their end evicted
// first.
package rangecache

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tlog-io/tlog/tier"
)

// Range names a partition's bytes inside a segment object.
type Range struct {
	Object string
	Pos    int64
	Len    int64
	CRC    uint32 // CRC-32C of the bytes; 0 means unchecked
}

type key struct {
	object   string
	pos, len int64
}

type entry struct {
	k    key
	data []byte
	elem *list.Element
}

type load struct {
	done chan struct{}
	data []byte
	err  error
}

// Stats counts cache behaviour for metrics.
type Stats struct {
	Hits, Misses, Prefetches, Bytes, Evictions int64
}

// Cache is safe for concurrent use.
type Cache struct {
	bucket   tier.Bucket
	capacity int64
	log      *slog.Logger

	// ctx ends with Close; wg owns the fills (each detached from the
	// reader that asked, since other readers want the result too).
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	lru     *list.List // front = most recent
	entries map[key]*entry
	loads   map[key]*load
	size    int64

	hits, misses, prefetches, evictions atomic.Int64
}

// ErrCorrupt: the bytes read do not match the range's CRC.
var ErrCorrupt = errors.New("range checksum mismatch")

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// New makes a cache holding at most capacity bytes.
func New(bucket tier.Bucket, capacity int64, log *slog.Logger) *Cache {
	if log == nil {
		log = slog.Default()
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Cache{
		bucket: bucket, capacity: capacity, log: log, ctx: ctx, cancel: cancel,
		lru: list.New(), entries: map[key]*entry{}, loads: map[key]*load{},
	}
}

// Get returns the range's bytes, from memory or with one ranged GET. The
// returned slice is shared: callers must not modify it.
func (c *Cache) Get(ctx context.Context, r Range) ([]byte, error) {
	k := key{r.Object, r.Pos, r.Len}
	c.mu.Lock()
	if e, ok := c.entries[k]; ok {
		c.lru.MoveToFront(e.elem)
		c.mu.Unlock()
		c.hits.Add(1)
		return e.data, nil
	}
	l, inflight := c.loads[k]
	if !inflight {
		l = &load{done: make(chan struct{})}
		c.loads[k] = l
	}
	c.mu.Unlock()
	if !inflight {
		c.misses.Add(1)
		// Detached from the caller: other waiters (and the cache) want
		// the result even if this caller gives up.
		c.startFill(k, r, l)
	}
	select {
	case <-l.done:
		return l.data, l.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Release says a reader has read past r. The range moves to the cold end
// of the LRU, so it is the first to go when room is needed: otherwise a
// range read to its end outlives, by recency, the read-ahead of partitions
// still reading, and many sequential readers evict each other's next range
// before they reach it. A later Get still finds it while it stays.
func (c *Cache) Release(r Range) {
	k := key{r.Object, r.Pos, r.Len}
	c.mu.Lock()
	if e, ok := c.entries[k]; ok {
		c.lru.MoveToBack(e.elem)
	}
	c.mu.Unlock()
}

// Prefetch starts loading r in the background if it isn't cached or loading.
func (c *Cache) Prefetch(r Range) {
	k := key{r.Object, r.Pos, r.Len}
	c.mu.Lock()
	if _, ok := c.entries[k]; ok {
		c.mu.Unlock()
		return
	}
	if _, ok := c.loads[k]; ok {
		c.mu.Unlock()
		return
	}
	l := &load{done: make(chan struct{})}
	c.loads[k] = l
	c.mu.Unlock()
	c.prefetches.Add(1)
	c.startFill(k, r, l)
}

func (c *Cache) startFill(k key, r Range, l *load) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		c.fill(k, r, l)
	}()
}

// Close cancels reads in flight and waits for them; Gets after it fail.
func (c *Cache) Close() {
	c.cancel()
	c.wg.Wait()
}

func (c *Cache) fill(k key, r Range, l *load) {
	ctx, cancel := context.WithTimeout(c.ctx, time.Minute)
	defer cancel()
	data, err := c.bucket.GetRange(ctx, r.Object, r.Pos, r.Len)
	if err == nil && int64(len(data)) != r.Len {
		err = fmt.Errorf("rangecache: %s [%d,+%d): got %d bytes: %w", r.Object, r.Pos, r.Len, len(data), ErrCorrupt)
	}
	if err == nil && r.CRC != 0 && crc32.Checksum(data, castagnoli) != r.CRC {
		err = fmt.Errorf("rangecache: %s [%d,+%d): %w", r.Object, r.Pos, r.Len, ErrCorrupt)
	}
	if err != nil && !errors.Is(err, ErrCorrupt) {
		err = fmt.Errorf("rangecache: get %s [%d,+%d): %w", r.Object, r.Pos, r.Len, err)
	}
	c.mu.Lock()
	delete(c.loads, k)
	if err == nil && r.Len <= c.capacity {
		e := &entry{k: k, data: data}
		e.elem = c.lru.PushFront(e)
		c.entries[k] = e
		c.size += r.Len
		for c.size > c.capacity {
			old := c.lru.Back().Value.(*entry)
			c.lru.Remove(old.elem)
			delete(c.entries, old.k)
			c.size -= old.k.len
			c.evictions.Add(1)
		}
	}
	c.mu.Unlock()
	l.data, l.err = data, err
	close(l.done)
}

// Stats returns counters.
func (c *Cache) Stats() Stats {
	c.mu.Lock()
	size := c.size
	c.mu.Unlock()
	return Stats{Hits: c.hits.Load(), Misses: c.misses.Load(), Prefetches: c.prefetches.Load(), Bytes: size, Evictions: c.evictions.Load()}
}
