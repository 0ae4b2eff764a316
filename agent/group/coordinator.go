// Package group is the consumer-group coordinator of one __consumer_offsets
// partition: the classic group protocol (JoinGroup, SyncGroup, Heartbeat,
// LeaveGroup) with its state machine, committed offsets, and the group
// administration requests. The assignors run in the clients, as in Kafka.
//
// A Coordinator owns the groups whose id hashes to its partition, while
// this agent leads that partition. Every change it must not lose (an
// offset commit, the outcome of a rebalance, a deletion) is written as a
// record to the partition through Config.Write and acknowledged only once
// it is committed there (acks=all), so it is replicated, flushed and
// recovered like any data; a new coordinator rebuilds the groups by
// replaying the partition (Apply).
//
// States follow Kafka's: Empty, PreparingRebalance (members rejoin, up to
// the rebalance timeout), CompletingRebalance (the leader's SyncGroup with
// the assignment is awaited), Stable, Dead (deleted). Consumer-protocol
// groups (KIP-848, consumer.go) are Empty, Reconciling (members are
// moving to a new assignment) or Stable.
package group

import (
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/tier/batch"
)

// State is a group's state.
type State int

const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
	Assigning   // consumer protocol: a new target is being computed
	Reconciling // consumer protocol: members are moving to their targets
)

func (s State) String() string {
	return [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead", "Assigning", "Reconciling"}[s]
}

// TP is a topic partition.
type TP struct {
	Topic     string
	Partition int32
}

// Offset is a committed offset.
type Offset struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitTime  time.Time
}

// Config configures a Coordinator.
type Config struct {
	// Write appends records to the partition and calls done once they
	// are committed (or failed). It must not block; writes complete in
	// the order they were issued.
	Write func(recs []batch.KV, done func(error))
	// WriteTxn is Write for TxnOffsetCommit: one transactional batch of
	// producer pid at epoch (nil: transactional commits are refused).
	WriteTxn func(pid int64, epoch int16, recs []batch.KV, done func(error))
	// InitialRebalanceDelay: group.initial.rebalance.delay.ms (default 3s).
	InitialRebalanceDelay time.Duration
	// MinSessionTimeout, MaxSessionTimeout: the session timeouts a
	// member may ask for (defaults 6s and 30m, as Kafka).
	MinSessionTimeout, MaxSessionTimeout time.Duration
	// OffsetsRetention: how long an Empty group keeps its offsets
	// (offsets.retention.minutes; default 7 days).
	OffsetsRetention time.Duration
	// MaxMetadataBytes: offset.metadata.max.bytes (default 4096).
	MaxMetadataBytes int
	// Topics lists the topics consumer-protocol groups are assigned
	// from, with a version that changes whenever they do (nil: none).
	Topics func() (map[string]TopicMeta, uint64)
	// ConsumerHeartbeatInterval and ConsumerSessionTimeout:
	// group.consumer.heartbeat.interval.ms and
	// group.consumer.session.timeout.ms (defaults 5s and 45s, as Kafka).
	ConsumerHeartbeatInterval time.Duration
	ConsumerSessionTimeout    time.Duration
	Logger                    *slog.Logger
	Now                       func() time.Time
}

