package tests

import (
	"bytes"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
)

func kcatPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("kcat")
	if err != nil {
		t.Skip("kcat not installed (.ci/run installs it with apt-get)")
	}
	return p
}

func runKcat(t *testing.T, stdin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(kcatPath(t), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("kcat %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
	case <-time.After(60 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("kcat %s: timed out\n%s", strings.Join(args, " "), errb.String())
	}
	return out.String()
}

// kcat (librdkafka) produces keyed lines, consumes them with a format string
// and lists metadata; outputs are compared exactly.
func TestKcat(t *testing.T) {
	kcatPath(t)
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket())
	addr := a.Addr()
	createTopics(t, addr, 1, "orders")

	in := "order-1:prepared\norder-2:prepared\norder-1:shipped\norder-1:delivered\norder-2:shipped\n"
	runKcat(t, in, "-P", "-b", addr, "-t", "orders", "-K:")
	got := runKcat(t, "", "-C", "-b", addr, "-t", "orders", "-e", "-q", "-f", "%k=%s@%o\n")
	want := "order-1=prepared@0\norder-2=prepared@1\norder-1=shipped@2\norder-1=delivered@3\norder-2=shipped@4\n"
	if got != want {
		t.Fatalf("consume:\n got %q\nwant %q", got, want)
	}

	got = runKcat(t, "", "-L", "-b", addr, "-t", "orders")
	want = fmt.Sprintf("Metadata for orders (from broker 0: %s/0):\n"+
		" 1 brokers:\n"+
		"  broker 0 at %s (controller)\n"+
		" 1 topics:\n"+
		"  topic \"orders\" with 1 partitions:\n"+
		"    partition 0, leader 0, replicas: 0, isrs: 0\n", addr, addr)
	if got != want {
		t.Fatalf("metadata:\n got %q\nwant %q", got, want)
	}

	// Offsets and ranges: -o picks where to start, -c how many.
	got = runKcat(t, "", "-C", "-b", addr, "-t", "orders", "-o", "2", "-c", "2", "-q", "-f", "%s@%o\n")
	if want := "shipped@2\ndelivered@3\n"; got != want {
		t.Fatalf("consume from offset 2:\n got %q\nwant %q", got, want)
	}
}

// Compressed batches from librdkafka are stored and served as they came,
// and keys keep to one partition, in order.
func TestKcatCompressionAndKeys(t *testing.T) {
	kcatPath(t)
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket())
	addr := a.Addr()
	for _, codec := range []string{"gzip", "snappy", "lz4", "zstd"} {
		topic := "keys-" + codec
		createTopics(t, addr, 4, topic)
		var in strings.Builder
		const n = 400
		for i := 0; i < n; i++ {
			fmt.Fprintf(&in, "k%d:%s-%d\n", i%10, codec, i)
		}
		runKcat(t, in.String(), "-P", "-b", addr, "-t", topic, "-K:", "-z", codec)
		out := runKcat(t, "", "-C", "-b", addr, "-t", topic, "-e", "-q", "-f", "%p|%k|%s|%o\n")
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != n {
			t.Fatalf("%s: consumed %d lines, want %d", codec, len(lines), n)
		}
		keyPart := map[string]string{}
		lastSeq := map[string]int{}
		partOffsets := map[string][]int{}
		for _, l := range lines {
			f := strings.Split(l, "|")
			if len(f) != 4 {
				t.Fatalf("%s: bad line %q", codec, l)
			}
			p, k, v, off := f[0], f[1], f[2], f[3]
			if prev, ok := keyPart[k]; ok && prev != p {
				t.Fatalf("%s: key %s in partitions %s and %s", codec, k, prev, p)
			}
			keyPart[k] = p
			var seq, o int
			fmt.Sscanf(v, codec+"-%d", &seq)
			fmt.Sscanf(off, "%d", &o)
			if last, ok := lastSeq[k]; ok && seq <= last {
				t.Fatalf("%s: key %s out of order: %d after %d", codec, k, seq, last)
			}
			lastSeq[k] = seq
			partOffsets[p] = append(partOffsets[p], o)
		}
		for p, offs := range partOffsets {
			sort.Ints(offs)
			for i, o := range offs {
				if o != i {
					t.Fatalf("%s: partition %s offsets not dense from 0: %v", codec, p, offs)
				}
			}
		}
	}
}
