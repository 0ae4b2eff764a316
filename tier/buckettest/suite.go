// Package buckettest is the acceptance suite every tier.Bucket
// implementation must pass, so that the in-memory, filesystem and S3
// backends behave the same way for the code above them.
package buckettest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tlog-io/tlog/tier"
)

// Run runs the suite. newBucket must return an empty bucket each call and
// arrange its own cleanup (t.Cleanup); it is called once per subtest, from
// parallel subtests, so it must be safe for concurrent use. Backends that
// share one real bucket can return tier.WithPrefix(b, uniquePrefix).
// Backends must reject keys that tier.ValidateKey rejects, with an error
// matching tier.ErrInvalidKey.
func Run(t *testing.T, newBucket func(t *testing.T) tier.Bucket) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b tier.Bucket)
	}{
		{"PutGetRoundTrip", testRoundTrip},
		{"OverwriteChangesETag", testOverwrite},
		{"Missing", testMissing},
		{"GetRange", testGetRange},
		{"StatMatchesPut", testStat},
		{"PutIfAbsent", testPutIfAbsent},
		{"PutIfMatch", testPutIfMatch},
		{"RacePutIfAbsent", testRacePutIfAbsent},
		{"RacePutIfMatch", testRacePutIfMatch},
		{"List", testList},
		{"Delete", testDelete},
		{"DeepKeys", testDeepKeys},
		{"NoAliasing", testNoAliasing},
		{"InvalidKeys", testInvalidKeys},
		{"CancelledContext", testCancelled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newBucket(t))
		})
	}
}

const timeout = 30 * time.Second // generous for a real object store

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	return c
}

func mustPut(t *testing.T, b tier.Bucket, key string, body []byte) string {
	t.Helper()
	etag, err := b.Put(ctx(t), key, body)
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	if etag == "" {
		t.Fatalf("Put(%q) returned an empty ETag", key)
	}
	return etag
}

