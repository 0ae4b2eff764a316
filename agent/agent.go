// Package agent is a tlog agent: the Kafka listener and its API handlers
// (one file per API, named by API key), the partitions the agent holds, its
// write-ahead log, and its view of cluster metadata.
package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/wal"
	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/rangecache"
)

// Config configures an agent. Zero values take the defaults noted.
type Config struct {
	ID        int32
	DataDir   string
	Listen    string // Kafka listener, default 127.0.0.1:9092
	Advertise string // address given to clients, default the bound listener
	Zone      string
	Bucket    tier.Bucket

	// WALSync fsyncs every WAL group commit before acknowledging.
	WALSync bool
	// AutoCreateTopics lets Metadata requests create missing topics.
	AutoCreateTopics bool
	// DefaultPartitions is num.partitions (default 1).
	DefaultPartitions int32
	// MaxMessageBytes is the broker default max.message.bytes (default 1 MiB).
	MaxMessageBytes int32
	// MaxRequestBytes is socket.request.max.bytes (default 100 MiB).
	MaxRequestBytes int32

	LeaseTTL time.Duration // controller lease TTL (default 10s)
	Logger   *slog.Logger

	// FlushInterval and FlushBytes seal a segment on age or size
	// (defaults 250ms, 8 MiB); SegmentBytes bounds one object (default
	// 8 MiB).
	FlushInterval time.Duration
	FlushBytes    int64
	SegmentBytes  int64
	// WALMaxBytes bounds unflushed data: past it, produce answers with a
	// retriable error until flushing catches up (default 1 GiB).
	WALMaxBytes int64
	// CacheBytes bounds the in-memory cache of segment ranges (default
	// 256 MiB).
	CacheBytes int64
	// RetentionInterval is how often the controller applies retention and
	// collects unreferenced objects (default 30s); OrphanGrace is how old
	// an unreferenced object must be before it is deleted (default 10m).
	RetentionInterval time.Duration
	OrphanGrace       time.Duration
	// CompactInterval is how often small ranges are merged (default 30s);
	// CompactBytes is the size merged objects grow to (default 64 MiB).
	CompactInterval time.Duration
	CompactBytes    int64

	// AdminListen is the admin HTTP address (/metrics, /healthz,
	// /readyz); empty disables it.
	AdminListen string
}

func (c *Config) setDefaults() {
	if c.Listen == "" {
		c.Listen = "127.0.0.1:9092"
	}
	if c.DefaultPartitions <= 0 {
		c.DefaultPartitions = 1
	}
	if c.MaxMessageBytes <= 0 {
		c.MaxMessageBytes = 1 << 20
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = 100 << 20
	}
	if c.LeaseTTL <= 0 {
		c.LeaseTTL = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.FlushInterval <= 0 {
		c.FlushInterval = 250 * time.Millisecond
	}
	if c.FlushBytes <= 0 {
		c.FlushBytes = 8 << 20
	}
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = 8 << 20
	}
	if c.WALMaxBytes <= 0 {
		c.WALMaxBytes = 1 << 30
	}
	if c.CacheBytes <= 0 {
		c.CacheBytes = 256 << 20
	}
	if c.RetentionInterval <= 0 {
		c.RetentionInterval = 30 * time.Second
	}
	if c.OrphanGrace <= 0 {
		c.OrphanGrace = 10 * time.Minute
	}
	if c.CompactInterval <= 0 {
		c.CompactInterval = 30 * time.Second
	}
	if c.CompactBytes <= 0 {
		c.CompactBytes = 64 << 20
	}
}

// Agent is a running tlog agent.
type Agent struct {
	cfg       Config
	log       *slog.Logger
	meta      *metadata.Store
	wal       *wal.WAL
	ln        net.Listener
	clusterID string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.RWMutex
	topics  map[string]*topic
	byID    map[uuid.UUID]*topic
	applied uint64 // metadata seq last synced into topics

	data notifier // wakes long-polling fetches when any HW moves

	cache     *rangecache.Cache
	obs       *observer    // metrics and the admin listener (metrics.go, admin.go)
	walBytes  atomic.Int64 // unflushed bytes over all partitions
	flushKick chan struct{}
	stats     struct {
		flushes, flushedBytes    atomic.Int64
		retained, deletedObjects atomic.Int64
		compactions              atomic.Int64
	}

	pidMu   sync.Mutex
	pidNext int64
	pidEnd  int64

	connsMu sync.Mutex
	conns   map[*conn]struct{}
	closing bool
}

// topic is the agent's live view of one topic.
type topic struct {
	id      uuid.UUID
	name    string
	configs map[string]string
	parts   []*partition.Partition
	meta    *metadata.Topic
}

