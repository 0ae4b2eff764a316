package rangecache

import (
	"context"
	"fmt"
	"sync"

	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/segment"
)

// Reader reads a partition's batches from the segment ranges that hold
// them, through a Cache. A range of up to WholeMax bytes (a flush's range:
// segments are 8 MiB, plus the batch that crosses the bound) is fetched
// whole with one GET, as sequential consumers want. A larger one (compaction merges ranges up to 64 MiB) is
// fetched a chunk at a time: ChunkBlocks blocks of the object's footer
// index, each block's CRC checked, so a read from one offset moves a few
// blocks, not the range. Read-ahead is one chunk after a first read and
// SequentialAhead chunks once a reader asks for the chunk after the one it
// read last, so a replay keeps several GETs in flight while a lookup stays
// small. The footers are read once (a Stat and a tail GET) and kept.
type Reader struct {
	cache       *Cache
	bucket      tier.Bucket
	wholeMax    int64
	chunkBlocks int

	mu      sync.Mutex
	footers map[string]*footerLoad
	order   []string // footers in load order, for the bound
	// next is, per chunked range, the chunk a sequential reader asks for
	// next (its object position); bounded with the footers.
	next map[chunkKey]int64
}

type chunkKey struct {
	object string
	pos    int64
}

// Defaults for NewReader.
const (
	WholeMax        = 16 << 20
	ChunkBlocks     = 4
	SequentialAhead = 4
	// maxFooters bounds the footers kept: a 64 MiB range's footer is
	// about 20 KiB.
	maxFooters = 1024
)

type footerLoad struct {
	done chan struct{}
	f    *segment.Footer
	err  error
}

// Ref is a partition's range in a segment object, as the manifest names
// it.
type Ref struct {
	Object      string
	Pos, Len    int64
	CRC         uint32
	FirstOffset int64
	LastOffset  int64
}

// Piece is what one Read returns: whole batches (aliasing the cache), of
// which the one holding the offset read is first or later, and the last
// offset they reach.
type Piece struct {
	Data    []byte
	Through int64
	rng     Range
}

// NewReader reads through c (whose bucket it uses for footers).
func NewReader(c *Cache) *Reader {
	return &Reader{cache: c, bucket: c.bucket, wholeMax: WholeMax, chunkBlocks: ChunkBlocks, footers: map[string]*footerLoad{}, next: map[chunkKey]int64{}}
}

// Read returns the block-aligned bytes of ref that hold offset (the whole
// range when it is small or its footer has no index), and starts reading
// the chunk after them.
func (r *Reader) Read(ctx context.Context, ref Ref, offset int64) (Piece, error) {
	if offset < ref.FirstOffset || offset > ref.LastOffset {
		return Piece{}, fmt.Errorf("rangecache: %s: offset %d outside [%d, %d]: %w", ref.Object, offset, ref.FirstOffset, ref.LastOffset, segment.ErrOffsetOutOfRange)
	}
	if ref.Len <= r.wholeMax {
		return r.whole(ctx, ref)
	}
	e, err := r.entry(ctx, ref)
	if err != nil {
		return Piece{}, err
	}
	if len(e.Index) == 0 {
		return r.whole(ctx, ref)
	}
	start, end, through, err := e.Chunk(offset, r.chunkBlocks)
	if err != nil {
		return Piece{}, fmt.Errorf("rangecache: %s: %w", ref.Object, err)
	}
	rng := Range{Object: ref.Object, Pos: start, Len: end - start}
	data, err := r.cache.Get(ctx, rng)
	if err != nil {
		return Piece{}, err
	}
	// The cache cannot check a chunk (it has no one CRC); each block has.
	if err := e.Verify(start, data); err != nil {
		return Piece{}, fmt.Errorf("rangecache: %s [%d,+%d): %w", ref.Object, start, end-start, err)
	}
	// Read ahead: one chunk, or SequentialAhead when this is the chunk
	// the last read of the range pointed to.
	ck := chunkKey{ref.Object, ref.Pos}
	r.mu.Lock()
	ahead := 1
	if r.next[ck] == start {
		ahead = SequentialAhead
	}
	if len(r.next) >= maxFooters*4 {
		clear(r.next)
	}
	r.next[ck] = end
	r.mu.Unlock()
	for off := through + 1; ahead > 0 && off <= ref.LastOffset; ahead-- {
		s2, e2, t2, err := e.Chunk(off, r.chunkBlocks)
		if err != nil {
			break
		}
		r.cache.Prefetch(Range{Object: ref.Object, Pos: s2, Len: e2 - s2})
		off = t2 + 1
	}
	p := Piece{Data: data, Through: through, rng: rng}
	return p, nil
}

