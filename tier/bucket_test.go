package tier_test

import (
	"context"
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
	"github.com/tlog-io/tlog/tier/tiertest"
)

func newFS(t *testing.T, dir string) *tier.FSBucket {
	t.Helper()
	b, err := tier.NewFSBucket(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func TestMemBucket(t *testing.T) {
	buckettest.Run(t, func(*testing.T) tier.Bucket { return tier.NewMemBucket() })
}

func TestFSBucket(t *testing.T) {
	buckettest.Run(t, func(t *testing.T) tier.Bucket { return newFS(t, t.TempDir()) })
}

func TestPrefixBucket(t *testing.T) {
	buckettest.Run(t, func(*testing.T) tier.Bucket { return tier.WithPrefix(tier.NewMemBucket(), "some/prefix") })
}

func TestFaultyBucket(t *testing.T) {
	buckettest.Run(t, func(*testing.T) tier.Bucket { return tiertest.NewFaulty(tier.NewMemBucket()) })
}

// --- Faulty ---

func TestFaultyLatency(t *testing.T) {
	f := tiertest.NewFaulty(tier.NewMemBucket())
	ctx := t.Context()
	// Upper bounds use an hour of latency against a generous ctx deadline
	// rather than wall-clock thresholds, which flake on loaded machines.
	bounded := func() context.Context {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		t.Cleanup(cancel)
		return c
	}
	if _, err := f.Put(ctx, "k", []byte("x")); err != nil {
		t.Fatal(err)
	}
	f.SetLatency(tiertest.OpGet, 50*time.Millisecond)
	start := time.Now()
	if _, _, err := f.Get(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("Get took %v, want >= 50ms", d)
	}

	f.SetLatency(tiertest.OpGet, time.Hour)
	if _, err := f.Stat(bounded(), "k"); err != nil {
		t.Fatalf("Stat delayed by Get's latency: %v", err)
	}

	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, _, err := f.Get(short, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get under latency with short ctx: %v, want DeadlineExceeded", err)
	}

	f.SetLatency(tiertest.OpPut, time.Hour)
	cancelled, cancelNow := context.WithCancel(ctx)
	cancelNow()
	if _, err := f.Put(cancelled, "k", []byte("y")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put under latency with cancelled ctx: %v, want Canceled", err)
	}
	f.SetLatency(tiertest.OpGet, 0) // cleared: must answer well within the deadline
	if body, _, err := f.Get(bounded(), "k"); err != nil || string(body) != "x" {
		t.Fatalf("Get after clearing latency: %q, %v (a cancelled Put must not land)", body, err)
	}
}

func TestFaultyErrors(t *testing.T) {
	mem := tier.NewMemBucket()
	f := tiertest.NewFaulty(mem)
	ctx := t.Context()
	f.SetError(tiertest.OpPut, tiertest.ErrInjected)
	if _, err := f.Put(ctx, "k", []byte("x")); !errors.Is(err, tiertest.ErrInjected) {
		t.Fatalf("Put: %v, want ErrInjected", err)
	}
	if _, err := mem.Stat(ctx, "k"); !errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("failed Put reached the bucket: %v", err)
	}
	if _, err := f.PutIfAbsent(ctx, "k", []byte("x")); err != nil {
		t.Fatalf("PutIfAbsent affected by Put fault: %v", err)
	}
	f.SetError(tiertest.OpPut, nil)
	if _, err := f.Put(ctx, "k", []byte("y")); err != nil {
		t.Fatalf("Put after clearing: %v", err)
	}

	custom := errors.New("slow down")
	for _, tc := range []struct {
		op   tiertest.Op
		call func() error
	}{
		{tiertest.OpPut, func() error { _, err := f.Put(ctx, "k", nil); return err }},
		{tiertest.OpPutIfAbsent, func() error { _, err := f.PutIfAbsent(ctx, "k2", nil); return err }},
		{tiertest.OpPutIfMatch, func() error { _, err := f.PutIfMatch(ctx, "k", nil, "e"); return err }},
		{tiertest.OpGet, func() error { _, _, err := f.Get(ctx, "k"); return err }},
		{tiertest.OpGetRange, func() error { _, err := f.GetRange(ctx, "k", 0, 1); return err }},
		{tiertest.OpStat, func() error { _, err := f.Stat(ctx, "k"); return err }},
		{tiertest.OpList, func() error { _, err := f.List(ctx, ""); return err }},
		{tiertest.OpDelete, func() error { return f.Delete(ctx, "k") }},
	} {
		f.SetError(tc.op, custom)
		if err := tc.call(); !errors.Is(err, custom) {
			t.Fatalf("%s: %v, want injected error", tc.op, err)
		}
		f.SetError(tc.op, nil)
	}
}

func TestFaultyErrorUnder(t *testing.T) {
	f := tiertest.NewFaulty(tier.NewMemBucket())
	ctx := t.Context()
	f.SetErrorUnder(tiertest.OpPutIfAbsent, "data/", tiertest.ErrInjected)
	if _, err := f.PutIfAbsent(ctx, "data/1", []byte("x")); !errors.Is(err, tiertest.ErrInjected) {
		t.Fatalf("PutIfAbsent under data/: %v, want ErrInjected", err)
	}
	if _, err := f.PutIfAbsent(ctx, "journal/1", []byte("x")); err != nil {
		t.Fatalf("PutIfAbsent outside the prefix: %v", err)
	}
	if _, err := f.Put(ctx, "data/2", []byte("x")); err != nil {
		t.Fatalf("Put under data/ (another op): %v", err)
	}
	f.SetErrorUnder(tiertest.OpPutIfAbsent, "data/", nil)
	if _, err := f.PutIfAbsent(ctx, "data/1", []byte("x")); err != nil {
		t.Fatalf("PutIfAbsent after clearing: %v", err)
	}
}

func TestFaultyFailNext(t *testing.T) {
	f := tiertest.NewFaulty(tier.NewMemBucket())
	ctx := t.Context()
	f.FailNext(tiertest.OpPut, 2, tiertest.ErrInjected)
	for i := range 2 {
		if _, err := f.Put(ctx, "k", []byte("x")); !errors.Is(err, tiertest.ErrInjected) {
			t.Fatalf("Put %d: %v, want ErrInjected", i, err)
		}
	}
	if _, err := f.Put(ctx, "k", []byte("x")); err != nil {
		t.Fatalf("third Put: %v", err)
	}

	// FailNextAfter: the write lands, the caller still sees an error.
	f.FailNextAfter(tiertest.OpPutIfAbsent, 1, tiertest.ErrInjected)
	if _, err := f.PutIfAbsent(ctx, "j", []byte("landed")); !errors.Is(err, tiertest.ErrInjected) {
		t.Fatalf("PutIfAbsent: %v, want ErrInjected", err)
	}
	if body, _, err := f.Get(ctx, "j"); err != nil || string(body) != "landed" {
		t.Fatalf("Get after FailNextAfter: %q, %v", body, err)
	}
	if _, err := f.PutIfAbsent(ctx, "j", nil); !errors.Is(err, tier.ErrPreconditionFailed) {
		t.Fatalf("retried PutIfAbsent: %v, want ErrPreconditionFailed", err)
	}
}

func TestFaultyOutage(t *testing.T) {
	f := tiertest.NewFaulty(tier.NewMemBucket())
	ctx := t.Context()
	if _, err := f.Put(ctx, "k", []byte("x")); err != nil {
		t.Fatal(err)
	}
	f.SetOutage(tiertest.ErrInjected)
	if _, _, err := f.Get(ctx, "k"); !errors.Is(err, tiertest.ErrInjected) {
		t.Fatalf("Get in outage: %v", err)
	}
	if _, err := f.List(ctx, ""); !errors.Is(err, tiertest.ErrInjected) {
		t.Fatalf("List in outage: %v", err)
	}
	if err := f.Delete(ctx, "k"); !errors.Is(err, tiertest.ErrInjected) {
		t.Fatalf("Delete in outage: %v", err)
	}
	f.SetOutage(nil)
	if body, _, err := f.Get(ctx, "k"); err != nil || string(body) != "x" {
		t.Fatalf("Get after outage: %q, %v", body, err)
	}
}

func TestFaultyCounts(t *testing.T) {
	f := tiertest.NewFaulty(tier.NewMemBucket())
	ctx := t.Context()
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() { _, _ = f.Put(ctx, fmt.Sprint("k", i), nil) })
	}
	wg.Wait()
	f.SetError(tiertest.OpGet, tiertest.ErrInjected)
	_, _, _ = f.Get(ctx, "k1") // failed calls count too
	_, _ = f.List(ctx, "")
	_, _ = f.List(ctx, "k")
	c := f.Counts()
	if c[tiertest.OpPut] != 10 || c[tiertest.OpGet] != 1 || c[tiertest.OpList] != 2 || c[tiertest.OpStat] != 0 {
		t.Fatalf("Counts = %v", c)
	}
	c[tiertest.OpPut] = 99 // a copy
	if f.Counts()[tiertest.OpPut] != 10 {
		t.Fatal("Counts returned internal map")
	}
}