func mustGet(t *testing.T, b tier.Bucket, key string) ([]byte, tier.ObjectInfo) {
	t.Helper()
	body, info, err := b.Get(ctx(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return body, info
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

func testRoundTrip(t *testing.T, b tier.Bucket) {
	big := make([]byte, 5<<20)
	for i := range big {
		big[i] = byte(i*7 + i>>13)
	}
	for _, tc := range []struct {
		key  string
		body []byte
	}{
		{"rt/small", []byte("hello, tlog")},
		{"rt/empty", []byte{}},
		{"rt/nil", nil},
		{"rt/binary", []byte{0, 1, 2, 0xff, 0, '\n'}},
		{"rt/big", big},
	} {
		etag := mustPut(t, b, tc.key, tc.body)
		got, info := mustGet(t, b, tc.key)
		if !bytes.Equal(got, tc.body) {
			t.Fatalf("Get(%q): body differs (%d bytes, want %d)", tc.key, len(got), len(tc.body))
		}
		if info.Key != tc.key || info.Size != int64(len(tc.body)) || info.ETag != etag {
			t.Fatalf("Get(%q) info = %+v, want key %q size %d etag %q", tc.key, info, tc.key, len(tc.body), etag)
		}
	}
}

func testOverwrite(t *testing.T, b tier.Bucket) {
	e1 := mustPut(t, b, "ow/k", []byte("one"))
	e2 := mustPut(t, b, "ow/k", []byte("two!"))
	if e1 == e2 {
		t.Fatalf("overwrite kept ETag %q", e1)
	}
	got, info := mustGet(t, b, "ow/k")
	if string(got) != "two!" || info.ETag != e2 || info.Size != 4 {
		t.Fatalf("after overwrite: %q %+v, want %q etag %q", got, info, "two!", e2)
	}
}

func testMissing(t *testing.T, b tier.Bucket) {
	c := ctx(t)
	mustPut(t, b, "miss/other", []byte("x"))
	_, _, err := b.Get(c, "miss/k")
	wantErr(t, "Get missing", err, tier.ErrNotFound)
	_, err = b.Stat(c, "miss/k")
	wantErr(t, "Stat missing", err, tier.ErrNotFound)
	_, err = b.GetRange(c, "miss/k", 0, 1)
	wantErr(t, "GetRange missing", err, tier.ErrNotFound)
	// A "directory" of other keys is not itself an object.
	_, _, err = b.Get(c, "miss")
	wantErr(t, "Get of a key prefix", err, tier.ErrNotFound)
}

func testGetRange(t *testing.T, b tier.Bucket) {
	c := ctx(t)
	mustPut(t, b, "gr/k", []byte("0123456789"))
	for _, tc := range []struct {
		off, n int64
		want   string
	}{
		{0, 3, "012"},
		{4, 3, "456"},
		{7, 3, "789"},
		{0, 10, "0123456789"},
		{8, 10, "89"},
		{9, 1 << 40, "9"},
	} {
		got, err := b.GetRange(c, "gr/k", tc.off, tc.n)
		if err != nil {
			t.Fatalf("GetRange(%d, %d): %v", tc.off, tc.n, err)
		}
		if string(got) != tc.want {
			t.Fatalf("GetRange(%d, %d) = %q, want %q", tc.off, tc.n, got, tc.want)
		}
	}
	for _, tc := range []struct{ off, n int64 }{{10, 1}, {11, 1}, {1 << 40, 1}, {-1, 2}, {0, -1}} {
		_, err := b.GetRange(c, "gr/k", tc.off, tc.n)
		wantErr(t, fmt.Sprintf("GetRange(%d, %d)", tc.off, tc.n), err, tier.ErrInvalidRange)
	}
}

func testStat(t *testing.T, b tier.Bucket) {
	etag := mustPut(t, b, "st/k", []byte("12345"))
	info, err := b.Stat(ctx(t), "st/k")
	if err != nil {
		t.Fatal(err)
	}
	if info.Key != "st/k" || info.Size != 5 || info.ETag != etag {
		t.Fatalf("Stat = %+v, want size 5 etag %q", info, etag)
	}
	if info.Modified.IsZero() {
		t.Fatal("Stat: zero Modified time")
	}
}

func testPutIfAbsent(t *testing.T, b tier.Bucket) {
	c := ctx(t)
	e1, err := b.PutIfAbsent(c, "pia/k", []byte("first"))
	if err != nil || e1 == "" {
		t.Fatalf("first PutIfAbsent: %q, %v", e1, err)
	}
	_, err = b.PutIfAbsent(c, "pia/k", []byte("second"))
	wantErr(t, "second PutIfAbsent", err, tier.ErrPreconditionFailed)
	got, info := mustGet(t, b, "pia/k")
	if string(got) != "first" || info.ETag != e1 {
		t.Fatalf("after losing PutIfAbsent: %q etag %q, want %q etag %q", got, info.ETag, "first", e1)
	}
	// After a delete the key is absent again.
	if err := b.Delete(c, "pia/k"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.PutIfAbsent(c, "pia/k", []byte("third")); err != nil {
		t.Fatalf("PutIfAbsent after Delete: %v", err)
	}
}

func testPutIfMatch(t *testing.T, b tier.Bucket) {
	c := ctx(t)
	e1 := mustPut(t, b, "pim/k", []byte("v1"))
	e2, err := b.PutIfMatch(c, "pim/k", []byte("v2"), e1)
	if err != nil {
		t.Fatalf("PutIfMatch with current etag: %v", err)
	}
	if e2 == "" || e2 == e1 {
		t.Fatalf("PutIfMatch returned etag %q (old %q), want a new one", e2, e1)
	}
	_, err = b.PutIfMatch(c, "pim/k", []byte("v3"), e1)
	wantErr(t, "PutIfMatch with stale etag", err, tier.ErrPreconditionFailed)
	// An empty etag must never match (and never degrade to an unconditional put).
	_, err = b.PutIfMatch(c, "pim/k", []byte("v3"), "")
	wantErr(t, "PutIfMatch with empty etag", err, tier.ErrPreconditionFailed)
	got, info := mustGet(t, b, "pim/k")
	if string(got) != "v2" || info.ETag != e2 {
		t.Fatalf("after PutIfMatch: %q etag %q, want %q etag %q", got, info.ETag, "v2", e2)
	}
	_, err = b.PutIfMatch(c, "pim/missing", []byte("x"), e2)
	wantErr(t, "PutIfMatch on missing key", err, tier.ErrPreconditionFailed)
	if _, err := b.Stat(c, "pim/missing"); !errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("failed PutIfMatch created the key: Stat err %v", err)
	}
}

const racers = 16

// race runs fn from racers goroutines released together and checks that
// exactly one succeeded and every other one lost with ErrPreconditionFailed.
func race(t *testing.T, fn func(i int) (string, error)) (winner int, etag string) {
	t.Helper()
	var (
		wg    sync.WaitGroup
		start = make(chan struct{})
		etags = make([]string, racers)
		errs  = make([]error, racers)
	)
	for i := range racers {
		wg.Go(func() {
			<-start
			etags[i], errs[i] = fn(i)
		})
	}
	close(start)
	wg.Wait()
	winner = -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("racers %d and %d both won", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, tier.ErrPreconditionFailed):
			t.Fatalf("racer %d: %v, want success or ErrPreconditionFailed", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no racer won")
	}
	return winner, etags[winner]
}

func racerBody(i int) []byte { return fmt.Appendf(nil, "racer-%02d", i) }

func checkWinner(t *testing.T, b tier.Bucket, key string, winner int, etag string) {
	t.Helper()
	got, info := mustGet(t, b, key)
	if !bytes.Equal(got, racerBody(winner)) || info.ETag != etag {
		t.Fatalf("stored %q etag %q, want winner's %q etag %q", got, info.ETag, racerBody(winner), etag)
	}
}

func testRacePutIfAbsent(t *testing.T, b tier.Bucket) {
	c := ctx(t)
	winner, etag := race(t, func(i int) (string, error) {
		return b.PutIfAbsent(c, "race/pia", racerBody(i))
	})
	checkWinner(t, b, "race/pia", winner, etag)
}

func testRacePutIfMatch(t *testing.T, b tier.Bucket) {
	c := ctx(t)
	base := mustPut(t, b, "race/pim", []byte("base"))
	winner, etag := race(t, func(i int) (string, error) {
		return b.PutIfMatch(c, "race/pim", racerBody(i), base)
	})
	checkWinner(t, b, "race/pim", winner, etag)
}

func keysOf(infos []tier.ObjectInfo) []string {
	keys := make([]string, len(infos))
	for i, in := range infos {
		keys[i] = in.Key
	}
	return keys
}

func testList(t *testing.T, b tier.Bucket) {
	c := ctx(t)
	// Put out of order; "a-b" < "a.x" < "a/..." in byte order, which a naive
	// directory walk gets wrong.
	keys := []string{"ls/b/1", "ls/a/2", "ls/a.x", "ls/a/1", "ls/a-b", "ls/a/deep/er/k", "ls2/x", "other/y"}
	etags := map[string]string{}
	for i, k := range keys {
		etags[k] = mustPut(t, b, k, bytes.Repeat([]byte{'x'}, i))
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"ls/a/", []string{"ls/a/1", "ls/a/2", "ls/a/deep/er/k"}},
		{"ls/a", []string{"ls/a-b", "ls/a.x", "ls/a/1", "ls/a/2", "ls/a/deep/er/k"}},
		{"ls/", []string{"ls/a-b", "ls/a.x", "ls/a/1", "ls/a/2", "ls/a/deep/er/k", "ls/b/1"}},
		{"ls", []string{"ls/a-b", "ls/a.x", "ls/a/1", "ls/a/2", "ls/a/deep/er/k", "ls/b/1", "ls2/x"}},
		{"ls/a/deep/", []string{"ls/a/deep/er/k"}},
		{"ls/a/1", []string{"ls/a/1"}},
		{"", []string{"ls/a-b", "ls/a.x", "ls/a/1", "ls/a/2", "ls/a/deep/er/k", "ls/b/1", "ls2/x", "other/y"}},
		{"nope/", nil},
		{"ls/c", nil},
	} {
		infos, err := b.List(c, tc.prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", tc.prefix, err)
		}
		if got := keysOf(infos); !slices.Equal(got, tc.want) {
			t.Fatalf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
		for _, in := range infos {
			i := slices.Index(keys, in.Key)
			if in.ETag != etags[in.Key] || in.Size != int64(i) {
				t.Fatalf("List(%q): %+v, want size %d etag %q", tc.prefix, in, i, etags[in.Key])
			}
		}
	}
}

func testDelete(t *testing.T, b tier.Bucket) {
	c := ctx(t)
	mustPut(t, b, "del/a/k", []byte("x"))
	mustPut(t, b, "del/keep", []byte("y"))
	if err := b.Delete(c, "del/a/k"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	_, _, err := b.Get(c, "del/a/k")
	wantErr(t, "Get after Delete", err, tier.ErrNotFound)
	_, err = b.Stat(c, "del/a/k")
	wantErr(t, "Stat after Delete", err, tier.ErrNotFound)
	if err := b.Delete(c, "del/a/k"); err != nil {
		t.Fatalf("Delete of missing key: %v", err)
	}
	if err := b.Delete(c, "del/never/was"); err != nil {
		t.Fatalf("Delete of never-written key: %v", err)
	}
	infos, err := b.List(c, "del/")
	if err != nil {
		t.Fatal(err)
	}
	if got := keysOf(infos); !slices.Equal(got, []string{"del/keep"}) {
		t.Fatalf("List after Delete = %q", got)
	}
	// The emptied "directory" can be reused.
	mustPut(t, b, "del/a/k2", []byte("z"))
}

func testDeepKeys(t *testing.T, b tier.Bucket) {
	c := ctx(t)
	segs := make([]string, 24)
	for i := range segs {
		segs[i] = fmt.Sprintf("s%02d", i)
	}
	key := strings.Join(segs, "/")
	etag := mustPut(t, b, key, []byte("deep"))
	got, _ := mustGet(t, b, key)
	if string(got) != "deep" {
		t.Fatalf("deep key: got %q", got)
	}
	infos, err := b.List(c, strings.Join(segs[:12], "/")+"/")
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].Key != key || infos[0].ETag != etag {
		t.Fatalf("List of deep prefix = %+v", infos)
	}
	if err := b.Delete(c, key); err != nil {
		t.Fatal(err)
	}
	if infos, err := b.List(c, ""); err != nil || len(infos) != 0 {
		t.Fatalf("List after deleting deep key = %+v, %v", infos, err)
	}
}

func testNoAliasing(t *testing.T, b tier.Bucket) {
	c := ctx(t)
	in := []byte("original")
	mustPut(t, b, "alias/k", in)
	in[0] = 'X'
	got, _ := mustGet(t, b, "alias/k")
	if string(got) != "original" {
		t.Fatalf("mutating Put's input changed storage: %q", got)
	}
	got[0] = 'Y'
	r, err := b.GetRange(c, "alias/k", 0, 4)
	if err != nil {
		t.Fatal(err)
	}
	r[1] = 'Z'
	if again, _ := mustGet(t, b, "alias/k"); string(again) != "original" {
		t.Fatalf("mutating returned bodies changed storage: %q", again)
	}
	if _, err := b.PutIfAbsent(c, "alias/pia", in); err != nil {
		t.Fatal(err)
	}
	in[1] = 'Q'
	if again, _ := mustGet(t, b, "alias/pia"); string(again) != "Xriginal" {
		t.Fatalf("mutating PutIfAbsent's input changed storage: %q", again)
	}
}

func testInvalidKeys(t *testing.T, b tier.Bucket) {
	c := ctx(t)
	for _, key := range []string{"", "/abs", "a//b", "a/", "../up", "a/../b", "a/./b", ".", `a\b`, "a\x00b"} {
		_, err := b.Put(c, key, []byte("x"))
		wantErr(t, fmt.Sprintf("Put(%q)", key), err, tier.ErrInvalidKey)
		_, _, err = b.Get(c, key)
		wantErr(t, fmt.Sprintf("Get(%q)", key), err, tier.ErrInvalidKey)
	}
}

// testCancelled only checks that an already-cancelled context cannot make a
// call hang; backends may fail fast or finish the (local) work.
func testCancelled(t *testing.T, b tier.Bucket) {
	mustPut(t, b, "cancel/k", []byte("x"))
	c, cancel := context.WithCancel(t.Context())
	cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = b.Put(c, "cancel/k2", []byte("y"))
		_, _ = b.PutIfAbsent(c, "cancel/k3", []byte("y"))
		_, _ = b.PutIfMatch(c, "cancel/k", []byte("y"), "nope")
		_, _, _ = b.Get(c, "cancel/k")
		_, _ = b.GetRange(c, "cancel/k", 0, 1)
		_, _ = b.Stat(c, "cancel/k")
		_, _ = b.List(c, "cancel/")
		_ = b.Delete(c, "cancel/k")
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("calls with a cancelled context hung")
	}
}
