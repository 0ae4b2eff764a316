package wal_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tlog-io/tlog/agent/wal"
)

func openFiles(t *testing.T, dir string, maxFile int64) *wal.FileStore {
	t.Helper()
	s, err := wal.OpenFileStore(dir, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	wal.SetMaxFile(s, maxFile)
	t.Cleanup(func() { s.Close() })
	return s
}

func kv(i int, size int) wal.KV {
	return wal.KV{Key: fmt.Appendf(nil, "b%020d%08d", 7, i), Value: bytes.Repeat([]byte{byte(i)}, size)}
}

// contents lists the store's keys and checks each value against kv's.
func contents(t *testing.T, s wal.Store) []string {
	t.Helper()
	var keys []string
	err := s.Iterate([]byte("b"), nil, true, func(it wal.Item) (bool, error) {
		k := string(it.Key())
		keys = append(keys, k)
		return true, it.Value(func(v []byte) error {
			if len(v) > 0 && !bytes.Equal(v, bytes.Repeat(v[:1], len(v))) {
				return fmt.Errorf("value of %s is not what was written", k)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

func walFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.wal2"))
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// A record cut short at the end of the last file (a crash mid-write) is
// dropped and the file truncated before it; writes go on after it. A
// corrupt record in an earlier file ends the log there: the files after it
// are removed, so what is kept is a prefix of what was written.
func TestFileStoreTornTail(t *testing.T) {
	dir := t.TempDir()
	s := openFiles(t, dir, 4096)
	for i := range 10 {
		if err := s.Apply([]wal.KV{kv(i, 1000)}); err != nil {
			t.Fatal(err)
		}
	}
	want := contents(t, s)
	s.Close()
	files := walFiles(t, dir)
	if len(files) < 3 {
		t.Fatalf("%d files; the test wants several", len(files))
	}
	last := files[len(files)-1]
	fi, _ := os.Stat(last)
	f, _ := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{0, 0, 3, 0, 1, 2}) // a header cut short
	f.Close()

	s = openFiles(t, dir, 4096)
	if got := contents(t, s); !slices.Equal(got, want) {
		t.Fatalf("after a torn tail: %q, want %q", got, want)
	}
	if fi2, _ := os.Stat(last); fi2.Size() != fi.Size() {
		t.Fatalf("the torn record was not truncated: %d bytes, was %d", fi2.Size(), fi.Size())
	}
	if err := s.Apply([]wal.KV{kv(10, 10)}); err != nil {
		t.Fatal(err)
	}
	want = append(want, string(kv(10, 10).Key))
	s.Close()
	s = openFiles(t, dir, 4096)
	if got := contents(t, s); !slices.Equal(got, want) {
		t.Fatalf("written after the truncation: %q, want %q", got, want)
	}
	s.Close()

	// Flip a byte in the second file's first record: it and every later
	// record are gone; the first file's stay.
	files = walFiles(t, dir)
	b, _ := os.ReadFile(files[1])
	b[20] ^= 0xff
	os.WriteFile(files[1], b, 0o644)
	s = openFiles(t, dir, 4096)
	got := contents(t, s)
	if len(got) == 0 || len(got) >= len(want) || !slices.Equal(got, want[:len(got)]) {
		t.Fatalf("after corruption in the second file: %q, want a prefix of %q", got, want)
	}
	if n := len(walFiles(t, dir)); n != 2 {
		t.Fatalf("%d files left, want the first and the truncated second", n)
	}
}

// Files go once nothing points into them; a key set early and never
// deleted is moved forward rather than pinning every file behind it; the
// store reopens to the same contents.
func TestFileStoreCollects(t *testing.T) {
	dir := t.TempDir()
	s := openFiles(t, dir, 8192)
	pinned := wal.KV{Key: []byte("a-producer-snapshot"), Value: []byte("state")}
	if err := s.Apply([]wal.KV{pinned}); err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		if err := s.Apply([]wal.KV{kv(i, 1500)}); err != nil {
			t.Fatal(err)
		}
		if i >= 4 { // a flush trims all but the newest few
			if err := s.Delete([][]byte{kv(i-4, 0).Key}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if n := wal.Files(s); n > 4 {
		t.Fatalf("%d files held for 4 live batches of 1.5 KB and one small key", n)
	}
	if n := len(walFiles(t, dir)); n != wal.Files(s) {
		t.Fatalf("%d files on disk, %d in the store", n, wal.Files(s))
	}
	keys, _ := s.Size()
	if want := int64(len(pinned.Key) + 4*len(kv(0, 0).Key)); keys != want {
		t.Fatalf("key bytes %d, want %d", keys, want)
	}
	var pinnedValue string
	s.Iterate([]byte("a"), nil, false, func(it wal.Item) (bool, error) {
		return false, it.Value(func(v []byte) error { pinnedValue = string(v); return nil })
	})
	if pinnedValue != "state" {
		t.Fatalf("the early key reads %q", pinnedValue)
	}
	want := contents(t, s)
	s.Close()
	s = openFiles(t, dir, 8192)
	if got := contents(t, s); !slices.Equal(got, want) || len(got) != 4 {
		t.Fatalf("reopened: %q, want %q", got, want)
	}
}

// An iteration reads what it started with even when the keys are deleted
// and their files would be removed meanwhile.
func TestFileStoreIterateOutlivesDeletes(t *testing.T) {
	s := openFiles(t, t.TempDir(), 4096)
	var all [][]byte
	for i := range 20 {
		if err := s.Apply([]wal.KV{kv(i, 1000)}); err != nil {
			t.Fatal(err)
		}
		all = append(all, kv(i, 0).Key)
	}
	n := 0
	err := s.Iterate([]byte("b"), nil, false, func(it wal.Item) (bool, error) {
		if n == 0 {
			if err := s.Delete(all); err != nil {
				return false, err
			}
		}
		n++
		return true, it.Value(func(v []byte) error {
			if len(v) != 1000 {
				return fmt.Errorf("value of %d bytes", len(v))
			}
			return nil
		})
	})
	if err != nil || n != 20 {
		t.Fatalf("iterated %d of 20: %v", n, err)
	}
	if got := contents(t, s); len(got) != 0 {
		t.Fatalf("after deleting everything: %q", got)
	}
	if f := wal.Files(s); f != 1 {
		t.Fatalf("%d files once the iteration ended, want the active one", f)
	}
}

// One Apply of more records than one pwritev takes (its header and its
// value are two buffers each), some with empty values, is written whole
// and reads back the same after a reopen.
func TestFileStoreApplyManyRecords(t *testing.T) {
	dir := t.TempDir()
	s := openFiles(t, dir, 64<<20)
	var sets []wal.KV
	for i := range 1500 {
		sets = append(sets, kv(i, (i%3)*100))
	}
	if err := s.Apply(sets); err != nil {
		t.Fatal(err)
	}
	check := func(s wal.Store) {
		t.Helper()
		i := 0
		err := s.Iterate([]byte("b"), nil, true, func(it wal.Item) (bool, error) {
			if !bytes.Equal(it.Key(), sets[i].Key) {
				return false, fmt.Errorf("key %d: %q, want %q", i, it.Key(), sets[i].Key)
			}
			return true, it.Value(func(v []byte) error {
				if !bytes.Equal(v, sets[i].Value) {
					return fmt.Errorf("value %d: %d bytes, want %d", i, len(v), len(sets[i].Value))
				}
				i++
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		if i != len(sets) {
			t.Fatalf("read %d records, want %d", i, len(sets))
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(openFiles(t, dir, 64<<20))
}

// copyDir copies dir's files as they are now, as a crash would leave
// them (the store still open, nothing cut or synced).
func copyDir(t *testing.T, dir string) string {
	t.Helper()
	to := t.TempDir()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return to
}

// Gone files are kept and reused: after many files' worth of writes
// nearly every new file was a free one. A crash while a reused file is
// active leaves its earlier use's records after the new ones, with good
// CRCs of their own; a reopen must stop at the new ones' end, or the sets
// of long-deleted keys come back. With records all of one size the new
// ones end where old ones begin (only the mask stops replay there); with
// sizes varied a file's new use ends where its earlier use did not, so
// what is past its end must be cut when writes move on.
func TestFileStoreReusesFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		size func(i int) int
	}{
		{"same sizes", func(int) int { return 1500 }},
		{"varied sizes", func(i int) int { return 1000 + i*397%1000 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := openFiles(t, dir, 8192)
			for i := range 300 {
				if err := s.Apply([]wal.KV{kv(i, tc.size(i))}); err != nil {
					t.Fatal(err)
				}
				if i >= 4 {
					if err := s.Delete([][]byte{kv(i-4, 0).Key}); err != nil {
						t.Fatal(err)
					}
				}
				// Crash here and there in reused files.
				if i >= 100 && i%7 == 0 {
					want := contents(t, s)
					crashed := openFiles(t, copyDir(t, dir), 8192)
					if got := contents(t, crashed); !slices.Equal(got, want) {
						t.Fatalf("reopened after a crash at %d: %q, want %q", i, got, want)
					}
					crashed.Close()
				}
			}
			// 300 records of 1–2 KB fill some 60 files of 8 KiB; held at
			// once are 3 or so, and up to 2 free, so nearly every new
			// file is a reuse.
			if n := wal.Reuses(s); n < 40 {
				t.Fatalf("%d files reused", n)
			}
			if n := wal.FreeFiles(s); n > 2 {
				t.Fatalf("%d free files kept, want at most 2", n)
			}
			want := contents(t, s)
			s.Close()
			if got := contents(t, openFiles(t, dir, 8192)); !slices.Equal(got, want) || len(got) != 4 {
				t.Fatalf("reopened: %q, want %q", got, want)
			}
		})
	}
}

// A free file is reused only once its rename to .free is on disk: the
// store syncs the directory first when no Sync has done so.
func TestFileStoreReuseWaitsForRename(t *testing.T) {
	s := openFiles(t, t.TempDir(), 8192)
	write := func(from, to int, sync bool) (reuses, dirSyncs int64) {
		r0, d0 := wal.Reuses(s), wal.DirSyncs(s)
		for i := from; i < to; i++ {
			if err := s.Apply([]wal.KV{kv(i, 1500)}); err != nil {
				t.Fatal(err)
			}
			if err := s.Delete([][]byte{kv(i-4, 0).Key}); err != nil {
				t.Fatal(err)
			}
			if sync {
				if err := s.Sync(); err != nil {
					t.Fatal(err)
				}
			}
		}
		return wal.Reuses(s) - r0, wal.DirSyncs(s) - d0
	}
	if r, d := write(0, 100, false); r < 15 || d != r {
		t.Fatalf("without Sync: %d files reused, %d directory syncs before them; want one each", r, d)
	}
	if err := s.Sync(); err != nil { // for the files freed above
		t.Fatal(err)
	}
	if r, d := write(100, 200, true); r < 15 || d != 0 {
		t.Fatalf("with a Sync after each write: %d files reused, %d directory syncs of their own; want none", r, d)
	}
}

// Free files found at open are emptied (a crash may have lost the rename
// that made one a log file, leaving it holding that file's records), and
// one numbered at or past the first log file, which the store's own
// renames never leave, is removed.
func TestFileStoreFreeFilesAtOpen(t *testing.T) {
	dir := t.TempDir()
	s := openFiles(t, dir, 8192)
	for i := range 60 {
		if err := s.Apply([]wal.KV{kv(i, 1500)}); err != nil {
			t.Fatal(err)
		}
		if i >= 4 {
			if err := s.Delete([][]byte{kv(i-4, 0).Key}); err != nil {
				t.Fatal(err)
			}
		}
	}
	want := contents(t, s)
	s.Close()
	frees, _ := filepath.Glob(filepath.Join(dir, "*.free"))
	if len(frees) == 0 {
		t.Fatal("no free files to test with")
	}
	for _, p := range frees {
		if fi, _ := os.Stat(p); fi.Size() == 0 {
			t.Fatalf("%s is empty before the reopen", p)
		}
	}
	logs := walFiles(t, dir)
	bogus := filepath.Join(dir, filepath.Base(logs[len(logs)-1])[:20]+".free")
	if err := os.WriteFile(bogus, []byte("not from the store"), 0o644); err != nil {
		t.Fatal(err)
	}
	s = openFiles(t, dir, 8192)
	if got := contents(t, s); !slices.Equal(got, want) {
		t.Fatalf("reopened: %q, want %q", got, want)
	}
	for _, p := range frees {
		if fi, err := os.Stat(p); err == nil && fi.Size() != 0 {
			t.Fatalf("%s holds %d bytes after the reopen", p, fi.Size())
		}
	}
	if _, err := os.Stat(bogus); !os.IsNotExist(err) {
		t.Fatalf("%s, numbered as the last log file, is still there: %v", bogus, err)
	}
}

// Files of the earlier format (.wal, CRCs not masked) are read at open,
// and writes go on in a new .wal2 file.
func TestFileStoreReadsOldFiles(t *testing.T) {
	dir := t.TempDir()
	var old []byte
	for i := range 3 {
		k, v := kv(i, 100).Key, kv(i, 100).Value
		rec := append([]byte{1}, binary.BigEndian.AppendUint16(nil, uint16(len(k)))...)
		rec = append(append(rec, k...), v...)
		old = binary.BigEndian.AppendUint32(old, uint32(len(rec)))
		old = binary.BigEndian.AppendUint32(old, crc32.Checksum(rec, crc32.MakeTable(crc32.Castagnoli)))
		old = append(old, rec...)
	}
	if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%020d.wal", 7)), old, 0o644); err != nil {
		t.Fatal(err)
	}
	s := openFiles(t, dir, 8192)
	if err := s.Apply([]wal.KV{kv(3, 100)}); err != nil {
		t.Fatal(err)
	}
	want := []string{string(kv(0, 0).Key), string(kv(1, 0).Key), string(kv(2, 0).Key), string(kv(3, 0).Key)}
	if got := contents(t, s); !slices.Equal(got, want) {
		t.Fatalf("%q, want %q", got, want)
	}
	s.Close()
	if got := walFiles(t, dir); len(got) != 1 || !strings.HasPrefix(filepath.Base(got[0]), fmt.Sprintf("%020d-", 8)) {
		t.Fatalf("new files %q, want one numbered after the old", got)
	}
	if got := contents(t, openFiles(t, dir, 8192)); !slices.Equal(got, want) {
		t.Fatalf("reopened: %q, want %q", got, want)
	}
}
