// Package miniotest runs a throwaway MinIO server for tests. Tests skip when
// the minio binary is missing; .ci/run installs it with
// `go install github.com/minio/minio@...` into $(go env GOPATH)/bin.
package miniotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// readyTimeout bounds how long a start may take before the test fails.
const readyTimeout = 30 * time.Second

// Binary returns the path of the minio binary: $PATH first, then
// $(go env GOPATH)/bin/minio. It returns "" if neither exists.
func Binary() string {
	if p, err := exec.LookPath("minio"); err == nil {
		return p
	}
	var dirs []string
	if gp := os.Getenv("GOPATH"); gp != "" {
		dirs = filepath.SplitList(gp)
	} else if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		dirs = filepath.SplitList(strings.TrimSpace(string(out)))
	} else if home, err := os.UserHomeDir(); err == nil {
		dirs = []string{filepath.Join(home, "go")}
	}
	for _, d := range dirs {
		p := filepath.Join(d, "bin", "minio")
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Start runs a MinIO server on free loopback ports until the test ends
// (skipping the test if minio is not installed) and returns its endpoint
// ("http://127.0.0.1:PORT") and root credentials.
func Start(t testing.TB) (endpoint, accessKey, secretKey string) {
	t.Helper()
	p := StartProcess(t)
	return p.Endpoint(), p.AccessKey(), p.SecretKey()
}

// Process is a running (or stopped) MinIO server owned by one test.
type Process struct {
	t       testing.TB
	bin     string
	dir     string
	addr    string // S3 API, 127.0.0.1:PORT
	console string
	logPath string
	key     string
	secret  string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
	log  *os.File
}

// StartProcess is Start returning a handle for fault tests: Stop kills the
// server (SIGKILL), Restart brings it back on the same data directory and
// port. The server is killed when the test ends.
func StartProcess(t testing.TB) *Process {
	t.Helper()
	bin := Binary()
	if bin == "" {
		t.Skip("minio binary not found; .ci/run installs it")
	}
	base := t.TempDir()
	p := &Process{
		t:       t,
		bin:     bin,
		dir:     filepath.Join(base, "data"),
		logPath: filepath.Join(base, "minio.log"),
		key:     "tlogtest",
		// Unique per server, so that the readiness check cannot be
		// answered by another test's MinIO that grabbed the same port.
		secret: rand.Text(),
	}
	t.Cleanup(p.Stop)
	// A free port can be taken between probing and minio binding it; try
	// a few pairs before giving up.
	var err error
	for range 3 {
		if p.addr, p.console, err = freeAddrs(); err != nil {
			break
		}
		if err = p.start(); err == nil {
			return p
		}
	}
	t.Fatalf("miniotest: %v", err)
	return nil
}

// Endpoint returns the S3 API URL.
func (p *Process) Endpoint() string { return "http://" + p.addr }

// AccessKey returns the root user.
func (p *Process) AccessKey() string { return p.key }

// SecretKey returns the root password.
func (p *Process) SecretKey() string { return p.secret }

// Dir returns the server's data directory.
func (p *Process) Dir() string { return p.dir }

// Stop kills the server with SIGKILL and waits for it to exit, as a crash
// would; it is a no-op when already stopped.
func (p *Process) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopLocked()
}

func (p *Process) stopLocked() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.done
	_ = p.log.Close()
	p.cmd, p.done, p.log = nil, nil, nil
}

// Restart kills the server (if running) and starts it again on the same
// directory and ports, waiting until it is ready.
func (p *Process) Restart() {
	p.t.Helper()
	if err := p.start(); err != nil {
		p.t.Fatalf("miniotest: restart: %v", err)
	}
}

func (p *Process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stopLocked()
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	cmd := exec.Command(p.bin, "server", p.dir, "--address", p.addr, "--console-address", p.console, "--quiet")
	cmd.Env = append(os.Environ(),
		"MINIO_ROOT_USER="+p.key,
		"MINIO_ROOT_PASSWORD="+p.secret,
		"MINIO_BROWSER=off",
		"MINIO_UPDATE=off",
	)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", p.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	p.cmd, p.done, p.log = cmd, done, logf
	if err := p.waitReady(done); err != nil {
		p.stopLocked()
		return fmt.Errorf("minio on %s: %w\n%s", p.addr, err, tail(p.logPath))
	}
	return nil
}

// waitReady polls MinIO's readiness endpoint until it answers 200 and a
// request signed with this server's credentials succeeds, the process
// exits, or readyTimeout passes.
func (p *Process) waitReady(exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), readyTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	s3c := Client(p.Endpoint(), p.key, p.secret)
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.Endpoint()+"/minio/health/ready", nil)
		resp, err := client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				lctx, lcancel := context.WithTimeout(ctx, 2*time.Second)
				_, err = s3c.ListBuckets(lctx, &s3.ListBucketsInput{})
				lcancel()
				if err == nil {
					return nil
				}
			} else {
				err = fmt.Errorf("health/ready: %s", resp.Status)
			}
		}
		select {
		case <-exited:
			return errors.New("server exited during startup")
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v (last error: %v)", readyTimeout, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// freeAddrs picks two free loopback ports in 10000-19999: below Linux's
// ephemeral range (32768-60999), where an outgoing connection can take a
// port between this check and MinIO binding it, or while a killed MinIO
// is down before it restarts on the same port; and below the range
// tests/tlogtest hands to agents (20000-31999).
func freeAddrs() (api, console string, err error) {
	var addrs []string
	for try := 0; len(addrs) < 2 && try < 1000; try++ {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 10000+mrand.IntN(10000)))
		if err != nil {
			continue
		}
		defer l.Close() // held until both are chosen, so they differ
		addrs = append(addrs, l.Addr().String())
	}
	if len(addrs) < 2 {
		return "", "", errors.New("find a free port: none free in 10000-19999")
	}
	return addrs[0], addrs[1], nil
}

func tail(path string) string {
	b, _ := os.ReadFile(path)
	if len(b) > 4096 {
		b = b[len(b)-4096:]
	}
	return "minio log (tail):\n" + string(bytes.TrimSpace(b))
}

// CreateBucket creates bucket name on the server, failing the test on error.
func CreateBucket(t testing.TB, endpoint, accessKey, secretKey, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := Client(endpoint, accessKey, secretKey).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("miniotest: create bucket %q: %v", name, err)
	}
}

// Client returns a plain SDK client for endpoint, for test setup and checks.
func Client(endpoint, accessKey, secretKey string) *s3.Client {
	return s3.New(s3.Options{
		BaseEndpoint: aws.String(endpoint),
		Region:       "us-east-1",
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, ""),
	})
}

// SetCredentialsEnv points the standard AWS credential chain of processes
// the test starts (tlog agents) at m, and keeps any config file or
// instance metadata on this machine out of it.
func SetCredentialsEnv(t testing.TB, m *Process) {
	t.Setenv("AWS_ACCESS_KEY_ID", m.AccessKey())
	t.Setenv("AWS_SECRET_ACCESS_KEY", m.SecretKey())
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}