// --- Open ---

func TestOpenMem(t *testing.T) {
	ctx := t.Context()
	name := "mem://" + strings.ReplaceAll(t.Name(), "/", "-")
	a, err := tier.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := tier.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Put(ctx, "k", []byte("shared")); err != nil {
		t.Fatal(err)
	}
	if body, _, err := b.Get(ctx, "k"); err != nil || string(body) != "shared" {
		t.Fatalf("second open of %s: %q, %v", name, body, err)
	}
	_ = a.Close() // must not wipe the shared bucket
	if _, _, err := b.Get(ctx, "k"); err != nil {
		t.Fatalf("after closing one handle: %v", err)
	}

	p, err := tier.Open(ctx, name+"/some/prefix")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Put(ctx, "pk", []byte("p")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := b.Get(ctx, "some/prefix/pk"); err != nil {
		t.Fatalf("prefixed write not under prefix: %v", err)
	}
	infos, err := p.List(ctx, "")
	if err != nil || len(infos) != 1 || infos[0].Key != "pk" {
		t.Fatalf("prefixed List = %+v, %v", infos, err)
	}

	other, err := tier.Open(ctx, name+"-other")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.Get(ctx, "k"); !errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("different name shares data: %v", err)
	}
	f1, _ := tier.Open(ctx, "mem://")
	f2, _ := tier.Open(ctx, "mem://")
	if _, err := f1.Put(ctx, "k", nil); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f2.Get(ctx, "k"); !errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("mem:// buckets are shared: %v", err)
	}
}

