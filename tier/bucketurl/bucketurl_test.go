package bucketurl_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/bucketurl"
)

func TestOpenMem(t *testing.T) {
	ctx := t.Context()
	name := "mem://" + strings.ReplaceAll(t.Name(), "/", "-")
	a, err := bucketurl.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bucketurl.Open(ctx, name)
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

	p, err := bucketurl.Open(ctx, name+"/some/prefix")
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

	other, err := bucketurl.Open(ctx, name+"-other")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.Get(ctx, "k"); !errors.Is(err, tier.ErrNotFound) {
		t.Fatalf("different name shares data: %v", err)
	}
	f1, _ := bucketurl.Open(ctx, "mem://")
	f2, _ := bucketurl.Open(ctx, "mem://")
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
		b, err := bucketurl.Open(ctx, tc.url)
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
		b, err := bucketurl.Open(t.Context(), u)
		if err == nil {
			_ = b.Close()
			t.Fatalf("Open(%q) succeeded", u)
		}
		t.Logf("Open(%q): %v", u, err)
	}
	_, err := bucketurl.Open(t.Context(), "gs://bucket/prefix")
	if msg := err.Error(); !strings.Contains(msg, `"gs"`) || !strings.Contains(msg, "mem://") || !strings.Contains(msg, "file:") || !strings.Contains(msg, "s3://") {
		t.Fatalf("error should name the scheme and the supported ones: %v", err)
	}
}

func TestOpenS3Bad(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"s3://", "missing bucket name"},
		{"s3:///prefix", "missing bucket name"},
		{"s3:bucket", "want s3://BUCKET"},
		{"s3://key:secret@bucket/p", "credentials in the URL"},
		{"s3://bucket:9000/p", "contains a port"},
		{"s3://b?endpoint=ftp://x", "endpoint"},
		{"s3://b?endpoint=127.0.0.1:9000", "endpoint"},
		{"s3://b?endpoint=http://", "endpoint"},
		{"s3://b?path_style=maybe", "path_style"},
		{"s3://b?region=", "empty region"},
		{"s3://b?region=a&region=b", "given 2 times"},
		{"s3://b?bogus=1", `unknown query parameter "bogus"`},
		{"s3://b?endpoint=%zz", "query"},
		{"s3://b#frag", "fragment"},
	} {
		b, err := bucketurl.Open(t.Context(), tc.url)
		if err == nil {
			_ = b.Close()
			t.Errorf("Open(%q) succeeded", tc.url)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q): %v; want it to mention %q", tc.url, err, tc.want)
		}
	}
}
