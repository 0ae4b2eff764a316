package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tlog dev is agent 1 on a fresh directory, keeps whatever id a directory
// was made with (0 for one made before ids were recorded), and refuses a
// --id that disagrees with the directory.
func TestDevAgentID(t *testing.T) {
	fresh := t.TempDir()
	if id, err := devAgentID(fresh, 1, false); err != nil || id != 1 {
		t.Fatalf("fresh directory: %d, %v; want 1", id, err)
	}
	if id, err := devAgentID(fresh, 1, false); err != nil || id != 1 {
		t.Fatalf("again: %d, %v; want 1", id, err)
	}
	if _, err := devAgentID(fresh, 5, true); err == nil || !strings.Contains(err.Error(), "belongs to agent 1") {
		t.Fatalf("--id 5 on agent 1's directory: %v", err)
	}
	if id, err := devAgentID(fresh, 1, true); err != nil || id != 1 {
		t.Fatalf("--id 1 on agent 1's directory: %d, %v", id, err)
	}

	chosen := t.TempDir()
	if id, err := devAgentID(chosen, 7, true); err != nil || id != 7 {
		t.Fatalf("--id 7 on a fresh directory: %d, %v", id, err)
	}

	legacy := t.TempDir()
	if err := os.MkdirAll(filepath.Join(legacy, "wal"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(legacy, "wal", "000001.vlog"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := devAgentID(legacy, 1, true); err == nil || !strings.Contains(err.Error(), "made by agent 0") {
		t.Fatalf("--id 1 on a directory from before ids: %v", err)
	}
	if id, err := devAgentID(legacy, 1, false); err != nil || id != 0 {
		t.Fatalf("a directory from before ids: %d, %v; want 0", id, err)
	}
	if b, _ := os.ReadFile(filepath.Join(legacy, devIDFile)); strings.TrimSpace(string(b)) != "0" {
		t.Fatalf("recorded %q for the old directory", b)
	}

	bad := t.TempDir()
	if err := os.WriteFile(filepath.Join(bad, devIDFile), []byte("seven\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := devAgentID(bad, 1, false); err == nil || !strings.Contains(err.Error(), "not an agent id") {
		t.Fatalf("a garbled id file: %v", err)
	}
}
