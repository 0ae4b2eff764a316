package main

import (
	"math"
	"runtime/debug"
	"testing"

	"github.com/tlog-io/tlog/agent/wal"
)

// The memory limit is the range cache + the WAL's memtables + the slack,
// or --memory-limit; GOMEMLIMIT, when set, wins and is left alone.
func TestMemoryLimit(t *testing.T) {
	before := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(before) })

	t.Setenv("GOMEMLIMIT", "")
	if got, set := memoryLimit(0, 100<<20, false); !set || got != 100<<20+memoryLimitSlack {
		t.Fatalf("default limit on files: %d, %v", got, set)
	}
	if got, set := memoryLimit(0, 100<<20, true); !set || got != 100<<20+wal.NumMemtables*wal.MemTableBytes+memoryLimitSlack {
		t.Fatalf("default limit for a 100 MiB cache: %d, %v", got, set)
	}
	if got := debug.SetMemoryLimit(-1); got != 100<<20+wal.NumMemtables*wal.MemTableBytes+memoryLimitSlack {
		t.Fatalf("runtime limit %d after setting the default", got)
	}
	if got, set := memoryLimit(1<<30, 100<<20, true); !set || got != 1<<30 || debug.SetMemoryLimit(-1) != 1<<30 {
		t.Fatalf("--memory-limit 1GiB: %d, %v", got, set)
	}

	debug.SetMemoryLimit(math.MaxInt64)
	t.Setenv("GOMEMLIMIT", "3GiB") // read by the runtime at start only; here it only says "leave it"
	if _, set := memoryLimit(1<<30, 100<<20, true); set || debug.SetMemoryLimit(-1) != math.MaxInt64 {
		t.Fatal("with GOMEMLIMIT set, tlog changed the runtime's limit")
	}
}
