// Package waltest holds test support for the WAL: a wal.Store wrapper that
// injects errors per operation, to drive the WAL's failure paths (a group
// write that fails, an fsync that fails, a disk that goes away) through the
// real group committer. Production packages must not import it.
package waltest

import (
	"bytes"
	"errors"
	"fmt"
	"iter"
	"maps"
	"sync"

	"github.com/tlog-io/tlog/agent/wal"
)

// ErrInjected is a ready-made error for tests that inject faults.
var ErrInjected = errors.New("injected WAL store fault")

// Op names a wal.Store operation for fault injection and call counting.
type Op string

// Operations Faulty can fail, hold and count. Size and Close are counted
// but always reach the inner store.
const (
	OpApply   Op = "apply" // one group commit, or one producer snapshot
	OpSync    Op = "sync"
	OpDelete  Op = "delete"
	OpIterate Op = "iterate"
	OpSize    Op = "size"
	OpClose   Op = "close"
)

// Faulty wraps a wal.Store and injects errors per operation, in the style of
// Pebble's vfs/errorfs injectors and of tier/tiertest.Faulty. For each call,
// in order: the call is counted; a pending Hold parks it until released; if
// the store was stopped (SetFailStop) it fails; a FailNth due at this call
// fails it; a SetError for the op fails it; a SetErrorUnder whose prefix
// one of its keys has fails it (Apply and Delete); otherwise it goes to the
// inner store. A failed call never reaches the inner store, so a failed
// Apply writes nothing. Injected errors are wrapped, so errors.Is matches
// the error given (usually ErrInjected).
type Faulty struct {
	inner wal.Store

	mu       sync.Mutex
	counts   map[Op]int64
	nth      map[Op][]nthFault
	errs     map[Op]error
	under    map[Op][]prefixFault
	holds    map[Op][]hold
	failStop bool
	stopped  error
}

type nthFault struct {
	at  int64 // the value of counts[op] at the failing call
	err error
}

type prefixFault struct {
	prefix []byte
	err    error
}

type hold struct {
	entered chan struct{}
	release chan struct{}
}

var _ wal.Store = (*Faulty)(nil)

// NewFaulty wraps inner with no faults configured.
func NewFaulty(inner wal.Store) *Faulty {
	return &Faulty{
		inner:  inner,
		counts: make(map[Op]int64),
		nth:    make(map[Op][]nthFault),
		errs:   make(map[Op]error),
		under:  make(map[Op][]prefixFault),
		holds:  make(map[Op][]hold),
	}
}

// Inner returns the wrapped store, to look at what really reached it.
func (f *Faulty) Inner() wal.Store { return f.inner }

// FailNth makes the nth call of op from now fail with err (n = 1: the next
// call); only that one. Several may be pending.
func (f *Faulty) FailNth(op Op, n int, err error) {
	if n < 1 || err == nil {
		panic("waltest: FailNth needs n >= 1 and an error")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nth[op] = append(f.nth[op], nthFault{at: f.counts[op] + int64(n), err: err})
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

// SetErrorUnder makes every later Apply or Delete (op) with a key under
// prefix fail with err, the whole call; nil clears that prefix. With
// wal.PartKey.BatchPrefix it fails one partition's writes: any group
// holding one of its batches fails, with everything else in it.
func (f *Faulty) SetErrorUnder(op Op, prefix []byte, err error) {
	if op != OpApply && op != OpDelete {
		panic("waltest: SetErrorUnder is for OpApply and OpDelete")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	faults := f.under[op][:0:0]
	for _, pf := range f.under[op] {
		if !bytes.Equal(pf.prefix, prefix) {
			faults = append(faults, pf)
		}
	}
	if err != nil {
		faults = append(faults, prefixFault{bytes.Clone(prefix), err})
	}
	f.under[op] = faults
}

// SetFailStop turns fail-stop mode on or off. In fail-stop mode the first
// injected fault stops the store, as a disk that went away or read-only:
// every later call of every op (reads too) fails, wrapping that first
// error, until SetFailStop(false). Size and Close still pass through.
func (f *Faulty) SetFailStop(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failStop = on
	if !on {
		f.stopped = nil
	}
}

// Stopped returns the fault that stopped the store in fail-stop mode, or
// nil.
func (f *Faulty) Stopped() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stopped
}

// Hold parks the next call of op (after counting it, before any fault is
// decided): entered is closed once the call is parked, and it goes on when
// release is called. Holds queue up: calling Hold twice parks the next two
// calls, each until its own release. Tests use it to line appends up into
// one group while the WAL's writer waits in a commit.
func (f *Faulty) Hold(op Op) (entered <-chan struct{}, release func()) {
	h := hold{entered: make(chan struct{}), release: make(chan struct{})}
	f.mu.Lock()
	f.holds[op] = append(f.holds[op], h)
	f.mu.Unlock()
	return h.entered, sync.OnceFunc(func() { close(h.release) })
}

// Counts returns how many times each op has been called, failed calls
// included.
func (f *Faulty) Counts() map[Op]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.counts)
}