// Start opens the agent's state and starts serving.
func Start(ctx context.Context, cfg Config) (*Agent, error) {
	cfg.setDefaults()
	if cfg.Bucket == nil {
		return nil, errors.New("agent: no bucket configured")
	}
	if cfg.DataDir == "" {
		return nil, errors.New("agent: no data directory configured")
	}
	// Bucket calls are counted from the first one (metadata, flusher, cache).
	obs := newObserver()
	cfg.Bucket = tier.WithMetrics(cfg.Bucket, obs.reg)
	a := &Agent{
		obs:    obs,
		cfg:    cfg,
		log:    cfg.Logger.With("agent", cfg.ID),
		topics: make(map[string]*topic),
		byID:   make(map[uuid.UUID]*topic),
		conns:  make(map[*conn]struct{}),

		cache:     rangecache.New(cfg.Bucket, cfg.CacheBytes, cfg.Logger),
		flushKick: make(chan struct{}, 1),
	}
	a.data.init()
	a.ctx, a.cancel = context.WithCancel(context.Background())
	ok := false
	defer func() {
		if !ok {
			a.Close()
		}
	}()

	if err := a.startAdmin(); err != nil {
		return nil, err
	}

	var err error
	if a.clusterID, err = loadClusterID(ctx, cfg.Bucket); err != nil {
		return nil, err
	}
	a.meta, err = metadata.Open(ctx, metadata.Config{
		Bucket:   cfg.Bucket,
		AgentID:  cfg.ID,
		LeaseTTL: cfg.LeaseTTL,
		Logger:   a.log,
	})
	if err != nil {
		return nil, fmt.Errorf("agent: open metadata: %w", err)
	}
	if err := a.becomeController(ctx); err != nil {
		return nil, err
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.meta.Run(a.ctx)
	}()

	walDir := filepath.Join(cfg.DataDir, "wal")
	if err := os.MkdirAll(walDir, 0o755); err != nil {
		return nil, fmt.Errorf("agent: create %s: %w", walDir, err)
	}
	// Long polls wake once per group commit, not once per batch.
	a.wal, err = wal.Open(wal.Options{Dir: walDir, Sync: cfg.WALSync, Logger: a.log, AfterGroup: a.data.signal})
	if err != nil {
		return nil, err
	}

	a.ln, err = net.Listen("tcp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("agent: listen on %s: %w", cfg.Listen, err)
	}
	if a.cfg.Advertise == "" {
		a.cfg.Advertise = a.ln.Addr().String()
	}
	if err := a.register(ctx); err != nil {
		return nil, err
	}
	if err := a.recover(); err != nil {
		return nil, err
	}
	a.markRecovered()

	a.wg.Add(5)
	go func() {
		defer a.wg.Done()
		a.serve()
	}()
	go func() {
		defer a.wg.Done()
		a.flushLoop()
	}()
	go func() {
		defer a.wg.Done()
		a.retentionLoop()
	}()
	go func() {
		defer a.wg.Done()
		a.compactLoop()
	}()
	go func() {
		defer a.wg.Done()
		a.watchMetadata()
	}()
	ok = true
	a.log.Info("agent serving", "kafka", a.cfg.Advertise, "data", cfg.DataDir, "wal_sync", cfg.WALSync)
	return a, nil
}

// Addr is the address the Kafka listener is bound to.
func (a *Agent) Addr() string { return a.ln.Addr().String() }

// ClusterID is the cluster's id, fixed in the bucket on first start.
func (a *Agent) ClusterID() string { return a.clusterID }

