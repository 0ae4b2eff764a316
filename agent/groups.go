package agent

// Consumer groups live in the internal topic __consumer_offsets: group g
// is coordinated by the leader of partition abs(javaHash(g)) % N, as in
// Kafka, so groups move with partition leadership and their state is
// replicated, flushed and recovered like any data. This file runs one
// group.Coordinator per offsets partition this agent leads: it creates it
// on election, replays the partition into it, feeds its writes to the
// partition in order, rewrites the partition compactly from time to time,
// and closes it when leadership moves.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tlog-io/tlog/agent/controller"
	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/topic"
	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier/batch"
)

// groupCoord is a coordinator with the partition it writes to.
type groupCoord struct {
	c    *group.Coordinator
	p    *partition.Partition
	idx  int32
	w    *groupWriter
	stop chan struct{}
}

// coordinatorFor returns the coordinator of a group on this agent, or the
// error a client gets: NOT_COORDINATOR if another agent coordinates it,
// COORDINATOR_NOT_AVAILABLE while __consumer_offsets does not exist.
func (a *Agent) coordinatorFor(groupID string) (*group.Coordinator, int16) {
	t := a.topicByName(group.OffsetsTopic)
	if t == nil || len(t.Parts) == 0 {
		return nil, kerr.CoordinatorNotAvailable.Code
	}
	idx := group.CoordinatorPartition(groupID, len(t.Parts))
	a.coordMu.Lock()
	gc := a.coords[idx]
	a.coordMu.Unlock()
	if gc == nil || gc.p != t.Parts[idx] {
		return nil, kerr.NotCoordinator.Code
	}
	return gc.c, 0
}

// ensureOffsetsTopic creates __consumer_offsets when the first group
// client shows up.
func (a *Agent) ensureOffsetsTopic(ctx context.Context) error {
	if a.topicByName(group.OffsetsTopic) != nil {
		return nil
	}
	st := a.meta.State()
	spec, err := controller.PlanTopic(st, controller.NewTopic{
		Name:              group.OffsetsTopic,
		Partitions:        a.cfg.OffsetsPartitions,
		ReplicationFactor: int16(min(3, len(controller.PlacementOrder(st)))),
		// Kept whole: the coordinator rewrites it compactly itself.
		Configs: map[string]string{"retention.ms": "-1", "retention.bytes": "-1"},
	}, a.cfg.DefaultPartitions)
	if err == nil {
		_, err = a.propose(ctx, spec)
	}
	if err != nil && !errors.Is(err, metadata.ErrTopicExists) {
		return err
	}
	return nil
}

// reconcileCoordinators starts a coordinator for every offsets partition
// this agent now leads and closes those it no longer leads.
func (a *Agent) reconcileCoordinators() {
	t := a.topicByName(group.OffsetsTopic)
	a.coordMu.Lock()
	defer a.coordMu.Unlock()
	for idx, gc := range a.coords {
		if t == nil || int(idx) >= len(t.Parts) || t.Parts[idx] != gc.p || !gc.p.IsLeader() {
			delete(a.coords, idx)
			close(gc.stop)
			a.wg.Add(1) // from a sync, itself on the agent's wait group
			go func() {
				defer a.wg.Done()
				gc.c.Close()
			}()
		}
	}
	if t == nil || a.ctx.Err() != nil {
		return
	}
	for i, p := range t.Parts {
		idx := int32(i)
		if !p.IsLeader() || a.coords[idx] != nil {
			continue
		}
		gc := &groupCoord{p: p, idx: idx, stop: make(chan struct{})}
		gc.w = newGroupWriter(a, gc)
		gc.c = group.New(group.Config{
			Write:                     gc.w.write,
			InitialRebalanceDelay:     a.cfg.GroupInitialRebalanceDelay,
			MinSessionTimeout:         a.cfg.GroupMinSessionTimeout,
			MaxSessionTimeout:         a.cfg.GroupMaxSessionTimeout,
			OffsetsRetention:          a.cfg.OffsetsRetention,
			Topics:                    a.groupTopics,
			ConsumerHeartbeatInterval: a.cfg.GroupConsumerHeartbeatInterval,
			ConsumerSessionTimeout:    a.cfg.GroupConsumerSessionTimeout,
			Logger:                    a.log.With("offsets_partition", idx),
		})
		a.coords[idx] = gc
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			a.runCoordinator(t, gc)
		}()
	}
}

