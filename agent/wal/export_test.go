package wal

// SetMaxFile sets the size past which a FileStore starts a new file.
func SetMaxFile(s *FileStore, n int64) { s.maxFile = n }

// Files is how many files a FileStore holds.
func Files(s *FileStore) int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.files)
}
