package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
)

// coldResult is a replay of everything from the bucket, with the WAL
// deleted, against GETs of the same objects.
type coldResult struct {
	Records     int     `json:"records"`
	ProduceMiB  float64 `json:"produce_mib_s"`
	ReplaySec   float64 `json:"replay_s"`
	ReplayMiB   float64 `json:"replay_mib_s"`
	Objects     int     `json:"objects"`
	ObjectBytes int64   `json:"object_bytes"`
	RawSec      float64 `json:"raw_get_s"`
	RawMiB      float64 `json:"raw_get_mib_s"`
}

func (e *env) newRunDir() (dir, prefix string, err error) {
	e.runs++
	prefix = fmt.Sprintf("run-%d", e.runs)
	dir = filepath.Join(e.tmp, prefix)
	return dir, prefix, os.MkdirAll(dir, 0o755)
}

func (e *env) coldReplay(ctx context.Context) (coldResult, error) {
	var res coldResult
	dir, prefix, err := e.newRunDir()
	if err != nil {
		return res, err
	}
	data := filepath.Join(dir, "data")
	res.Records = int(e.o.coldBytes / 1024)
	rt, err := e.startDev(ctx, data, prefix, "never")
	if err != nil {
		return res, err
	}
	p, err := e.tbench(ctx, rt.brokers, "produce", "--topic", "cold", "--partitions", "16", "-n", fmt.Sprint(res.Records),
		"--record-size", "1024", "--acks", "all", "--linger", "5ms")
	if err != nil {
		rt.stop()
		return res, err
	}
	res.ProduceMiB = p.MiBSec
	if _, _, err := e.waitFlushed(ctx, prefix); err != nil {
		rt.stop()
		return res, err
	}
	rt.stop()
	if err := os.RemoveAll(filepath.Join(data, "wal")); err != nil {
		return res, err
	}
	rt, err = e.startDev(ctx, data, prefix, "never")
	if err != nil {
		return res, err
	}
	c, err := e.tbench(ctx, rt.brokers, "consume", "--topic", "cold", "-n", fmt.Sprint(res.Records))
	rt.stop()
	if err != nil {
		return res, err
	}
	res.ReplaySec, res.ReplayMiB = c.Seconds, c.MiBSec

	// The floor: GET every segment object whole, 16 at a time.
	var keys []string
	for obj := range e.mc.ListObjects(ctx, bucketName, minio.ListObjectsOptions{Prefix: prefix + "/data/", Recursive: true}) {
		if obj.Err != nil {
			return res, obj.Err
		}
		keys = append(keys, obj.Key)
	}
	start := time.Now()
	var (
		mu    sync.Mutex
		total int64
		first error
		wg    sync.WaitGroup
	)
	next := make(chan string)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range next {
				n, err := e.getAll(ctx, k)
				mu.Lock()
				total += n
				if err != nil && first == nil {
					first = err
				}
				mu.Unlock()
			}
		}()
	}
	for _, k := range keys {
		next <- k
	}
	close(next)
	wg.Wait()
	if first != nil {
		return res, first
	}
	res.RawSec = time.Since(start).Seconds()
	res.Objects, res.ObjectBytes = len(keys), total
	res.RawMiB = float64(total) / (1 << 20) / res.RawSec
	return res, nil
}

func (e *env) getAll(ctx context.Context, key string) (int64, error) {
	o, err := e.mc.GetObject(ctx, bucketName, key, minio.GetObjectOptions{})
	if err != nil {
		return 0, err
	}
	defer o.Close()
	return io.Copy(io.Discard, o)
}

// waitFlushed waits until the objects under prefix stop changing for 2 s:
// everything produced is in the bucket.
func (e *env) waitFlushed(ctx context.Context, prefix string) (objects int, bytes int64, err error) {
	return e.waitQuiet(ctx, prefix, 2*time.Second, 2*time.Minute)
}

// waitQuiet waits until the objects under prefix have not changed for
// quiet, for at most timeout.
func (e *env) waitQuiet(ctx context.Context, prefix string, quiet, timeout time.Duration) (objects int, bytes int64, err error) {
	deadline := time.Now().Add(timeout)
	lastN, lastB, since := -1, int64(-1), time.Now()
	for time.Now().Before(deadline) {
		n, b := 0, int64(0)
		for obj := range e.mc.ListObjects(ctx, bucketName, minio.ListObjectsOptions{Prefix: prefix + "/data/", Recursive: true}) {
			if obj.Err != nil {
				return 0, 0, obj.Err
			}
			n, b = n+1, b+obj.Size
		}
		if n != lastN || b != lastB {
			lastN, lastB, since = n, b, time.Now()
		} else if time.Since(since) >= quiet {
			return n, b, nil
		}
		time.Sleep(250 * time.Millisecond)
	}
	return 0, 0, fmt.Errorf("objects under %s still changing after %v", prefix, timeout)
}

