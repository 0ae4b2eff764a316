package main

import (
	"os"
	"runtime/debug"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/agent/wal"
)

// memoryLimitSlack is what an agent holds beyond its range cache and (on
// Badger) WAL memtables under load: produce and fetch buffers in flight, the flusher's
// segment being built, per-partition and per-connection state. 96 MiB
// held the suite's produce and read-back with no cost measured against
// 128 (docs/benchmarks.md); 26 MiB (a limit of 330 MiB with Badger's
// memtables) set the collector running flat out.
const memoryLimitSlack = 96 << 20

// memoryLimit sets the Go runtime's soft memory limit, unless GOMEMLIMIT
// does: limit if positive, else the range cache + the WAL's memtables
// (a WAL on Badger; files keep batches in the page cache) +
// memoryLimitSlack. Without it the heap grows to twice what is live
// (GOGC=100) and a full range cache alone doubled the agent's resident
// memory (docs/benchmarks.md). It returns the limit and whether it set it.
func memoryLimit(limit, cacheBytes int64, walOnBadger bool) (int64, bool) {
	if os.Getenv("GOMEMLIMIT") != "" {
		return debug.SetMemoryLimit(-1), false
	}
	if limit <= 0 {
		if cacheBytes <= 0 {
			cacheBytes = agent.Defaults.CacheBytes
		}
		limit = cacheBytes + memoryLimitSlack
		if walOnBadger {
			limit += wal.NumMemtables * wal.MemTableBytes
		}
	}
	debug.SetMemoryLimit(limit)
	return limit, true
}
