package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a server process the suite started; stop ends it.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
	err  error
}

func startProc(name, logPath string, env []string, bin string, args ...string) (*proc, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), env...)
	// Killed with the suite, however it ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		f.Close()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop sends SIGTERM and waits, killing it after 30 s.
func (p *proc) stop() {
	if p.exited() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// tail is the end of the process's log, for errors.
func (p *proc) tail() string {
	b, _ := os.ReadFile(p.log)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func freeAddr() (string, error) {
	p, err := freePort()
	return fmt.Sprintf("127.0.0.1:%d", p), err
}

// waitTCP waits until addr accepts a connection or p exits.
func waitTCP(ctx context.Context, addr string, p *proc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		if p != nil && p.exited() {
			return fmt.Errorf("%s exited: %v\n%s", p.name, p.err, p.tail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s: nothing listens on %s after %s", p.name, addr, timeout)
}

// rssPoint is one sample of a process group's resident memory.
type rssPoint struct {
	T    float64 `json:"t"`    // seconds since the sampler started
	MiB  float64 `json:"mib"`  // summed over the processes
	Anon float64 `json:"anon"` // of which anonymous (not file-backed) memory
}

// sampler records the summed RSS of some processes every interval.
type sampler struct {
	pids   []int
	start  time.Time
	mu     sync.Mutex
	series []rssPoint
	anon   []float64 // the largest anonymous RSS seen, per process
	stopCh chan struct{}
	wg     sync.WaitGroup
}

func sampleRSS(pids []int, every time.Duration) *sampler {
	s := &sampler{pids: pids, start: time.Now(), stopCh: make(chan struct{}), anon: make([]float64, len(pids))}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.sample()
			select {
			case <-s.stopCh:
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *sampler) sample() {
	var sum, anon float64
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, pid := range s.pids {
		sum += rssMiB(pid)
		a := statusMiB(pid, "RssAnon:")
		anon += a
		s.anon[i] = max(s.anon[i], a)
	}
	s.series = append(s.series, rssPoint{T: time.Since(s.start).Seconds(), MiB: sum, Anon: anon})
}

// stop ends sampling and returns the series, the peak of each process
// (the kernel's high-water mark, VmHWM) and the largest anonymous part
// sampled of each.
func (s *sampler) stop() (series []rssPoint, peaks, anon []float64) {
	for _, pid := range s.pids {
		peaks = append(peaks, statusMiB(pid, "VmHWM:"))
	}
	close(s.stopCh)
	s.wg.Wait()
	s.sample()
	return s.series, peaks, s.anon
}

func rssMiB(pid int) float64 { return statusMiB(pid, "VmRSS:") }

// statusMiB reads a kB field of /proc/PID/status, in MiB.
func statusMiB(pid int, field string) float64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 64)
			return kb / 1024
		}
	}
	return 0
}

// cpuTimes is the machine's CPU time from /proc/stat, in ticks.
type cpuTimes struct{ total, steal uint64 }

func readCPU() cpuTimes {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuTimes{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	var t cpuTimes
	for i, f := range fields[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		if i < 8 { // user nice system idle iowait irq softirq steal (guest is in user)
			t.total += v
		}
		if i == 7 {
			t.steal = v
		}
	}
	return t
}

// stealSince is the share of CPU time stolen by the hypervisor since c0.
func (c cpuTimes) stealSince(c0 cpuTimes) float64 {
	if c.total <= c0.total {
		return 0
	}
	return 100 * float64(c.steal-c0.steal) / float64(c.total-c0.total)
}

func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	return fmt.Sprintf("%d cores, %s, %s", runtime.NumCPU(), model, runtime.Version())
}

func gitCommit(ctx context.Context, repo string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", repo, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(out))
	if st, err := exec.CommandContext(ctx, "git", "-C", repo, "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(st) > 0 {
		c += " (with uncommitted changes)"
	}
	return c
}

// findBin finds a program on PATH or in Go's bin directory.
func findBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	gobin := os.Getenv("GOBIN")
	if gobin == "" {
		out, err := exec.Command("go", "env", "GOPATH").Output()
		if err != nil {
			return "", err
		}
		gobin = strings.TrimSpace(string(out)) + "/bin"
	}
	p := gobin + "/" + name
	if _, err := os.Stat(p); err != nil {
		return "", errors.New(name + " is neither on PATH nor in " + gobin)
	}
	return p, nil
}
