package wal

// FileStore keeps the WAL in its own append-only files: every Apply is one
// pwritev(2) of framed records at the end of the active file, Sync is one
// fdatasync, and values are read back with pread, so batches live in the
// page cache rather than in the process (Badger maps its value log into
// the process, and writing a batch there faults each new page in). The
// index (key → file, position, length) is in memory, rebuilt at open by
// reading the files in order.
//
// A record is [length u32][CRC-32C u32 of the rest][op u8][key length u16]
// [key][value], op 1 a set and 2 a delete; the length covers op to value.
// Files are NNNNNNNNNNNNNNNNNNNN-SSSSSSSS.wal2, numbered in order (S a
// random salt, below); the active one
// takes writes until it passes fileStoreMaxFile. Files go oldest first,
// once nothing in the index points into them (a delete's record is only
// needed while the set it deletes is in an older file, and older files go
// first); an oldest file holding at most relocateMax still live, and at
// most a quarter of it, has that moved to the active file, so a key never flushed cannot pin the files
// behind it. At open, the first record that is cut short or fails its CRC ends
// the log: its file is truncated there and later files are removed, so
// what the store holds stays a prefix of what was written.
//
// A file that goes is kept, up to freeMax of them, renamed NNN.free, and
// the next new file is one of those renamed and overwritten from its
// start: its pages are already in the page cache, where a new file's
// must be allocated (and on a VM, often backed anew by the host), which
// made writing the WAL the largest cost in an agent's profile. A reused
// file holds its earlier use's records past the new ones, so a .wal2
// record's stored CRC is XORed with a mask made from its file's sequence
// and a salt drawn at random for each use (in the name): records of an
// earlier use, or records forged inside a producer's payload, do not
// check out, and replay stops where the new ones end. A file is cut to
// its length when writes move on from it, so only the active file can
// end in such leftovers. A free file is reused only once its rename to
// .free is on disk (the directory is synced first if need be): otherwise,
// after a power loss, the directory could still give it its old name
// while it holds a newer file's records, which would end the log there
// and drop every later file. Free files found at open are emptied (one
// whose rename to a log file was lost may hold that file's records).
// Files ending .wal are an earlier version's (no mask); they are read,
// and never written; a tlog before this version ignores .wal2 files, so
// an agent must hold nothing unflushed when it is downgraded.

