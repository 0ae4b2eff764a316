// Package agent is a tlog agent: the Kafka listener and its API handlers
// (one file per API, named by API key), the partitions the agent holds, its
// write-ahead log, and its view of cluster metadata.
package agent

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/tlog-io/tlog/agent/controller"
	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/agent/kafka"
	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/peer"
	"github.com/tlog-io/tlog/agent/replica"
	"github.com/tlog-io/tlog/agent/tiering"
	"github.com/tlog-io/tlog/agent/topic"
	"github.com/tlog-io/tlog/agent/wal"
	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/rangecache"
)

// Agent is a running tlog agent.
type Agent struct {
	cfg  Config
	log  *slog.Logger
	meta *metadata.Store
	wal  *wal.WAL
	ln   net.Listener // the first Kafka port
	// kafkaLns are every Kafka port (listeners.go); listenersAdvertised
	// their names and advertised addresses, as heartbeats carry them
	// ("" with only the default --listen port).
	kafkaLns            []kafkaListener
	listenersAdvertised string
	clusterID           string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.RWMutex
	topics  map[string]*topic.Topic
	byID    map[uuid.UUID]*topic.Topic
	applied uint64 // metadata seq last synced into topics
	synced  bool
	// syncMu serialises syncTopics whole, including the partition updates
	// it makes after releasing mu.
	syncMu sync.Mutex

	data        notifier      // wakes long-polling fetches when any HW moves
	dataKick    chan struct{} // coalesces HW moves into data signals
	metaChanged notifier      // signalled after each syncTopics

	// Cluster: the peer port, the controller role, heartbeats and
	// replication.
	incarnation int64
	peerLn      net.Listener
	peerConns   map[*peer.Conn]struct{}
	ctrl        *controller.Controller
	client      *ctrlClient
	repl        *replica.Replicator
	pushes      chan peer.Push
	// startEpoch: partitions this agent led when it started, at that
	// epoch. It leads them again only at a later epoch, which the
	// controller grants when it sees the restart: batches the previous
	// process sent followers may be missing from its own log.
	startEpoch map[wal.PartKey]int32

	coordMu sync.Mutex
	coords  map[int32]*groupCoord // by __consumer_offsets partition

	// groupTopics' cache: never modified once built (coordinators share it).
	groupTopicsMu    sync.Mutex
	groupTopicsCache map[string]group.TopicMeta
	groupTopicsSeq   uint64

	restoring sync.Map // wal.PartKey → true while producer state loads

	cache    *rangecache.Cache
	ranges   *rangecache.Reader // reads committed ranges through cache
	obs      *observer          // metrics and the admin listener (metrics.go, admin.go)
	walBytes atomic.Int64       // unflushed bytes over all partitions
	tier     *tiering.Tiering

	front *kafka.Server // the Kafka listener and handlers
	// frontLive is front once made, for the peer port's Kafka requests
	// (internalcalls.go), which may arrive before it is.
	frontLive atomic.Pointer[kafka.Server]

	pidMu   sync.Mutex // producer ids (producerids.go)
	pidNext int64
	pidEnd  int64

	txnMu     sync.Mutex
	txnCoords map[int32]*txnCoord // by __transaction_state partition
	// kafkaPeers are peer connections carrying Kafka requests to other
	// agents (markers, transaction checks: internalcalls.go).
	kafkaPeers map[int32]*peer.Conn

	// connsMu guards peerConns and closing, so Close reaches every peer
	// connection.
	connsMu sync.Mutex
	closing bool
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
	if cfg.ID < 0 {
		return nil, fmt.Errorf("agent: negative agent id %d", cfg.ID)
	}
	// Bucket calls are counted from the first one (metadata, flusher, cache).
	obs := newObserver()
	cfg.Bucket = tier.WithMetrics(cfg.Bucket, obs.reg)
	cache := rangecache.New(cfg.Bucket, cfg.CacheBytes, cfg.Logger)
	a := &Agent{
		obs:       obs,
		cfg:       cfg,
		log:       cfg.Logger.With("agent", cfg.ID),
		topics:    make(map[string]*topic.Topic),
		byID:      make(map[uuid.UUID]*topic.Topic),
		peerConns: make(map[*peer.Conn]struct{}),

		cache:       cache,
		ranges:      rangecache.NewReader(cache),
		dataKick:    make(chan struct{}, 1),
		pushes:      make(chan peer.Push, 4096),
		incarnation: time.Now().UnixNano(), // an identity, unique per process start: real time
		startEpoch:  map[wal.PartKey]int32{},
		coords:      map[int32]*groupCoord{},
		txnCoords:   map[int32]*txnCoord{},
	}
	a.data.init()
	a.metaChanged.init()
	a.ctx, a.cancel = context.WithCancel(context.Background())
	a.ctrl = controller.New(a.ctx, controller.Config{
		ID: cfg.ID, SessionTimeout: cfg.SessionTimeout, DisconnectGrace: cfg.DisconnectGrace,
		BalanceInterval: cfg.BalanceInterval, NoAutoBalance: cfg.NoAutoBalance, LeaseTTL: cfg.LeaseTTL,
		ReplaceFencedAfter: max(cfg.ReplaceFencedAfter, 0),
		Bucket:             cfg.Bucket, Logger: a.log, Clock: cfg.Clock, Propose: a.propose, Journaled: a.syncTopics,
	})
	a.client = &ctrlClient{a: a}
	// No session until the controller first answers (nothing is led
	// before then either).
	a.client.sessLapsed.Store(!a.standalone())
	a.repl = replica.New(a.ctx, replica.Config{ID: cfg.ID, ReplicaLagMax: cfg.ReplicaLagMax, Logger: a.log, Clock: cfg.Clock}, host{a})
	a.tier = tiering.New(a.ctx, tiering.Config{
		ID: cfg.ID, Bucket: cfg.Bucket, FlushInterval: cfg.FlushInterval, FlushBytes: cfg.FlushBytes,
		SegmentBytes: cfg.SegmentBytes, CompactInterval: cfg.CompactInterval, CompactBytes: cfg.CompactBytes,
		KeyCompactInterval: cfg.CompactionInterval, KeyCompactBufferBytes: cfg.CompactionBufferBytes,
		RetentionInterval: cfg.RetentionInterval, OrphanGrace: cfg.OrphanGrace, Logger: a.log,
		OnFlushed: a.obs.flushed, OnFlushFailed: a.obs.flushFailed,
	}, host{a})
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
		Bucket:              cfg.Bucket,
		AgentID:             cfg.ID,
		LeaseTTL:            cfg.LeaseTTL,
		FlushCommitInterval: cfg.FlushCommitInterval,
		Logger:              cfg.Logger, // the store adds agent= itself
		Clock:               cfg.Clock,
		OnControllerChange:  a.ctrl.OnChange,
		OnAppend:            a.ctrl.OnAppend,
	})
	if err != nil {
		return nil, fmt.Errorf("agent: open metadata: %w", err)
	}
	a.ctrl.SetStore(a.meta)
	total := 0
	for _, mt := range a.meta.State().Topics {
		total += len(mt.Partitions)
		for i, mp := range mt.Partitions {
			if mp.Leader == cfg.ID {
				a.startEpoch[wal.NewPartKey(mt.ID, int32(i))] = mp.LeaderEpoch
			}
		}
	}
	if total > controller.MaxClusterPartitions {
		a.log.Warn("the cluster has more partitions than an agent is known to serve well; expect slow restarts and a busy controller",
			"partitions", total, "limit", controller.MaxClusterPartitions)
	}
	if a.standalone() {
		if err := a.becomeController(ctx); err != nil {
			return nil, err
		}
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.meta.Run(a.ctx)
	}()

	walOpts := wal.Options{Dir: filepath.Join(cfg.DataDir, "wal"), Sync: cfg.WALSync, Logger: a.log}
	if cfg.WALStore != nil {
		a.wal = wal.New(cfg.WALStore, walOpts)
	} else {
		if err := os.MkdirAll(walOpts.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("agent: create %s: %w", walOpts.Dir, err)
		}
		if walOpts.Files, err = walKind(walOpts.Dir, cfg.WALStoreKind); err != nil {
			return nil, err
		}
		if a.wal, err = wal.Open(walOpts); err != nil {
			return nil, err
		}
	}

	if err := a.openListeners(); err != nil {
		return nil, err
	}
	if err := a.startPeer(); err != nil {
		return nil, err
	}
	if err := a.recover(); err != nil {
		return nil, err
	}
	a.markRecovered()

	background := []func(){a.applyPushes, a.signalData, a.ctrl.Run, a.client.run, a.watchMetadata}
	if a.peerLn != nil {
		background = append(background, a.servePeers)
	}
	for _, fn := range background {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			fn()
		}()
	}
	if err := a.awaitRegistration(ctx); err != nil {
		return nil, err
	}
	a.front = kafka.New(kafka.Config{
		ID:                  cfg.ID,
		ClusterID:           a.clusterID,
		MaxRequestBytes:     cfg.MaxRequestBytes,
		MaxMessageBytes:     cfg.MaxMessageBytes,
		DefaultPartitions:   cfg.DefaultPartitions,
		AutoCreateTopics:    cfg.AutoCreateTopics,
		WALMaxBytes:         cfg.WALMaxBytes,
		FlushBytes:          cfg.FlushBytes,
		TransactionVersion:  cfg.TransactionVersion,
		SASLSessionLifetime: cfg.SASLSessionLifetime,
		SuperUsers:          a.superUsers(),
		Authorizer:          cfg.Authorizer,
		MaxConnectionsPerIP: cfg.MaxConnectionsPerIP,
		BrokerConfigs:       a.brokerConfigs(),
		LogLevel:            cfg.LogLevel,
	}, backend{a}, a.log, a.obs.reg)
	a.frontLive.Store(a.front)
	a.serveListeners()
	if cfg.BootstrapUser != "" {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.ensureBootstrapUser()
		}()
	}
	for _, fn := range []func(){a.tier.Run, a.repl.RunISR} {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			fn()
		}()
	}
	ok = true
	a.log.Info("agent serving", "kafka", a.cfg.Advertise, "peer", a.cfg.PeerAdvertise, "data", cfg.DataDir, "wal_sync", cfg.WALSync)
	return a, nil
}