// groupTopics is group.Config.Topics: every topic, as of the metadata
// sequence number, built once per change.
func (a *Agent) groupTopics() (map[string]group.TopicMeta, uint64) {
	st := a.meta.State()
	a.groupTopicsMu.Lock()
	defer a.groupTopicsMu.Unlock()
	if a.groupTopicsCache == nil || a.groupTopicsSeq != st.Seq {
		m := make(map[string]group.TopicMeta, len(st.Topics))
		for _, t := range st.Topics {
			m[t.Name] = group.TopicMeta{ID: t.ID, Partitions: int32(len(t.Partitions))}
		}
		a.groupTopicsCache, a.groupTopicsSeq = m, st.Seq
	}
	return a.groupTopicsCache, a.groupTopicsSeq
}

// topicNamesByID maps topic ids to names, for group descriptions.
func (a *Agent) topicNamesByID() map[[16]byte]string {
	topics, _ := a.groupTopics()
	out := make(map[[16]byte]string, len(topics))
	for name, tm := range topics {
		out[tm.ID] = name
	}
	return out
}

// closeCoordinators closes every coordinator (shutdown).
func (a *Agent) closeCoordinators() {
	a.coordMu.Lock()
	coords := a.coords
	a.coords = map[int32]*groupCoord{}
	a.coordMu.Unlock()
	for _, gc := range coords {
		close(gc.stop)
		gc.c.Close()
	}
}

// runCoordinator loads the partition into the coordinator, then rewrites
// the partition compactly whenever enough has been written since the last
// rewrite.
func (a *Agent) runCoordinator(t *topic.Topic, gc *groupCoord) {
	start := time.Now()
	// Until it loads, the groups answer COORDINATOR_LOAD_IN_PROGRESS; keep
	// trying while the bucket is down. A retry replays from the log start:
	// records set state by key, so applying a prefix twice changes nothing.
	var n int
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		var err error
		if n, err = a.loadGroups(t, gc); err == nil {
			break
		}
		if a.ctx.Err() != nil {
			return
		}
		a.log.Warn("load consumer groups", "offsets_partition", gc.idx, "err", err, "retry_in", backoff)
		select {
		case <-a.ctx.Done():
			return
		case <-gc.stop:
			return
		case <-time.After(backoff):
		}
	}
	gc.c.Loaded()
	lvl := slog.LevelDebug
	if n > 0 {
		lvl = slog.LevelInfo
	}
	a.log.Log(a.ctx, lvl, "consumer groups loaded", "offsets_partition", gc.idx, "records", n, "took", time.Since(start).Round(time.Millisecond))
	tick := time.NewTicker(a.cfg.GroupSnapshotInterval)
	defer tick.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-gc.stop:
			return
		case <-tick.C:
		}
		if gc.c.WritesSinceSnapshot() < groupSnapshotAfter {
			continue
		}
		if err := a.compactGroups(t, gc); err != nil && a.ctx.Err() == nil {
			a.log.Warn("rewrite consumer groups", "offsets_partition", gc.idx, "err", err)
		}
	}
}

// groupSnapshotAfter: records written before a rewrite is worth it.
const groupSnapshotAfter = 1000

// loadGroups waits until every record the previous coordinator may have
// acknowledged is committed here (the HW reaches the log end as of the
// election), then replays the partition from its start.
func (a *Agent) loadGroups(t *topic.Topic, gc *groupCoord) (int, error) {
	end := gc.p.Offsets().LEO
	for gc.p.Offsets().HW < end {
		select {
		case <-a.ctx.Done():
			return 0, a.ctx.Err()
		case <-gc.stop:
			return 0, errors.New("no longer the leader")
		case <-time.After(10 * time.Millisecond):
		}
	}
	ctx, cancel := context.WithCancel(a.ctx)
	var watch sync.WaitGroup
	defer watch.Wait()
	defer cancel()
	watch.Add(1)
	go func() {
		defer watch.Done()
		select {
		case <-gc.stop:
			cancel()
		case <-ctx.Done():
		}
	}()
	now := time.Now()
	n := 0
	off := gc.p.Offsets().LogStart
	for off < end {
		data, _, err := gc.p.Read(ctx, off, 1<<20, true)
		if err != nil {
			return n, fmt.Errorf("read %s/%d at %d: %w", group.OffsetsTopic, gc.idx, off, err)
		}
		if len(data) == 0 {
			return n, fmt.Errorf("read %s/%d at %d: nothing below %d", group.OffsetsTopic, gc.idx, off, end)
		}
		for rest := data; len(rest) > 0; {
			_, size, err := batch.Next(rest)
			if err != nil {
				return n, fmt.Errorf("%s/%d at %d: %w", group.OffsetsTopic, gc.idx, off, err)
			}
			recs, err := batch.Records(rest[:size], 64<<20)
			if err != nil {
				return n, fmt.Errorf("%s/%d at %d: %w", group.OffsetsTopic, gc.idx, off, err)
			}
			for _, r := range recs {
				if r.Offset < off {
					continue // below the log start, inside the first batch
				}
				if err := gc.c.Apply(r.Key, r.Value, now); err != nil {
					a.log.Warn("skipping an unreadable group record", "offsets_partition", gc.idx, "offset", r.Offset, "err", err)
				}
				n++
				off = r.Offset + 1
			}
			rest = rest[size:]
		}
	}
	return n, nil
}

