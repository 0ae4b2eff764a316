package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startNATS starts n nats-server processes with JetStream on file storage
// (clustered when n > 1); brokers is their client URLs.
func startNATS(ctx context.Context, bin, dir string, n int) (*running, error) {
	type node struct{ client, route string }
	nodes := make([]node, n)
	for i := range nodes {
		c, err := freePort()
		if err != nil {
			return nil, err
		}
		r, err := freePort()
		if err != nil {
			return nil, err
		}
		nodes[i] = node{fmt.Sprintf("127.0.0.1:%d", c), fmt.Sprintf("127.0.0.1:%d", r)}
	}
	var procs []*proc
	stop := func() {
		for _, p := range procs {
			p.stop()
		}
	}
	var urls []string
	for i, nd := range nodes {
		host, port, _ := strings.Cut(nd.client, ":")
		args := []string{"-a", host, "-p", port, "-js", "-sd", filepath.Join(dir, fmt.Sprintf("nats-%d", i)), "-n", fmt.Sprintf("n%d", i)}
		if n > 1 {
			var routes []string
			for j, o := range nodes {
				if j != i {
					routes = append(routes, "nats://"+o.route)
				}
			}
			args = append(args, "--cluster_name", "bench", "--cluster", "nats://"+nd.route, "--routes", strings.Join(routes, ","))
		}
		p, err := startProc(fmt.Sprintf("nats-server %d", i), filepath.Join(dir, fmt.Sprintf("nats-%d.log", i)), nil, bin, args...)
		if err != nil {
			stop()
			return nil, err
		}
		procs = append(procs, p)
		urls = append(urls, "nats://"+nd.client)
	}
	for i, nd := range nodes {
		if err := waitTCP(ctx, nd.client, procs[i], 30*time.Second); err != nil {
			stop()
			return nil, err
		}
	}
	r := &running{brokers: strings.Join(urls, ","), stop: stop}
	for _, p := range procs {
		r.pids = append(r.pids, p.pid())
	}
	return r, nil
}

// natsWorkload is kafkaWorkload's for JetStream: a stream over 8 subjects
// (as 8 partitions), file storage, `replicas` replicas, each publish
// acknowledged by the stream (async, up to 10,000 in flight), then an
// ordered consumer reading it all back, then end-to-end latency at a
// fixed rate.
func natsWorkload(ctx context.Context, urls string, replicas int, o options, r *measurement) error {
	nc, err := nats.Connect(urls, nats.MaxReconnects(-1))
	if err != nil {
		return err
	}
	defer nc.Close()
	var failed atomic.Int64
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(10_000),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { failed.Add(1) }))
	if err != nil {
		return err
	}
	create := func(name string) error {
		var err error
		for range 60 { // a cluster elects its meta leader first
			actx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = js.CreateStream(actx, jetstream.StreamConfig{Name: name, Subjects: []string{name + ".>"},
				Replicas: replicas, Storage: jetstream.FileStorage})
			cancel()
			if err == nil {
				return nil
			}
			time.Sleep(500 * time.Millisecond)
		}
		return fmt.Errorf("create stream %s: %w", name, err)
	}
	if err := create("THR"); err != nil {
		return err
	}
	value := make([]byte, 1024)
	rand.Read(value)
	r.ProduceAt = time.Now()
	start := time.Now()
	for i := range o.records {
		if _, err := js.PublishAsync(fmt.Sprintf("THR.%d", i%8), value, jetstream.WithStallWait(time.Minute)); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	}
	r.Produce = mibPerSec(o.records, time.Since(start))
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("%d publishes failed", n)
	}

	// Read back.
	cons, err := js.OrderedConsumer(ctx, "THR", jetstream.OrderedConsumerConfig{})
	if err != nil {
		return err
	}
	start = time.Now()
	var got atomic.Int64
	all := make(chan struct{})
	cc, err := cons.Consume(func(m jetstream.Msg) {
		if got.Add(1) == int64(o.records) {
			close(all)
		}
	})
	if err != nil {
		return err
	}
	select {
	case <-all:
	case <-ctx.Done():
		cc.Stop()
		return ctx.Err()
	}
	r.ReadBack = mibPerSec(o.records, time.Since(start))
	cc.Stop()

	// End to end at a fixed rate.
	if err := create("E2E"); err != nil {
		return err
	}
	e2eCons, err := js.OrderedConsumer(ctx, "E2E", jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverNewPolicy})
	if err != nil {
		return err
	}
	var mu sync.Mutex
	lat := make([]time.Duration, 0, o.e2eRecords)
	done := make(chan struct{})
	cc, err = e2eCons.Consume(func(m jetstream.Msg) {
		d := time.Since(time.Unix(0, int64(binary.BigEndian.Uint64(m.Data()))))
		mu.Lock()
		defer mu.Unlock()
		lat = append(lat, d)
		if len(lat) == o.e2eRecords {
			close(done)
		}
	})
	if err != nil {
		return err
	}
	defer cc.Stop()
	time.Sleep(200 * time.Millisecond) // the consumer's first pull is out
	start = time.Now()
	for i := range o.e2eRecords {
		if d := time.Until(start.Add(time.Duration(i) * time.Second / time.Duration(o.e2eRate))); d > 0 {
			time.Sleep(d)
		}
		v := make([]byte, 1024)
		copy(v[8:], value)
		binary.BigEndian.PutUint64(v, uint64(time.Now().UnixNano()))
		if _, err := js.PublishAsync(fmt.Sprintf("E2E.%d", i%8), v, jetstream.WithStallWait(time.Minute)); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
	}
	select {
	case <-done:
	case <-time.After(time.Minute):
		return fmt.Errorf("end to end: %d of %d messages arrived", len(lat), o.e2eRecords)
	case <-ctx.Done():
		return ctx.Err()
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	r.E2EP50, r.E2EP99 = quantileMs(lat, 0.5), quantileMs(lat, 0.99)
	for _, q := range curveQuantiles {
		r.Curve = append(r.Curve, [2]float64{q, quantileMs(lat, q)})
	}
	return nil
}

// curveQuantiles match `tlog bench e2e`'s curve.
var curveQuantiles = []float64{0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9995, 0.9999, 1}

func quantileMs(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return float64(sorted[int(float64(len(sorted)-1)*q)].Microseconds()) / 1000
}

func mibPerSec(records int, d time.Duration) float64 {
	return float64(records) * 1024 / (1 << 20) / d.Seconds()
}