// awaitRegistration waits until the controller has journaled this agent's
// current incarnation (and with it a new epoch for every partition it led
// before the restart).
func (a *Agent) awaitRegistration(ctx context.Context) error {
	for {
		if info, ok := a.meta.State().Agents[a.cfg.ID]; ok && info.Incarnation == a.incarnation && !info.Fenced &&
			info.Addr == a.cfg.Advertise && info.PeerAddr == a.cfg.PeerAdvertise &&
			metadata.EncodeListeners(info.Listeners) == a.listenersAdvertised {
			a.syncTopics()
			return nil
		}
		wake := a.metaChanged.wait()
		select {
		case <-ctx.Done():
			return fmt.Errorf("agent: not registered by a controller: %w", ctx.Err())
		case <-wake:
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// signalData turns high-watermark moves into fetch wake-ups, coalesced.
func (a *Agent) signalData() {
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-a.dataKick:
			a.data.signal()
		}
	}
}

func (a *Agent) hwMoved(k wal.PartKey) {
	select {
	case a.dataKick <- struct{}{}:
	default:
	}
	a.repl.Wake(k)
}

// standalone: a single agent with no peer port (tlog dev).
func (a *Agent) standalone() bool { return a.cfg.PeerListen == "" }

// Addr is the address the Kafka listener is bound to.
func (a *Agent) Addr() string { return a.ln.Addr().String() }

// PeerAddr is the address the peer listener is bound to ("" standalone).
func (a *Agent) PeerAddr() string {
	if a.peerLn == nil {
		return ""
	}
	return a.peerLn.Addr().String()
}

// ID is the agent's id.
func (a *Agent) ID() int32 { return a.cfg.ID }

// ClusterID is the cluster's id, fixed in the bucket on first start.
func (a *Agent) ClusterID() string { return a.clusterID }

// becomeController takes the controller lease. A single agent (tlog dev)
// must hold it; a restarted agent with the same id takes it back at once.
func (a *Agent) becomeController(ctx context.Context) error {
	// How long to try is a startup timeout, in real time; the lease itself
	// is timed by the Clock.
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
	a.mu.RLock()
	var parts []*partition.Partition
	for _, t := range a.byID {
		for _, p := range t.Parts {
			if p != nil {
				parts = append(parts, p)
			}
		}
	}
	a.mu.RUnlock()
	for _, p := range parts {
		if err := p.Recovered(); err != nil {
			return fmt.Errorf("agent: recover: %w", err)
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
	if t == nil || int(k.Partition()) >= len(t.Parts) || k.Partition() < 0 {
		return nil
	}
	return t.Parts[k.Partition()]
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

// syncTopics makes the agent's live topics match the metadata state:
// partitions are created, given their role (leader, follower or neither)
// and bounds, and dropped with their topics; replication links follow.
func (a *Agent) syncTopics() {
	a.syncMu.Lock()
	defer a.syncMu.Unlock()
	st := a.meta.State()
	type update struct {
		t          *topic.Topic
		name       string
		idx        int
		p          *partition.Partition
		role       *partition.Role // nil: unchanged
		replica    bool
		logStart   int64
		flushedEnd int64
	}
	var updates []update
	var dropped []*partition.Partition // of deleted topics
	a.mu.Lock()
	if st.Seq == a.applied && a.synced {
		a.mu.Unlock()
		return
	}
	a.applied, a.synced = st.Seq, true
	// Topics are immutable snapshots: handlers read them without a lock,
	// so each change installs a new value sharing the partitions.
	for id, mt := range st.Topics {
		old := a.byID[id]
		if old != nil && old.Meta == mt {
			continue
		}
		t := &topic.Topic{ID: id, Name: mt.Name, Configs: mt.Configs, Meta: mt}
		if old != nil {
			t.Parts = append([]*partition.Partition(nil), old.Parts...)
		}
		for i := len(t.Parts); i < len(mt.Partitions); i++ {
			mp := mt.Partitions[i]
			key := wal.NewPartKey(id, int32(i))
			t.Parts = append(t.Parts, partition.New(partition.Config{
				Key:         key,
				Topic:       mt.Name,
				Index:       int32(i),
				LeaderEpoch: mp.LeaderEpoch,
				LogStart:    mp.LogStart,
				FlushedEnd:  mp.FlushedEnd,
				WAL:         a.wal,
				OnWALBytes:  func(d int64) { a.walBytes.Add(d) },
				OnAppend:    func() { a.repl.Wake(key) },
				OnAdvance:   func() { a.hwMoved(key) },
				Manifest:    manifest{a.meta, id, int32(i)},
				Ranges:      a.ranges,
				Clock:       a.cfg.Clock,
			}))
		}
		for i, p := range t.Parts {
			mp := &mt.Partitions[i]
			u := update{t: t, name: mt.Name, idx: i, p: p, logStart: mp.LogStart, flushedEnd: mp.FlushedEnd, replica: slices.Contains(mp.Replicas, a.cfg.ID)}
			if old == nil || i >= len(old.Meta.Partitions) || roleChanged(&old.Meta.Partitions[i], mp) || !maps.Equal(old.Configs, mt.Configs) {
				r := a.roleFor(mt, mp, p.Key())
				u.role = &r
			}
			updates = append(updates, u)
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
		if cur := a.topics[t.Name]; cur != nil && cur.ID == id {
			delete(a.topics, t.Name)
		}
		for _, p := range t.Parts {
			p.Close()
			dropped = append(dropped, p)
		}
	}
	a.mu.Unlock()

	for _, p := range dropped {
		if err := a.wal.DropPartition(p.Key()); err != nil {
			a.log.Warn("drop deleted partition", "err", err)
		}
	}
	for _, u := range updates {
		if u.role != nil {
			u.p.SetRole(*u.role)
			if !u.replica {
				// No longer (or never) a replica: hold nothing for it.
				if err := u.p.DropLog(); err != nil {
					a.log.Warn("drop log of a partition no longer replicated here", "topic", u.name, "partition", u.idx, "err", err)
				}
			}
		}
		o := u.p.Offsets()
		if u.logStart > o.LogStart {
			if err := u.p.SetLogStart(u.logStart); err != nil {
				a.log.Warn("apply log start", "topic", u.name, "partition", u.idx, "err", err)
			}
		}
		if u.flushedEnd > o.FlushedEnd {
			if err := u.p.SetFlushedEnd(u.flushedEnd); err != nil {
				a.log.Warn("apply flushed end", "topic", u.name, "partition", u.idx, "err", err)
			}
		}
		if u.replica {
			a.maybeRestoreProducers(u.t, int32(u.idx), u.p)
		}
	}
	a.repl.Reconcile()
	a.reconcileCoordinators()
	a.reconcileTxnCoordinators()
	a.data.signal()
	a.metaChanged.signal()
}

// roleChanged: anything a partition's role depends on moved.
func roleChanged(old, cur *metadata.Partition) bool {
	return old.Leader != cur.Leader || old.LeaderEpoch != cur.LeaderEpoch || old.ISRVersion != cur.ISRVersion ||
		!slices.Equal(old.Replicas, cur.Replicas) || !slices.Equal(old.ISR, cur.ISR)
}

// roleFor is what this agent is for a partition: its leader (unless it
// led it at that epoch before restarting), a follower, or nothing.
func (a *Agent) roleFor(mt *metadata.Topic, mp *metadata.Partition, key wal.PartKey) partition.Role {
	self := a.cfg.ID
	replica := slices.Contains(mp.Replicas, self)
	leader := replica && mp.Leader == self && !a.awaitingEpoch(mp, key)
	rf := len(mp.Replicas)
	if len(mp.Target) > 0 {
		rf = len(mp.Target)
	}
	minISR := int(mt.ConfigInt("min.insync.replicas", int64(min(2, rf))))
	return partition.Role{Leader: leader, Epoch: mp.LeaderEpoch, Self: self, ISR: mp.ISR, Replicas: mp.Replicas, MinISR: max(minISR, 1)}
}

// awaitingEpoch reports whether metadata names this agent leader at an
// epoch it was given before this process started: it must wait for the
// controller's new epoch (see metadata.Partition.LeaderIncarnation).
func (a *Agent) awaitingEpoch(mp *metadata.Partition, key wal.PartKey) bool {
	if mp.Leader != a.cfg.ID {
		return false
	}
	if mp.LeaderIncarnation != 0 {
		return mp.LeaderIncarnation != a.incarnation
	}
	// Written before incarnations were kept: the epoch it led at start.
	e, ok := a.startEpoch[key]
	return ok && mp.LeaderEpoch <= e
}

func (a *Agent) topicByName(name string) *topic.Topic {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.topics[name]
}

func (a *Agent) topicByID(id uuid.UUID) *topic.Topic {
	a.mu.RLock()
	defer a.mu.RUnlock()
	return a.byID[id]
}

// Close stops serving and releases the WAL. Acknowledged data is already in
// the WAL; Close only waits for in-flight writes. First it hands the
// partitions it leads to in-sync followers (a controlled shutdown, see
// handOff), and a controller resigns its lease, so a successor need not
// wait out its TTL.
func (a *Agent) Close() error {
	if a.meta != nil {
		a.handOff()
	}
	if a.meta != nil && a.meta.IsController() && !a.standalone() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := a.meta.Resign(ctx); err != nil {
			a.log.Warn("resign controller lease", "err", err)
		}
		cancel()
	}
	return a.Abandon()
}

// Abandon stops the agent the way a crash would, as far as the rest of the
// cluster can tell: nothing is handed over, the lease (if held) lapses by
// its TTL. Tests use it to kill agents in-process.
func (a *Agent) Abandon() error {
	a.stopAdmin()
	if a.cancel != nil {
		a.cancel()
	}
	if a.front != nil {
		a.front.Stop()
	} else {
		a.closeListeners()
	}
	if a.peerLn != nil {
		a.peerLn.Close()
	}
	a.connsMu.Lock()
	a.closing = true
	for c := range a.peerConns {
		c.Close()
	}
	a.connsMu.Unlock()
	if a.repl != nil {
		a.repl.StopAll()
	}
	a.closeCoordinators()
	a.closeTxnCoordinators()
	if a.front != nil {
		a.front.Wait()
	}
	a.wg.Wait()
	if a.ctrl != nil {
		a.ctrl.Wait()
	}
	if a.repl != nil {
		a.repl.Wait()
	}
	if a.cache != nil {
		a.cache.Close()
	}
	var err error
	a.mu.Lock()
	for _, t := range a.topics {
		for _, p := range t.Parts {
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
	return base64.RawURLEncoding.EncodeToString(id[:])
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
	if t == nil || idx < 0 || int(idx) >= len(t.Parts) {
		return partition.Offsets{}, false
	}
	return t.Parts[idx].Offsets(), true
}

// PartitionMeta is a partition's cluster metadata as this agent sees it
// (leader, epoch, replicas, ISR, bounds), for status views and tests.
func (a *Agent) PartitionMeta(topicName string, idx int32) (metadata.Partition, bool) {
	mt, ok := a.meta.State().TopicByName(topicName)
	if !ok || idx < 0 || int(idx) >= len(mt.Partitions) {
		return metadata.Partition{}, false
	}
	return mt.Partitions[idx].Clone(), true
}

// Leads reports whether this agent serves as the partition's leader now.
func (a *Agent) Leads(topicName string, idx int32) bool {
	t := a.topicByName(topicName)
	return t != nil && idx >= 0 && int(idx) < len(t.Parts) && t.Parts[idx].IsLeader()
}

// IsController reports whether this agent holds the controller lease.
func (a *Agent) IsController() bool { return a.meta.IsController() }

// Agents lists the agents registered in metadata, as this agent sees them.
func (a *Agent) Agents() []metadata.AgentInfo {
	st := a.meta.State()
	out := make([]metadata.AgentInfo, 0, len(st.Agents))
	for _, id := range st.AgentIDs() {
		out = append(out, st.Agents[id])
	}
	return out
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

// manifest is one partition's committed ranges, from this agent's
// metadata.
type manifest struct {
	meta  *metadata.Store
	topic uuid.UUID
	idx   int32
}

func (m manifest) Committed() (partition.Committed, bool) {
	mp, ok := m.meta.State().Partition(m.topic, m.idx)
	if !ok {
		return partition.Committed{}, false
	}
	return partition.Committed{Segments: mp.Segments, LogStart: mp.LogStart, FlushedEnd: mp.FlushedEnd}, true
}
