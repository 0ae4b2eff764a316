package tests

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
)

// cliResult is what one run of the tlog binary printed and how it exited.
type cliResult struct {
	stdout, stderr string
	code           int
	took           time.Duration
}

func (r cliResult) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// cliRun runs `tlog --brokers addr args...` with stdin and returns its
// output and exit code (an empty addr leaves --brokers out).
func cliRun(t *testing.T, bin, addr, stdin string, args ...string) cliResult {
	t.Helper()
	if addr != "" {
		args = append([]string{"--brokers", addr}, args...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "TLOG_BROKERS=")
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	err := cmd.Run()
	r := cliResult{stdout: out.String(), stderr: errb.String(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("tlog %s: still running after 30s\n%s", strings.Join(args, " "), r)
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("tlog %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// cliOK runs the binary and fails the test unless it exits 0.
func cliOK(t *testing.T, bin, addr, stdin string, args ...string) cliResult {
	t.Helper()
	r := cliRun(t, bin, addr, stdin, args...)
	if r.code != 0 {
		t.Fatalf("tlog %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// cliFails runs the binary and checks it exits with code and that stderr
// holds every one of words.
func cliFails(t *testing.T, bin, addr string, code int, words []string, args ...string) cliResult {
	t.Helper()
	r := cliRun(t, bin, addr, "", args...)
	if r.code != code {
		t.Fatalf("tlog %s: want exit %d, got %s", strings.Join(args, " "), code, r)
	}
	for _, w := range words {
		if !strings.Contains(r.stderr, w) {
			t.Fatalf("tlog %s: stderr should mention %q:\n%s", strings.Join(args, " "), w, r.stderr)
		}
	}
	return r
}

type cliTopic struct {
	Name              string `json:"name"`
	ID                string `json:"id"`
	ReplicationFactor int    `json:"replication_factor"`
	Configs           []struct {
		Name   string  `json:"name"`
		Value  *string `json:"value"`
		Source string  `json:"source"`
	} `json:"configs"`
	Partitions []struct {
		Partition     int32   `json:"partition"`
		Leader        int32   `json:"leader"`
		LeaderEpoch   int32   `json:"leader_epoch"`
		Replicas      []int32 `json:"replicas"`
		ISR           []int32 `json:"isr"`
		LogStart      int64   `json:"log_start_offset"`
		HighWatermark int64   `json:"high_watermark"`
	} `json:"partitions"`
}

func (d cliTopic) config(name string) (value, source string) {
	for _, c := range d.Configs {
		if c.Name == name {
			if c.Value != nil {
				value = *c.Value
			}
			return value, c.Source
		}
	}
	return "", ""
}

func cliDescribe(t *testing.T, bin, addr, topic string) cliTopic {
	t.Helper()
	r := cliOK(t, bin, addr, "", "topic", "describe", topic, "--format", "json")
	var d cliTopic
	if err := json.Unmarshal([]byte(r.stdout), &d); err != nil {
		t.Fatalf("topic describe --format json: %v\n%s", err, r.stdout)
	}
	return d
}

type cliRecord struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Offset    int64   `json:"offset"`
	Timestamp int64   `json:"timestamp"`
	Key       *string `json:"key"`
	Value     *string `json:"value"`
	Headers   []struct {
		Key   string  `json:"key"`
		Value *string `json:"value"`
	} `json:"headers"`
}

func cliRecords(t *testing.T, out string) []cliRecord {
	t.Helper()
	var recs []cliRecord
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if line == "" {
			continue
		}
		var r cliRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("consume --format json: line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

func str(p *string) string {
	if p == nil {
		return "<nil>"
	}
	return *p
}

// The tlog CLI, built and run as a process against an in-process agent:
// every topic subcommand with text and JSON output, produce with keys and
// headers, consume from the beginning, an offset, a time and the end, and
// the error paths with their exit codes and messages.
func TestCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the tlog binary")
	}
	bin := tlogtest.BuildTlog(t)
	// Flushing as tlog dev does, so reads and lookups by time span the
	// bucket and the WAL.
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket(), func(c *agent.Config) {
		c.FlushInterval = 100 * time.Millisecond
	})
	addr := a.Addr()

	t.Run("topic create", func(t *testing.T) {
		r := cliOK(t, bin, addr, "", "topic", "create", "orders", "--partitions", "3", "--config", "retention.ms=86400000")
		if !strings.Contains(r.stdout, "created topic orders") {
			t.Fatalf("create should say what it did:\n%s", r)
		}
		cliOK(t, bin, addr, "", "topic", "create", "--replication-factor", "1", "-c", "cleanup.policy=delete", "scratch")
		cliFails(t, bin, addr, 1, []string{"topic orders already exists"}, "topic", "create", "orders")
		cliFails(t, bin, addr, 1, []string{"invalid config", "foo"}, "topic", "create", "bad", "--config", "foo=bar")
		cliFails(t, bin, addr, 2, []string{"--config", "NAME=VALUE"}, "topic", "create", "bad", "--config", "foo")
		cliFails(t, bin, addr, 2, []string{"usage", "topic create NAME"}, "topic", "create")
		cliFails(t, bin, addr, 1, []string{"invalid partitions"}, "topic", "create", "bad", "--partitions", "0")
	})

	t.Run("topic list", func(t *testing.T) {
		r := cliOK(t, bin, addr, "", "topic", "list", "--format", "json")
		var list []struct {
			Name              string `json:"name"`
			Partitions        int    `json:"partitions"`
			ReplicationFactor int    `json:"replication_factor"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &list); err != nil {
			t.Fatalf("topic list --format json: %v\n%s", err, r.stdout)
		}
		if len(list) != 2 || list[0].Name != "orders" || list[0].Partitions != 3 || list[0].ReplicationFactor != 1 || list[1].Name != "scratch" {
			t.Fatalf("topic list --format json: got %+v", list)
		}
		r = cliOK(t, bin, addr, "", "topic", "list")
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 3 || strings.Join(strings.Fields(lines[0]), " ") != "NAME PARTITIONS RF" ||
			strings.Join(strings.Fields(lines[1]), " ") != "orders 3 1" {
			t.Fatalf("topic list:\n%s", r.stdout)
		}
		if strings.Index(lines[0], "PARTITIONS") != strings.Index(lines[1], "3") {
			t.Fatalf("topic list: columns not aligned:\n%s", r.stdout)
		}
		cliFails(t, bin, addr, 2, []string{"bad --format", "text or json"}, "topic", "list", "--format", "yaml")
	})

	t.Run("topic describe", func(t *testing.T) {
		d := cliDescribe(t, bin, addr, "orders")
		if d.Name != "orders" || d.ID == "" || d.ReplicationFactor != 1 || len(d.Partitions) != 3 {
			t.Fatalf("describe: %+v", d)
		}
		if v, src := d.config("retention.ms"); v != "86400000" || src != "DYNAMIC_TOPIC_CONFIG" {
			t.Fatalf("retention.ms = %q (%s), want 86400000 set on the topic", v, src)
		}
		if v, src := d.config("max.message.bytes"); v != "1048576" || src != "DEFAULT_CONFIG" {
			t.Fatalf("max.message.bytes = %q (%s), want the default 1048576", v, src)
		}
		for i, p := range d.Partitions {
			if p.Partition != int32(i) || p.Leader != 0 || len(p.Replicas) != 1 || len(p.ISR) != 1 || p.LogStart != 0 || p.HighWatermark != 0 {
				t.Fatalf("partition %d: %+v", i, p)
			}
		}
		r := cliOK(t, bin, addr, "", "topic", "describe", "orders")
		for _, w := range []string{d.ID, "retention.ms", "86400000", "DYNAMIC_TOPIC_CONFIG", "PARTITION", "LEADER", "EPOCH", "REPLICAS", "ISR", "LOG-START", "HIGH-WATERMARK"} {
			if !strings.Contains(r.stdout, w) {
				t.Fatalf("topic describe should show %q:\n%s", w, r.stdout)
			}
		}
		cliFails(t, bin, addr, 1, []string{"topic nope does not exist"}, "topic", "describe", "nope")
		cliFails(t, bin, addr, 1, []string{"topic nope does not exist"}, "topic", "describe", "nope", "--format", "json")
	})

	t.Run("topic alter", func(t *testing.T) {
		cliOK(t, bin, addr, "", "topic", "alter", "scratch", "--config", "max.message.bytes=300000", "--config", "retention.ms=60000", "--partitions", "2")
		d := cliDescribe(t, bin, addr, "scratch")
		if len(d.Partitions) != 2 {
			t.Fatalf("after --partitions 2: %d partitions", len(d.Partitions))
		}
		if v, src := d.config("max.message.bytes"); v != "300000" || src != "DYNAMIC_TOPIC_CONFIG" {
			t.Fatalf("max.message.bytes = %q (%s) after alter", v, src)
		}
		cliOK(t, bin, addr, "", "topic", "alter", "scratch", "--delete-config", "retention.ms")
		d = cliDescribe(t, bin, addr, "scratch")
		if v, src := d.config("retention.ms"); v != "604800000" || src != "DEFAULT_CONFIG" {
			t.Fatalf("retention.ms = %q (%s) after --delete-config, want the default", v, src)
		}
		if v, _ := d.config("max.message.bytes"); v != "300000" {
			t.Fatalf("--delete-config retention.ms changed max.message.bytes to %q", v)
		}
		cliFails(t, bin, addr, 1, []string{"already has 2 partitions", "only be added"}, "topic", "alter", "scratch", "--partitions", "1")
		cliFails(t, bin, addr, 1, []string{"invalid config"}, "topic", "alter", "scratch", "--config", "cleanup.policy=archive")
		cliFails(t, bin, addr, 1, []string{"topic nope does not exist"}, "topic", "alter", "nope", "--config", "retention.ms=1")
		cliFails(t, bin, addr, 2, []string{"nothing to change"}, "topic", "alter", "scratch")
	})

	t.Run("produce and consume", func(t *testing.T) {
		in := "order-1:prepared\norder-2:prepared\norder-1:shipped\nno key here\norder-2:note: has a colon\n"
		r := cliOK(t, bin, addr, in, "produce", "orders", "--key-separator", ":", "--header", "src=cli", "--header", "trace=a=b")
		if !strings.Contains(r.stderr, "produced 5 records to orders") {
			t.Fatalf("produce should report what it did on stderr:\n%s", r)
		}
		if r.stdout != "" {
			t.Fatalf("produce printed on stdout: %q", r.stdout)
		}

		recs := cliRecords(t, cliOK(t, bin, addr, "", "consume", "orders", "--exit", "--format", "json").stdout)
		if len(recs) != 5 {
			t.Fatalf("consume --exit --format json: %d records, want 5", len(recs))
		}
		got := map[string]cliRecord{} // "key=value" → record
		next := map[int32]int64{}
		for _, rec := range recs {
			if rec.Topic != "orders" || rec.Timestamp < time.Now().Add(-time.Minute).UnixMilli() {
				t.Fatalf("record %+v", rec)
			}
			if rec.Offset != next[rec.Partition] {
				t.Fatalf("partition %d: offset %d, want %d", rec.Partition, rec.Offset, next[rec.Partition])
			}
			next[rec.Partition]++
			if len(rec.Headers) != 2 || rec.Headers[0].Key != "src" || str(rec.Headers[0].Value) != "cli" ||
				rec.Headers[1].Key != "trace" || str(rec.Headers[1].Value) != "a=b" {
				t.Fatalf("headers of %+v", rec)
			}
			got[str(rec.Key)+"="+str(rec.Value)] = rec
		}
		for _, kv := range []string{"order-1=prepared", "order-2=prepared", "order-1=shipped", "<nil>=no key here", "order-2=note: has a colon"} {
			if _, ok := got[kv]; !ok {
				t.Fatalf("%s not consumed; got %v", kv, got)
			}
		}
		o0, o1 := got["order-1=prepared"], got["order-1=shipped"]
		if o0.Partition != o1.Partition || o0.Offset != 0 || o1.Offset != 1 {
			t.Fatalf("order-1's records at %d/%d and %d/%d: want one partition, in order", o0.Partition, o0.Offset, o1.Partition, o1.Offset)
		}

		// A format string, and the high watermarks in describe.
		out := cliOK(t, bin, addr, "", "consume", "orders", "--exit", "--partition", fmt.Sprint(o1.Partition),
			"--format", `%t|%k=%v|p%p@%o|%h|%T\n`).stdout
		var want string
		for _, rec := range recs { // in offset order within a partition
			if rec.Partition == o1.Partition {
				k := str(rec.Key)
				if rec.Key == nil {
					k = ""
				}
				want += fmt.Sprintf("orders|%s=%s|p%d@%d|src=cli,trace=a=b|%d\n", k, str(rec.Value), rec.Partition, rec.Offset, rec.Timestamp)
			}
		}
		if !strings.HasPrefix(want, "orders|order-1=prepared|") {
			t.Fatalf("want %q", want)
		}
		if out != want {
			t.Fatalf("consume --format:\n%s\nwant:\n%s", out, want)
		}
		var hw int64
		for _, p := range cliDescribe(t, bin, addr, "orders").Partitions {
			hw += p.HighWatermark
		}
		if hw != 5 {
			t.Fatalf("describe: high watermarks sum to %d, want 5", hw)
		}

		// -n stops after COUNT records; the default format is the value.
		out = cliOK(t, bin, addr, "", "consume", "orders", "-n", "2").stdout
		if lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n"); len(lines) != 2 {
			t.Fatalf("consume -n 2: %q", out)
		}
		// --from OFFSET, in every partition.
		recs = cliRecords(t, cliOK(t, bin, addr, "", "consume", "orders", "--from", "1", "--exit", "--format", "json").stdout)
		if len(recs) != 5-len(next) {
			t.Fatalf("--from 1: %d records, want %d", len(recs), 5-len(next))
		}
		for _, rec := range recs {
			if rec.Offset < 1 {
				t.Fatalf("--from 1 returned offset %d", rec.Offset)
			}
		}
		// --from end --exit: nothing to read.
		if out := cliOK(t, bin, addr, "", "consume", "orders", "--from", "end", "--exit").stdout; out != "" {
			t.Fatalf("--from end --exit printed %q", out)
		}
	})

	t.Run("consume from a time", func(t *testing.T) {
		cliOK(t, bin, addr, "", "topic", "create", "timed", "--partitions", "2")
		cliOK(t, bin, addr, "before-1\nbefore-2\n", "produce", "timed", "--partition", "0")
		cliOK(t, bin, addr, "before-3\n", "produce", "timed", "--partition", "1")
		time.Sleep(20 * time.Millisecond)
		at := time.Now().UnixMilli()
		time.Sleep(20 * time.Millisecond)
		cliOK(t, bin, addr, "after-1\n", "produce", "timed", "--partition", "0")
		cliOK(t, bin, addr, "after-2\n", "produce", "timed", "--partition", "1")
		// Looked up in flushed history, as a time in the past usually is.
		tlogtest.CheckFor(t, 15*time.Second, 100*time.Millisecond, func() error {
			var v struct {
				Partitions []struct {
					Topic      string `json:"topic"`
					FlushedEnd int64  `json:"flushed_end"`
					HW         int64  `json:"high_watermark"`
				} `json:"partitions"`
			}
			if err := json.Unmarshal([]byte(cliOK(t, bin, addr, "", "cluster", "status", "--format", "json").stdout), &v); err != nil {
				return err
			}
			for _, p := range v.Partitions {
				if p.Topic == "timed" && (p.HW == 0 || p.FlushedEnd != p.HW) {
					return fmt.Errorf("timed: flushed to %d of %d", p.FlushedEnd, p.HW)
				}
			}
			return nil
		})
		out := cliOK(t, bin, addr, "", "consume", "timed", "--from", fmt.Sprintf("@%d", at), "--exit").stdout
		if got := strings.Fields(out); len(got) != 2 || !strings.HasPrefix(got[0], "after-") || !strings.HasPrefix(got[1], "after-") {
			t.Fatalf("--from @%d: %q, want the two records produced after it", at, out)
		}
		if out := cliOK(t, bin, addr, "", "consume", "timed", "--from", "@0", "--exit").stdout; len(strings.Fields(out)) != 5 {
			t.Fatalf("--from @0: %q, want all 5 records", out)
		}
		recs := cliRecords(t, cliOK(t, bin, addr, "", "consume", "timed", "--from", "-1", "--exit", "--format", "json").stdout)
		if len(recs) != 2 || !strings.HasPrefix(str(recs[0].Value), "after-") || !strings.HasPrefix(str(recs[1].Value), "after-") {
			t.Fatalf("--from -1: %+v, want the last record of each of 2 partitions", recs)
		}
	})

	t.Run("consume from the end", func(t *testing.T) {
		// The consumer only sees records produced after it started; keep
		// producing until it has read two and exited.
		cmd := exec.Command(bin, "--brokers", addr, "consume", "timed", "--from", "end", "-n", "2")
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		deadline := time.After(20 * time.Second)
		for i := 0; ; i++ {
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("consume --from end -n 2: %v\n%s", err, errb.String())
				}
				lines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
				if len(lines) != 2 || !strings.HasPrefix(lines[0], "late-") || !strings.HasPrefix(lines[1], "late-") {
					t.Fatalf("consume --from end -n 2: %q, want two late records", out.String())
				}
				return
			case <-deadline:
				cmd.Process.Kill()
				t.Fatalf("consume --from end -n 2 did not exit; printed %q\n%s", out.String(), errb.String())
			case <-time.After(200 * time.Millisecond):
				cliOK(t, bin, addr, fmt.Sprintf("late-%d\n", i), "produce", "timed", "--quiet")
			}
		}
	})

	t.Run("produce options", func(t *testing.T) {
		// --partition, --acks 1, --file, and a long line (scratch allows
		// 300000 bytes).
		long := strings.Repeat("x", 250_000)
		path := filepath.Join(t.TempDir(), "in.txt")
		if err := os.WriteFile(path, []byte("k1\tshort\n"+long+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		r := cliOK(t, bin, addr, "", "produce", "scratch", "--file", path, "--partition", "1", "--acks", "1", "--key-separator", `\t`)
		if !strings.Contains(r.stderr, "produced 2 records to scratch") {
			t.Fatalf("produce --file:\n%s", r)
		}
		recs := cliRecords(t, cliOK(t, bin, addr, "", "consume", "scratch", "--exit", "--format", "json").stdout)
		if len(recs) != 2 || recs[0].Partition != 1 || str(recs[0].Key) != "k1" || str(recs[0].Value) != "short" ||
			len(str(recs[1].Value)) != len(long) || recs[1].Key != nil || len(recs[0].Headers) != 0 {
			t.Fatalf("consume after produce --file: %d records %+v", len(recs), recs[0])
		}
		too := strings.Repeat("y", 400_000) + "\n"
		cliFails(t, bin, addr, 1, []string{"max.message.bytes"}, "produce", "scratch", "--file", writeTemp(t, too))
		cliFails(t, bin, addr, 1, []string{"no partition 7"}, "produce", "scratch", "--partition", "7")
		cliFails(t, bin, addr, 2, []string{"bad --acks"}, "produce", "scratch", "--acks", "2")
		cliFails(t, bin, addr, 2, []string{"--header", "NAME=VALUE"}, "produce", "scratch", "--header", "nokv")
		// -q: nothing on stderr.
		if r := cliOK(t, bin, addr, "q\n", "produce", "scratch", "-q"); r.stderr != "" {
			t.Fatalf("produce -q printed %q", r.stderr)
		}
	})

	t.Run("produce --format", func(t *testing.T) {
		cliOK(t, bin, addr, "", "topic", "create", "formatted", "--partitions", "3")
		in := "[2] 1733100000000 order-1 src=web,trace=a=b shipped now\n" +
			"[0] 1733100000500 order-2  prepared\n"
		r := cliOK(t, bin, addr, in, "produce", "formatted", "--format", "[%p] %T %k %h %v", "--header", "via=cli")
		if !strings.Contains(r.stderr, "produced 2 records to formatted") {
			t.Fatalf("produce --format:\n%s", r)
		}
		recs := cliRecords(t, cliOK(t, bin, addr, "", "consume", "formatted", "--exit", "--format", "json").stdout)
		if len(recs) != 2 {
			t.Fatalf("consume after produce --format: %d records, want 2", len(recs))
		}
		byKey := map[string]cliRecord{}
		for _, rec := range recs {
			byKey[str(rec.Key)] = rec
		}
		o1, o2 := byKey["order-1"], byKey["order-2"]
		if o1.Partition != 2 || o1.Timestamp != 1733100000000 || str(o1.Value) != "shipped now" || len(o1.Headers) != 3 ||
			o1.Headers[0].Key != "via" || o1.Headers[1].Key != "src" || str(o1.Headers[1].Value) != "web" ||
			o1.Headers[2].Key != "trace" || str(o1.Headers[2].Value) != "a=b" {
			t.Fatalf("order-1 produced with --format: %+v", o1)
		}
		if o2.Partition != 0 || o2.Timestamp != 1733100000500 || str(o2.Value) != "prepared" || len(o2.Headers) != 1 {
			t.Fatalf("order-2 produced with --format: %+v", o2)
		}

		// A line that does not match stops the run after the lines before it.
		r = cliFails(t, bin, addr, 1, []string{"line 2 does not match --format", `expected "=" after %k`},
			"produce", "formatted", "--format", "%k=%v", "--file", writeTemp(t, "a=1\nno equals sign\nb=2\n"))
		if !strings.Contains(r.stderr, "produced 1 record to formatted") {
			t.Fatalf("produce stopped at a bad line should say what it produced:\n%s", r)
		}
		cliFails(t, bin, addr, 1, []string{"line 1 names partition 5", "has 3 partitions"},
			"produce", "formatted", "--format", "%p:%v", "--file", writeTemp(t, "5:x\n"))
		cliFails(t, bin, addr, 2, []string{"bad --format", "no text between"}, "produce", "formatted", "--format", "%k%v")
		cliFails(t, bin, addr, 2, []string{"not both"}, "produce", "formatted", "--format", "%k:%v", "--key-separator", ":")
		cliFails(t, bin, addr, 2, []string{"not both"}, "produce", "formatted", "--format", "%p:%v", "--partition", "1")
		if n := len(cliRecords(t, cliOK(t, bin, addr, "", "consume", "formatted", "--exit", "--format", "json").stdout)); n != 3 {
			t.Fatalf("formatted holds %d records after the failed runs, want 3", n)
		}
	})

	t.Run("consume errors", func(t *testing.T) {
		cliFails(t, bin, addr, 1, []string{"topic nope does not exist"}, "consume", "nope")
		cliFails(t, bin, addr, 2, []string{"bad --from", "beginning", "end", "@"}, "consume", "orders", "--from", "yesterday")
		cliFails(t, bin, addr, 2, []string{"bad --from"}, "consume", "orders", "--from", "@soon")
		cliFails(t, bin, addr, 2, []string{"bad --format", "%q"}, "consume", "orders", "--format", "%q")
		cliFails(t, bin, addr, 1, []string{"no partition 9"}, "consume", "orders", "--partition", "9")
		cliFails(t, bin, addr, 2, []string{"usage", "consume TOPIC"}, "consume")
	})

	t.Run("topic delete", func(t *testing.T) {
		r := cliOK(t, bin, addr, "", "topic", "delete", "scratch")
		if !strings.Contains(r.stdout, "deleted topic scratch") {
			t.Fatalf("delete:\n%s", r)
		}
		if out := cliOK(t, bin, addr, "", "topic", "list").stdout; strings.Contains(out, "scratch") {
			t.Fatalf("scratch still listed after delete:\n%s", out)
		}
		cliFails(t, bin, addr, 1, []string{"topic scratch does not exist"}, "topic", "delete", "scratch")
	})

	t.Run("TLOG_BROKERS", func(t *testing.T) {
		cmd := exec.Command(bin, "topic", "list", "--format", "json")
		cmd.Env = append(os.Environ(), "TLOG_BROKERS="+addr)
		out, err := cmd.Output()
		if err != nil || !strings.Contains(string(out), `"orders"`) {
			t.Fatalf("topic list with TLOG_BROKERS: %v\n%s", err, out)
		}
	})

	t.Run("no agent", func(t *testing.T) {
		closed := tlogtest.FreeAddr(t)
		for _, args := range [][]string{
			{"topic", "list"},
			{"topic", "create", "x"},
			{"topic", "describe", "x"},
			{"produce", "x"},
			{"consume", "x"},
		} {
			r := cliFails(t, bin, closed, 1, []string{"cannot reach a tlog agent at " + closed, "--brokers", "TLOG_BROKERS"}, args...)
			if r.took > 10*time.Second {
				t.Fatalf("tlog %s took %v to give up", strings.Join(args, " "), r.took)
			}
		}
	})
}

func writeTemp(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "input")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// tlog consume --group and tlog group list|describe|reset-offsets|delete,
// with JSON output parsed and checked and their error paths.
func TestCLIGroups(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the tlog binary")
	}
	bin := tlogtest.BuildTlog(t)
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket(), func(c *agent.Config) {
		c.GroupInitialRebalanceDelay = 100 * time.Millisecond
	})
	addr := a.Addr()
	cliOK(t, bin, addr, "", "topic", "create", "events", "--partitions", "3")
	var in strings.Builder
	for i := 0; i < 30; i++ {
		fmt.Fprintf(&in, "k%d:e%d\n", i%7, i)
	}
	cliOK(t, bin, addr, in.String(), "produce", "events", "--key-separator", ":")

	// A group reads ten, commits them, and the next run resumes after them.
	first := cliRecords(t, cliOK(t, bin, addr, "", "consume", "events", "--group", "g1", "-n", "10", "--format", "json").stdout)
	rest := cliRecords(t, cliOK(t, bin, addr, "", "consume", "events", "--group", "g1", "--exit", "--format", "json").stdout)
	seen := map[string]bool{}
	for _, r := range append(first, rest...) {
		if seen[str(r.Value)] {
			t.Fatalf("%s read twice by one group", str(r.Value))
		}
		seen[str(r.Value)] = true
	}
	if len(first) != 10 || len(seen) != 30 {
		t.Fatalf("group read %d then %d records (%d distinct), want 10 then 20", len(first), len(rest), len(seen))
	}

	type listed struct {
		Group   string `json:"group"`
		State   string `json:"state"`
		Members int    `json:"members"`
	}
	var groups []listed
	if err := json.Unmarshal([]byte(cliOK(t, bin, addr, "", "group", "list", "--format", "json").stdout), &groups); err != nil {
		t.Fatal(err)
	}
	if len(groups) != 1 || groups[0].Group != "g1" || groups[0].State != "Empty" || groups[0].Members != 0 {
		t.Fatalf("group list: %+v", groups)
	}
	if out := cliOK(t, bin, addr, "", "group", "list").stdout; !strings.Contains(out, "GROUP") || !strings.Contains(out, "g1") || !strings.Contains(out, "classic") {
		t.Fatalf("group list text:\n%s", out)
	}

	// The consumer protocol (KIP-848): the broker assigns the partitions.
	kip848 := cliRecords(t, cliOK(t, bin, addr, "", "consume", "events", "--group", "g848", "--group-protocol", "consumer", "--exit", "--format", "json").stdout)
	if len(kip848) != 30 {
		t.Fatalf("a consumer-protocol group read %d records, want 30", len(kip848))
	}
	type typed struct {
		Group string `json:"group"`
		Type  string `json:"type"`
	}
	var types []typed
	if err := json.Unmarshal([]byte(cliOK(t, bin, addr, "", "group", "list", "--format", "json").stdout), &types); err != nil {
		t.Fatal(err)
	}
	if len(types) != 2 || types[0] != (typed{"g1", "classic"}) || types[1] != (typed{"g848", "consumer"}) {
		t.Fatalf("group list types: %+v", types)
	}
	if out := cliOK(t, bin, addr, "", "group", "describe", "g848").stdout; !strings.Contains(out, "Total lag:   0") {
		t.Fatalf("describe of a consumer-protocol group:\n%s", out)
	}
	cliOK(t, bin, addr, "", "group", "delete", "g848")
	cliFails(t, bin, addr, 2, []string{"bad --group-protocol"}, "consume", "events", "--group", "g1", "--group-protocol", "eager")
	type described struct {
		Group    string `json:"group"`
		State    string `json:"state"`
		TotalLag int64  `json:"total_lag"`
		Members  []struct {
			ID         string   `json:"id"`
			Partitions []string `json:"partitions"`
		} `json:"members"`
		Offsets []struct {
			Partition int32 `json:"partition"`
			Committed int64 `json:"committed"`
			End       int64 `json:"end"`
			Lag       int64 `json:"lag"`
		} `json:"offsets"`
	}
	describe := func() described {
		var d described
		if err := json.Unmarshal([]byte(cliOK(t, bin, addr, "", "group", "describe", "g1", "--format", "json").stdout), &d); err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := describe()
	var committed int64
	for _, o := range d.Offsets {
		committed += o.Committed
	}
	if d.State != "Empty" || d.TotalLag != 0 || committed != 30 || len(d.Offsets) != 3 {
		t.Fatalf("group describe: %+v", d)
	}
	if out := cliOK(t, bin, addr, "", "group", "describe", "g1").stdout; !strings.Contains(out, "LAG") || !strings.Contains(out, "Total lag:   0") {
		t.Fatalf("group describe text:\n%s", out)
	}

	// Resets: a dry run changes nothing; a real one rewinds the group.
	cliOK(t, bin, addr, "", "group", "reset-offsets", "g1", "--topic", "events", "--to", "earliest", "--dry-run")
	if d := describe(); d.TotalLag != 0 {
		t.Fatalf("a dry run moved offsets: lag %d", d.TotalLag)
	}
	cliOK(t, bin, addr, "", "group", "reset-offsets", "g1", "--topic", "events", "--to", "earliest")
	if d := describe(); d.TotalLag != 30 {
		t.Fatalf("after reset to earliest: lag %d, want 30", d.TotalLag)
	}
	cliOK(t, bin, addr, "", "group", "reset-offsets", "g1", "--topic", "events", "--partition", "0", "--to", "latest")

	// Not while the group has a member.
	member := exec.Command(bin, "--brokers", addr, "consume", "events", "--group", "g1")
	member.Env = append(os.Environ(), "TLOG_BROKERS=")
	if err := member.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { member.Process.Kill(); member.Wait() })
	tlogtest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		if d := describe(); len(d.Members) != 1 || len(d.Members[0].Partitions) != 3 {
			return fmt.Errorf("group %s with %d members", d.State, len(d.Members))
		}
		return nil
	})
	cliFails(t, bin, addr, 1, []string{"group g1 has active members"}, "group", "reset-offsets", "g1", "--topic", "events", "--to", "latest")
	cliFails(t, bin, addr, 1, []string{"group g1 has active members"}, "group", "delete", "g1")
	member.Process.Signal(os.Interrupt) // leaves the group
	member.Wait()
	tlogtest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		if d := describe(); d.State != "Empty" {
			return fmt.Errorf("group %s", d.State)
		}
		return nil
	})
	if r := cliOK(t, bin, addr, "", "group", "delete", "g1"); !strings.Contains(r.stdout, "deleted group g1") {
		t.Fatalf("delete: %s", r)
	}

	cliFails(t, bin, addr, 1, []string{"group g1 does not exist"}, "group", "delete", "g1")
	cliFails(t, bin, addr, 1, []string{"group nosuch does not exist"}, "group", "describe", "nosuch")
	cliFails(t, bin, addr, 2, []string{"--topic is required"}, "group", "reset-offsets", "g2")
	cliFails(t, bin, addr, 2, []string{"bad --to"}, "group", "reset-offsets", "g2", "--topic", "events", "--to", "soon")
	cliFails(t, bin, addr, 1, []string{"topic nope does not exist"}, "group", "reset-offsets", "g2", "--topic", "nope")
	cliFails(t, bin, addr, 2, []string{"--partition and --group"}, "consume", "events", "--group", "g2", "--partition", "1")
	cliFails(t, bin, addr, 2, []string{"bad --format"}, "group", "list", "--format", "yaml")
}

// tlog bench produce, consume and e2e report throughput and latency as
// JSON, and refuse bad arguments.
func TestCLIBench(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the tlog binary")
	}
	bin := tlogtest.BuildTlog(t)
	addr := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket()).Addr()
	type result struct {
		Mode       string  `json:"mode"`
		Records    int64   `json:"records"`
		RecordsSec float64 `json:"records_per_sec"`
		P50Ms      float64 `json:"p50_ms"`
		P99Ms      float64 `json:"p99_ms"`
		E2EP50Ms   float64 `json:"e2e_p50_ms"`
		E2EP99Ms   float64 `json:"e2e_p99_ms"`
		Errors     int64   `json:"errors"`
	}
	parse := func(r cliResult) result {
		var res result
		if err := json.Unmarshal([]byte(strings.TrimSpace(r.stdout)), &res); err != nil {
			t.Fatalf("bench JSON: %v\n%s", err, r)
		}
		return res
	}
	p := parse(cliOK(t, bin, addr, "", "bench", "produce", "--topic", "b", "--partitions", "2", "-n", "3000", "--record-size", "100", "--format", "json"))
	if p.Records != 3000 || p.RecordsSec <= 0 || p.P50Ms <= 0 || p.P99Ms < p.P50Ms || p.Errors != 0 {
		t.Fatalf("bench produce: %+v", p)
	}
	c := parse(cliOK(t, bin, addr, "", "bench", "consume", "--topic", "b", "-n", "3000", "--format", "json"))
	if c.Records != 3000 || c.RecordsSec <= 0 {
		t.Fatalf("bench consume: %+v", c)
	}
	e := parse(cliOK(t, bin, addr, "", "bench", "e2e", "--topic", "e", "-n", "500", "--rate", "2000", "--format", "json"))
	if e.Records != 500 || e.E2EP50Ms <= 0 || e.E2EP99Ms < e.E2EP50Ms {
		t.Fatalf("bench e2e: %+v", e)
	}
	if out := cliOK(t, bin, addr, "", "bench", "produce", "--topic", "b", "-n", "100").stdout; !strings.Contains(out, "records/s") || !strings.Contains(out, "p99") {
		t.Fatalf("bench produce text: %s", out)
	}
	cliFails(t, bin, addr, 2, []string{"--records must be positive"}, "bench", "produce", "-n", "0")
	cliFails(t, bin, addr, 2, []string{"bad --acks"}, "bench", "produce", "--acks", "2")
	cliFails(t, bin, addr, 2, []string{"--record-size at least 8"}, "bench", "e2e", "--record-size", "4")
	// No agent there: the message every other command gives.
	cliFails(t, bin, "127.0.0.1:1", 1, []string{"cannot reach a tlog agent at 127.0.0.1:1", "--brokers"}, "bench", "produce", "-n", "10")
}

// tlog produce stops on the first Ctrl-C even when the agent never
// answers (paused after the first record, and before it was reached at
// all), saying how many records were left without an acknowledgement.
func TestCLIProduceStopsOnFirstInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a tlog process")
	}
	bin := tlogtest.BuildTlog(t)
	dev := tlogtest.StartDev(t, bin, t.TempDir())
	cliOK(t, bin, dev.Addr, "", "topic", "create", "stuck", "--partitions", "1")
	for _, when := range []string{"while waiting for acknowledgements", "while connecting"} {
		cmd := exec.Command(bin, "--brokers", dev.Addr, "produce", "stuck")
		cmd.Env = append(os.Environ(), "TLOG_BROKERS=")
		in, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		var errb bytes.Buffer
		cmd.Stderr = &errb
		if when == "while connecting" {
			dev.Pause()
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		if when == "while waiting for acknowledgements" {
			io.WriteString(in, "first\n")
			time.Sleep(1500 * time.Millisecond) // connected, first record acknowledged
			dev.Pause()
			io.WriteString(in, "second\nthird\n")
		}
		time.Sleep(time.Second)
		sent := time.Now()
		cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-done:
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 {
				t.Fatalf("%s: exit %v\n%s", when, err, errb.String())
			}
			if !strings.Contains(errb.String(), "interrupted") {
				t.Fatalf("%s: stderr: %s", when, errb.String())
			}
			if when == "while waiting for acknowledgements" && !strings.Contains(errb.String(), "2 records unacknowledged") {
				t.Fatalf("%s: stderr: %s", when, errb.String())
			}
			t.Logf("%s: stopped %v after Ctrl-C: %s", when, time.Since(sent).Round(time.Millisecond), strings.TrimSpace(errb.String()))
		case <-time.After(5 * time.Second):
			cmd.Process.Signal(syscall.SIGQUIT) // a goroutine dump for the failure
			<-done
			t.Fatalf("%s: still running 5 s after Ctrl-C\n%s", when, errb.String())
		}
		in.Close()
		dev.Resume()
	}
}

// The completion scripts complete commands and flags by asking the binary:
// bash through its script (when bash is here), fish's generated script
// names every command.
func TestCLICompletion(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the tlog binary")
	}
	bin := tlogtest.BuildTlog(t)
	if r := cliOK(t, bin, "", "", "completion", "fish"); !strings.Contains(r.stdout, "complete -c tlog") || !strings.Contains(r.stdout, "reset-offsets") {
		t.Fatalf("fish completion:\n%s", r.stdout)
	}
	cliFails(t, bin, "", 2, []string{"unknown shell", "ksh"}, "completion", "ksh")
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash to run the bash completion in")
	}
	// The script calls `tlog`: put the binary on PATH under that name.
	dir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(dir, "tlog")); err != nil {
		t.Fatal(err)
	}
	complete := func(words ...string) string {
		script := fmt.Sprintf(`source <(tlog completion bash)
COMP_WORDS=(%s); COMP_CWORD=%d; _tlog_complete; echo "${COMPREPLY[*]}"`, strings.Join(words, " "), len(words)-1)
		cmd := exec.Command(bash, "-c", script)
		cmd.Env = append(os.Environ(), "PATH="+dir+string(os.PathListSeparator)+os.Getenv("PATH"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash completion of %q: %v\n%s", words, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"tlog", "top"}, "topic"},
		{[]string{"tlog", "topic", "cr"}, "create"},
		{[]string{"tlog", "consume", "--gr"}, "--group --group-protocol"},
	} {
		if got := complete(tc.words...); got != tc.want {
			t.Errorf("completing %q: %q, want %q", tc.words, got, tc.want)
		}
	}
}

// A consume with a count shows its progress on a terminal (stderr a tty,
// stdout redirected) and, stopped with Ctrl-C before the count, exits at
// once having written every record it read.
func TestCLIConsumeProgressAndInterrupt(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a tlog process")
	}
	bin := tlogtest.BuildTlog(t)
	dev := tlogtest.StartDev(t, bin, t.TempDir())
	cliOK(t, bin, dev.Addr, "", "topic", "create", "progress", "--partitions", "1")
	cliOK(t, bin, dev.Addr, strings.Repeat("record\n", 1000), "produce", "progress", "-q")

	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal here: %v", err)
	}
	defer ptmx.Close()
	outPath := filepath.Join(t.TempDir(), "out")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(bin, "consume", "progress", "-b", dev.Addr, "-c", "2000")
	cmd.Env = append(os.Environ(), "TLOG_BROKERS=")
	cmd.Stdout, cmd.Stderr = out, tty
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	tty.Close()
	var mu sync.Mutex
	var seen strings.Builder
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			mu.Lock()
			seen.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tlogtest.CheckFor(t, 15*time.Second, 100*time.Millisecond, func() error {
		mu.Lock()
		defer mu.Unlock()
		if !strings.Contains(seen.String(), "consumed 1000/2000 records (50%)") {
			return fmt.Errorf("no progress line on the terminal yet: %q", seen.String())
		}
		return nil
	})
	sent := time.Now()
	cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("consume stopped with Ctrl-C: %v", err)
		}
	case <-time.After(5 * time.Second):
		cmd.Process.Kill()
		t.Fatal("consume still running 5 s after Ctrl-C")
	}
	b, err := os.ReadFile(outPath)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(string(b), "record\n"); got != 1000 {
		t.Fatalf("consume wrote %d records before Ctrl-C, want the 1000 it read", got)
	}
	t.Logf("stopped %v after Ctrl-C with 1000 records written", time.Since(sent).Round(time.Millisecond))
}