import (
	"bufio"
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

const (
	fileStoreMaxFile = 64 << 20
	recordHeader     = 8 // length, CRC
	opSet            = 1
	opDelete         = 2
	fileSuffix       = ".wal2"
	oldFileSuffix    = ".wal" // before files were reused: CRCs not masked
	freeSuffix       = ".free"
	// freeMax is how many gone files are kept to be reused; freeMaxSize
	// the largest kept (one grown by a huge record is removed instead).
	freeMax     = 2
	freeMaxSize = 2 * fileStoreMaxFile
	// relocateMax is the most an oldest file may hold live and still
	// have it moved forward so the file can go.
	relocateMax = 1 << 20
	// partGroupLen is the length of a batch key's partition prefix: the
	// index keeps each partition's keys in their own sorted slice, so
	// appends land at its end.
	partGroupLen = 21
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// suffixes are those of every file a FileStore keeps.
var suffixes = []string{fileSuffix, oldFileSuffix, freeSuffix}

// FileStore is a Store on append-only files in one directory.
type FileStore struct {
	dir     string
	log     *slog.Logger
	maxFile int64 // fileStoreMaxFile; smaller in tests

	mu       sync.RWMutex
	closed   bool
	groups   map[string][]fsEntry // by partition prefix (or "" for the rest), sorted by key
	files    []*logFile           // oldest first; the last is active
	free     []*logFile           // gone files kept to be reused
	reuses   int64                // files started as a free one (for tests)
	dirSyncs int64                // directory syncs a reuse waited for (for tests)
	unsynced []*logFile           // written since the last Sync (the active one included)
	dirDirty bool                 // a file was created or removed since the last Sync
	keyBytes int64
	iters    int // Iterate calls under way: files are not removed meanwhile
}

type fsEntry struct {
	key  string
	file *logFile
	pos  int64 // of the value
	n    int32
}

type logFile struct {
	seq        uint64
	path       string // f.Name() is stale once the file is renamed
	f          *os.File
	mask       uint32 // XORed into each record's CRC (0 in .wal files)
	size       int64  // the end of the records
	disk       int64  // the file's length: past size only in a reused file
	live       int    // index entries pointing here
	liveBytes  int64  // and the bytes of their values
	freeOnDisk bool   // a free file whose rename to .free has been synced
}

// fileMask is the CRC mask of the records of file seq with salt. seq
// times an odd number is one-to-one mod 2^32; the salt makes the mask
// unpredictable, and different for a sequence used again after a crash.
func fileMask(seq uint64, salt uint32) uint32 { return uint32(seq*0x9E3779B1) ^ salt }

func newSalt() (uint32, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, fmt.Errorf("wal: salt: %w", err)
	}
	return binary.BigEndian.Uint32(b[:]), nil
}

var _ Store = (*FileStore)(nil)

// OpenFileStore opens (creating if needed) a FileStore in dir.
func OpenFileStore(dir string, logger *slog.Logger) (*FileStore, error) {
	if logger == nil {
		logger = slog.Default()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", dir, err)
	}
	s := &FileStore{dir: dir, log: logger, maxFile: fileStoreMaxFile, groups: map[string][]fsEntry{}}
	if err := s.load(); err != nil {
		s.closeFiles()
		return nil, err
	}
	if len(s.files) == 0 || s.active().mask == 0 {
		// Writes go to .wal2 files only.
		if err := s.rotateLocked(); err != nil {
			s.closeFiles()
			return nil, err
		}
	}
	return s, nil
}

func (s *FileStore) load() error {
	type found struct {
		seq  uint64
		path string
		mask uint32
	}
	var logs, frees []found
	for _, suffix := range suffixes {
		names, err := filepath.Glob(filepath.Join(s.dir, "*"+suffix))
		if err != nil {
			return fmt.Errorf("wal: list %s: %w", s.dir, err)
		}
		for _, n := range names {
			seq, salt, err := parseName(filepath.Base(n), suffix)
			if err != nil {
				return err
			}
			switch suffix {
			case freeSuffix:
				frees = append(frees, found{seq: seq, path: n})
			case oldFileSuffix:
				logs = append(logs, found{seq, n, 0})
			default:
				logs = append(logs, found{seq, n, fileMask(seq, salt)})
			}
		}
	}
	slices.SortFunc(logs, func(a, b found) int { return cmp.Compare(a.seq, b.seq) })
	for i, l := range logs {
		if i > 0 && logs[i-1].seq == l.seq {
			return fmt.Errorf("wal: %s and %s have the same sequence", logs[i-1].path, l.path)
		}
	}
	for _, f := range frees {
		// A free file was an oldest log file: one numbered at or past
		// the first log file did not come from this store's renames.
		keep := len(logs) == 0 || f.seq < logs[0].seq
		if err := s.keepFree(f.path, f.seq, keep); err != nil {
			return err
		}
	}
	for i, l := range logs {
		lf, clean, err := s.replay(l.seq, l.path, l.mask, i == len(logs)-1)
		if err != nil {
			return err
		}
		s.files = append(s.files, lf)
		if !clean {
			// The log ends here: what follows is not a prefix of what
			// was written.
			for _, later := range logs[i+1:] {
				s.log.Warn("wal: removing a file after a torn record", "file", later.path)
				if err := os.Remove(later.path); err != nil {
					return fmt.Errorf("wal: %w", err)
				}
			}
			break
		}
	}
	s.dirDirty = true
	return nil
}

// parseName reads a file name's sequence and, for a .wal2 file, salt.
func parseName(name, suffix string) (seq uint64, salt uint32, err error) {
	stem := strings.TrimSuffix(name, suffix)
	if suffix == fileSuffix {
		var saltHex string
		var ok bool
		stem, saltHex, ok = strings.Cut(stem, "-")
		v, perr := strconv.ParseUint(saltHex, 16, 32)
		if !ok || perr != nil {
			return 0, 0, fmt.Errorf("wal: %s is not a WAL file name", name)
		}
		salt = uint32(v)
	}
	seq, err = strconv.ParseUint(stem, 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("wal: %s is not a WAL file name", name)
	}
	return seq, salt, nil
}

// FilesIn says whether dir holds a FileStore's files, of any version.
func FilesIn(dir string) (bool, error) {
	for _, suffix := range suffixes {
		names, err := filepath.Glob(filepath.Join(dir, "*"+suffix))
		if err != nil {
			return false, fmt.Errorf("wal: list %s: %w", dir, err)
		}
		if len(names) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// keepFree keeps a free file found at open to be reused, emptied (its
// rename to a log file may have been lost in a crash, leaving it holding
// that file's records), or removes it.
func (s *FileStore) keepFree(p string, seq uint64, keep bool) error {
	if keep && len(s.free) < freeMax {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("wal: open %s: %w", p, err)
		}
		if err := f.Truncate(0); err != nil {
			f.Close()
			return fmt.Errorf("wal: empty %s: %w", p, err)
		}
		s.free = append(s.free, &logFile{seq: seq, path: p, f: f})
		return nil
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("wal: remove %s: %w", p, err)
	}
	return nil
}

func (s *FileStore) freePath(seq uint64) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d%s", seq, freeSuffix))
}

func (s *FileStore) logPath(seq uint64, salt uint32) string {
	return filepath.Join(s.dir, fmt.Sprintf("%020d-%08x%s", seq, salt, fileSuffix))
}

// replay reads one file's records into the index; clean is false if it
// ended in a torn or corrupt record, where the file is truncated.
func (s *FileStore) replay(seq uint64, p string, mask uint32, last bool) (*logFile, bool, error) {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return nil, false, fmt.Errorf("wal: open %s: %w", p, err)
	}
	lf := &logFile{seq: seq, path: p, f: f, mask: mask}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, false, fmt.Errorf("wal: stat %s: %w", p, err)
	}
	r := bufio.NewReaderSize(io.NewSectionReader(f, 0, 1<<62), 1<<20)
	var hdr [recordHeader]byte
	var rec []byte
	pos := int64(0)
	clean := true
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			if err != io.EOF {
				clean = false
			}
			break
		}
		n := binary.BigEndian.Uint32(hdr[:4])
		// Past the file's end is torn or leftovers: not worth allocating.
		if n < 3 || int64(n) > fi.Size()-pos-recordHeader {
			clean = false
			break
		}
		rec = slices.Grow(rec[:0], int(n))[:n]
		if _, err := io.ReadFull(r, rec); err != nil {
			clean = false
			break
		}
		if crc32.Checksum(rec, crcTable)^mask != binary.BigEndian.Uint32(hdr[4:]) {
			clean = false
			break
		}
		op, klen := rec[0], int(binary.BigEndian.Uint16(rec[1:3]))
		if 3+klen > len(rec) || (op != opSet && op != opDelete) {
			clean = false
			break
		}
		key := string(rec[3 : 3+klen])
		if op == opSet {
			s.setLocked(fsEntry{key: key, file: lf, pos: pos + recordHeader + 3 + int64(klen), n: int32(len(rec) - 3 - klen)})
		} else {
			s.deleteLocked(key)
		}
		pos += recordHeader + int64(n)
	}
	if !clean {
		if last && mask != 0 {
			// Expected after a crash in a reused file: its earlier use.
			s.log.Info("wal: the log ends inside its last file (a torn write, or a reused file's earlier records); cutting it there", "file", p, "at", pos)
		} else {
			s.log.Warn("wal: truncating a torn or corrupt record", "file", p, "at", pos)
		}
		if err := f.Truncate(pos); err != nil {
			f.Close()
			return nil, false, fmt.Errorf("wal: truncate %s: %w", p, err)
		}
	}
	lf.size, lf.disk = pos, pos
	return lf, clean, nil
}

