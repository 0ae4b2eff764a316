// Package fs is a tier.Bucket on a local (or shared) filesystem directory.
package fs

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/tlog-io/tlog/tier"
)

// fsTmpDir holds temp files and lock files. It lives inside the bucket so
// renames and links stay on one filesystem; keys under it are reserved.
const fsTmpDir = ".tmp"

// fsLockStripes: conditional writes on different keys rarely contend.
const fsLockStripes = 16

// fsStaleTemp: temp files older than this were left by a crashed writer.
const fsStaleTemp = time.Hour

// Bucket stores each object as a file under a directory (key "a/b/c" is
// dir/a/b/c). Every write goes to a temp file in dir/.tmp, is fsynced, and
// is then renamed (Put, PutIfMatch) or hard-linked (PutIfAbsent) into place,
// followed by an fsync of the parent directory, so readers only ever see
// whole objects. Mutations of a key are serialised by an in-process mutex
// plus flock(2) on a lock file, so several processes (or several Bucket
// values) may share one directory.
//
// A key cannot be both an object and a "directory" of other keys (S3 allows
// "a" and "a/b" together; a filesystem does not), and on case-insensitive
// filesystems keys differing only in case collide.
type Bucket struct {
	dir    string
	tmp    string
	closed atomic.Bool
	locks  [fsLockStripes]fsLock
}

type fsLock struct {
	mu sync.Mutex
	f  *os.File // opened on first use; flock needs one open file per holder
}

var _ tier.Bucket = (*Bucket)(nil)

// New opens (creating if needed) a filesystem bucket rooted at dir.
func New(dir string) (*Bucket, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("fs bucket: open %q: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, fsTmpDir), 0o755); err != nil {
		return nil, fmt.Errorf("fs bucket: open %q: %w", dir, err)
	}
	// WalkDir does not descend into a root that is a symlink (e.g. macOS
	// /tmp), which would make List see nothing.
	if abs, err = filepath.EvalSymlinks(abs); err != nil {
		return nil, fmt.Errorf("fs bucket: open %q: %w", dir, err)
	}
	b := &Bucket{dir: abs, tmp: filepath.Join(abs, fsTmpDir)}
	b.removeStaleTemps()
	return b, nil
}

// Dir returns the bucket's absolute root directory.
func (b *Bucket) Dir() string { return b.dir }

func (b *Bucket) removeStaleTemps() {
	ents, err := os.ReadDir(b.tmp)
	if err != nil {
		return // best effort: stale temps only waste space
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), "put-") {
			continue
		}
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > fsStaleTemp {
			_ = os.Remove(filepath.Join(b.tmp, e.Name()))
		}
	}
}

func (b *Bucket) check(ctx context.Context, op, key string) error {
	if b.closed.Load() {
		return fmt.Errorf("fs bucket: %s %q: bucket closed", op, key)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("fs bucket: %s %q: %w", op, key, err)
	}
	if err := tier.ValidateKey(key); err != nil {
		return fmt.Errorf("fs bucket: %s: %w", op, err)
	}
	if key == fsTmpDir || strings.HasPrefix(key, fsTmpDir+"/") {
		return fmt.Errorf("fs bucket: %s: %w %q: %q is reserved", op, tier.ErrInvalidKey, key, fsTmpDir)
	}
	return nil
}

func (b *Bucket) path(key string) string {
	return filepath.Join(b.dir, filepath.FromSlash(key))
}

// lock takes the key's stripe lock in this process and across processes.
func (b *Bucket) lock(key string) (unlock func(), err error) {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	l := &b.locks[h.Sum32()%fsLockStripes]
	l.mu.Lock()
	if b.closed.Load() {
		l.mu.Unlock()
		return nil, errors.New("bucket closed")
	}
	if l.f == nil {
		name := filepath.Join(b.tmp, "lock."+strconv.Itoa(int(h.Sum32()%fsLockStripes)))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			l.mu.Unlock()
			return nil, fmt.Errorf("open lock file: %w", err)
		}
		l.f = f
	}
	fd := int(l.f.Fd())
	if err := retryEINTR(func() error { return syscall.Flock(fd, syscall.LOCK_EX) }); err != nil {
		l.mu.Unlock()
		return nil, fmt.Errorf("flock %s: %w", l.f.Name(), err)
	}
	return func() {
		_ = retryEINTR(func() error { return syscall.Flock(fd, syscall.LOCK_UN) })
		l.mu.Unlock()
	}, nil
}