func (c *Config) setDefaults() {
	if c.InitialRebalanceDelay < 0 {
		c.InitialRebalanceDelay = 0
	}
	if c.MinSessionTimeout <= 0 {
		c.MinSessionTimeout = 6 * time.Second
	}
	if c.MaxSessionTimeout <= 0 {
		c.MaxSessionTimeout = 30 * time.Minute
	}
	if c.OffsetsRetention <= 0 {
		c.OffsetsRetention = 7 * 24 * time.Hour
	}
	if c.MaxMetadataBytes <= 0 {
		c.MaxMetadataBytes = 4096
	}
	if c.Topics == nil {
		c.Topics = func() (map[string]TopicMeta, uint64) { return nil, 0 }
	}
	if c.ConsumerHeartbeatInterval <= 0 {
		c.ConsumerHeartbeatInterval = 5 * time.Second
	}
	if c.ConsumerSessionTimeout <= 0 {
		c.ConsumerSessionTimeout = 45 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

type protocol struct {
	name     string
	metadata []byte
}

type member struct {
	id, clientID, clientHost string
	instanceID               *string
	protocolType             string
	protocols                []protocol
	sessionTimeout           time.Duration
	rebalanceTimeout         time.Duration
	assignment               []byte
	deadline                 time.Time // session expiry (not enforced while a join is pending)
	order                    uint64    // join order; the first joiner leads a new generation
	joinVersion              int16
	join                     func(*kmsg.JoinGroupResponse) // a JoinGroup awaiting the rebalance
	sync                     func(*kmsg.SyncGroupResponse) // a SyncGroup awaiting the leader
}

func (m *member) metadataFor(proto string) []byte {
	for _, p := range m.protocols {
		if p.name == proto {
			return p.metadata
		}
	}
	return nil
}

// Group is one consumer group.
type Group struct {
	id           string
	state        State
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	static       map[string]string    // instance id → member id
	pending      map[string]time.Time // member ids handed out by MEMBER_ID_REQUIRED, until they join
	offsets      map[TP]Offset
	since        time.Time // when the state last changed
	// rebalanceEnd bounds PreparingRebalance (and CompletingRebalance);
	// delayUntil holds a new group's first rebalance open for more members.
	rebalanceEnd time.Time
	delayUntil   time.Time
	joins        uint64
	// cons is the state of a consumer-protocol group; nil for classic.
	cons *consumerGroup
}

func (g *Group) memberOrder() []string {
	ids := make([]string, 0, len(g.members))
	for id := range g.members {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return g.members[ids[i]].order < g.members[ids[j]].order })
	return ids
}

// Coordinator runs the groups of one __consumer_offsets partition.
type Coordinator struct {
	cfg    Config
	log    *slog.Logger
	mu     sync.Mutex
	groups map[string]*Group
	ready  bool // loaded
	closed bool
	// pending holds transactional offsets by producer id until their
	// transaction's marker (txnoffsets.go).
	pending map[int64]txnOffsets
	// markers holds markers committed while the partition is replayed
	// (MarkerWritten), applied once it is: applied at once, one could
	// arrive before the replay reaches its transaction's offsets, which
	// would then stay pending for good.
	markers []txnMarker
	stop    chan struct{}
	wg      sync.WaitGroup
}

// New returns a coordinator that answers COORDINATOR_LOAD_IN_PROGRESS
// until Loaded is called.
func New(cfg Config) *Coordinator {
	cfg.setDefaults()
	c := &Coordinator{cfg: cfg, log: cfg.Logger, groups: map[string]*Group{}, stop: make(chan struct{})}
	c.wg.Add(1)
	go c.run()
	return c
}

// Loaded marks the replay done: requests are served from now on.
func (c *Coordinator) Loaded() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ready = true
	for _, m := range c.markers {
		c.completeTxnLocked(m.pid, m.commit)
	}
	c.markers = nil
}

// Close stops the coordinator (this agent no longer leads its partition):
// every waiting request is answered NOT_COORDINATOR.
func (c *Coordinator) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	var joins []func(*kmsg.JoinGroupResponse)
	var syncs []func(*kmsg.SyncGroupResponse)
	for _, g := range c.groups {
		for _, m := range g.members {
			if m.join != nil {
				joins = append(joins, m.join)
				m.join = nil
			}
			if m.sync != nil {
				syncs = append(syncs, m.sync)
				m.sync = nil
			}
		}
	}
	c.mu.Unlock()
	close(c.stop)
	c.wg.Wait()
	for _, f := range joins {
		r := kmsg.NewPtrJoinGroupResponse()
		r.ErrorCode, r.Generation = kerr.NotCoordinator.Code, -1
		f(r)
	}
	for _, f := range syncs {
		r := kmsg.NewPtrSyncGroupResponse()
		r.ErrorCode = kerr.NotCoordinator.Code
		f(r)
	}
}

// unavailable is the error for a coordinator that cannot serve now.
func (c *Coordinator) unavailableLocked() int16 {
	switch {
	case c.closed:
		return kerr.NotCoordinator.Code
	case !c.ready:
		return kerr.CoordinatorLoadInProgress.Code
	}
	return 0
}

func (c *Coordinator) groupLocked(id string, now time.Time) *Group {
	g := c.groups[id]
	if g == nil {
		g = &Group{id: id, members: map[string]*member{}, static: map[string]string{}, pending: map[string]time.Time{}, offsets: map[TP]Offset{}, since: now}
		c.groups[id] = g
	}
	if g.pending == nil {
		g.pending = map[string]time.Time{}
	}
	return g
}