func groupOf(key string) string {
	if len(key) >= partGroupLen && key[0] == batchPrefix {
		return key[:partGroupLen]
	}
	return ""
}

func (s *FileStore) setLocked(e fsEntry) {
	g := groupOf(e.key)
	es := s.groups[g]
	i, found := sort.Find(len(es), func(i int) int { return strings.Compare(e.key, es[i].key) })
	if found {
		s.unref(es[i])
		es[i] = e
	} else {
		es = slices.Insert(es, i, e)
		s.keyBytes += int64(len(e.key))
	}
	s.groups[g] = es
	e.file.live++
	e.file.liveBytes += int64(e.n)
}

func (s *FileStore) deleteLocked(key string) {
	g := groupOf(key)
	es := s.groups[g]
	i, found := sort.Find(len(es), func(i int) int { return strings.Compare(key, es[i].key) })
	if !found {
		return
	}
	s.unref(es[i])
	s.keyBytes -= int64(len(key))
	if i == 0 {
		es = es[1:] // trims come from the front
	} else {
		es = slices.Delete(es, i, i+1)
	}
	if len(es) == 0 {
		delete(s.groups, g)
	} else {
		s.groups[g] = es
	}
}

func (s *FileStore) unref(e fsEntry) {
	e.file.live--
	e.file.liveBytes -= int64(e.n)
}