// Done says the reader has read past p: its bytes go first when the cache
// needs room.
func (r *Reader) Done(p Piece) { r.cache.Release(p.rng) }

// Prefetch starts reading the start of ref: the whole range when small,
// else its first chunk when the footer is already known.
func (r *Reader) Prefetch(ref Ref) {
	if ref.Len <= r.wholeMax {
		r.cache.Prefetch(Range{Object: ref.Object, Pos: ref.Pos, Len: ref.Len, CRC: ref.CRC})
		return
	}
	r.mu.Lock()
	l := r.footers[ref.Object]
	r.mu.Unlock()
	if l == nil {
		return
	}
	select {
	case <-l.done:
	default:
		return
	}
	if e, ok := entryAt(l.f, ref); ok && len(e.Index) > 0 {
		if start, end, _, err := e.Chunk(e.FirstOffset, r.chunkBlocks); err == nil {
			r.cache.Prefetch(Range{Object: ref.Object, Pos: start, Len: end - start})
		}
	}
}

func (r *Reader) whole(ctx context.Context, ref Ref) (Piece, error) {
	rng := Range{Object: ref.Object, Pos: ref.Pos, Len: ref.Len, CRC: ref.CRC}
	data, err := r.cache.Get(ctx, rng)
	if err != nil {
		return Piece{}, err
	}
	return Piece{Data: data, Through: ref.LastOffset, rng: rng}, nil
}

// entry is ref's entry in its object's footer.
func (r *Reader) entry(ctx context.Context, ref Ref) (segment.Entry, error) {
	f, err := r.footer(ctx, ref.Object)
	if err != nil {
		return segment.Entry{}, err
	}
	e, ok := entryAt(f, ref)
	if !ok {
		return segment.Entry{}, fmt.Errorf("rangecache: %s: no footer entry at [%d,+%d): %w", ref.Object, ref.Pos, ref.Len, ErrCorrupt)
	}
	return e, nil
}

func entryAt(f *segment.Footer, ref Ref) (segment.Entry, bool) {
	for _, e := range f.Entries {
		if e.Pos == ref.Pos && e.Len == ref.Len {
			return e, true
		}
	}
	return segment.Entry{}, false
}

// footer reads an object's footer once, however many readers ask at once;
// a failed read is forgotten so the next one tries again.
func (r *Reader) footer(ctx context.Context, object string) (*segment.Footer, error) {
	r.mu.Lock()
	l, ok := r.footers[object]
	if !ok {
		l = &footerLoad{done: make(chan struct{})}
		r.footers[object] = l
		r.order = append(r.order, object)
		if len(r.order) > maxFooters {
			delete(r.footers, r.order[0])
			r.order = r.order[1:]
		}
	}
	r.mu.Unlock()
	if !ok {
		l.f, l.err = r.loadFooter(ctx, object)
		if l.err != nil {
			r.mu.Lock()
			if r.footers[object] == l {
				delete(r.footers, object)
			}
			r.mu.Unlock()
		}
		close(l.done)
	}
	select {
	case <-l.done:
		return l.f, l.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (r *Reader) loadFooter(ctx context.Context, object string) (*segment.Footer, error) {
	info, err := r.bucket.Stat(ctx, object)
	if err != nil {
		return nil, fmt.Errorf("rangecache: stat %s: %w", object, err)
	}
	f, err := segment.Open(ctx, r.bucket, object, info.Size)
	if err != nil {
		return nil, fmt.Errorf("rangecache: %w", err)
	}
	return f, nil
}
