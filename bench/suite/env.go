package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/twmb/franz-go/pkg/kfake"
)

// env is what every target runs beside: the tlog binary, one MinIO, and
// nats-server.
type env struct {
	log      *slog.Logger
	o        options
	tmp      string
	tlog     string
	natsBin  string
	minio    *proc
	endpoint string
	awsEnv   []string
	mc       *minio.Client
	runs     int // targets started, for unique bucket prefixes
}

const bucketName = "bench"

func setup(ctx context.Context, log *slog.Logger, o options, tmp string) (*env, error) {
	e := &env{log: log, o: o, tmp: tmp, tlog: filepath.Join(tmp, "tlog")}
	build := exec.CommandContext(ctx, "go", "build", "-o", e.tlog, "./cmd/tlog")
	build.Dir, build.Stderr = o.repo, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("build tlog: %w", err)
	}
	minioBin, err := findBin("minio")
	if err != nil {
		return nil, fmt.Errorf("%w (install it as .ci/run does)", err)
	}
	if !o.skipNATS {
		if e.natsBin, err = findBin("nats-server"); err != nil {
			return nil, fmt.Errorf("%w (go install github.com/nats-io/nats-server/v2@v2.15.3, or -skip-nats)", err)
		}
	}
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	console, err := freeAddr()
	if err != nil {
		return nil, err
	}
	const user, secret = "tlogbench", "tlogbench-secret"
	e.minio, err = startProc("minio", filepath.Join(tmp, "minio.log"),
		[]string{"MINIO_ROOT_USER=" + user, "MINIO_ROOT_PASSWORD=" + secret, "MINIO_BROWSER=off", "MINIO_UPDATE=off"},
		minioBin, "server", filepath.Join(tmp, "minio"), "--address", addr, "--console-address", console, "--quiet")
	if err != nil {
		return nil, err
	}
	e.endpoint = "http://" + addr
	e.awsEnv = []string{"AWS_ACCESS_KEY_ID=" + user, "AWS_SECRET_ACCESS_KEY=" + secret, "AWS_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null"}
	if err := waitTCP(ctx, addr, e.minio, 60*time.Second); err != nil {
		e.close()
		return nil, err
	}
	e.mc, err = minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(user, secret, ""), Region: "us-east-1"})
	if err != nil {
		e.close()
		return nil, err
	}
	for i := 0; ; i++ { // MinIO accepts connections a moment before it serves
		if err = e.mc.MakeBucket(ctx, bucketName, minio.MakeBucketOptions{Region: "us-east-1"}); err == nil || i == 50 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if err != nil {
		e.close()
		return nil, fmt.Errorf("make bucket: %w", err)
	}
	return e, nil
}

func (e *env) close() {
	if e.minio != nil {
		e.minio.stop()
	}
}

// target is one system under test.
type target struct {
	name     string
	kind     string // kfake, dev, cluster, nats
	walSync  string // dev: never or always
	replicas int    // cluster and nats
}

func (e *env) targets(o options) []target {
	ts := []target{
		{name: "kfake", kind: "kfake"},
		{name: "tlog dev, wal-sync never", kind: "dev", walSync: "never"},
		{name: "tlog dev, wal-sync always", kind: "dev", walSync: "always"},
		{name: "tlog, 3 agents, RF=3", kind: "cluster", replicas: 3},
	}
	if !o.skipNATS {
		ts = append(ts, target{name: "NATS JetStream R1", kind: "nats", replicas: 1}, target{name: "NATS JetStream R3", kind: "nats", replicas: 3})
	}
	return ts
}

// running is a started target: where clients connect, the processes to
// sample, and how to stop it.
type running struct {
	brokers string
	pids    []int
	stop    func()
}

func (e *env) bucketURL(prefix string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s&region=us-east-1", bucketName, prefix, e.endpoint)
}

// startDev starts `tlog dev` on the bucket under prefix.
func (e *env) startDev(ctx context.Context, data, prefix, walSync string, extra ...string) (*running, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := append([]string{"--log-level", "warn", "dev", "--data", data, "--listen", addr,
		"--bucket", e.bucketURL(prefix), "--wal-sync", walSync}, extra...)
	p, err := startProc("tlog dev", data+".log", e.awsEnv, e.tlog, args...)
	if err != nil {
		return nil, err
	}
	if err := waitTCP(ctx, addr, p, 60*time.Second); err != nil {
		p.stop()
		return nil, err
	}
	return &running{brokers: addr, pids: []int{p.pid()}, stop: p.stop}, nil
}