// becomeController takes the controller lease. A single agent (tlog dev)
// must hold it; a restarted agent with the same id takes it back at once.
func (a *Agent) becomeController(ctx context.Context) error {
	deadline := time.Now().Add(2*a.cfg.LeaseTTL + 5*time.Second)
	for {
		won, err := a.meta.Campaign(ctx)
		if err == nil && won {
			return nil
		}
		if err != nil {
			a.log.Warn("controller campaign failed", "err", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("agent: could not become controller: %v", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (a *Agent) register(ctx context.Context) error {
	info := metadata.AgentInfo{ID: a.cfg.ID, Addr: a.cfg.Advertise, Zone: a.cfg.Zone}
	if cur, ok := a.meta.State().Agents[a.cfg.ID]; ok && cur.Addr == info.Addr && cur.Zone == info.Zone {
		return nil
	}
	info.Registered = time.Now().UTC()
	if _, err := a.meta.Propose(ctx, metadata.RegisterAgent{Agent: info}); err != nil {
		return fmt.Errorf("agent: register: %w", err)
	}
	return nil
}

// recover builds partitions from metadata, then replays the WAL into them:
// log end offsets, epoch caches and producer state all come from the
// batches themselves.
func (a *Agent) recover() error {
	a.syncTopics()
	start := time.Now()
	err := a.wal.ProducerSnapshots(func(k wal.PartKey, snap []byte) error {
		if p := a.partitionByKey(k); p != nil {
			return p.RestoreProducers(snap)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("agent: restore producer state: %w", err)
	}
	var n, stale int
	var staleKeys []wal.PartKey
	staleBelow := map[wal.PartKey]bool{}
	staleParts := map[*partition.Partition]bool{}
	err = a.wal.Scan(func(k wal.PartKey, base int64, b []byte) error {
		p := a.partitionByKey(k)
		if p == nil {
			if !staleBelow[k] {
				staleBelow[k] = true
				staleKeys = append(staleKeys, k)
			}
			stale++
			return nil
		}
		isStale, err := p.Load(b)
		if err != nil {
			return err
		}
		if isStale {
			stale++
			staleParts[p] = true
		}
		n++
		return nil
	})
	if err != nil {
		return fmt.Errorf("agent: replay wal: %w", err)
	}
	for _, k := range staleKeys {
		if err := a.wal.DropPartition(k); err != nil {
			return err
		}
	}
	for p := range staleParts {
		if err := p.DropStale(); err != nil {
			return err
		}
	}
	a.log.Info("wal replayed", "batches", n, "stale", stale, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

func (a *Agent) partitionByKey(k wal.PartKey) *partition.Partition {
	a.mu.RLock()
	defer a.mu.RUnlock()
	t := a.byID[uuid.UUID(k.TopicID())]
	if t == nil || int(k.Partition()) >= len(t.parts) || k.Partition() < 0 {
		return nil
	}
	return t.parts[k.Partition()]
}

// watchMetadata applies metadata changes made elsewhere (another controller,
// or a journal entry this agent did not propose itself).
func (a *Agent) watchMetadata() {
	ch := a.meta.Subscribe()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-ch:
			a.syncTopics()
		}
	}
}

// syncTopics makes the agent's live topics match the metadata state.
func (a *Agent) syncTopics() {
	st := a.meta.State()
	// WAL truncation happens after the topic lock is released: handlers
	// look topics up under it.
	type bounds struct {
		name                 string
		idx                  int
		p                    *partition.Partition
		logStart, flushedEnd int64
	}
	var moves []bounds
	var dropped []*partition.Partition // of deleted topics
	defer func() {
		for _, p := range dropped {
			if err := a.wal.DropPartition(p.Key()); err != nil {
				a.log.Warn("drop deleted partition", "err", err)
			}
		}
		for _, m := range moves {
			o := m.p.Offsets()
			if m.logStart > o.LogStart && m.logStart <= o.HW {
				if err := m.p.SetLogStart(m.logStart); err != nil {
					a.log.Warn("apply log start", "topic", m.name, "partition", m.idx, "err", err)
				}
			}
			if err := m.p.SetFlushedEnd(m.flushedEnd); err != nil {
				a.log.Warn("apply flushed end", "topic", m.name, "partition", m.idx, "err", err)
			}
		}
	}()
	a.mu.Lock()
	defer a.mu.Unlock()
	if st.Seq == a.applied && len(a.topics) > 0 {
		return
	}
	a.applied = st.Seq
	// Topics are immutable snapshots: handlers read them without a lock,
	// so each change installs a new value sharing the partitions.
	for id, mt := range st.Topics {
		old := a.byID[id]
		t := &topic{id: id, name: mt.Name, configs: mt.Configs, meta: mt}
		if old != nil {
			t.parts = append([]*partition.Partition(nil), old.parts...)
		}
		for i := len(t.parts); i < len(mt.Partitions); i++ {
			mp := mt.Partitions[i]
			t.parts = append(t.parts, partition.New(partition.Config{
				Key:         wal.NewPartKey(id, int32(i)),
				Topic:       mt.Name,
				Index:       int32(i),
				LeaderEpoch: mp.LeaderEpoch,
				LogStart:    mp.LogStart,
				FlushedEnd:  mp.FlushedEnd,
				WAL:         a.wal,
				OnWALBytes:  func(d int64) { a.walBytes.Add(d) },
			}))
		}
		for i, p := range t.parts {
			mp := mt.Partitions[i]
			p.SetEpoch(mp.LeaderEpoch)
			if o := p.Offsets(); mp.LogStart > o.LogStart || mp.FlushedEnd > o.FlushedEnd {
				moves = append(moves, bounds{name: mt.Name, idx: i, p: p, logStart: mp.LogStart, flushedEnd: mp.FlushedEnd})
			}
		}
		a.byID[id] = t
		a.topics[mt.Name] = t
	}
	for id, t := range a.byID {
		if _, ok := st.Topics[id]; ok {
			continue
		}
		delete(a.byID, id)
		// The name may already belong to a topic recreated under it.
		if cur := a.topics[t.name]; cur != nil && cur.id == id {
			delete(a.topics, t.name)
		}
		for _, p := range t.parts {
			p.Close()
			dropped = append(dropped, p)
		}
	}
	a.data.signal()
}

func (a *Agent) topicByName(name string) *topic {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.topics[name]
}

func (a *Agent) topicByID(id uuid.UUID) *topic {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.byID[id]
}

// propose changes metadata through the controller and applies the result
// locally before returning, so a client's next request sees it.
func (a *Agent) propose(ctx context.Context, cmds ...metadata.Command) (*metadata.State, error) {
	if !a.meta.IsController() {
		return nil, metadata.ErrNotController
	}
	st, err := a.meta.Propose(ctx, cmds...)
	if err != nil {
		return nil, err
	}
	a.syncTopics()
	return st, nil
}

// Close stops serving and releases the WAL. Acknowledged data is already in
// the WAL; Close only waits for in-flight writes.
func (a *Agent) Close() error {
	a.stopAdmin()
	if a.cancel != nil {
		a.cancel()
	}
	if a.ln != nil {
		a.ln.Close()
	}
	a.connsMu.Lock()
	a.closing = true
	for c := range a.conns {
		c.nc.Close()
	}
	a.connsMu.Unlock()
	a.wg.Wait()
	var err error
	a.mu.Lock()
	for _, t := range a.topics {
		for _, p := range t.parts {
			p.Close()
		}
	}
	a.mu.Unlock()
	if a.wal != nil {
		err = a.wal.Close()
	}
	if a.meta != nil {
		a.meta.Close()
	}
	return err
}

// loadClusterID reads meta/cluster, creating it on first start. Every agent
// on a bucket reports the same id.
func loadClusterID(ctx context.Context, b tier.Bucket) (string, error) {
	const key = "meta/cluster"
	type doc struct {
		ClusterID string    `json:"cluster_id"`
		Created   time.Time `json:"created"`
	}
	for range 3 {
		body, _, err := b.Get(ctx, key)
		if err == nil {
			var d doc
			if err := json.Unmarshal(body, &d); err != nil || d.ClusterID == "" {
				return "", fmt.Errorf("agent: bucket object %s is corrupt: %v", key, err)
			}
			return d.ClusterID, nil
		}
		if !errors.Is(err, tier.ErrNotFound) {
			return "", fmt.Errorf("agent: read %s: %w", key, err)
		}
		body, _ = json.Marshal(doc{ClusterID: newClusterID(), Created: time.Now().UTC()})
		if _, err := b.PutIfAbsent(ctx, key, body); err != nil && !errors.Is(err, tier.ErrPreconditionFailed) {
			return "", fmt.Errorf("agent: create %s: %w", key, err)
		}
	}
	return "", fmt.Errorf("agent: could not read or create %s", key)
}

// newClusterID makes a Kafka-style cluster id: 16 random bytes, base64url.
func newClusterID() string {
	id := uuid.New()
	return base64URL(id[:])
}

// notifier is a broadcast: waiters take the current channel, signal closes
// it and installs a fresh one.
type notifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func (n *notifier) init() { n.ch = make(chan struct{}) }

func (n *notifier) wait() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *notifier) signal() {
	n.mu.Lock()
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}

// PartitionOffsets reports a partition's bounds (log start, flushed end,
// high watermark, log end, epoch), for status views and tests.
func (a *Agent) PartitionOffsets(topicName string, idx int32) (partition.Offsets, bool) {
	t := a.topicByName(topicName)
	if t == nil || idx < 0 || int(idx) >= len(t.parts) {
		return partition.Offsets{}, false
	}
	return t.parts[idx].Offsets(), true
}

// Manifest lists, per partition of a topic, the objects its committed
// ranges live in, oldest first (for status views and tests).
func (a *Agent) Manifest(topicName string) [][]string {
	mt, ok := a.meta.State().TopicByName(topicName)
	if !ok {
		return nil
	}
	out := make([][]string, len(mt.Partitions))
	for i, p := range mt.Partitions {
		for _, s := range p.Segments {
			out[i] = append(out[i], s.Object)
		}
	}
	return out
}