func (g *Group) setState(s State, now time.Time) {
	g.state, g.since = s, now
}

// writeGroupLocked persists the group's metadata; done (may be nil) runs
// under c.mu once it is committed.
func (c *Coordinator) writeGroupLocked(g *Group, done func(error)) {
	c.writeLocked([]batch.KV{{Key: groupKey(g.id), Value: groupValue(g)}}, done)
}

// writeLocked hands records to Config.Write; done runs under c.mu.
func (c *Coordinator) writeLocked(recs []batch.KV, done func(error)) {
	c.cfg.Write(recs, func(err error) {
		if done == nil {
			if err != nil {
				c.log.Warn("persist group state", "err", err)
			}
			return
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		done(err)
	})
}

// writeErrCode maps a failed write to the error a group client expects,
// as Kafka's coordinator does: a timeout (or anything else transient) is
// COORDINATOR_NOT_AVAILABLE, which SyncGroup, heartbeats, commits and
// admin requests all retry after finding the coordinator again.
func writeErrCode(err error) int16 {
	var ke *kerr.Error
	if errors.As(err, &ke) {
		switch ke.Code {
		case kerr.NotLeaderForPartition.Code, kerr.UnknownTopicOrPartition.Code:
			return kerr.NotCoordinator.Code
		case kerr.MessageTooLarge.Code, kerr.RecordListTooLarge.Code:
			return kerr.InvalidCommitOffsetSize.Code
		}
	}
	return kerr.CoordinatorNotAvailable.Code
}

// run expires sessions and pending member ids, completes rebalances whose
// time is up, and expires the offsets of long-empty groups.
func (c *Coordinator) run() {
	defer c.wg.Done()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-t.C:
		}
		c.tick(c.cfg.Now())
	}
}

func (c *Coordinator) tick(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready || c.closed {
		return
	}
	for _, id := range sortedKeys(c.groups) {
		g := c.groups[id]
		for mid, exp := range g.pending {
			if now.After(exp) {
				delete(g.pending, mid)
			}
		}
		if g.cons != nil {
			c.tickConsumerLocked(g, now)
			if g.state == Empty && len(g.offsets) > 0 && now.Sub(g.since) > c.cfg.OffsetsRetention {
				c.expireLocked(g)
			}
			continue
		}
		switch g.state {
		case Stable, CompletingRebalance:
			expired := false
			for mid, m := range g.members {
				late := now.After(m.deadline)
				// In CompletingRebalance a member that has not synced
				// by the rebalance timeout is gone as well.
				if g.state == CompletingRebalance && now.After(g.rebalanceEnd) && m.sync == nil {
					late = true
				}
				if late {
					c.log.Info("group member expired", "group", g.id, "member", mid, "state", g.state)
					c.removeMemberLocked(g, mid)
					expired = true
				}
			}
			if expired {
				c.membersChangedLocked(g, now)
			}
		case PreparingRebalance:
			// A member that neither rejoined nor heartbeated within
			// its session is gone, as in Kafka: waiting for it until
			// the rebalance timeout (max.poll.interval.ms, often
			// minutes) would hold the whole group.
			for mid, m := range g.members {
				if m.join == nil && now.After(m.deadline) {
					c.log.Info("group member expired while the group rebalances", "group", g.id, "member", mid)
					c.removeMemberLocked(g, mid)
				}
			}
			c.maybeCompleteJoinLocked(g, now)
		case Empty:
			if len(g.offsets) > 0 && now.Sub(g.since) > c.cfg.OffsetsRetention {
				c.expireLocked(g)
			} else if len(g.offsets) == 0 && g.generation == 0 && len(g.pending) == 0 {
				delete(c.groups, id) // never held anything worth keeping
			}
		}
	}
}

// expireLocked drops an empty group's offsets past retention, and the
// group with them.
func (c *Coordinator) expireLocked(g *Group) {
	var recs []batch.KV
	for tp := range g.offsets {
		recs = append(recs, batch.KV{Key: offsetKey(g.id, tp.Topic, tp.Partition)})
	}
	if g.cons != nil {
		recs = append(recs, batch.KV{Key: consumerGroupKey(g.id)})
	} else {
		recs = append(recs, batch.KV{Key: groupKey(g.id)})
	}
	c.log.Info("expiring offsets of an empty group", "group", g.id, "offsets", len(g.offsets))
	delete(c.groups, g.id)
	c.writeLocked(recs, nil)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
