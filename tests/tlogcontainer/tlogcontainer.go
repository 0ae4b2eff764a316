// Package tlogcontainer starts tlog in Docker for integration tests, in
// the manner of testcontainers-go's Kafka and Redpanda modules:
//
//	c, err := tlogcontainer.Run(ctx)          // one `tlog dev`, its own file bucket
//	c, err := tlogcontainer.Run(ctx, tlogcontainer.WithAgents(3)) // MinIO and three agents
//	defer c.Terminate(ctx)
//	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers()...))
//
// Every container of a Run shares a private Docker network: agents reach
// each other and MinIO by name, and other containers reach the agents at
// InternalBrokers. The host reaches each agent on a loopback port fixed
// when the agent is created, so it keeps its address across Stop and
// Start, and Kill, Pause and network cuts act on a real process.
//
// Images: with WithImage, a published tlog image (tlog's binary at /tlog,
// as the release images have it); without, an image built here FROM
// scratch from `go build github.com/tlog-io/tlog/cmd/tlog` (static,
// CGO_ENABLED=0) in the calling test's module, so no registry is needed.
// MinIO likewise: WithMinIOImage names an image (minio/minio), else one
// is built FROM scratch from a static `minio` binary (WithMinIOBinary, or
// the one on PATH).
package tlogcontainer

