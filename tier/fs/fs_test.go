package fs_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/buckettest"
	"github.com/tlog-io/tlog/tier/fs"
)

func newFS(t *testing.T, dir string) *fs.Bucket {
	t.Helper()
	b, err := fs.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// TestBucket runs the acceptance suite every tier.Bucket passes.
func TestBucket(t *testing.T) {
	buckettest.Run(t, func(t *testing.T) tier.Bucket { return newFS(t, t.TempDir()) })
}

func TestInvalidKeys(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "bucket")
	b := newFS(t, dir)
	ctx := t.Context()
	bad := []string{"", "/abs", "a//b", "a/", "..", "../escape", "a/../../escape", "./a", "a/.", `a\b`, "a\x00b", ".tmp", ".tmp/lock.0", strings.Repeat("k", tier.MaxKeyLen+1)}
	for _, key := range bad {
		errs := map[string]error{}
		_, errs["Put"] = b.Put(ctx, key, []byte("x"))
		_, errs["PutIfAbsent"] = b.PutIfAbsent(ctx, key, []byte("x"))
		_, errs["PutIfMatch"] = b.PutIfMatch(ctx, key, []byte("x"), "e")
		_, _, errs["Get"] = b.Get(ctx, key)
		_, errs["GetRange"] = b.GetRange(ctx, key, 0, 1)
		_, errs["Stat"] = b.Stat(ctx, key)
		errs["Delete"] = b.Delete(ctx, key)
		for op, err := range errs {
			if !errors.Is(err, tier.ErrInvalidKey) {
				t.Errorf("%s(%q): %v, want ErrInvalidKey", op, key, err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(parent, "escape")); !os.IsNotExist(err) {
		t.Fatalf("a key escaped the bucket dir: %v", err)
	}
	for _, p := range []string{"../", "../../", ".tmp/", "a//"} {
		if infos, err := b.List(ctx, p); err != nil || len(infos) != 0 {
			t.Fatalf("List(%q) = %+v, %v; want empty", p, infos, err)
		}
	}
	// Dots inside a segment are fine.
	for _, key := range []string{".hidden", "a/..b", "a/b.", "v1.2/x"} {
		if _, err := b.Put(ctx, key, []byte("ok")); err != nil {
			t.Fatalf("Put(%q): %v", key, err)
		}
	}
}

func TestLayout(t *testing.T) {
	dir := t.TempDir()
	b := newFS(t, dir)
	ctx := t.Context()
	if _, err := b.Put(ctx, "a/b/c", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "a", "b", "c")); string(got) != "x" {
		t.Fatalf("file content %q", got)
	}
	// Lock files and temps in .tmp never show up.
	if err := os.WriteFile(filepath.Join(dir, ".tmp", "put-stray"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	infos, err := b.List(ctx, "")
	if err != nil || len(infos) != 1 || infos[0].Key != "a/b/c" {
		t.Fatalf("List = %+v, %v", infos, err)
	}
	// A directory is not an object, and deleting it is a no-op.
	if _, err := b.Stat(ctx, "a/b"); !errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("Stat of dir: %v", err)
	}
	if err := b.Delete(ctx, "a/b"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutIfMatch(ctx, "a/b", []byte("y"), "e"); !errors.Is(err, tier.ErrPreconditionFailed) {
		t.Fatalf("PutIfMatch on dir: %v", err)
	}
	// Delete prunes empty parents but never the root.
	if err := b.Delete(ctx, "a/b/c"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Fatalf("empty parent not pruned: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, ".tmp")); err != nil {
		t.Fatalf("root or .tmp pruned: %v", err)
	}
	// Writes leave no temp files behind.
	if _, err := b.PutIfAbsent(ctx, "x", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutIfAbsent(ctx, "x", nil); !errors.Is(err, tier.ErrPreconditionFailed) {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(filepath.Join(dir, ".tmp"))
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "put-") && e.Name() != "put-stray" {
			t.Fatalf("temp file left behind: %s", e.Name())
		}
	}
}

func TestSymlinkedRoot(t *testing.T) {
	target := t.TempDir()
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(target, link); err != nil {
		t.Skip(err)
	}
	b := newFS(t, link)
	if _, err := b.Put(t.Context(), "a/k", []byte("x")); err != nil {
		t.Fatal(err)
	}
	infos, err := b.List(t.Context(), "")
	if err != nil || len(infos) != 1 || infos[0].Key != "a/k" {
		t.Fatalf("List through symlinked root = %+v, %v", infos, err)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	a := newFS(t, dir)
	etag, err := a.Put(ctx, "k", []byte("persisted"))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Put(ctx, "k", nil); err == nil {
		t.Fatal("Put after Close succeeded")
	}
	b := newFS(t, dir)
	body, info, err := b.Get(ctx, "k")
	if err != nil || string(body) != "persisted" || info.ETag != etag {
		t.Fatalf("after reopen: %q %+v %v (etag %q)", body, info, err, etag)
	}
}

// Filesystems may reuse a freed inode for a same-size rewrite within one
// coarse timestamp tick; the ETag must still never repeat, or PutIfMatch
// would suffer ABA. (ext4 and tmpfs rarely do this, so this is a guard.)
func TestETagsNeverRepeat(t *testing.T) {
	b := newFS(t, t.TempDir())
	ctx := t.Context()
	seen := map[string]bool{}
	for i := range 100 {
		etag, err := b.Put(ctx, "k", []byte{byte(i % 2)})
		if err != nil {
			t.Fatal(err)
		}
		if seen[etag] {
			t.Fatalf("write %d reused ETag %q", i, etag)
		}
		seen[etag] = true
	}
}

// Two Bucket values on one directory stand in for two processes: each has
// its own lock file descriptors, so only flock keeps them apart. A delay
// inside the lock makes any missing exclusion show up as two winners.
func TestCrossInstanceConditionalWrites(t *testing.T) {
	fs.SetLockedDelay(time.Millisecond)
	t.Cleanup(func() { fs.SetLockedDelay(0) })
	dir := t.TempDir()
	insts := []*fs.Bucket{newFS(t, dir), newFS(t, dir)}
	ctx := t.Context()
	for round := range 3 {
		key := fmt.Sprintf("cas/%d", round)
		base, err := insts[0].Put(ctx, key, []byte("base"))
		if err != nil {
			t.Fatal(err)
		}
		absent := fmt.Sprintf("new/%d", round)
		var (
			wg                 sync.WaitGroup
			mu                 sync.Mutex
			matchWins, absWins []string
		)
		start := make(chan struct{})
		for i := range 16 {
			b := insts[i%2]
			body := fmt.Sprintf("w%02d", i)
			wg.Go(func() {
				<-start
				_, err := b.PutIfMatch(ctx, key, []byte(body), base)
				if err != nil && !errors.Is(err, tier.ErrPreconditionFailed) {
					t.Error(err)
				}
				_, err2 := b.PutIfAbsent(ctx, absent, []byte(body))
				if err2 != nil && !errors.Is(err2, tier.ErrPreconditionFailed) {
					t.Error(err2)
				}
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					matchWins = append(matchWins, body)
				}
				if err2 == nil {
					absWins = append(absWins, body)
				}
			})
		}
		close(start)
		wg.Wait()
		if len(matchWins) != 1 || len(absWins) != 1 {
			t.Fatalf("round %d: PutIfMatch winners %v, PutIfAbsent winners %v; want one each", round, matchWins, absWins)
		}
		for k, want := range map[string]string{key: matchWins[0], absent: absWins[0]} {
			for _, b := range insts {
				if got, _, err := b.Get(ctx, k); err != nil || string(got) != want {
					t.Fatalf("round %d: %s = %q, %v; want %q", round, k, got, err, want)
				}
			}
		}
	}
}