// rotateLocked starts a new active file, reusing a free one if it can.
func (s *FileStore) rotateLocked() error {
	seq := uint64(1)
	if len(s.files) > 0 {
		prev := s.active()
		seq = prev.seq + 1
		if err := s.cutLocked(prev); err != nil {
			return err
		}
	}
	for _, lf := range s.free {
		seq = max(seq, lf.seq+1) // a free file's old name is never taken again
	}
	salt, err := newSalt()
	if err != nil {
		return err
	}
	p := s.logPath(seq, salt)
	if n := len(s.free); n > 0 {
		lf := s.free[n-1]
		if !lf.freeOnDisk {
			s.dirSyncs++
			if err := s.syncDirLocked(); err != nil {
				return err
			}
		}
		s.free = s.free[:n-1]
		err := os.Rename(lf.path, p)
		if err == nil {
			lf.seq, lf.path, lf.mask, lf.size = seq, p, fileMask(seq, salt), 0
			s.reuses++
			s.files = append(s.files, lf)
			s.dirDirty = true
			return nil
		}
		s.log.Warn("wal: reuse a free file", "err", err)
		lf.f.Close()
		os.Remove(lf.path)
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("wal: create %s: %w", p, err)
	}
	s.files = append(s.files, &logFile{seq: seq, path: p, f: f, mask: fileMask(seq, salt)})
	s.dirDirty = true
	return nil
}

// cutLocked truncates a reused file to its records once writes move on
// from it, so that only the active file can end in an earlier use's.
func (s *FileStore) cutLocked(lf *logFile) error {
	if lf.disk <= lf.size {
		return nil
	}
	if err := lf.f.Truncate(lf.size); err != nil {
		return fmt.Errorf("wal: truncate %s: %w", lf.path, err)
	}
	lf.disk = lf.size
	if !slices.Contains(s.unsynced, lf) {
		s.unsynced = append(s.unsynced, lf)
	}
	return nil
}

// retireLocked disposes of a file nothing points into: kept as free to
// be reused, or removed.
func (s *FileStore) retireLocked(lf *logFile) error {
	s.unsynced = slices.DeleteFunc(s.unsynced, func(u *logFile) bool { return u == lf })
	s.dirDirty = true
	if len(s.free) < freeMax && lf.disk <= freeMaxSize {
		p := s.freePath(lf.seq)
		if err := os.Rename(lf.path, p); err == nil {
			lf.path, lf.live, lf.liveBytes, lf.freeOnDisk = p, 0, 0, false
			s.free = append(s.free, lf)
			return nil
		}
	}
	if err := lf.f.Close(); err != nil {
		return fmt.Errorf("wal: close %s: %w", lf.path, err)
	}
	if err := os.Remove(lf.path); err != nil {
		return fmt.Errorf("wal: remove %s: %w", lf.path, err)
	}
	return nil
}

