package tests

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tlog-io/tlog/tests/tlogtest"
)

// skipMarker, on the line before a ```sh fence, keeps a block out of the
// run (with the reason after it): a command in the foreground, the suite
// itself, an install the test does its own way.
const skipMarker = "<!-- readme-test: skip"

// shellBlock is one ```sh block of a Markdown file and the line it starts on.
type shellBlock struct {
	line int
	text string
}

// shellBlocks returns the ```sh blocks of the Markdown file at path, in
// order, without the ones marked to skip.
func shellBlocks(t *testing.T, path string) []shellBlock {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var blocks []shellBlock
	var cur *shellBlock
	prev := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch {
		case cur != nil && strings.TrimSpace(line) == "```":
			blocks = append(blocks, *cur)
			cur = nil
		case cur != nil:
			cur.text += line + "\n"
		case strings.TrimSpace(line) == "```sh" && !strings.HasPrefix(strings.TrimSpace(prev), skipMarker):
			cur = &shellBlock{line: n + 1}
		}
		if strings.TrimSpace(line) != "" {
			prev = line
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if cur != nil {
		t.Fatalf("%s: the block from line %d is never closed", path, cur.line)
	}
	return blocks
}

// runShellBlocks runs the file's blocks as one bash script in dir, as a
// reader pasting them into one terminal would (background jobs and
// exported variables carry over), with a fresh build of tlog on PATH as
// `tlog`, and fails on the first command that fails. Whatever the script
// left running is stopped at the end.
func runShellBlocks(t *testing.T, path, dir string, env []string) {
	t.Helper()
	blocks := shellBlocks(t, path)
	if len(blocks) == 0 {
		t.Fatalf("%s has no shell blocks to run", path)
	}
	binDir := t.TempDir()
	if err := os.Symlink(tlogtest.BuildTlog(t), filepath.Join(binDir, "tlog")); err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for _, b := range blocks {
		fmt.Fprintf(&script, "echo '=== %s:%d' >&2\nset -x\n%sset +x\n", filepath.Base(path), b.line, b.text)
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = dir
	// A reader's shell: tlog's own variables unset, the build first on PATH.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "TLOG_") && !strings.HasPrefix(kv, "PATH=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, "PATH="+binDir+string(os.PathListSeparator)+os.Getenv("PATH")), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// A file, not a pipe: the jobs left in the background hold the
	// output open, and Wait would wait for them.
	outFile, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer outFile.Close()
	cmd.Stdout, cmd.Stderr = outFile, outFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	out := func() string {
		b, _ := os.ReadFile(outFile.Name())
		return string(b)
	}
	stopGroup := func() {
		// The agents the blocks left in the background, then anything
		// that ignored that.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		time.Sleep(3 * time.Second)
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		stopGroup()
		if err != nil {
			t.Fatalf("%s, run as written, failed: %v\n%s", path, err, out())
		}
	case <-time.After(5 * time.Minute):
		stopGroup()
		<-done
		t.Fatalf("%s, run as written, still running after 5 minutes\n%s", path, out())
	}
	t.Logf("%s ran as written (%d blocks):\n%s", path, len(blocks), out())
}

func readmeGate(t *testing.T) {
	t.Helper()
	if os.Getenv("TLOG_README") == "" {
		t.Skip("set TLOG_README=1 to run the README's shell blocks as written (.ci/run does; it needs kcat and ports 9091-9094, 9191-9194)")
	}
}

// TestREADME runs README.md's shell blocks top to bottom in a fresh
// directory, so the README cannot drift from the product.
func TestREADME(t *testing.T) {
	readmeGate(t)
	kcatPath(t)
	runShellBlocks(t, filepath.Join("..", "README.md"), t.TempDir(), nil)
}

// TestExamplesREADME does the same for examples/README.md, from the
// repository's root (its blocks `go run ./examples/…`), with the dev
// agent's data in a fresh directory (TLOG_DATA).
func TestExamplesREADME(t *testing.T) {
	readmeGate(t)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	runShellBlocks(t, filepath.Join(root, "examples", "README.md"), root, []string{"TLOG_DATA=" + filepath.Join(t.TempDir(), "tlog-data")})
}

// The block extraction itself: fences, the skip marker, line numbers.
func TestShellBlocks(t *testing.T) {
	md := filepath.Join(t.TempDir(), "x.md")
	os.WriteFile(md, []byte("# x\n\n```sh\necho one\n```\n\n<!-- readme-test: skip (why) -->\n```sh\necho skipped\n```\n```go\nfmt.Println()\n```\n```sh\necho two\necho three\n```\n"), 0o644)
	got := shellBlocks(t, md)
	want := []shellBlock{{4, "echo one\n"}, {15, "echo two\necho three\n"}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("blocks %+v, want %+v", got, want)
	}
}
