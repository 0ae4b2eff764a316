package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// devIDFile records, in a `tlog dev` data directory, the agent id it was
// created with: the bucket's metadata names that agent as the replica of
// every partition, so the same directory must come back as the same agent.
const devIDFile = "agent-id"

// legacyDevID is the id `tlog dev` used before it took --id: a directory
// that holds data but no devIDFile was made by agent 0.
const legacyDevID = 0

// devAgentID returns the agent id for `tlog dev` on dataDir (which exists):
// the one recorded there, else 0 for a directory older than the record,
// else want (--id, default 1, as Kafka's quickstart numbers its broker);
// and records it. A --id given explicitly that disagrees with the
// directory is an error: the data belongs to the other agent.
func devAgentID(dataDir string, want int, explicit bool) (int32, error) {
	path := filepath.Join(dataDir, devIDFile)
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		id, perr := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 32)
		if perr != nil || id < 0 {
			return 0, fmt.Errorf("%s holds %q, not an agent id: fix or remove it", path, strings.TrimSpace(string(b)))
		}
		if explicit && int64(want) != id {
			return 0, fmt.Errorf("data directory %s belongs to agent %d: give --id %d, or another --data", dataDir, id, id)
		}
		return int32(id), nil
	case !errors.Is(err, os.ErrNotExist):
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	id := int32(want)
	if hasData(dataDir) {
		if explicit && want != legacyDevID {
			return 0, fmt.Errorf("data directory %s was made by agent %d (before ids were recorded): give --id %d, or another --data", dataDir, legacyDevID, legacyDevID)
		}
		id = legacyDevID
	}
	if err := os.WriteFile(path, []byte(strconv.Itoa(int(id))+"\n"), 0o644); err != nil {
		return 0, fmt.Errorf("record the agent id: %w", err)
	}
	return id, nil
}

// hasData reports whether dataDir already holds a WAL or a bucket.
func hasData(dataDir string) bool {
	for _, sub := range []string{"wal", "bucket"} {
		if entries, err := os.ReadDir(filepath.Join(dataDir, sub)); err == nil && len(entries) > 0 {
			return true
		}
	}
	return false
}