func (s *FileStore) active() *logFile { return s.files[len(s.files)-1] }

// appendLocked writes whole records (unmasked) to the active file in one
// write, rotating first if it is full, and returns the file and where the
// write began.
func (s *FileStore) appendLocked(buf []byte) (*logFile, int64, error) {
	return s.appendvLocked([][]byte{buf}, int64(len(buf)), func(mask uint32) {
		for at := 0; at+recordHeader <= len(buf); at += recordHeader + int(binary.BigEndian.Uint32(buf[at:])) {
			maskCRC(buf[at:], mask)
		}
	})
}

// appendvLocked is appendLocked for records given as pieces, size bytes
// in all; mask masks their CRCs once the file they go to is known.
func (s *FileStore) appendvLocked(iov [][]byte, size int64, mask func(uint32)) (*logFile, int64, error) {
	if lf := s.active(); lf.size > 0 && lf.size+size > s.maxFile {
		if err := s.rotateLocked(); err != nil {
			return nil, 0, err
		}
	}
	lf := s.active()
	mask(lf.mask)
	if err := pwritevAll(lf.f, iov, lf.size); err != nil {
		return nil, 0, fmt.Errorf("wal: write %s: %w", lf.path, err)
	}
	at := lf.size
	lf.size += size
	lf.disk = max(lf.disk, lf.size)
	if !slices.Contains(s.unsynced, lf) {
		s.unsynced = append(s.unsynced, lf)
	}
	return lf, at, nil
}

// maskCRC XORs mask into the CRC of the record starting at rec.
func maskCRC(rec []byte, mask uint32) {
	binary.BigEndian.PutUint32(rec[4:], binary.BigEndian.Uint32(rec[4:])^mask)
}

// maxIovec is the most buffers one pwritev takes (IOV_MAX on Linux and
// macOS).
const maxIovec = 1024

// pwritevAll writes iov at off, all of it: in calls of at most maxIovec
// buffers, resuming after a short write.
func pwritevAll(f *os.File, iov [][]byte, off int64) error {
	fd := int(f.Fd())
	for len(iov) > 0 {
		n, err := unix.Pwritev(fd, iov[:min(len(iov), maxIovec)], off)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return io.ErrShortWrite
		}
		off += int64(n)
		for n > 0 {
			if n < len(iov[0]) {
				iov[0] = iov[0][n:]
				break
			}
			n -= len(iov[0])
			iov = iov[1:]
		}
		for len(iov) > 0 && len(iov[0]) == 0 {
			iov = iov[1:]
		}
	}
	return nil
}

func appendRecord(buf []byte, op byte, key, value []byte) []byte {
	return append(appendRecordHead(buf, op, key, value), value...)
}

// appendRecordHead appends a record's header and key; its value follows
// them in the file.
func appendRecordHead(buf []byte, op byte, key, value []byte) []byte {
	start := len(buf)
	buf = binary.BigEndian.AppendUint32(buf, uint32(3+len(key)+len(value)))
	buf = append(buf, 0, 0, 0, 0, op)
	buf = binary.BigEndian.AppendUint16(buf, uint16(len(key)))
	buf = append(buf, key...)
	crc := crc32.Update(crc32.Checksum(buf[start+recordHeader:], crcTable), crcTable, value)
	binary.BigEndian.PutUint32(buf[start+4:], crc)
	return buf
}