// retainedResult compares produce into an agent with an empty bucket and
// into one with fill× more data retained in its bucket, alternating.
type retainedResult struct {
	RetainedBytes int64     `json:"retained_bytes"`
	CompactedSec  float64   `json:"compacted_sec"` // from the fill's flush to the compactor's last merge of it, and 45 s more
	Empty         []float64 `json:"empty_mib_s"`
	Full          []float64 `json:"full_mib_s"`
}

// retainedRounds is how many produce runs each side of the retained-data
// comparison gets.
const retainedRounds = 5

func (e *env) retained(ctx context.Context) (retainedResult, error) {
	var res retainedResult
	start := func() (*running, string, error) {
		dir, prefix, err := e.newRunDir()
		if err != nil {
			return nil, "", err
		}
		rt, err := e.startDev(ctx, filepath.Join(dir, "data"), prefix, "never")
		return rt, prefix, err
	}
	full, fullPrefix, err := start()
	if err != nil {
		return res, err
	}
	defer full.stop()
	if _, err := e.tbench(ctx, full.brokers, "produce", "--topic", "fill", "--partitions", "8",
		"-n", fmt.Sprint(e.o.records*e.o.fill), "--record-size", "1024", "--acks", "all", "--linger", "5ms"); err != nil {
		return res, err
	}
	if _, res.RetainedBytes, err = e.waitFlushed(ctx, fullPrefix); err != nil {
		return res, err
	}
	// Retained means at rest: the fill is compacted before the rounds, or
	// the full side's rounds would share two cores with merging what was
	// written a moment ago (up to 256 MiB a pass, every 30 s). A pass
	// that finds nothing leaves the bucket unchanged for longer than the
	// 30 s between passes.
	compacting := time.Now()
	if _, _, err := e.waitQuiet(ctx, fullPrefix, 45*time.Second, 10*time.Minute); err != nil {
		return res, fmt.Errorf("compaction of the fill: %w", err)
	}
	res.CompactedSec = time.Since(compacting).Seconds()
	empty, _, err := start()
	if err != nil {
		return res, err
	}
	defer empty.stop()
	// Each agent goes first in every other round, so neither always
	// follows the other's flush; the goal compares medians.
	for i := range retainedRounds {
		sides := []struct {
			rt  *running
			out *[]float64
		}{{empty, &res.Empty}, {full, &res.Full}}
		if i%2 == 1 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, side := range sides {
			p, err := e.tbench(ctx, side.rt.brokers, "produce", "--topic", fmt.Sprintf("p%d", i), "--partitions", "8",
				"-n", fmt.Sprint(e.o.records), "--record-size", "1024", "--acks", "all", "--linger", "5ms")
			if err != nil {
				return res, err
			}
			*side.out = append(*side.out, p.MiBSec)
			time.Sleep(time.Second) // let the flush of this round finish
		}
	}
	return res, nil
}

// journalResult is BenchmarkJournalCommits at one size, with the default
// flush-commit interval.
type journalResult struct {
	Agents     int     `json:"agents"`
	CommitsSec float64 `json:"commits_per_sec"`
	PutsSec    float64 `json:"journal_puts_per_sec"`
	P50Ms      float64 `json:"p50_ms"`
	P99Ms      float64 `json:"p99_ms"`
}

var journalLine = regexp.MustCompile(`agents=(\d+)/interval\S*\s+\d+\s+\d+ ns/op\s+([\d.]+) commits/s\s+([\d.]+) journal-PUT/s\s+([\d.]+) p50-ms\s+([\d.]+) p99-ms`)

func journal(ctx context.Context, repo string) ([]journalResult, error) {
	cmd := exec.CommandContext(ctx, "go", "test", "./metadata", "-run", "^$", "-bench", "JournalCommits/agents=(100|1000)/interval$", "-benchtime", "1x")
	cmd.Dir = repo
	out, err := cmd.CombinedOutput()
	if err != nil {
		return nil, fmt.Errorf("%w: %s", err, out)
	}
	var res []journalResult
	for _, line := range strings.Split(string(out), "\n") {
		m := journalLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		f := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
		n, _ := strconv.Atoi(m[1])
		res = append(res, journalResult{Agents: n, CommitsSec: f(m[2]), PutsSec: f(m[3]), P50Ms: f(m[4]), P99Ms: f(m[5])})
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("no results in: %s", out)
	}
	return res, nil
}