func (e *env) start(ctx context.Context, t target) (*running, error) {
	e.runs++
	dir := filepath.Join(e.tmp, fmt.Sprintf("run-%d", e.runs))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	prefix := fmt.Sprintf("run-%d", e.runs)
	switch t.kind {
	case "kfake":
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(port))
		if err != nil {
			return nil, err
		}
		return &running{brokers: c.ListenAddrs()[0], stop: c.Close}, nil
	case "dev":
		return e.startDev(ctx, filepath.Join(dir, "data"), prefix, t.walSync)
	case "cluster":
		var procs []*proc
		stop := func() {
			for _, p := range procs {
				p.stop()
			}
		}
		var seeds []string
		for id := range t.replicas {
			kafka, err := freeAddr()
			if err != nil {
				stop()
				return nil, err
			}
			peer, err := freeAddr()
			if err != nil {
				stop()
				return nil, err
			}
			data := filepath.Join(dir, fmt.Sprintf("agent-%d", id))
			p, err := startProc(fmt.Sprintf("tlog agent %d", id), data+".log", e.awsEnv, e.tlog, "--log-level", "warn", "agent",
				"--id", fmt.Sprint(id), "--data", data, "--bucket", e.bucketURL(prefix), "--listen", kafka, "--peer-listen", peer)
			if err != nil {
				stop()
				return nil, err
			}
			procs = append(procs, p)
			if err := waitTCP(ctx, kafka, p, 60*time.Second); err != nil {
				stop()
				return nil, err
			}
			seeds = append(seeds, kafka)
		}
		r := &running{brokers: strings.Join(seeds, ","), stop: stop}
		for _, p := range procs {
			r.pids = append(r.pids, p.pid())
		}
		// Every agent registered before a topic of RF=3 can be placed.
		if err := e.waitAgents(ctx, r.brokers, t.replicas); err != nil {
			stop()
			return nil, err
		}
		return r, nil
	case "nats":
		return startNATS(ctx, e.natsBin, dir, t.replicas)
	}
	return nil, fmt.Errorf("unknown target kind %q", t.kind)
}