func TestOpenFile(t *testing.T) {
	ctx := t.Context()
	abs := filepath.Join(t.TempDir(), "created", "here")
	t.Chdir(t.TempDir())
	for _, tc := range []struct{ url, dir string }{
		{"file://" + abs, abs},
		{"file:rel/path", "rel/path"},
		{"file://./rel2", "rel2"},
		{"file://localhost" + abs + "2", abs + "2"},
	} {
		b, err := tier.Open(ctx, tc.url)
		if err != nil {
			t.Fatalf("Open(%q): %v", tc.url, err)
		}
		if _, err := b.Put(ctx, "a/b", []byte("x")); err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		if got, err := os.ReadFile(filepath.Join(tc.dir, "a", "b")); err != nil || string(got) != "x" {
			t.Fatalf("%s: file at %s: %q, %v", tc.url, tc.dir, got, err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestOpenBad(t *testing.T) {
	for _, u := range []string{"gs://bucket/prefix", "gs://b", "http://x/y", "/plain/path", "", "file://otherhost/x", "file://", "mem://x?opt=1", "%zz"} {
		b, err := tier.Open(t.Context(), u)
		if err == nil {
			_ = b.Close()
			t.Fatalf("Open(%q) succeeded", u)
		}
		t.Logf("Open(%q): %v", u, err)
	}
	_, err := tier.Open(t.Context(), "gs://bucket/prefix")
	if msg := err.Error(); !strings.Contains(msg, `"gs"`) || !strings.Contains(msg, "mem://") || !strings.Contains(msg, "file:") || !strings.Contains(msg, "s3://") {
		t.Fatalf("error should name the scheme and the supported ones: %v", err)
	}
}

// --- FSBucket specifics ---

func TestFSInvalidKeys(t *testing.T) {
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

func TestFSLayout(t *testing.T) {
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

func TestFSSymlinkedRoot(t *testing.T) {
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

func TestFSReopen(t *testing.T) {
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
func TestFSETagsNeverRepeat(t *testing.T) {
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

// Two FSBucket values on one directory stand in for two processes: each has
// its own lock file descriptors, so only flock keeps them apart. A delay
// inside the lock makes any missing exclusion show up as two winners.
func TestFSCrossInstanceConditionalWrites(t *testing.T) {
	tier.SetFSLockedDelay(time.Millisecond)
	t.Cleanup(func() { tier.SetFSLockedDelay(0) })
	dir := t.TempDir()
	insts := []*tier.FSBucket{newFS(t, dir), newFS(t, dir)}
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
