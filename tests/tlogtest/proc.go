package tlogtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// repoRoot finds the module root from this file's location.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// BuildTlog builds cmd/tlog once per test binary and returns its path.
func BuildTlog(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tlog-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "tlog")
		cmd := exec.Command("go", "build", "-o", buildBin, "./cmd/tlog")
		cmd.Dir = repoRoot()
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/tlog: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildBin
}

// Proc is a tlog process started by a test.
type Proc struct {
	t    testing.TB
	cmd  *exec.Cmd
	Addr string
	Log  string // path of its combined output
	done chan struct{}
	err  error
}

// StartDev runs `tlog dev --data dataDir --listen <free port> args...` and
// waits until it answers Kafka requests.
func StartDev(t testing.TB, bin, dataDir string, args ...string) *Proc {
	t.Helper()
	addr := FreeAddr(t)
	full := append([]string{"dev", "--data", dataDir, "--listen", addr}, args...)
	return StartProc(t, bin, addr, full...)
}

// StartProc runs bin with args and waits for Kafka on addr.
func StartProc(t testing.TB, bin, addr string, args ...string) *Proc {
	t.Helper()
	p, err := TryStartProc(t, bin, addr, args...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TryStartProc is StartProc returning an error instead of failing.
func TryStartProc(t testing.TB, bin, addr string, args ...string) (*Proc, error) {
	t.Helper()
	logf, err := os.CreateTemp(t.TempDir(), "tlog-*.log")
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Proc{t: t, cmd: cmd, Addr: addr, Log: logf.Name(), done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		logf.Close()
		close(p.done)
	}()
	t.Cleanup(func() { p.Kill() })
	if err := p.waitReady(30 * time.Second); err != nil {
		p.Kill()
		return nil, fmt.Errorf("tlog %s: %v\n%s", strings.Join(args, " "), err, p.Output())
	}
	return p, nil
}

func (p *Proc) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("exited early: %v", p.err)
		default:
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(p.Addr), kgo.DialTimeout(time.Second))
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err = cl.Ping(ctx)
			cancel()
			cl.Close()
			if err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %v: %v", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Output returns what the process printed so far.
func (p *Proc) Output() string {
	b, _ := os.ReadFile(p.Log)
	return string(b)
}

// Kill sends SIGKILL and waits for the process to exit.
func (p *Proc) Kill() {
	if p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
	}
	<-p.done
}

// Stop sends SIGTERM and waits; it returns the exit error, if any.
func (p *Proc) Stop(timeout time.Duration) error {
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("did not exit within %v of SIGTERM", timeout)
	}
}

// Pause stops the process (SIGSTOP): it keeps its sockets and memory but
// runs nothing until Resume.
func (p *Proc) Pause() { p.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused process (SIGCONT).
func (p *Proc) Resume() { p.cmd.Process.Signal(syscall.SIGCONT) }

// Exited reports whether the process has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ProcCluster is N `tlog agent` processes on one bucket, each with fixed
// loopback addresses and its own data directory, so a killed agent
// restarts as itself.
type ProcCluster struct {
	t      testing.TB
	bin    string
	Bucket string
	Extra  []string
	Agents []*ProcAgent
}

// ProcAgent is one agent slot; P is the running process (nil while down).
type ProcAgent struct {
	ID    int32
	Dir   string
	Kafka string
	Peer  string
	Admin string
	P     *Proc
}

// StartProcCluster starts n agents on bucketURL with extra flags. They
// share a cluster secret (peer connections authenticate), as a deployment
// should.
func StartProcCluster(t testing.TB, bin, bucketURL string, n int, extra ...string) *ProcCluster {
	t.Helper()
	secret := filepath.Join(t.TempDir(), "cluster-secret")
	if err := os.WriteFile(secret, []byte("a test cluster's shared secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	extra = append([]string{"--cluster-secret-file", secret}, extra...)
	c := &ProcCluster{t: t, bin: bin, Bucket: bucketURL, Extra: extra}
	for i := range n {
		c.Agents = append(c.Agents, &ProcAgent{ID: int32(i), Dir: t.TempDir(), Kafka: FreeAddr(t), Peer: FreeAddr(t), Admin: FreeAddr(t)})
	}
	for _, a := range c.Agents {
		c.Start(a.ID)
	}
	return c
}

// Start runs agent id (again). A port taken meanwhile (FreeAddr can only
// say it was free a moment ago) gets the agent new addresses.
func (c *ProcCluster) Start(id int32) *Proc {
	c.t.Helper()
	a := c.Agents[id]
	for attempt := 0; ; attempt++ {
		args := append([]string{"agent", "--id", fmt.Sprint(id), "--data", a.Dir, "--bucket", c.Bucket,
			"--listen", a.Kafka, "--peer-listen", a.Peer, "--admin-listen", a.Admin}, c.Extra...)
		p, err := TryStartProc(c.t, c.bin, a.Kafka, args...)
		if err == nil {
			a.P = p
			return p
		}
		if attempt == 3 || !strings.Contains(err.Error(), "address already in use") {
			c.t.Fatal(err)
		}
		a.Kafka, a.Peer, a.Admin = FreeAddr(c.t), FreeAddr(c.t), FreeAddr(c.t)
	}
}

// Kill SIGKILLs agent id.
func (c *ProcCluster) Kill(id int32) {
	if a := c.Agents[id]; a.P != nil {
		a.P.Kill()
		a.P = nil
	}
}

// Seeds lists every agent's Kafka address.
func (c *ProcCluster) Seeds() []string {
	var s []string
	for _, a := range c.Agents {
		s = append(s, a.Kafka)
	}
	return s
}

// Tail returns the last n lines of s.
func Tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