import (
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/moby/moby/api/types/container"
	mnet "github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"github.com/testcontainers/testcontainers-go/network"
	"github.com/testcontainers/testcontainers-go/wait"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Ports inside an agent's container.
const (
	ExternalPort = "9092" // Kafka, advertised to the host
	PeerPort     = "9093" // replication and the agents' own requests
	InternalPort = "9094" // Kafka, advertised to containers on the network
	AdminPort    = "9644" // /metrics, /healthz, /readyz

	minioPort   = "9000"
	minioUser   = "tlogminio"
	minioSecret = "tlogminio-secret"
	bucketName  = "tlog"
)

type config struct {
	image, minioImage, minioBinary string
	agents                         int
	args                           []string
	env                            map[string]string
	logs                           io.Writer
}

// Option changes what Run starts.
type Option func(*config)

// WithImage runs a published tlog image instead of building one.
func WithImage(ref string) Option { return func(c *config) { c.image = ref } }

// WithAgents runs n `tlog agent`s on a MinIO bucket instead of one
// `tlog dev`.
func WithAgents(n int) Option { return func(c *config) { c.agents = n } }

// WithArgs adds flags to every agent's command line (e.g. "--partitions",
// "3").
func WithArgs(args ...string) Option { return func(c *config) { c.args = append(c.args, args...) } }

// WithEnv sets environment variables in every agent's container.
func WithEnv(env map[string]string) Option {
	return func(c *config) {
		for k, v := range env {
			c.env[k] = v
		}
	}
}

// WithMinIOImage runs a published MinIO image (its entrypoint takes
// `server DIR`) instead of building one.
func WithMinIOImage(ref string) Option { return func(c *config) { c.minioImage = ref } }

// WithMinIOBinary is the static MinIO binary to build MinIO's image from
// (default: `minio` on PATH).
func WithMinIOBinary(path string) Option { return func(c *config) { c.minioBinary = path } }

// WithLogs copies every container's output to w (e.g. a test's log).
func WithLogs(w io.Writer) Option { return func(c *config) { c.logs = w } }

// Cluster is what Run started.
type Cluster struct {
	Network *testcontainers.DockerNetwork
	Agents  []*Agent
	MinIO   *MinIO // nil for a single `tlog dev`

	cfg    config
	docker *testcontainers.DockerClient
	image  string
}

// Agent is one tlog container.
type Agent struct {
	ID   int32
	Name string // its name on the network
	// HostAddr is its Kafka address from the host; InternalAddr from
	// containers on the network; AdminAddr its admin HTTP from the host.
	HostAddr, InternalAddr, AdminAddr string
	Container                         testcontainers.Container

	c      *Cluster
	slowMu sync.Mutex
	slow   *delayer // serves Slow's queue until Heal
}

// MinIO is the bucket's container.
type MinIO struct {
	Container testcontainers.Container
	// Endpoint is MinIO's S3 endpoint from the host.
	Endpoint string
	// Client is a minio-go client on the host for the bucket.
	Client *minio.Client
	Bucket string
}

// Run starts tlog: one `tlog dev`, or with WithAgents(n) MinIO and n
// agents. It returns once every agent serves Kafka.
func Run(ctx context.Context, opts ...Option) (_ *Cluster, err error) {
	cfg := config{env: map[string]string{}}
	for _, o := range opts {
		o(&cfg)
	}
	docker, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return nil, fmt.Errorf("tlogcontainer: docker: %w", err)
	}
	c := &Cluster{cfg: cfg, docker: docker}
	defer func() {
		if err != nil {
			c.Terminate(context.WithoutCancel(ctx))
		}
	}()
	if c.image = cfg.image; c.image == "" {
		if c.image, err = buildTlogImage(ctx); err != nil {
			return nil, err
		}
	}
	if c.Network, err = network.New(ctx); err != nil {
		return nil, fmt.Errorf("tlogcontainer: network: %w", err)
	}
	if cfg.agents <= 0 {
		a, err := c.startAgent(ctx, &Agent{ID: 0, c: c}, true)
		if err != nil {
			return nil, err
		}
		c.Agents = append(c.Agents, a)
		return c, nil
	}
	if c.MinIO, err = c.startMinIO(ctx); err != nil {
		return nil, err
	}
	// The agents start together: each waits for the others' first
	// heartbeats only as long as it needs to.
	agents := make([]*Agent, cfg.agents)
	errs := make([]error, cfg.agents)
	var wg sync.WaitGroup
	for i := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			agents[i], errs[i] = c.startAgent(ctx, &Agent{ID: int32(i), c: c}, false)
		}()
	}
	wg.Wait()
	for _, a := range agents {
		if a != nil {
			c.Agents = append(c.Agents, a)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// Brokers are the Kafka addresses of the agents from the host.
func (c *Cluster) Brokers() []string {
	out := make([]string, len(c.Agents))
	for i, a := range c.Agents {
		out[i] = a.HostAddr
	}
	return out
}

// InternalBrokers are the agents' Kafka addresses from containers on
// c.Network.
func (c *Cluster) InternalBrokers() []string {
	out := make([]string, len(c.Agents))
	for i, a := range c.Agents {
		out[i] = a.InternalAddr
	}
	return out
}

// BucketURL is the bucket the agents share, as they name it ("" for a
// single `tlog dev`, whose bucket is a directory in its container).
func (c *Cluster) BucketURL() string {
	if c.MinIO == nil {
		return ""
	}
	return fmt.Sprintf("s3://%s/cluster?endpoint=http://minio:%s&region=us-east-1", bucketName, minioPort)
}

// Status runs `tlog cluster status` in the first running agent's
// container and returns what it printed.
func (c *Cluster) Status(ctx context.Context) (string, error) {
	for _, a := range c.Agents {
		if st, err := a.Container.State(ctx); err != nil || !st.Running || st.Paused {
			continue
		}
		return a.Tlog(ctx, "--brokers", "127.0.0.1:"+InternalPort, "cluster", "status")
	}
	return "", errors.New("tlogcontainer: no agent is running")
}

// Tlog runs the tlog CLI inside a's container (its network view: other
// agents by name, e.g. tlog-1:9094) and returns what it printed.
func (a *Agent) Tlog(ctx context.Context, args ...string) (string, error) {
	code, out, err := a.Container.Exec(ctx, append([]string{"/tlog"}, args...), tcexec.Multiplexed())
	if err != nil {
		return "", fmt.Errorf("tlogcontainer: tlog %s in %s: %w", strings.Join(args, " "), a.Name, err)
	}
	b, _ := io.ReadAll(out)
	if code != 0 {
		return string(b), fmt.Errorf("tlogcontainer: tlog %s in %s exited %d", strings.Join(args, " "), a.Name, code)
	}
	return string(b), nil
}

// Terminate removes every container and the network.
func (c *Cluster) Terminate(ctx context.Context) error {
	var errs []error
	for _, a := range c.Agents {
		if a.Container != nil {
			errs = append(errs, a.Container.Terminate(ctx))
		}
	}
	if c.MinIO != nil && c.MinIO.Container != nil {
		errs = append(errs, c.MinIO.Container.Terminate(ctx))
	}
	if c.Network != nil {
		errs = append(errs, c.Network.Remove(ctx))
	}
	if c.docker != nil {
		errs = append(errs, c.docker.Close())
	}
	return errors.Join(errs...)
}

// Stop stops the agent with SIGTERM (its data stays in the container).
func (a *Agent) Stop(ctx context.Context) error {
	timeout := 30 * time.Second
	return a.Container.Stop(ctx, &timeout)
}

// Start starts a stopped or killed agent again; it returns once it serves
// Kafka.
func (a *Agent) Start(ctx context.Context) error {
	if err := a.Container.Start(ctx); err != nil {
		return fmt.Errorf("tlogcontainer: start %s: %w", a.Name, err)
	}
	return waitKafka(ctx, a.HostAddr, time.Minute)
}

// Kill kills the agent's process with SIGKILL.
func (a *Agent) Kill(ctx context.Context) error {
	_, err := a.c.docker.ContainerKill(ctx, a.Container.GetContainerID(), client.ContainerKillOptions{Signal: "KILL"})
	return err
}

// Replace removes the agent's container, its data with it (a disk lost),
// and starts a new one as the same agent (id, name, ports) with an empty
// data directory; it returns once that serves Kafka.
func (a *Agent) Replace(ctx context.Context) error {
	if err := a.Container.Terminate(ctx); err != nil {
		return fmt.Errorf("tlogcontainer: remove %s: %w", a.Name, err)
	}
	_, err := a.c.startAgent(ctx, a, a.c.MinIO == nil)
	return err
}

// Pause freezes the agent (the cgroup freezer: like SIGSTOP, its sockets
// stay open and nothing runs) until Resume.
func (a *Agent) Pause(ctx context.Context) error {
	_, err := a.c.docker.ContainerPause(ctx, a.Container.GetContainerID(), client.ContainerPauseOptions{})
	return err
}

// Resume thaws a paused agent.
func (a *Agent) Resume(ctx context.Context) error {
	_, err := a.c.docker.ContainerUnpause(ctx, a.Container.GetContainerID(), client.ContainerUnpauseOptions{})
	return err
}

// startAgent creates and starts a's container; a new agent (no
// HostAddr yet) gets its loopback ports here, a replaced one keeps its.
func (c *Cluster) startAgent(ctx context.Context, a *Agent, dev bool) (*Agent, error) {
	id := a.ID
	name := fmt.Sprintf("tlog-%d", id)
	if a.HostAddr == "" {
		hostPort, err := freePort()
		if err != nil {
			return nil, err
		}
		adminPort, err := freePort()
		if err != nil {
			return nil, err
		}
		a.Name = name
		a.HostAddr, a.AdminAddr = "127.0.0.1:"+hostPort, "127.0.0.1:"+adminPort
		a.InternalAddr = name + ":" + InternalPort
	}
	_, hostPort, _ := net.SplitHostPort(a.HostAddr)
	_, adminPort, _ := net.SplitHostPort(a.AdminAddr)
	cmd := []string{"agent", "--id", strconv.Itoa(int(id)), "--bucket", c.BucketURL(),
		"--peer-listen", "0.0.0.0:" + PeerPort, "--peer-advertise", name + ":" + PeerPort}
	if dev {
		cmd = []string{"dev"}
	}
	cmd = append(cmd, "--data", "/data",
		"--listener", "EXTERNAL=PLAINTEXT://0.0.0.0:"+ExternalPort, "--advertised-listener", "EXTERNAL="+a.HostAddr,
		"--listener", "INTERNAL=PLAINTEXT://0.0.0.0:"+InternalPort, "--advertised-listener", "INTERNAL="+a.InternalAddr,
		"--admin-listen", "0.0.0.0:"+AdminPort)
	cmd = append(cmd, c.cfg.args...)
	env := map[string]string{"AWS_ACCESS_KEY_ID": minioUser, "AWS_SECRET_ACCESS_KEY": minioSecret}
	for k, v := range c.cfg.env {
		env[k] = v
	}
	req := testcontainers.ContainerRequest{
		Image:          c.image,
		Name:           fmt.Sprintf("%s-%s-%d", name, c.Network.ID[:12], time.Now().UnixNano()),
		Cmd:            cmd,
		Env:            env,
		ExposedPorts:   []string{ExternalPort + "/tcp", InternalPort + "/tcp", AdminPort + "/tcp"},
		Networks:       []string{c.Network.Name},
		NetworkAliases: map[string][]string{c.Network.Name: {name}},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.PortBindings = mnet.PortMap{
				mnet.MustParsePort(ExternalPort + "/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: hostPort}},
				mnet.MustParsePort(AdminPort + "/tcp"):    {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: adminPort}},
			}
		},
		WaitingFor: wait.ForLog("serving Kafka on").WithStartupTimeout(2 * time.Minute),
	}
	if c.cfg.logs != nil {
		req.LogConsumerCfg = &testcontainers.LogConsumerConfig{Consumers: []testcontainers.LogConsumer{prefixLogs{c.cfg.logs, name}}}
	}
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	a.Container = ctr
	if err != nil {
		if ctr != nil {
			ctr.Terminate(context.WithoutCancel(ctx))
		}
		return nil, fmt.Errorf("tlogcontainer: start %s: %w", name, err)
	}
	return a, waitKafka(ctx, a.HostAddr, time.Minute)
}

func (c *Cluster) startMinIO(ctx context.Context) (*MinIO, error) {
	image := c.cfg.minioImage
	if image == "" {
		var err error
		if image, err = buildMinIOImage(ctx, c.cfg.minioBinary); err != nil {
			return nil, err
		}
	}
	hostPort, err := freePort()
	if err != nil {
		return nil, err
	}
	req := testcontainers.ContainerRequest{
		Image:          image,
		Cmd:            []string{"server", "/data", "--address", ":" + minioPort},
		Env:            map[string]string{"MINIO_ROOT_USER": minioUser, "MINIO_ROOT_PASSWORD": minioSecret, "HOME": "/data"},
		ExposedPorts:   []string{minioPort + "/tcp"},
		Networks:       []string{c.Network.Name},
		NetworkAliases: map[string][]string{c.Network.Name: {"minio"}},
		HostConfigModifier: func(hc *container.HostConfig) {
			hc.PortBindings = mnet.PortMap{mnet.MustParsePort(minioPort + "/tcp"): {{HostIP: netip.MustParseAddr("127.0.0.1"), HostPort: hostPort}}}
		},
		WaitingFor: wait.ForLog("API:").WithStartupTimeout(time.Minute),
	}
	ctr, err := testcontainers.GenericContainer(ctx, testcontainers.GenericContainerRequest{ContainerRequest: req, Started: true})
	m := &MinIO{Container: ctr, Bucket: bucketName}
	if err != nil {
		return m, fmt.Errorf("tlogcontainer: start MinIO: %w", err)
	}
	m.Endpoint = "127.0.0.1:" + hostPort
	if m.Client, err = minio.New(m.Endpoint, &minio.Options{Creds: credentials.NewStaticV4(minioUser, minioSecret, "")}); err != nil {
		return m, fmt.Errorf("tlogcontainer: MinIO client: %w", err)
	}
	// Ready once it takes the bucket.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
		err := m.Client.MakeBucket(ctx, bucketName, minio.MakeBucketOptions{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return m, fmt.Errorf("tlogcontainer: create bucket: %w", err)
		}
	}
	return m, nil
}

// Objects lists the bucket's objects under prefix.
func (m *MinIO) Objects(ctx context.Context, prefix string) ([]minio.ObjectInfo, error) {
	var out []minio.ObjectInfo
	for o := range m.Client.ListObjects(ctx, m.Bucket, minio.ListObjectsOptions{Prefix: prefix, Recursive: true}) {
		if o.Err != nil {
			return nil, fmt.Errorf("tlogcontainer: list %s: %w", prefix, o.Err)
		}
		out = append(out, o)
	}
	return out, nil
}

// waitKafka waits until addr answers a Kafka ApiVersions request. A bare
// TCP connect is not enough: Docker's port proxy accepts on the host port
// before the process inside listens.
func waitKafka(ctx context.Context, addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := apiVersions(ctx, addr)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("tlogcontainer: %s does not answer Kafka requests: %w", addr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func apiVersions(ctx context.Context, addr string) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(time.Second),
		kgo.RequestRetries(0), kgo.RetryTimeout(2*time.Second))
	if err != nil {
		return err
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		return err
	}
	return kerr.ErrorForCode(resp.ErrorCode)
}

// freePort is a loopback port that was free a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

var (
	buildMu     sync.Mutex
	builtImages = map[string]string{} // what was built -> image
)

// buildTlogImage builds tlog (static) in the calling module and an image
// of it FROM scratch, tagged by the binary's hash so a rebuild of the
// same binary reuses it.
func buildTlogImage(ctx context.Context) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if img, ok := builtImages["tlog"]; ok {
		return img, nil
	}
	dir, err := os.MkdirTemp("", "tlogcontainer-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", filepath.Join(dir, "tlog"), "github.com/tlog-io/tlog/cmd/tlog")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("tlogcontainer: go build github.com/tlog-io/tlog/cmd/tlog: %w\n%s", err, out)
	}
	img, err := buildScratchImage(ctx, dir, "tlog", "tlog-local", []string{ExternalPort, PeerPort, InternalPort, AdminPort})
	if err == nil {
		builtImages["tlog"] = img
	}
	return img, err
}

