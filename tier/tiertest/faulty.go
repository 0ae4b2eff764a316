// Package tiertest holds test support for buckets: a wrapper that injects
// latency and errors per operation.
package tiertest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/tlog-io/tlog/tier"
)

// ErrInjected is a ready-made error for tests that inject faults.
var ErrInjected = errors.New("injected fault")

// Op names a tier.Bucket operation for fault injection and call counting.
type Op string

// Operations Faulty can delay, fail and count.
const (
	OpPut         Op = "put"
	OpPutIfAbsent Op = "put-if-absent"
	OpPutIfMatch  Op = "put-if-match"
	OpGet         Op = "get"
	OpGetRange    Op = "get-range"
	OpStat        Op = "stat"
	OpList        Op = "list"
	OpDelete      Op = "delete"
)

// Faulty wraps a tier.Bucket and injects latency and errors per operation, in
// the style of Pebble's errorfs or Thanos' objstore test wrappers. For each
// call, in order: the call is counted; an outage fails it; the op's latency
// is waited out (or ctx ends it); a pending FailNext fails it; a SetError,
// or a SetErrorUnder matching its key, fails it; a pending FailNextAfter
// runs it on the inner bucket and then fails it; otherwise it goes to the
// inner bucket. Close is passed through untouched. Injected errors are
// wrapped, so errors.Is matches them.
type Faulty struct {
	inner tier.Bucket

	mu        sync.Mutex
	latency   map[Op]time.Duration
	errs      map[Op]error
	under     map[Op]map[string]error // key prefix → error
	next      map[Op]failN
	nextAfter map[Op]failN
	outage    error
	counts    map[Op]int64
}

type failN struct {
	n   int
	err error
}

var _ tier.Bucket = (*Faulty)(nil)

// NewFaulty wraps inner with no faults configured.
func NewFaulty(inner tier.Bucket) *Faulty {
	return &Faulty{
		inner:     inner,
		latency:   make(map[Op]time.Duration),
		errs:      make(map[Op]error),
		under:     make(map[Op]map[string]error),
		next:      make(map[Op]failN),
		nextAfter: make(map[Op]failN),
		counts:    make(map[Op]int64),
	}
}

// SetLatency delays every later call of op by d (0 clears).
func (f *Faulty) SetLatency(op Op, d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if d <= 0 {
		delete(f.latency, op)
		return
	}
	f.latency[op] = d
}

// SetError makes every later call of op fail with err (nil clears).
func (f *Faulty) SetError(op Op, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.errs, op)
		return
	}
	f.errs[op] = err
}

// SetErrorUnder makes every later call of op on a key under prefix fail
// with err (nil clears that prefix): uploads of one kind of object fail
// while others go through.
func (f *Faulty) SetErrorUnder(op Op, prefix string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.under[op], prefix)
		return
	}
	if f.under[op] == nil {
		f.under[op] = make(map[string]error)
	}
	f.under[op][prefix] = err
}

// FailNext makes the next n calls of op fail with err without reaching the
// inner bucket (n <= 0 or a nil err clears).
func (f *Faulty) FailNext(op Op, n int, err error) {
	f.setN(f.next, op, n, err)
}

// FailNextAfter makes the next n calls of op reach the inner bucket and then
// report err anyway: the "write applied, response lost" case (e.g. a timeout
// after S3 committed) that conditional-write callers must survive.
func (f *Faulty) FailNextAfter(op Op, n int, err error) {
	f.setN(f.nextAfter, op, n, err)
}

func (f *Faulty) setN(m map[Op]failN, op Op, n int, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if n <= 0 || err == nil {
		delete(m, op)
		return
	}
	m[op] = failN{n: n, err: err}
}

// SetOutage makes every operation fail with err until called with nil.
func (f *Faulty) SetOutage(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.outage = err
}

// Counts returns how many times each op has been called, faults included.
func (f *Faulty) Counts() map[Op]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.counts)
}

// takeN consumes one pending failure from m, if any. Caller holds f.mu.
func takeN(m map[Op]failN, op Op) error {
	fn, ok := m[op]
	if !ok {
		return nil
	}
	if fn.n <= 1 {
		delete(m, op)
	} else {
		m[op] = failN{n: fn.n - 1, err: fn.err}
	}
	return fn.err
}

