package agent

import (
	"os"
	"path/filepath"
	"testing"
)

// auto keeps a WAL directory on the store that wrote it and starts a new
// one on files; asking for the other store than the directory holds is refused.
func TestWALKind(t *testing.T) {
	empty, badgerDir, filesDir, both := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(badgerDir, "MANIFEST"), nil, 0o644)
	os.WriteFile(filepath.Join(filesDir, "00000000000000000001.wal"), nil, 0o644)
	os.WriteFile(filepath.Join(both, "MANIFEST"), nil, 0o644)
	os.WriteFile(filepath.Join(both, "00000000000000000001.wal"), nil, 0o644)
	for _, tc := range []struct {
		dir       string
		kind      WALKind
		files, ok bool
	}{
		{empty, WALAuto, true, true},
		{empty, WALBadger, false, true},
		{empty, WALFiles, true, true},
		{badgerDir, WALAuto, false, true},
		{badgerDir, WALBadger, false, true},
		{badgerDir, WALFiles, false, false},
		{filesDir, WALAuto, true, true},
		{filesDir, WALFiles, true, true},
		{filesDir, WALBadger, false, false},
		{both, WALAuto, false, false},
	} {
		files, err := walKind(tc.dir, tc.kind)
		if files != tc.files || (err == nil) != tc.ok {
			t.Errorf("%s kind %d: files=%v err=%v, want files=%v ok=%v", filepath.Base(tc.dir), tc.kind, files, err, tc.files, tc.ok)
		}
	}
}
