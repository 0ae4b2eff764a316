package tests

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/tlog-io/tlog/agent"
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

// Two kcat processes in one balanced consumer group (-G) split a topic's
// partitions between them and together read every record.
func TestKcatBalancedConsumerGroup(t *testing.T) {
	bin := kcatPath(t)
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket(), func(c *agent.Config) {
		c.GroupInitialRebalanceDelay = 500 * time.Millisecond
	})
	addr := a.Addr()
	createTopics(t, addr, 4, "clicks")

	type proc struct {
		cmd *exec.Cmd
		out *syncBuffer
	}
	var procs []proc
	for i := 0; i < 2; i++ {
		cmd := exec.Command(bin, "-b", addr, "-G", "kcat-group", "-q", "-u", "-f", "%p %s\n",
			"-X", "auto.offset.reset=earliest", "-X", "session.timeout.ms=10000", "clicks")
		out := &syncBuffer{}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		procs = append(procs, proc{cmd, out})
	}
	adm := kadm.NewClient(tlogtest.NewClient(t, addr))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Both join, and the four partitions are split between them.
	tlogtest.CheckFor(t, 45*time.Second, 100*time.Millisecond, func() error {
		gs, err := adm.DescribeGroups(ctx, "kcat-group")
		if err != nil {
			return err
		}
		g := gs["kcat-group"]
		if g.State != "Stable" || len(g.Members) != 2 {
			return fmt.Errorf("group %s with %d members", g.State, len(g.Members))
		}
		seen := map[int32]bool{}
		for _, m := range g.Members {
			ca, ok := m.Assigned.AsConsumer()
			if !ok || len(ca.Topics) != 1 || len(ca.Topics[0].Partitions) == 0 {
				return fmt.Errorf("member %s assigned %v", m.MemberID, m.Assigned)
			}
			for _, p := range ca.Topics[0].Partitions {
				if seen[p] {
					return fmt.Errorf("partition %d assigned twice", p)
				}
				seen[p] = true
			}
		}
		if len(seen) != 4 {
			return fmt.Errorf("%d partitions assigned", len(seen))
		}
		return nil
	})

	const n = 400
	var lines strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&lines, "u%d:click-%d\n", i%13, i)
	}
	runKcat(t, lines.String(), "-P", "-b", addr, "-t", "clicks", "-K:")
	var per [2]int
	tlogtest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		got := map[string]bool{}
		for i, p := range procs {
			per[i] = 0
			for _, l := range strings.Split(strings.TrimSpace(p.out.String()), "\n") {
				if f := strings.Fields(l); len(f) == 2 && strings.HasPrefix(f[1], "click-") {
					got[f[1]] = true
					per[i]++
				}
			}
		}
		if len(got) != n {
			return fmt.Errorf("%d of %d records read by the group", len(got), n)
		}
		return nil
	})
	if per[0] == 0 || per[1] == 0 {
		t.Fatalf("one kcat read everything: %v", per)
	}
	t.Logf("kcat processes read %d and %d records", per[0], per[1])
}

// syncBuffer is a bytes.Buffer safe for a process writing and a test
// reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The tlog CLI with kcat's short forms prints exactly what kcat prints for
// the same topic: lines produced with `tlog produce T -K:` (one without the
// separator, so without a key) and read back with `-o beginning -e -f`,
// from the start, from an offset and by count.
func TestCLIKcatStyle(t *testing.T) {
	kcatPath(t)
	if testing.Short() {
		t.Skip("builds and runs the tlog binary")
	}
	bin := tlogtest.BuildTlog(t)
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket())
	addr := a.Addr()
	createTopics(t, addr, 1, "orders")

	cliOK(t, bin, addr, "order-1:prepared\nno key here\norder-2:shipped:late\n", "produce", "orders", "-K:")
	// The global -b after the command, as kcat and rpk take it.
	if r := cliOK(t, bin, "", "", "topic", "list", "-b", addr); !strings.Contains(r.stdout, "orders") {
		t.Fatalf("tlog topic list -b ADDR:\n%s", r)
	}
	for _, tc := range []struct {
		tlog, kcat []string
		want       string
	}{
		{[]string{"-o", "beginning", "-e", "-f", `%k %s\n`}, []string{"-o", "beginning", "-e", "-f", `%k %s\n`},
			"order-1 prepared\n no key here\norder-2 shipped:late\n"},
		{[]string{"-o1", "-e", "-f", `%p %o %K %S %k=%s\n`}, []string{"-o1", "-e", "-f", `%p %o %K %S %k=%s\n`},
			"0 1 -1 11 =no key here\n0 2 7 12 order-2=shipped:late\n"},
		{[]string{"-c", "2", "-f", `%s\n`}, []string{"-o", "beginning", "-c", "2", "-f", `%s\n`},
			"prepared\nno key here\n"},
	} {
		got := cliOK(t, bin, addr, "", append([]string{"consume", "orders"}, tc.tlog...)...).stdout
		kc := runKcat(t, "", append([]string{"-C", "-q", "-b", addr, "-t", "orders"}, tc.kcat...)...)
		if got != kc || got != tc.want {
			t.Errorf("tlog consume %q printed %q; kcat %q printed %q; want %q", tc.tlog, got, tc.kcat, kc, tc.want)
		}
	}
}