// Apply writes sets as one pwritev(2) at the end of the active file:
// each record's header and key from one small buffer, its value straight
// from the caller's, so batches are not copied on their way to the page
// cache (that copy was 12% of a follower's CPU at RF=3).
func (s *FileStore) Apply(sets []KV) error {
	size, heads := 0, 0
	for _, kv := range sets {
		if len(kv.Key) == 0 || len(kv.Key) > 1<<16-1 || len(kv.Value) > 1<<30 {
			return fmt.Errorf("wal: key of %d bytes or value of %d bytes cannot be stored", len(kv.Key), len(kv.Value))
		}
		heads += recordHeader + 3 + len(kv.Key)
		size += recordHeader + 3 + len(kv.Key) + len(kv.Value)
	}
	// Sized once, so the slices taken of it stay put.
	head := make([]byte, 0, heads)
	iov := make([][]byte, 0, 2*len(sets))
	for _, kv := range sets {
		start := len(head)
		head = appendRecordHead(head, opSet, kv.Key, kv.Value)
		iov = append(iov, head[start:])
		if len(kv.Value) > 0 {
			iov = append(iov, kv.Value)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	lf, at, err := s.appendvLocked(iov, int64(size), func(mask uint32) {
		// head holds each record's header and key, one after another.
		for at := 0; at < len(head); {
			maskCRC(head[at:], mask)
			at += recordHeader + 3 + int(binary.BigEndian.Uint16(head[at+recordHeader+1:]))
		}
	})
	if err != nil {
		return err
	}
	for _, kv := range sets {
		at += recordHeader + 3 + int64(len(kv.Key))
		s.setLocked(fsEntry{key: string(kv.Key), file: lf, pos: at, n: int32(len(kv.Value))})
		at += int64(len(kv.Value))
	}
	return s.collectLocked()
}

// Delete writes a delete record for each key held and drops it from the
// index.
func (s *FileStore) Delete(keys [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	var buf []byte
	var held []string
	for _, k := range keys {
		ks := string(k)
		es := s.groups[groupOf(ks)]
		if _, found := sort.Find(len(es), func(i int) int { return strings.Compare(ks, es[i].key) }); found {
			buf = appendRecord(buf, opDelete, k, nil)
			held = append(held, ks)
		}
	}
	if len(held) == 0 {
		return nil
	}
	if _, _, err := s.appendLocked(buf); err != nil {
		return err
	}
	for _, k := range held {
		s.deleteLocked(k)
	}
	return s.collectLocked()
}

// collectLocked removes the oldest files nothing points into, and moves
// what little is live out of an oldest file that pins the ones behind it.
func (s *FileStore) collectLocked() error {
	if s.iters > 0 {
		return nil // an iterator may still read them; the next call collects
	}
	relocated := false
	for len(s.files) > 1 {
		old := s.files[0]
		if old.live > 0 {
			// Worth moving only when little pins it (a key kept long,
			// an idle partition's last batches) and files wait behind
			// it: while a backlog drains, old files are still largely
			// live, and moving that would copy it for nothing, under
			// the lock every write and read takes.
			// One move a call: what is moved lands in the active file,
			// which may start another.
			if relocated || len(s.files) < 3 || old.liveBytes > relocateMax || old.liveBytes > old.size/4 {
				return nil
			}
			if err := s.relocateLocked(old); err != nil {
				return err
			}
			relocated = true
			if old.live > 0 {
				return nil
			}
		}
		s.files = s.files[1:]
		if err := s.retireLocked(old); err != nil {
			return err
		}
	}
	return nil
}

// relocateLocked rewrites the live entries of lf at the end of the
// active file.
func (s *FileStore) relocateLocked(lf *logFile) error {
	var moving []fsEntry
	for _, es := range s.groups {
		for _, e := range es {
			if e.file == lf {
				moving = append(moving, e)
			}
		}
	}
	var buf []byte
	for _, e := range moving {
		v := make([]byte, e.n)
		if _, err := lf.f.ReadAt(v, e.pos); err != nil {
			return fmt.Errorf("wal: read %s to move it: %w", lf.path, err)
		}
		buf = appendRecord(buf, opSet, []byte(e.key), v)
	}
	to, at, err := s.appendLocked(buf)
	if err != nil {
		return err
	}
	for _, e := range moving {
		at += recordHeader + 3 + int64(len(e.key))
		s.setLocked(fsEntry{key: e.key, file: to, pos: at, n: e.n})
		at += int64(e.n)
	}
	return nil
}

// Sync fsyncs the files written since the last Sync, and the directory
// if files came or went.
func (s *FileStore) Sync() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrStoreClosed
	}
	for _, lf := range s.unsynced {
		if err := lf.f.Sync(); err != nil {
			return fmt.Errorf("wal: sync %s: %w", lf.path, err)
		}
	}
	s.unsynced = s.unsynced[:0]
	if s.dirDirty {
		return s.syncDirLocked()
	}
	return nil
}

// syncDirLocked fsyncs the directory: files made, renamed or removed so
// far are on disk.
func (s *FileStore) syncDirLocked() error {
	d, err := os.Open(s.dir)
	if err != nil {
		return fmt.Errorf("wal: sync %s: %w", s.dir, err)
	}
	err = d.Sync()
	d.Close()
	if err != nil {
		return fmt.Errorf("wal: sync %s: %w", s.dir, err)
	}
	s.dirDirty = false
	for _, lf := range s.free {
		lf.freeOnDisk = true
	}
	return nil
}

// Iterate walks a snapshot of the index entries in range, taken under the
// lock; values are read with pread as fn asks for them.
func (s *FileStore) Iterate(prefix, from []byte, _ bool, fn func(Item) (bool, error)) error {
	if bytes.Compare(from, prefix) < 0 {
		from = prefix
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrStoreClosed
	}
	var snap []fsEntry
	var multi int
	p, f := string(prefix), string(from)
	groups := s.groups
	if g := groupOf(p); g != "" {
		// One partition's keys (and any others with the prefix).
		groups = map[string][]fsEntry{g: s.groups[g], "": s.groups[""]}
	}
	for g, es := range groups {
		// A group is in range if its keys can have the prefix: "" holds
		// keys of any kind.
		if g != "" && !strings.HasPrefix(g, p) && !strings.HasPrefix(p, g) {
			continue
		}
		i := sort.Search(len(es), func(i int) bool { return es[i].key >= f })
		j := i
		for j < len(es) && strings.HasPrefix(es[j].key, p) {
			j++
		}
		if j > i {
			snap = append(snap, es[i:j]...)
			multi++
		}
	}
	s.iters++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.iters--
		if s.iters == 0 && !s.closed {
			if err := s.collectLocked(); err != nil {
				s.log.Warn("wal: collect files", "err", err)
			}
		}
		s.mu.Unlock()
	}()
	if multi > 1 {
		slices.SortFunc(snap, func(a, b fsEntry) int { return strings.Compare(a.key, b.key) })
	}
	var buf []byte
	for _, e := range snap {
		it := &fsItem{e: e, buf: &buf}
		more, err := fn(it)
		if err != nil || !more {
			return err
		}
	}
	return nil
}