// before applies the faults due before the inner call. after is the error
// to report once the inner call has run (FailNextAfter), or nil.
func (f *Faulty) before(ctx context.Context, op Op, key string) (after error, err error) {
	f.mu.Lock()
	f.counts[op]++
	outage, delay := f.outage, f.latency[op]
	f.mu.Unlock()
	if outage != nil {
		return nil, fmt.Errorf("faulty: %s %q: outage: %w", op, key, outage)
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("faulty: %s %q: %w", op, key, ctx.Err())
		case <-t.C:
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := takeN(f.next, op); err != nil {
		return nil, fmt.Errorf("faulty: %s %q: %w", op, key, err)
	}
	if err := f.errs[op]; err != nil {
		return nil, fmt.Errorf("faulty: %s %q: %w", op, key, err)
	}
	for prefix, err := range f.under[op] {
		if strings.HasPrefix(key, prefix) {
			return nil, fmt.Errorf("faulty: %s %q: %w", op, key, err)
		}
	}
	if err := takeN(f.nextAfter, op); err != nil {
		return fmt.Errorf("faulty: %s %q: after inner call: %w", op, key, err), nil
	}
	return nil, nil
}

// Put implements tier.Bucket.
func (f *Faulty) Put(ctx context.Context, key string, body []byte) (string, error) {
	after, err := f.before(ctx, OpPut, key)
	if err != nil {
		return "", err
	}
	etag, err := f.inner.Put(ctx, key, body)
	if after != nil {
		return "", after
	}
	return etag, err
}

// PutIfAbsent implements tier.Bucket.
func (f *Faulty) PutIfAbsent(ctx context.Context, key string, body []byte) (string, error) {
	after, err := f.before(ctx, OpPutIfAbsent, key)
	if err != nil {
		return "", err
	}
	etag, err := f.inner.PutIfAbsent(ctx, key, body)
	if after != nil {
		return "", after
	}
	return etag, err
}

// PutIfMatch implements tier.Bucket.
func (f *Faulty) PutIfMatch(ctx context.Context, key string, body []byte, etag string) (string, error) {
	after, err := f.before(ctx, OpPutIfMatch, key)
	if err != nil {
		return "", err
	}
	newETag, err := f.inner.PutIfMatch(ctx, key, body, etag)
	if after != nil {
		return "", after
	}
	return newETag, err
}

// Get implements tier.Bucket.
func (f *Faulty) Get(ctx context.Context, key string) ([]byte, tier.ObjectInfo, error) {
	after, err := f.before(ctx, OpGet, key)
	if err != nil {
		return nil, tier.ObjectInfo{}, err
	}
	body, info, err := f.inner.Get(ctx, key)
	if after != nil {
		return nil, tier.ObjectInfo{}, after
	}
	return body, info, err
}

// GetRange implements tier.Bucket.
func (f *Faulty) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	after, err := f.before(ctx, OpGetRange, key)
	if err != nil {
		return nil, err
	}
	body, err := f.inner.GetRange(ctx, key, offset, length)
	if after != nil {
		return nil, after
	}
	return body, err
}

// Stat implements tier.Bucket.
func (f *Faulty) Stat(ctx context.Context, key string) (tier.ObjectInfo, error) {
	after, err := f.before(ctx, OpStat, key)
	if err != nil {
		return tier.ObjectInfo{}, err
	}
	info, err := f.inner.Stat(ctx, key)
	if after != nil {
		return tier.ObjectInfo{}, after
	}
	return info, err
}

// List implements tier.Bucket.
func (f *Faulty) List(ctx context.Context, prefix string) ([]tier.ObjectInfo, error) {
	after, err := f.before(ctx, OpList, prefix)
	if err != nil {
		return nil, err
	}
	infos, err := f.inner.List(ctx, prefix)
	if after != nil {
		return nil, after
	}
	return infos, err
}

// Delete implements tier.Bucket.
func (f *Faulty) Delete(ctx context.Context, key string) error {
	after, err := f.before(ctx, OpDelete, key)
	if err != nil {
		return err
	}
	err = f.inner.Delete(ctx, key)
	if after != nil {
		return after
	}
	return err
}

// Close implements tier.Bucket; it is never faulted.
func (f *Faulty) Close() error { return f.inner.Close() }
