package agent

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/tlog-io/tlog/agent/wal"
)

// WALKind is the store the WAL runs on (Config.WALStoreKind).
type WALKind int

const (
	// WALAuto: whichever store the WAL directory holds; files for a
	// new one.
	WALAuto WALKind = iota
	// WALFiles: tlog's own append-only files (wal.FileStore).
	WALFiles
	// WALBadger: a Badger database.
	WALBadger
)

// walKind decides whether the WAL in dir runs on files, and refuses a
// directory written by the other store than the one asked for: its
// unflushed batches would be invisible, and lost at the next trim.
func walKind(dir string, kind WALKind) (files bool, err error) {
	badger := exists(filepath.Join(dir, "MANIFEST"))
	own, err := wal.FilesIn(dir)
	if err != nil {
		return false, fmt.Errorf("agent: %w", err)
	}
	switch {
	case badger && own:
		return false, fmt.Errorf("agent: %s holds both a Badger WAL and a files WAL; one of them was written by mistake: move the other away", dir)
	case kind == WALFiles && badger:
		return false, fmt.Errorf("agent: %s holds a Badger WAL; start with --wal-store badger or auto (or let it flush, stop, and remove the directory first)", dir)
	case kind == WALBadger && own:
		return false, fmt.Errorf("agent: %s holds a files WAL; start with --wal-store files or auto (or let it flush, stop, and remove the directory first)", dir)
	case kind == WALAuto:
		return !badger, nil
	}
	return kind == WALFiles, nil
}

// WALOnFiles says whether an agent started on dataDir with kind would
// keep its WAL in files (and so hold no Badger memtables).
func WALOnFiles(dataDir string, kind WALKind) (bool, error) {
	return walKind(filepath.Join(dataDir, "wal"), kind)
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