func retryEINTR(f func() error) error {
	for {
		if err := f(); !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}

// testHookLocked, if set, runs while a write holds its key's lock, between
// the precondition check and the rename, so tests can widen the window in
// which writers would interleave if the lock did not hold across instances.
var testHookLocked func()

// lastMtime makes the mtimes this process stamps strictly increasing, so an
// ETag (inode, size, mtime) cannot recur when the kernel reuses an inode
// for a same-size rewrite within one coarse timestamp tick.
var lastMtime atomic.Int64

func uniqueMtime() time.Time {
	for {
		last := lastMtime.Load()
		now := time.Now().UnixNano()
		if now <= last {
			now = last + 1
		}
		if lastMtime.CompareAndSwap(last, now) {
			return time.Unix(0, now)
		}
	}
}

// fsETag is cheap (no hashing) yet changes on every write: each write is a
// new inode with a unique nanosecond mtime.
func fsETag(fi iofs.FileInfo) string {
	var ino uint64
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		ino = uint64(st.Ino)
	}
	return strconv.FormatUint(ino, 16) + "-" +
		strconv.FormatInt(fi.Size(), 16) + "-" +
		strconv.FormatInt(fi.ModTime().UnixNano(), 16)
}

func fsInfo(key string, fi iofs.FileInfo) tier.ObjectInfo {
	return tier.ObjectInfo{Key: key, Size: fi.Size(), ETag: fsETag(fi), Modified: fi.ModTime()}
}

// writeTemp writes body to a durable temp file and returns its path and the
// ETag the object will have once it is renamed or linked into place.
func (b *Bucket) writeTemp(body []byte) (name, etag string, err error) {
	f, err := os.CreateTemp(b.tmp, "put-*")
	if err != nil {
		return "", "", err
	}
	name = f.Name()
	fail := func(err error) (string, string, error) {
		_ = f.Close()
		_ = os.Remove(name)
		return "", "", err
	}
	if _, err := f.Write(body); err != nil {
		return fail(err)
	}
	mt := uniqueMtime()
	if err := os.Chtimes(name, mt, mt); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(name)
		return "", "", err
	}
	return name, fsETag(fi), nil
}

type fsWriteMode int

const (
	fsPut fsWriteMode = iota
	fsPutIfAbsent
	fsPutIfMatch
)

func (b *Bucket) write(ctx context.Context, op, key string, body []byte, mode fsWriteMode, ifMatch string) (string, error) {
	if err := b.check(ctx, op, key); err != nil {
		return "", err
	}
	wrap := func(err error) error { return fmt.Errorf("fs bucket: %s %q: %w", op, key, err) }
	tmp, etag, err := b.writeTemp(body)
	if err != nil {
		return "", wrap(err)
	}
	consumed := false // after a rename the temp name may belong to someone else
	defer func() {
		if !consumed {
			_ = os.Remove(tmp)
		}
	}()

	unlock, err := b.lock(key)
	if err != nil {
		return "", wrap(err)
	}
	defer unlock()

	path := b.path(key)
	if mode == fsPutIfMatch {
		fi, err := os.Stat(path)
		switch {
		case isNotExist(err) || (err == nil && !fi.Mode().IsRegular()):
			return "", wrap(fmt.Errorf("key missing: %w", tier.ErrPreconditionFailed))
		case err != nil:
			return "", wrap(err)
		case fsETag(fi) != ifMatch:
			return "", wrap(fmt.Errorf("etag %q is not current: %w", ifMatch, tier.ErrPreconditionFailed))
		}
	}

	if testHookLocked != nil {
		testHookLocked()
	}

	parent := filepath.Dir(path)
	created := false
	// A concurrent Delete of a sibling may prune the parent between our
	// mkdir and the rename; recreate it and try again.
	for attempt := 0; ; attempt++ {
		if _, err := os.Stat(parent); isNotExist(err) {
			if err := os.MkdirAll(parent, 0o755); err != nil {
				return "", wrap(err)
			}
			created = true
		}
		if mode == fsPutIfAbsent {
			err = os.Link(tmp, path)
		} else {
			err = os.Rename(tmp, path)
			consumed = err == nil
		}
		if err == nil || !errors.Is(err, iofs.ErrNotExist) || attempt >= 8 {
			break
		}
	}
	if mode == fsPutIfAbsent && errors.Is(err, iofs.ErrExist) {
		return "", wrap(fmt.Errorf("key exists: %w", tier.ErrPreconditionFailed))
	}
	if err != nil {
		return "", wrap(err)
	}
	// New directories must be durable in their parents too.
	for d := parent; ; d = filepath.Dir(d) {
		if err := syncDir(d); err != nil {
			return "", wrap(err)
		}
		if !created || d == b.dir || len(d) <= len(b.dir) {
			break
		}
	}
	return etag, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if isNotExist(err) {
		return nil // pruned by a concurrent delete: nothing left to persist
	}
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	return nil
}

