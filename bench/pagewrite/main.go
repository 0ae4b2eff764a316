// Command pagewrite measures what writing a log into the page cache costs
// in system time, two ways: "new" writes each 64 MiB file afresh and
// deletes the one before it (as the WAL does once a file is trimmed), and
// "recycle" overwrites two files in turn, so the pages written are pages
// the cache already holds. Each writer writes -rate bytes a second in
// pwritev(2) calls of -chunk bytes for -duration; the modes alternate for
// -rounds. It prints one line per run: MiB written, system CPU seconds
// (getrusage) and MiB per system-second.
//
//	go run ./bench/pagewrite -dir /tmp -writers 3 -rate 104857600 -duration 8s
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const fileSize = 64 << 20

func main() {
	dir := flag.String("dir", os.TempDir(), "directory to write in (a scratch directory is made inside)")
	writers := flag.Int("writers", 3, "concurrent writers (agents sharing the machine)")
	rate := flag.Int64("rate", 100<<20, "bytes a second per writer")
	chunk := flag.Int("chunk", 256<<10, "bytes per pwritev")
	duration := flag.Duration("duration", 8*time.Second, "how long each run writes")
	rounds := flag.Int("rounds", 2, "rounds of both modes")
	flag.Parse()
	if *writers < 1 || *rate < 1 || *chunk < 1 || *chunk > fileSize || *duration <= 0 {
		fmt.Fprintln(os.Stderr, "pagewrite: -writers, -rate, -chunk (at most 64 MiB) and -duration must be positive")
		os.Exit(2)
	}
	for range *rounds {
		for _, mode := range []string{"new", "recycle"} {
			scratch, err := os.MkdirTemp(*dir, "pagewrite-")
			if err != nil {
				fmt.Fprintln(os.Stderr, "pagewrite:", err)
				os.Exit(1)
			}
			mib, sys, err := run(scratch, mode, *writers, *rate, *chunk, *duration)
			os.RemoveAll(scratch)
			if err != nil {
				fmt.Fprintln(os.Stderr, "pagewrite:", err)
				os.Exit(1)
			}
			fmt.Printf("%-8s %d writers × %d MiB/s for %v: %.0f MiB, %.3f s system, %.0f MiB per system-second\n",
				mode, *writers, *rate>>20, *duration, mib, sys.Seconds(), mib/sys.Seconds())
			time.Sleep(3 * time.Second) // let the deleted files' pages go
		}
	}
}

func run(dir, mode string, writers int, rate int64, chunk int, d time.Duration) (mib float64, sys time.Duration, err error) {
	var r0, r1 syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r0); err != nil {
		return 0, 0, err
	}
	var wg sync.WaitGroup
	errs := make([]error, writers)
	written := make([]int64, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			written[w], errs[w] = write(dir, w, mode, rate, chunk, d)
		}()
	}
	wg.Wait()
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r1); err != nil {
		return 0, 0, err
	}
	var total int64
	for w := range writers {
		if errs[w] != nil {
			return 0, 0, errs[w]
		}
		total += written[w]
	}
	return float64(total) / (1 << 20), time.Duration(r1.Stime.Nano() - r0.Stime.Nano()), nil
}

func write(dir string, w int, mode string, rate int64, chunk int, d time.Duration) (int64, error) {
	buf := make([]byte, chunk)
	for i := range buf {
		buf[i] = byte(i)
	}
	var f, prev *os.File
	defer func() {
		for _, x := range []*os.File{f, prev} {
			if x != nil {
				x.Close()
			}
		}
	}()
	var off int64
	seq := 0
	next := func() error {
		name := filepath.Join(dir, fmt.Sprintf("w%d-%d", w, seq))
		if mode == "recycle" {
			name = filepath.Join(dir, fmt.Sprintf("w%d-%d", w, seq%2))
		}
		seq++
		if prev != nil {
			prev.Close()
			if mode == "new" {
				if err := os.Remove(prev.Name()); err != nil {
					return err
				}
			}
		}
		prev = f
		var err error
		f, err = os.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
		off = 0
		return err
	}
	if err := next(); err != nil {
		return 0, err
	}
	start := time.Now()
	var n int64
	for time.Since(start) < d {
		if off+int64(chunk) > fileSize {
			if err := next(); err != nil {
				return n, err
			}
		}
		if _, err := unix.Pwritev(int(f.Fd()), [][]byte{buf}, off); err != nil {
			return n, fmt.Errorf("pwritev: %w", err)
		}
		off += int64(chunk)
		n += int64(chunk)
		if ahead := time.Duration(float64(n)/float64(rate)*float64(time.Second)) - time.Since(start); ahead > 0 {
			time.Sleep(ahead)
		}
	}
	return n, nil
}
