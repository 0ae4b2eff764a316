package tests

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
)

// compactingAgent is an agent that flushes and key-compacts quickly.
func compactingAgent(t *testing.T, dir string, bucket tier.Bucket) *agent.Agent {
	return tlogtest.StartAgent(t, dir, bucket, func(c *agent.Config) {
		c.FlushInterval = 50 * time.Millisecond
		c.CompactionInterval = 100 * time.Millisecond
	})
}

func createCompacted(t *testing.T, addr string, topics ...string) {
	t.Helper()
	cl := tlogtest.NewClient(t, addr)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := map[string]*string{"cleanup.policy": kadm.StringPtr("compact"), "min.cleanable.dirty.ratio": kadm.StringPtr("0.01"),
		"delete.retention.ms": kadm.StringPtr("0")}
	if _, err := kadm.NewClient(cl).CreateTopics(ctx, 1, 1, cfg, topics...); err != nil {
		t.Fatal(err)
	}
}

// waitCompacted waits until a fresh read of each topic from the start
// reads exactly one record per live key. A compacted log may end in a gap
// (a deleted tombstone), so a read takes what arrives within 1.5 s.
func waitCompacted(t *testing.T, addr string, topics ...string) {
	t.Helper()
	tlogtest.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
		for _, topic := range topics {
			cl := tlogtest.NewClient(t, addr, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
				kgo.FetchMaxWait(100*time.Millisecond))
			ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
			seen := map[string]bool{}
			var dup error
			for ctx.Err() == nil {
				cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
					if seen[string(r.Key)] || r.Value == nil {
						dup = fmt.Errorf("%s: key %s not compacted yet", topic, r.Key)
					}
					seen[string(r.Key)] = true
				})
			}
			cancel()
			cl.Close()
			switch {
			case dup != nil:
				return dup
			case len(seen) == 0:
				return fmt.Errorf("%s: nothing read", topic)
			}
		}
		return nil
	})
}

// kcat on a compacted topic: a keyed changelog produced with -K: is read
// back, once compacted, as the latest value of each live key; a record
// without a key is refused (non-zero exit, librdkafka's "Broker failed to
// validate record", Kafka's INVALID_RECORD).
func TestKcatCompactedTopic(t *testing.T) {
	kcatPath(t)
	a := compactingAgent(t, t.TempDir(), tier.NewMemBucket())
	createCompacted(t, a.Addr(), "kc")
	var in strings.Builder
	for round := range 5 {
		for _, k := range []string{"a", "b", "c", "d"} {
			fmt.Fprintf(&in, "%s:%s%d\n", k, k, round)
		}
	}
	runKcat(t, in.String(), "-b", a.Addr(), "-P", "-t", "kc", "-K:")
	cmd := exec.Command(kcatPath(t), "-b", a.Addr(), "-P", "-t", "kc")
	cmd.Stdin = strings.NewReader("no key\n")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || !strings.Contains(string(out), "validate record") {
		t.Fatalf("keyless produce: %v\n%s", err, out)
	}
	waitCompacted(t, a.Addr(), "kc")
	got := runKcat(t, "", "-b", a.Addr(), "-C", "-t", "kc", "-e", "-q", "-f", "%k=%s\n")
	if want := "a=a4\nb=b4\nc=c4\nd=d4\n"; got != want {
		t.Fatalf("compacted topic read back:\n got %q\nwant %q", got, want)
	}
}

// A Kafka Connect-style use through confluent-kafka: three compacted
// topics (config, offset, status), keys overwritten and some deleted; a
// record without a key is refused. After compaction and an agent restart
// (WAL deleted), a fresh consumer reading each from the beginning gets
// the latest value per live key, and reads only those records.
func TestConfluentKafkaCompactedTopics(t *testing.T) {
	py := confluentPython(t)
	dir := t.TempDir()
	bucket := tier.NewMemBucket()
	a := compactingAgent(t, dir, bucket)
	topics := []string{"connect-configs", "connect-offsets", "connect-status"}
	createCompacted(t, a.Addr(), topics...)
	script := filepath.Join("clients", "confluent_compacted.py")
	out, err := exec.Command(py, append([]string{script, a.Addr(), "produce"}, topics...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "keyless refused") {
		t.Fatalf("produce: %v\n%s", err, out)
	}
	waitCompacted(t, a.Addr(), topics...)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "wal")); err != nil {
		t.Fatal(err)
	}
	a = compactingAgent(t, dir, bucket)
	out, err = exec.Command(py, append([]string{script, a.Addr(), "read"}, topics...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("read: %v\n%s", err, out)
	}
	for _, topic := range topics {
		var keys, want []string
		for k := range 20 {
			if k%5 != 0 {
				keys = append(keys, fmt.Sprintf("%s-k%d", topic, k))
			}
		}
		sort.Strings(keys) // as the script sorts them
		for _, k := range keys {
			want = append(want, k+"="+topic+"-v9")
		}
		if line := topic + " " + strings.Join(want, " "); !strings.Contains(string(out), line+"\n") {
			t.Fatalf("%s read back after the restart: want\n%s\ngot\n%s", topic, line, out)
		}
		if !strings.Contains(string(out), fmt.Sprintf("%s records=%d\n", topic, len(want))) {
			t.Fatalf("%s: a fresh consumer read more than the %d live records:\n%s", topic, len(want), out)
		}
	}
}