type fsItem struct {
	e   fsEntry
	buf *[]byte // reused between the items of one Iterate
}

func (it *fsItem) Key() []byte { return []byte(it.e.key) }

func (it *fsItem) Value(fn func([]byte) error) error {
	b := slices.Grow((*it.buf)[:0], int(it.e.n))[:it.e.n]
	*it.buf = b
	if _, err := it.e.file.f.ReadAt(b, it.e.pos); err != nil {
		if errors.Is(err, os.ErrClosed) {
			return ErrStoreClosed
		}
		return fmt.Errorf("wal: read %s at %d: %w", it.e.file.path, it.e.pos, err)
	}
	return fn(b)
}

// Size reports key bytes held and the bytes of the files on disk, free
// ones included.
func (s *FileStore) Size() (keys, files int64) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, lf := range s.files {
		files += max(lf.size, lf.disk)
	}
	for _, lf := range s.free {
		files += lf.disk // kept on disk to be reused
	}
	return s.keyBytes, files
}

// Close closes the files; later calls fail with ErrStoreClosed.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	// Cut a reused active file to its records, so the next open does
	// not take its earlier use's for a torn write.
	var err error
	if len(s.files) > 0 {
		err = s.cutLocked(s.active())
	}
	return errors.Join(err, s.closeFiles())
}

func (s *FileStore) closeFiles() error {
	var first error
	for _, lf := range slices.Concat(s.files, s.free) {
		if err := lf.f.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