// compactGroups rewrites the partition: the coordinator's whole state is
// appended afresh, then the log start moves to where it begins, so the
// partition holds what the groups are, not their history.
func (a *Agent) compactGroups(t *topic.Topic, gc *groupCoord) error {
	done := make(chan struct{})
	var first int64
	var werr error
	gc.w.snapshot(func(base int64, err error) {
		first, werr = base, err
		close(done)
	})
	select {
	case <-done:
	case <-gc.stop:
		return nil
	case <-a.ctx.Done():
		return nil
	}
	if werr != nil {
		return werr
	}
	if first < 0 {
		return nil // nothing to keep
	}
	ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
	defer cancel()
	if _, err := a.propose(ctx, metadata.SetLogStart{TopicID: t.ID, Partition: gc.idx, Offset: first}); err != nil {
		return err
	}
	gc.c.Snapshotted()
	a.log.Debug("rewrote consumer groups", "offsets_partition", gc.idx, "log_start", first)
	return gc.p.SetLogStart(first)
}

// groupWriter appends a coordinator's records to its partition in the
// order they are issued, with a bounded wait for the in-sync replicas.
type groupWriter struct {
	a  *Agent
	gc *groupCoord

	mu    sync.Mutex
	cond  *sync.Cond
	queue []groupWrite
	// inOrder holds the appends issued and not yet reported, oldest
	// first: their completions run on whatever goroutine finishes them,
	// but the coordinator hears of them in the order they were issued
	// (two commits of one group's offsets must apply oldest first).
	inOrder    []*groupResult
	delivering bool
}

// groupResult is one append's outcome, waiting for its turn.
type groupResult struct {
	gw    groupWrite
	ready bool
	base  int64
	err   error
}

// deliver reports completed appends from the oldest, stopping at the
// first still running. One goroutine delivers at a time.
func (w *groupWriter) deliver() {
	w.mu.Lock()
	if w.delivering {
		w.mu.Unlock()
		return // the goroutine delivering picks ours up
	}
	w.delivering = true
	for len(w.inOrder) > 0 && w.inOrder[0].ready {
		// Popped only once reported: a snapshot waits for inOrder to
		// empty, and must see this write in the coordinator's state.
		r := w.inOrder[0]
		w.mu.Unlock()
		r.gw.done(r.base, r.err)
		w.mu.Lock()
		w.inOrder = w.inOrder[1:]
		w.cond.Broadcast()
	}
	w.delivering = false
	w.mu.Unlock()
}

type groupWrite struct {
	recs     []batch.KV
	done     func(base int64, err error)
	snapshot bool // write the coordinator's whole state, once all before it completed
}

func newGroupWriter(a *Agent, gc *groupCoord) *groupWriter {
	w := &groupWriter{a: a, gc: gc}
	w.cond = sync.NewCond(&w.mu)
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		w.run()
	}()
	return w
}

// write is group.Config.Write. It never blocks.
func (w *groupWriter) write(recs []batch.KV, done func(error)) {
	w.enqueue(groupWrite{recs: recs, done: func(_ int64, err error) { done(err) }})
}

// snapshot queues a rewrite; done gets the offset it starts at (-1 if
// there was nothing to write).
func (w *groupWriter) snapshot(done func(base int64, err error)) {
	w.enqueue(groupWrite{snapshot: true, done: done})
}