// waitAgents waits until `tlog cluster status` lists n live agents.
func (e *env) waitAgents(ctx context.Context, brokers string, n int) error {
	deadline := time.Now().Add(60 * time.Second)
	var last []byte
	for time.Now().Before(deadline) {
		out, err := exec.CommandContext(ctx, e.tlog, "--brokers", brokers, "cluster", "status", "--format", "json").Output()
		last = out
		var v struct {
			Agents []struct {
				State string `json:"state"`
			} `json:"agents"`
		}
		live := 0
		if err == nil && json.Unmarshal(out, &v) == nil {
			for _, a := range v.Agents {
				if a.State == "live" {
					live++
				}
			}
		}
		if live >= n {
			return nil
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("the cluster did not list %d live agents: %s", n, last)
}

// benchOut is what `tlog bench --format json` prints.
type benchOut struct {
	Records  int64        `json:"records"`
	Seconds  float64      `json:"seconds"`
	MiBSec   float64      `json:"mib_per_sec"`
	P50Ms    float64      `json:"p50_ms"`
	P99Ms    float64      `json:"p99_ms"`
	E2EP50Ms float64      `json:"e2e_p50_ms"`
	E2EP99Ms float64      `json:"e2e_p99_ms"`
	E2ECurve [][2]float64 `json:"e2e_curve"`
	Errors   int64        `json:"errors"`
}

// tbench runs `tlog bench ARGS --format json` against brokers, retrying
// once (a cluster may still be settling its first topic).
func (e *env) tbench(ctx context.Context, brokers string, args ...string) (benchOut, error) {
	var out benchOut
	var err error
	for attempt := range 2 {
		if attempt > 0 {
			time.Sleep(2 * time.Second)
		}
		cmd := exec.CommandContext(ctx, e.tlog, append([]string{"--brokers", brokers, "bench"}, append(args, "--format", "json")...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err = cmd.Run(); err != nil {
			err = fmt.Errorf("tlog bench %s: %w: %s", strings.Join(args, " "), err, stderr.String())
			continue
		}
		if err = json.Unmarshal(stdout.Bytes(), &out); err != nil {
			err = fmt.Errorf("tlog bench %s: %w: %q", strings.Join(args, " "), err, stdout.String())
			continue
		}
		return out, nil
	}
	return out, err
}

// run is one target's figures in one round.
type measurement struct {
	Target    string       `json:"target"`
	Kind      string       `json:"kind"`
	Round     int          `json:"round"`
	Produce   float64      `json:"produce_mib_s"`
	ReadBack  float64      `json:"read_back_mib_s"`
	E2EP50    float64      `json:"e2e_p50_ms"`
	E2EP99    float64      `json:"e2e_p99_ms"`
	Curve     [][2]float64 `json:"e2e_curve"`
	PeakRSS   []float64    `json:"peak_rss_mib"`  // per process; none for kfake
	PeakAnon  []float64    `json:"peak_anon_mib"` // largest anonymous RSS sampled, per process
	RSS       []rssPoint   `json:"rss"`
	StealPct  float64      `json:"steal_pct"`
	CacheMiB  float64      `json:"cache_mib"` // tlog's configured range cache
	ProduceAt time.Time    `json:"produce_at"`
}

func (e *env) measure(ctx context.Context, t target, round int) (measurement, error) {
	r := measurement{Target: t.name, Kind: t.kind, Round: round}
	c0 := readCPU()
	rt, err := e.start(ctx, t)
	if err != nil {
		return r, err
	}
	defer rt.stop()
	var s *sampler
	if len(rt.pids) > 0 {
		s = sampleRSS(rt.pids, 200*time.Millisecond)
	}
	if t.kind == "dev" || t.kind == "cluster" {
		r.CacheMiB = 256 // tlog's default --cache-bytes
	}
	if t.kind == "nats" {
		err = natsWorkload(ctx, rt.brokers, t.replicas, e.o, &r)
	} else {
		err = e.kafkaWorkload(ctx, rt.brokers, t, &r)
	}
	if s != nil {
		r.RSS, r.PeakRSS, r.PeakAnon = s.stop()
	}
	r.StealPct = readCPU().stealSince(c0)
	return r, err
}

// kafkaWorkload: produce as fast as allowed, read it all back (for tlog
// once flushed, so from the bucket), then end-to-end latency at a fixed
// rate; franz-go through `tlog bench`, 1 KiB random values, 8 partitions,
// acks=all, idempotent, linger 5 ms.
func (e *env) kafkaWorkload(ctx context.Context, brokers string, t target, r *measurement) error {
	rf := "-1"
	if t.replicas > 0 {
		rf = fmt.Sprint(t.replicas)
	}
	common := []string{"--partitions", "8", "--replication-factor", rf}
	r.ProduceAt = time.Now()
	p, err := e.tbench(ctx, brokers, append([]string{"produce", "--topic", "thr", "-n", fmt.Sprint(e.o.records),
		"--record-size", "1024", "--acks", "all", "--linger", "5ms"}, common...)...)
	if err != nil {
		return err
	}
	r.Produce = p.MiBSec
	if t.kind != "kfake" {
		time.Sleep(2 * time.Second) // flushed (every 250 ms) and the WAL trimmed
	}
	c, err := e.tbench(ctx, brokers, append([]string{"consume", "--topic", "thr", "-n", fmt.Sprint(e.o.records)}, common...)...)
	if err != nil {
		return err
	}
	r.ReadBack = c.MiBSec
	e2e, err := e.tbench(ctx, brokers, append([]string{"e2e", "--topic", "e2e", "-n", fmt.Sprint(e.o.e2eRecords),
		"--rate", fmt.Sprint(e.o.e2eRate), "--record-size", "1024", "--linger", "5ms"}, common...)...)
	if err != nil {
		return err
	}
	r.E2EP50, r.E2EP99, r.Curve = e2e.E2EP50Ms, e2e.E2EP99Ms, e2e.E2ECurve
	return nil
}