// buildMinIOImage builds an image FROM scratch of a static MinIO binary.
func buildMinIOImage(ctx context.Context, binary string) (string, error) {
	buildMu.Lock()
	defer buildMu.Unlock()
	if binary == "" {
		var err error
		if binary, err = exec.LookPath("minio"); err != nil {
			return "", errors.New("tlogcontainer: no minio binary on PATH: give WithMinIOBinary or WithMinIOImage (CGO_ENABLED=0 go install github.com/minio/minio@latest builds one)")
		}
	}
	if img, ok := builtImages[binary]; ok {
		return img, nil
	}
	if err := checkStatic(binary); err != nil {
		return "", err
	}
	dir, err := os.MkdirTemp("", "tlogcontainer-minio-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	if err := os.Link(binary, filepath.Join(dir, "minio")); err != nil {
		if err := copyFile(binary, filepath.Join(dir, "minio")); err != nil {
			return "", err
		}
	}
	img, err := buildScratchImage(ctx, dir, "minio", "tlog-minio-local", []string{minioPort})
	if err == nil {
		builtImages[binary] = img
	}
	return img, err
}

// checkStatic refuses a dynamically linked binary: FROM scratch has no
// libc to load it with.
func checkStatic(path string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("tlogcontainer: %s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("tlogcontainer: %s is dynamically linked; an image FROM scratch needs a static build (CGO_ENABLED=0)", path)
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// buildScratchImage builds an image FROM scratch holding dir/bin as /bin,
// its entrypoint, tagged repo:<hash of the binary>; kept for reuse.
func buildScratchImage(ctx context.Context, dir, bin, repo string, ports []string) (string, error) {
	f, err := os.Open(filepath.Join(dir, bin))
	if err != nil {
		return "", err
	}
	h := sha256.New()
	_, err = io.Copy(h, f)
	f.Close()
	if err != nil {
		return "", err
	}
	tag := hex.EncodeToString(h.Sum(nil))[:16]
	dockerfile := "FROM scratch\nCOPY " + bin + " /" + bin + "\n"
	for _, p := range ports {
		dockerfile += "EXPOSE " + p + "\n"
	}
	dockerfile += `ENTRYPOINT ["/` + bin + `"]` + "\n"
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(dockerfile), 0o644); err != nil {
		return "", err
	}
	req := testcontainers.ContainerRequest{FromDockerfile: testcontainers.FromDockerfile{
		Context: dir, Dockerfile: "Dockerfile", Repo: repo, Tag: tag, KeepImage: true,
	}}
	provider, err := testcontainers.NewDockerProvider()
	if err != nil {
		return "", fmt.Errorf("tlogcontainer: docker: %w", err)
	}
	defer provider.Close()
	img := repo + ":" + tag
	if _, err := provider.BuildImage(ctx, &req); err != nil {
		return "", fmt.Errorf("tlogcontainer: build %s: %w", img, err)
	}
	return img, nil
}

// prefixLogs writes a container's output lines to w, each prefixed with
// its name.
type prefixLogs struct {
	w    io.Writer
	name string
}

func (p prefixLogs) Accept(l testcontainers.Log) {
	for _, line := range strings.Split(strings.TrimRight(string(l.Content), "\n"), "\n") {
		fmt.Fprintf(p.w, "%s| %s\n", p.name, line)
	}
}