func (w *groupWriter) enqueue(gw groupWrite) {
	w.mu.Lock()
	w.queue = append(w.queue, gw)
	w.cond.Broadcast()
	w.mu.Unlock()
}

func (w *groupWriter) run() {
	stopped := make(chan struct{})
	var watch sync.WaitGroup
	defer watch.Wait()
	watch.Add(1)
	go func() {
		defer watch.Done()
		select {
		case <-w.gc.stop:
		case <-w.a.ctx.Done():
		}
		w.mu.Lock()
		close(stopped)
		w.cond.Broadcast()
		w.mu.Unlock()
	}()
	isStopped := func() bool {
		select {
		case <-stopped:
			return true
		default:
			return false
		}
	}
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !isStopped() {
			w.cond.Wait()
		}
		if isStopped() {
			q := w.queue
			w.queue = nil
			w.mu.Unlock()
			for _, gw := range q {
				gw.done(-1, kerr.NotLeaderForPartition)
			}
			return
		}
		gw := w.queue[0]
		w.queue = w.queue[1:]
		if gw.snapshot {
			// Everything written before must be in the coordinator's
			// state before it is captured.
			for len(w.inOrder) > 0 && !isStopped() {
				w.cond.Wait()
			}
			w.mu.Unlock()
			gw.recs = w.gc.c.Snapshot()
			if len(gw.recs) == 0 {
				gw.done(-1, nil)
				continue
			}
		} else {
			w.mu.Unlock()
		}
		w.append(gw)
	}
}

// append writes gw's records as batches of at most maxBytes and calls
// done once all are committed, with the first batch's offset.
func (w *groupWriter) append(gw groupWrite) {
	const maxBytes = 512 << 10
	var chunks [][]batch.KV
	size := 0
	for i, r := range gw.recs {
		if i == 0 || size+len(r.Key)+len(r.Value) > maxBytes {
			chunks = append(chunks, nil)
			size = 0
		}
		chunks[len(chunks)-1] = append(chunks[len(chunks)-1], r)
		size += len(r.Key) + len(r.Value) + 16
	}
	res := &groupResult{gw: gw}
	var (
		mu      sync.Mutex
		left    = len(chunks)
		first   = int64(-1)
		failure error
		once    sync.Once
	)
	finish := func(base int64, idx int, err error) {
		mu.Lock()
		if idx == 0 {
			first = base
		}
		if err != nil && failure == nil {
			failure = err
		}
		left--
		last := left == 0
		mu.Unlock()
		if last {
			once.Do(func() {
				w.mu.Lock()
				res.ready = true
				if failure != nil {
					res.base, res.err = -1, failure
				} else {
					res.base = first
				}
				w.mu.Unlock()
				w.deliver()
			})
		}
	}
	w.mu.Lock()
	w.inOrder = append(w.inOrder, res)
	if len(chunks) == 0 {
		res.ready = true // nothing to write
	}
	w.mu.Unlock()
	if len(chunks) == 0 {
		w.deliver()
	}
	now := time.Now().UnixMilli()
	for i, chunk := range chunks {
		b := batch.Encode(chunk, now)
		h, err := batch.ValidateProduce(b, math.MaxInt32)
		if err != nil {
			finish(-1, i, kerr.CorruptMessage)
			continue
		}
		// The completion may run before Append returns the offset it
		// assigned: it waits for it.
		var once sync.Once
		assigned := make(chan int64, 1)
		complete := func(err error) {
			go func() {
				base := <-assigned
				assigned <- base
				once.Do(func() { finish(base, i, err) })
			}()
		}
		timer := time.AfterFunc(w.a.cfg.GroupWriteTimeout, func() { complete(kerr.RequestTimedOut) })
		res, err := w.gc.p.Append(b, h, -1, func(err error) {
			timer.Stop()
			complete(groupWriteErr(err))
		})
		if err != nil {
			timer.Stop()
			assigned <- -1
			complete(groupWriteErr(err))
			continue
		}
		assigned <- res.BaseOffset
	}
}

// groupWriteErr turns a partition append error into the Kafka error the
// coordinator maps for its clients.
func groupWriteErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, partition.ErrNotLeader), errors.Is(err, partition.ErrClosed):
		return kerr.NotLeaderForPartition
	case errors.Is(err, partition.ErrNotEnoughReplicas):
		return kerr.NotEnoughReplicas
	}
	return fmt.Errorf("%w: %v", kerr.KafkaStorageError, err)
}
