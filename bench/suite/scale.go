package main

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// scaleResult is tlog dev's memory with many partitions and connections:
// idle Kafka connections opened (each past ApiVersions), then a produce
// spread over every partition of a wide topic.
type scaleResult struct {
	Partitions   int     `json:"partitions"`
	Connections  int     `json:"connections"`
	RSSIdle      float64 `json:"rss_idle_mib"`      // started, nothing connected
	RSSConnected float64 `json:"rss_connected_mib"` // with the connections open
	PeakRSS      float64 `json:"peak_rss_mib"`      // during the produce
	PeakAnon     float64 `json:"peak_anon_mib"`     // anonymous part, sampled
	LimitMiB     float64 `json:"memory_limit_mib"`  // tlog's default soft limit
	ProduceMiB   float64 `json:"produce_mib_s"`
}

func (e *env) memoryAtScale(ctx context.Context, partitions, connections int) (scaleResult, error) {
	res := scaleResult{Partitions: partitions, Connections: connections}
	dir, prefix, err := e.newRunDir()
	if err != nil {
		return res, err
	}
	admin, err := freeAddr()
	if err != nil {
		return res, err
	}
	rt, err := e.startDev(ctx, filepath.Join(dir, "data"), prefix, "never", "--admin-listen", admin)
	if err != nil {
		return res, err
	}
	defer rt.stop()
	if res.LimitMiB, err = memoryLimitMiB(ctx, admin); err != nil {
		return res, err
	}
	pid := rt.pids[0]
	time.Sleep(time.Second)
	res.RSSIdle = rssMiB(pid)
	conns := make([]net.Conn, 0, connections)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("tlog-bench-idle"))
	for i := range connections {
		c, err := net.DialTimeout("tcp", rt.brokers, 5*time.Second)
		if err != nil {
			return res, fmt.Errorf("connection %d: %w", i, err)
		}
		conns = append(conns, c)
		req := kmsg.NewPtrApiVersionsRequest()
		req.Version = 3
		req.ClientSoftwareName, req.ClientSoftwareVersion = "tlog-bench", "1"
		if _, err := c.Write(f.AppendRequest(nil, req, int32(i))); err != nil {
			return res, fmt.Errorf("connection %d: %w", i, err)
		}
		var size [4]byte
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := io.ReadFull(c, size[:]); err != nil {
			return res, fmt.Errorf("connection %d: ApiVersions: %w", i, err)
		}
		if _, err := io.CopyN(io.Discard, c, int64(binary.BigEndian.Uint32(size[:]))); err != nil {
			return res, fmt.Errorf("connection %d: ApiVersions: %w", i, err)
		}
	}
	time.Sleep(time.Second)
	res.RSSConnected = rssMiB(pid)
	s := sampleRSS(rt.pids, 200*time.Millisecond)
	p, err := e.tbench(ctx, rt.brokers, "produce", "--topic", "wide", "--partitions", fmt.Sprint(partitions),
		"-n", fmt.Sprint(e.o.records), "--record-size", "1024", "--acks", "all", "--linger", "5ms")
	_, peaks, anon := s.stop()
	if err != nil {
		return res, err
	}
	res.ProduceMiB, res.PeakRSS, res.PeakAnon = p.MiBSec, peaks[0], anon[0]
	return res, nil
}

// memoryLimitMiB reads the agent's soft memory limit, as it set it, from
// its /metrics (the Go collector's go_gc_gomemlimit_bytes).
func memoryLimitMiB(ctx context.Context, admin string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("read the memory limit: %w", err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_gc_gomemlimit_bytes "); ok {
			b, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return 0, fmt.Errorf("go_gc_gomemlimit_bytes %q: %w", v, err)
			}
			return b / (1 << 20), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read the memory limit: %w", err)
	}
	return 0, fmt.Errorf("no go_gc_gomemlimit_bytes in %s/metrics", admin)
}