// isNotExist also treats ENOTDIR (a path component is a file) as absent.
func isNotExist(err error) bool {
	return errors.Is(err, iofs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Put implements tier.Bucket.
func (b *Bucket) Put(ctx context.Context, key string, body []byte) (string, error) {
	return b.write(ctx, "put", key, body, fsPut, "")
}

// PutIfAbsent implements tier.Bucket. The hard link fails with EEXIST if
// the key exists, which makes it atomic even against writers that skip the
// lock.
func (b *Bucket) PutIfAbsent(ctx context.Context, key string, body []byte) (string, error) {
	return b.write(ctx, "put-if-absent", key, body, fsPutIfAbsent, "")
}

// PutIfMatch implements tier.Bucket.
func (b *Bucket) PutIfMatch(ctx context.Context, key string, body []byte, etag string) (string, error) {
	return b.write(ctx, "put-if-match", key, body, fsPutIfMatch, etag)
}

// open opens key's file for reading; directories count as missing.
func (b *Bucket) open(ctx context.Context, op, key string) (*os.File, iofs.FileInfo, error) {
	if err := b.check(ctx, op, key); err != nil {
		return nil, nil, err
	}
	f, err := os.Open(b.path(key))
	if isNotExist(err) {
		return nil, nil, fmt.Errorf("fs bucket: %s %q: %w", op, key, tier.ErrNotFound)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("fs bucket: %s %q: %w", op, key, err)
	}
	fi, err := f.Stat()
	if err != nil {
		_ = f.Close()
		return nil, nil, fmt.Errorf("fs bucket: %s %q: %w", op, key, err)
	}
	if !fi.Mode().IsRegular() {
		_ = f.Close()
		return nil, nil, fmt.Errorf("fs bucket: %s %q: %w", op, key, tier.ErrNotFound)
	}
	return f, fi, nil
}

// Get implements tier.Bucket. Files are only ever replaced by rename, so
// the open file's content always matches the ETag from its own fstat.
func (b *Bucket) Get(ctx context.Context, key string) ([]byte, tier.ObjectInfo, error) {
	f, fi, err := b.open(ctx, "get", key)
	if err != nil {
		return nil, tier.ObjectInfo{}, err
	}
	defer f.Close()
	buf := make([]byte, fi.Size())
	if _, err := io.ReadFull(f, buf); err != nil {
		return nil, tier.ObjectInfo{}, fmt.Errorf("fs bucket: get %q: %w", key, err)
	}
	return buf, fsInfo(key, fi), nil
}

// GetRange implements tier.Bucket.
func (b *Bucket) GetRange(ctx context.Context, key string, offset, length int64) ([]byte, error) {
	f, fi, err := b.open(ctx, "get-range", key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	start, end, err := tier.RangeBounds(offset, length, fi.Size())
	if err != nil {
		return nil, fmt.Errorf("fs bucket: get-range %q: %w", key, err)
	}
	buf := make([]byte, end-start)
	if _, err := f.ReadAt(buf, start); err != nil && !(errors.Is(err, io.EOF) && len(buf) == 0) {
		return nil, fmt.Errorf("fs bucket: get-range %q: %w", key, err)
	}
	return buf, nil
}

// Stat implements tier.Bucket.
func (b *Bucket) Stat(ctx context.Context, key string) (tier.ObjectInfo, error) {
	if err := b.check(ctx, "stat", key); err != nil {
		return tier.ObjectInfo{}, err
	}
	fi, err := os.Stat(b.path(key))
	if isNotExist(err) || (err == nil && !fi.Mode().IsRegular()) {
		return tier.ObjectInfo{}, fmt.Errorf("fs bucket: stat %q: %w", key, tier.ErrNotFound)
	}
	if err != nil {
		return tier.ObjectInfo{}, fmt.Errorf("fs bucket: stat %q: %w", key, err)
	}
	return fsInfo(key, fi), nil
}

// List implements tier.Bucket. It walks only the directory the prefix
// names, and sorts at the end because a directory walk does not yield keys
// in byte order ("a.x" sorts before "a/b").
func (b *Bucket) List(ctx context.Context, prefix string) ([]tier.ObjectInfo, error) {
	if b.closed.Load() {
		return nil, fmt.Errorf("fs bucket: list %q: bucket closed", prefix)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fs bucket: list %q: %w", prefix, err)
	}
	out := make([]tier.ObjectInfo, 0)
	root := b.dir
	if i := strings.LastIndexByte(prefix, '/'); i >= 0 {
		// Invalid directory part (e.g. "../"): no valid key can match, and
		// walking it could escape the bucket.
		if tier.ValidateKey(prefix[:i]) != nil {
			return out, nil
		}
		root = b.path(prefix[:i])
	}
	err := filepath.WalkDir(root, func(p string, d iofs.DirEntry, err error) error {
		if err != nil {
			if isNotExist(err) {
				return nil // prefix dir absent, or removed while walking
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		rel, err := filepath.Rel(b.dir, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if d.IsDir() {
			if key == fsTmpDir {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() || !strings.HasPrefix(key, prefix) {
			return nil
		}
		fi, err := d.Info()
		if isNotExist(err) {
			return nil // deleted since the directory was read
		}
		if err != nil {
			return err
		}
		out = append(out, fsInfo(key, fi))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fs bucket: list %q: %w", prefix, err)
	}
	slices.SortFunc(out, func(a, b tier.ObjectInfo) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Delete implements tier.Bucket. It then removes parent directories left
// empty, stopping at the first non-empty one and never removing the root.
func (b *Bucket) Delete(ctx context.Context, key string) error {
	if err := b.check(ctx, "delete", key); err != nil {
		return err
	}
	wrap := func(err error) error { return fmt.Errorf("fs bucket: delete %q: %w", key, err) }
	unlock, err := b.lock(key)
	if err != nil {
		return wrap(err)
	}
	defer unlock()
	path := b.path(key)
	fi, err := os.Lstat(path)
	if isNotExist(err) || (err == nil && fi.IsDir()) {
		return nil // a directory is not an object: nothing to delete
	}
	if err != nil {
		return wrap(err)
	}
	if err := os.Remove(path); err != nil && !isNotExist(err) {
		return wrap(err)
	}
	dir := filepath.Dir(path)
	for dir != b.dir && len(dir) > len(b.dir) {
		// rmdir, not os.Remove: never unlink a file that appeared here.
		if syscall.Rmdir(dir) != nil {
			break
		}
		dir = filepath.Dir(dir)
	}
	if err := syncDir(dir); err != nil {
		return wrap(err)
	}
	return nil
}

// Close implements tier.Bucket: it releases the lock files. Later calls fail.
func (b *Bucket) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	var errs []error
	for i := range b.locks {
		l := &b.locks[i]
		l.mu.Lock()
		if l.f != nil {
			errs = append(errs, l.f.Close())
			l.f = nil
		}
		l.mu.Unlock()
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("fs bucket: close %s: %w", b.dir, err)
	}
	return nil
}
