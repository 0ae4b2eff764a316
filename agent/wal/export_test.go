package wal

// SetMaxFile sets the size past which a FileStore starts a new file.
func SetMaxFile(s *FileStore, n int64) { s.maxFile = n }

// Files is how many files a FileStore holds.
func Files(s *FileStore) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.files)
}

// FreeFiles is how many gone files a FileStore keeps to reuse.
func FreeFiles(s *FileStore) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.free)
}

// Reuses is how many files a FileStore has started as a free one.
func Reuses(s *FileStore) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.reuses
}

// DirSyncs is how many directory syncs a FileStore's reuses waited for.
func DirSyncs(s *FileStore) int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.dirSyncs
}
