package tests

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/tests/tlogtest"
)

// Key compaction survives SIGKILL: a `tlog dev` process holds a keyed
// changelog (overwrites, a tenth tombstones) in many small flushed ranges;
// it is restarted with the compactor on and killed mid-pass: as the
// first cleaned object appears in the bucket (before its swap is
// journaled), or a few objects later. Restarted with the
// compactor held off (and, every other round, its WAL deleted), the last
// record read of every key is its latest value (absent if that is a
// tombstone): nothing lost, nothing resurrected. After the last round the
// compactor runs to the end and a reader gets exactly one record per live
// key, its latest.
func TestProcKeyCompactionSIGKILL(t *testing.T) {
	t.Parallel()
	bin := tlogtest.BuildTlog(t)
	data := t.TempDir()
	objects := filepath.Join(data, "bucket")
	start := func(compaction string) *tlogtest.Proc {
		t.Helper()
		return tlogtest.StartDev(t, bin, data, "--flush-interval", "50ms", "--compaction-interval", compaction)
	}
	p := start("1h")
	createCompacted(t, p.Addr, "changelog")

	const keys, rounds, perRound = 400, 12, 400
	latest := map[string]string{} // "" : a tombstone
	var seq int
	produce := func(addr string) {
		t.Helper()
		cl := tlogtest.NewClient(t, addr, kgo.DefaultProduceTopic("changelog"), kgo.ProducerLinger(0))
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		for range rounds {
			var rs []*kgo.Record
			for range perRound {
				k := fmt.Sprintf("key-%03d", (seq*7919)%keys)
				r := &kgo.Record{Key: []byte(k), Value: fmt.Appendf(nil, "v%d", seq)}
				if seq%10 == 3 {
					r.Value = nil
				}
				rs = append(rs, r)
				seq++
			}
			if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				latest[string(r.Key)] = string(r.Value)
			}
			time.Sleep(70 * time.Millisecond) // a flushed range per round
		}
		cl.Close()
	}
	cuts := 0
	for round := range 3 {
		produce(p.Addr)
		waitQuietObjects(t, objects, ".seg", 500*time.Millisecond)
		if err := p.Stop(30 * time.Second); err != nil {
			t.Fatalf("SIGTERM: %v\n%s", err, tlogtest.Tail(p.Output(), 20))
		}

		// The compactor on; SIGKILL once it has uploaded 1, 4 or 7
		// cleaned ranges (of 12, 24, 36).
		killAt := countObjects(t, objects, ".k.seg") + 1 + 3*round
		p = start("100ms")
		deadline := time.Now().Add(30 * time.Second)
		for countObjects(t, objects, ".k.seg") < killAt {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: no cleaned object within 30 s\n%s", round, tlogtest.Tail(p.Output(), 20))
			}
			time.Sleep(time.Millisecond)
		}
		p.Kill()
		if round%2 == 1 {
			if err := os.RemoveAll(filepath.Join(data, "wal")); err != nil {
				t.Fatal(err)
			}
		}

		p = start("1h")
		recs := readChangelog(t, p.Addr, "changelog")
		last, twice := map[string]*kgo.Record{}, 0
		for _, r := range recs {
			if last[string(r.Key)] != nil {
				twice++
			}
			last[string(r.Key)] = r
		}
		for k, v := range latest {
			r := last[k]
			switch {
			case v == "" && r != nil && r.Value != nil:
				t.Fatalf("round %d: deleted key %s reads %q at %d last", round, k, r.Value, r.Offset)
			case v != "" && (r == nil || string(r.Value) != v):
				t.Fatalf("round %d: key %s reads %v last, its latest is %q", round, k, r, v)
			}
		}
		if twice > 0 && len(recs) < seq {
			cuts++ // some ranges cleaned, some not
		}
		t.Logf("round %d: killed mid-pass; %d of %d records read, %d superseded ones among them (WAL deleted: %v)", round, len(recs), seq, twice, round%2 == 1)
	}
	if cuts == 0 {
		t.Fatal("no kill left the log part cleaned: the test cut no pass short")
	}

	if err := p.Stop(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v", err)
	}
	p = start("100ms")
	waitCompacted(t, p.Addr, "changelog")
	got := map[string]string{}
	for _, r := range readChangelog(t, p.Addr, "changelog") {
		got[string(r.Key)] = string(r.Value)
	}
	for k, v := range latest {
		if got[k] != v {
			t.Fatalf("after the last pass: key %s reads %q, latest %q", k, got[k], v)
		}
	}
}

// readChangelog reads partition 0 of topic from the start to its end
// (a compacted log may end in a gap, so a read also ends after a second
// with nothing new), checking offsets only go forward.
func readChangelog(t *testing.T, addr, topic string) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cl := tlogtest.NewClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(200*time.Millisecond))
	defer cl.Close()
	ends, err := kadm.NewClient(cl).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end, _ := ends.Lookup(topic, 0)
	var out []*kgo.Record
	last, idleSince := int64(-1), time.Now()
	for last < end.Offset-1 && time.Since(idleSince) < time.Second {
		pctx, pcancel := context.WithTimeout(ctx, time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		if ctx.Err() != nil {
			t.Fatalf("read %s: %v", topic, ctx.Err())
		}
		fs.EachError(func(_ string, _ int32, err error) {
			if err != context.DeadlineExceeded {
				t.Fatalf("fetch %s: %v", topic, err)
			}
		})
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset <= last {
				t.Fatalf("%s: offset %d after %d", topic, r.Offset, last)
			}
			last, idleSince = r.Offset, time.Now()
			out = append(out, r)
		})
	}
	return out
}

// countObjects counts files under dir whose names end in suffix.
func countObjects(t *testing.T, dir, suffix string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil // renamed or removed while walking
			}
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, suffix) {
			n++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// waitQuietObjects waits until no file ending in suffix has appeared
// under dir for quiet: the flusher writes one whenever anything is
// unflushed, so what was acknowledged before is in the bucket.
func waitQuietObjects(t *testing.T, dir, suffix string, quiet time.Duration) {
	t.Helper()
	last, since, deadline := -1, time.Now(), time.Now().Add(30*time.Second)
	for time.Since(since) < quiet {
		if time.Now().After(deadline) {
			t.Fatalf("objects still appearing under %s after 30 s", dir)
		}
		if n := countObjects(t, dir, suffix); n != last {
			last, since = n, time.Now()
		}
		time.Sleep(20 * time.Millisecond)
	}
}