// Count returns how many times op has been called, failed calls included.
func (f *Faulty) Count(op Op) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[op]
}

// before counts a call of op with keys and returns the fault to answer it
// with, or nil to pass it on.
func (f *Faulty) before(op Op, keys iter.Seq[[]byte]) error {
	f.mu.Lock()
	f.counts[op]++
	n := f.counts[op]
	var h *hold
	if hs := f.holds[op]; len(hs) > 0 {
		first := hs[0]
		h = &first
		f.holds[op] = hs[1:]
	}
	f.mu.Unlock()
	if h != nil {
		close(h.entered)
		<-h.release
	}

	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped != nil {
		return fmt.Errorf("waltest: %s: store stopped: %w", op, f.stopped)
	}
	err := f.takeNth(op, n)
	if err == nil {
		err = f.errs[op]
	}
	if err == nil && keys != nil {
		for _, pf := range f.under[op] {
			for k := range keys {
				if bytes.HasPrefix(k, pf.prefix) {
					err = pf.err
					break
				}
			}
			if err != nil {
				break
			}
		}
	}
	if err == nil {
		return nil
	}
	err = fmt.Errorf("waltest: %s: %w", op, err)
	if f.failStop {
		f.stopped = err
	}
	return err
}

// takeNth consumes a FailNth due at call n of op. Caller holds f.mu.
func (f *Faulty) takeNth(op Op, n int64) error {
	for i, nf := range f.nth[op] {
		if nf.at == n {
			f.nth[op] = append(f.nth[op][:i:i], f.nth[op][i+1:]...)
			return nf.err
		}
	}
	return nil
}

// Apply applies sets unless a fault says otherwise.
func (f *Faulty) Apply(sets []wal.KV) error {
	err := f.before(OpApply, func(yield func([]byte) bool) {
		for _, kv := range sets {
			if !yield(kv.Key) {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return f.inner.Apply(sets)
}

// Sync syncs unless a fault says otherwise.
func (f *Faulty) Sync() error {
	if err := f.before(OpSync, nil); err != nil {
		return err
	}
	return f.inner.Sync()
}

// Delete deletes keys unless a fault says otherwise.
func (f *Faulty) Delete(keys [][]byte) error {
	err := f.before(OpDelete, func(yield func([]byte) bool) {
		for _, k := range keys {
			if !yield(k) {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return f.inner.Delete(keys)
}

// Iterate iterates unless a fault says otherwise.
func (f *Faulty) Iterate(prefix, from []byte, prefetch bool, fn func(wal.Item) (bool, error)) error {
	if err := f.before(OpIterate, nil); err != nil {
		return err
	}
	return f.inner.Iterate(prefix, from, prefetch, fn)
}

// Size is counted and passed through.
func (f *Faulty) Size() (lsm, vlog int64) {
	f.mu.Lock()
	f.counts[OpSize]++
	f.mu.Unlock()
	return f.inner.Size()
}

// Close is counted and passed through, so the inner store is released
// whatever was injected.
func (f *Faulty) Close() error {
	f.mu.Lock()
	f.counts[OpClose]++
	f.mu.Unlock()
	return f.inner.Close()
}
