package tiering

// Tiering is an agent's side of the bucket: the flusher (on every agent),
// and compaction, retention and garbage collection (on the controller).
//
// The flusher seals the unflushed, committed tail of the partitions this
// agent leads into segment objects (many partitions per object, so the
// PUT rate grows with bytes, not partitions; up to three objects at once,
// never two holding one partition), uploads each, and commits it in the
// metadata journal. The journal refuses a commit whose leader epoch is
// stale or whose first offset isn't the partition's flushedEnd, which fences
// zombie leaders and forbids gaps and overlaps. Only after the commit do
// partitions drop the flushed batches from the WAL.

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/segment"
)

// Config is tiering's share of the agent's configuration (agent.Config
// documents each).
type Config struct {
	ID              int32
	Bucket          tier.Bucket
	FlushInterval   time.Duration
	FlushBytes      int64
	SegmentBytes    int64
	CompactInterval time.Duration
	CompactBytes    int64
	// KeyCompactInterval is how often compacted topics are looked at;
	// KeyCompactBufferBytes bounds a pass's key map (and the ranges it
	// keeps in memory between building the map and rewriting).
	KeyCompactInterval    time.Duration
	KeyCompactBufferBytes int64
	RetentionInterval     time.Duration
	OrphanGrace           time.Duration
	Logger                *slog.Logger
	// OnFlushed and OnFlushFailed feed the agent's metrics (may be nil).
	OnFlushed     func(took time.Duration)
	OnFlushFailed func()
}

// Host is what tiering needs from the agent it runs in.
type Host interface {
	// Partitions returns every partition the agent holds.
	Partitions() []partition.Held
	// State is the agent's current metadata; IsController says whether
	// it holds the lease.
	State() *metadata.State
	IsController() bool
	// Propose journals commands through the controller.
	Propose(ctx context.Context, cmds ...metadata.Command) (*metadata.State, error)
	// Doom and Forget are the controller's metadata.Store's: garbage
	// collection decides on a settled journal.
	Doom(ctx context.Context, decide func(*metadata.State) []string) ([]string, error)
	Forget(keys []string)
	// UnflushedBytes is what all partitions hold in the WAL.
	UnflushedBytes() int64
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Stats are tiering's cumulative counters.
type Stats struct {
	Flushes, FlushedBytes, CommitsRefused, Compactions, LogStartMoves, DeletedObjects int64
	// KeyCompactions counts key-compaction passes; KeyCompactedBytes and
	// KeyCompactedRecords what they removed from the bucket's ranges.
	KeyCompactions, KeyCompactedBytes, KeyCompactedRecords int64
}

// Tiering runs the flusher and the controller's bucket duties.
type Tiering struct {
	cfg  Config
	host Host
	log  *slog.Logger
	ctx  context.Context
	kick chan struct{}

	flushes, flushedBytes, commitsRefused, compactions, retained, deletedObjects atomic.Int64
	keyCompactions, keyCompactedBytes, keyCompactedRecords                       atomic.Int64

	keyState keyCompactState // the key compactor's goroutine alone touches it

	flushMu       sync.Mutex
	flushing      map[partID]bool // partitions in a flush under way
	flushNext     int             // where the next flush starts taking partitions
	flushingBytes atomic.Int64    // what those flushes hold
}

// New makes tiering for one agent, acting until ctx ends.
func New(ctx context.Context, cfg Config, host Host) *Tiering {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.OnFlushed == nil {
		cfg.OnFlushed = func(time.Duration) {}
	}
	if cfg.OnFlushFailed == nil {
		cfg.OnFlushFailed = func() {}
	}
	return &Tiering{cfg: cfg, host: host, log: cfg.Logger, ctx: ctx, kick: make(chan struct{}, 1), flushing: map[partID]bool{}}
}

// Run runs the flusher, compaction and retention until the context New was
// given ends.
func (tr *Tiering) Run() {
	var wg sync.WaitGroup
	for _, fn := range []func(){tr.flushLoop, tr.compactLoop, tr.keyCompactLoop, tr.retentionLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn()
		}()
	}
	wg.Wait()
}

// Stats returns the counters.
func (tr *Tiering) Stats() Stats {
	return Stats{
		Flushes: tr.flushes.Load(), FlushedBytes: tr.flushedBytes.Load(), CommitsRefused: tr.commitsRefused.Load(),
		Compactions: tr.compactions.Load(), LogStartMoves: tr.retained.Load(), DeletedObjects: tr.deletedObjects.Load(),
		KeyCompactions: tr.keyCompactions.Load(), KeyCompactedBytes: tr.keyCompactedBytes.Load(),
		KeyCompactedRecords: tr.keyCompactedRecords.Load(),
	}
}

func (tr *Tiering) flushLoop() {
	interval := tr.cfg.FlushInterval
	t := time.NewTicker(interval / 4)
	defer t.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	// Buffered for every flush that can run, so none blocks on its way
	// out once the loop has returned.
	done := make(chan error, maxFlushes)
	running := 0
	last := time.Now()
	backoff := time.Duration(0)
	result := func(err error) {
		switch {
		case err != nil && tr.ctx.Err() == nil:
			tr.cfg.OnFlushFailed()
			backoff = min(max(2*backoff, interval), 5*time.Second)
			tr.log.Warn("flush failed; data stays in the WAL", "err", err, "retry_in", backoff)
		case err == nil:
			backoff = 0
		}
	}
	for {
		select {
		case <-tr.ctx.Done():
			return
		case <-tr.kick:
		case <-t.C:
		case err := <-done:
			running--
			result(err)
		}
		// Up to maxFlushes at once, on disjoint partitions: one flush at
		// a time is a PUT and a journal commit after another, and held a
		// single agent to a fraction of what it takes in.
		for running < maxFlushes {
			// Seal on age or size, whichever comes first.
			pending := tr.host.UnflushedBytes() - tr.flushingBytes.Load()
			if pending <= 0 || time.Since(last) < interval && pending < tr.cfg.FlushBytes {
				break
			}
			if backoff > 0 && time.Since(last) < backoff {
				break
			}
			last = time.Now()
			parts, err := tr.takeFlushable()
			if err != nil {
				result(err)
				break
			}
			if len(parts) == 0 {
				break // what is pending is in flushes under way
			}
			running++
			wg.Add(1)
			go func() {
				defer wg.Done()
				done <- tr.flushParts(tr.ctx, parts)
			}()
		}
	}
}

// maxFlushes is how many segments the flusher uploads and commits at once.
const maxFlushes = 3

// Kick asks the flusher to look now (a size threshold may be crossed).
func (tr *Tiering) Kick() {
	select {
	case tr.kick <- struct{}{}:
	default:
	}
}

type flushPart struct {
	h          partition.Held
	data, snap []byte // the batches, and producer state as of end
	first, end int64
	epoch      int32
}

type partID struct {
	topic uuid.UUID
	index int32
}

// takeFlushable reads what is flushable now, up to the segment size, from
// partitions this agent leads that no flush under way holds, and marks
// them as flushing. It starts each time after the last partition the
// previous one took, so under a backlog every partition gets its turn
// (always starting at the first left the last ones' oldest batches in the
// WAL, pinning its files, until the producers stopped).
func (tr *Tiering) takeFlushable() ([]flushPart, error) {
	tr.flushMu.Lock()
	defer tr.flushMu.Unlock()
	held := tr.host.Partitions()
	// In one order from call to call (topics come from a map), so the
	// turn passes from one partition to the next.
	slices.SortFunc(held, func(a, b partition.Held) int {
		if c := bytes.Compare(a.Topic[:], b.Topic[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.Index, b.Index)
	})
	var parts []flushPart
	budget := tr.cfg.SegmentBytes
	start := tr.flushNext
	for k := range held {
		if budget <= 0 {
			break
		}
		i := (start + k) % len(held)
		h := held[i]
		id := partID{h.Topic, h.Index}
		if tr.flushing[id] || !h.P.IsLeader() {
			continue
		}
		data, first, end, err := h.P.Unflushed(int(budget))
		if errors.Is(err, partition.ErrClosed) {
			continue // its topic was deleted under the read
		}
		if err != nil {
			tr.releaseLocked(parts)
			return nil, err
		}
		if len(data) == 0 {
			continue
		}
		budget -= int64(len(data))
		parts = append(parts, flushPart{h: h, data: data, snap: h.P.ProducerSnapshot(end), first: first, end: end, epoch: h.P.Offsets().Epoch})
		tr.flushing[id] = true
		tr.flushingBytes.Add(int64(len(data)))
		tr.flushNext = i + 1
	}
	return parts, nil
}

// releaseLocked unmarks parts as flushing; flushMu is held.
func (tr *Tiering) releaseLocked(parts []flushPart) {
	for _, fp := range parts {
		delete(tr.flushing, partID{fp.h.Topic, fp.h.Index})
		tr.flushingBytes.Add(-int64(len(fp.data)))
	}
}

// flushParts writes parts into one segment object, uploads it and
// commits it, then trims the partitions' WALs and unmarks them.
func (tr *Tiering) flushParts(ctx context.Context, parts []flushPart) error {
	defer func() {
		tr.flushMu.Lock()
		tr.releaseLocked(parts)
		tr.flushMu.Unlock()
	}()
	w := segment.NewWriter(tr.cfg.ID)
	for _, fp := range parts {
		if err := w.AddOwned(fp.h.Topic, fp.h.Index, fp.epoch, fp.data, fp.snap); err != nil {
			return fmt.Errorf("flush %s/%d: %w", fp.h.Name, fp.h.Index, err)
		}
	}
	body := w.Bytes()
	key := tr.newObjectKey("seg")
	start := time.Now()
	if _, err := tr.cfg.Bucket.PutIfAbsent(ctx, key, body); err != nil {
		return fmt.Errorf("upload %s (%d bytes): %w", key, len(body), err)
	}
	uploaded := time.Since(start)

	entries := w.Entries()
	cmds := make([]metadata.CommitSegment, 0, len(parts))
	for _, fp := range parts {
		e, ok := findEntry(entries, fp.h.Topic, fp.h.Index)
		if !ok {
			return fmt.Errorf("segment writer lost %s/%d", fp.h.Name, fp.h.Index)
		}
		cmds = append(cmds, metadata.CommitSegment{
			TopicID: fp.h.Topic, Partition: fp.h.Index, LeaderEpoch: fp.epoch,
			Ref: metadata.SegmentRef{
				Object: key, Offset: e.Pos, Length: e.Len,
				// The first batch may start below flushedEnd (a log
				// start inside it); the range serves from flushedEnd.
				FirstOffset: fp.first, LastOffset: fp.end - 1,
				MinTimestamp: e.MinTimestamp, MaxTimestamp: e.MaxTimestamp,
				LeaderEpoch: fp.epoch, CRC: e.CRC,
			},
		})
	}
	if _, err := tr.host.Propose(ctx, metadata.CommitSegments{Commits: cmds}); err != nil {
		// The object is orphaned; garbage collection removes it.
		if errors.Is(err, metadata.ErrStaleEpoch) || errors.Is(err, metadata.ErrNotContiguous) {
			tr.commitsRefused.Add(1)
			tr.log.Error("segment commit refused: this agent no longer leads or its view is stale", "object", key, "err", err)
		}
		return fmt.Errorf("commit %s: %w", key, err)
	}
	// The leader trims its own WAL now; followers trim when the commit
	// reaches them through the journal (the agent's metadata sync), and
	// that sync finds nothing left to do here.
	for _, fp := range parts {
		if err := fp.h.P.SetFlushedEnd(fp.end); err != nil {
			tr.log.Warn("trim flushed batches from the WAL", "topic", fp.h.Name, "partition", fp.h.Index, "err", err)
		}
	}
	tr.log.Debug("flushed segment", "object", key, "bytes", len(body), "partitions", len(parts),
		"upload", uploaded.Round(time.Millisecond), "total", time.Since(start).Round(time.Millisecond))
	tr.flushes.Add(1)
	tr.flushedBytes.Add(int64(len(body)))
	tr.cfg.OnFlushed(time.Since(start))
	return nil
}

func findEntry(entries []segment.Entry, id [16]byte, idx int32) (segment.Entry, bool) {
	for _, e := range entries {
		if e.TopicID == id && e.Partition == idx {
			return e, true
		}
	}
	return segment.Entry{}, false
}

// newObjectKey names a segment object: by agent, then time, so listing
// data/ shows age, with random bits so retries never collide. kind is
// "seg" for flushes and "c.seg" for compaction output.
func (tr *Tiering) newObjectKey(kind string) string {
	var r [6]byte
	rand.Read(r[:])
	return fmt.Sprintf("data/%d/%s-%s.%s", tr.cfg.ID, time.Now().UTC().Format("20060102T150405.000000000"), hex.EncodeToString(r[:]), kind)
}

// Flushes every 250 ms leave many small ranges per partition. The compactor,
// on the controller, rewrites runs of consecutive small ranges of one
// partition into one per-partition object (up to CompactBytes, 64 MiB by
// default) and swaps them in the manifest with one journal entry, so the
// manifest grows with retained bytes, not with the number of flushes, and a
// replay reads few, large objects. A range counts as small below half the
// target, so a merged range stops being rewritten once it is big enough.
// The merged range carries the producer snapshot of the run's last range
// (state as of the same last offset), so a replica that starts at the
// flushed end still recognises a retried batch after compaction. The old
// objects are left to garbage collection, which deletes each once
// no partition references it.

func (tr *Tiering) compactLoop() {
	tr.controllerLoop(fixed(tr.cfg.CompactInterval), nil, "compaction", func(ctx context.Context) error {
		_, err := tr.compactOnce(ctx)
		return err
	})
}

// smallRun returns the first run of at least two consecutive small ranges
// whose total fits in target, whose records span at most span ms, and in
// which no range is larger than the others together (the longest such run
// from the first start that has one). The last rule bounds rewriting: a
// byte is rewritten only into a range at least twice the one it was in,
// so at most log2(target / flush size) times. Without it, a slow
// partition's merged range was merged again with every pass's few new
// bytes, rewriting all of it every CompactInterval until it reached half
// the target.
func smallRun(segs []metadata.SegmentRef, target, span int64) []metadata.SegmentRef {
	for i := range segs {
		if segs[i].Length >= target/2 {
			continue
		}
		best, total, largest := 0, int64(0), int64(0)
		lo, hi := segs[i].MinTimestamp, segs[i].MaxTimestamp
		for j := i; j < len(segs) && segs[j].Length < target/2 && total+segs[j].Length <= target; j++ {
			lo, hi = min(lo, segs[j].MinTimestamp), max(hi, segs[j].MaxTimestamp)
			if j > i && hi-lo > span {
				break
			}
			total += segs[j].Length
			largest = max(largest, segs[j].Length)
			if j > i && largest <= total-largest {
				best = j + 1
			}
		}
		if best > 0 {
			return segs[i:best]
		}
	}
	return nil
}

// compactOnce merges at most one run per partition, reading at most
// CompactBytes×4 per pass to bound memory and bucket traffic. It returns
// how many runs it replaced.
func (tr *Tiering) compactOnce(ctx context.Context) (int, error) {
	st := tr.host.State()
	ids := make([]uuid.UUID, 0, len(st.Topics))
	for id := range st.Topics {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return bytes.Compare(ids[i][:], ids[j][:]) < 0 })
	budget := 4 * tr.cfg.CompactBytes
	done := 0
	for _, id := range ids {
		mt := st.Topics[id]
		for i := range mt.Partitions {
			if budget <= 0 {
				return done, nil
			}
			// segment.bytes and segment.ms bound what a merge builds:
			// retention drops whole ranges, so they set its grain, as
			// they do for Kafka's segments.
			target := min(tr.cfg.CompactBytes, mt.ConfigInt("segment.bytes", tr.cfg.CompactBytes))
			run := smallRun(mt.Partitions[i].Segments, target, mt.ConfigInt("segment.ms", math.MaxInt64))
			if run == nil {
				continue
			}
			n, err := tr.compactRun(ctx, mt, int32(i), run)
			if err != nil {
				return done, fmt.Errorf("%s/%d: %w", mt.Name, i, err)
			}
			budget -= n
			done++
		}
	}
	return done, nil
}

func (tr *Tiering) compactRun(ctx context.Context, mt *metadata.Topic, idx int32, run []metadata.SegmentRef) (int64, error) {
	// Sized once: growing it range by range copied the run about twice
	// over, the largest cost of a pass in a profile.
	var total int64
	for _, r := range run {
		total += r.Length
	}
	data := make([]byte, 0, total)
	merged := metadata.SegmentRef{
		FirstOffset: run[0].FirstOffset, LastOffset: run[len(run)-1].LastOffset,
		MinTimestamp: run[0].MinTimestamp, MaxTimestamp: run[0].MaxTimestamp,
	}
	old := make([]string, len(run))
	for k, r := range run {
		b, err := tr.cfg.Bucket.GetRange(ctx, r.Object, r.Offset, r.Length)
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", r.Object, err)
		}
		if int64(len(b)) != r.Length || (r.CRC != 0 && crc32.Checksum(b, castagnoli) != r.CRC) {
			return 0, fmt.Errorf("range of %s [%d,+%d) fails its checksum", r.Object, r.Offset, r.Length)
		}
		data = append(data, b...)
		old[k] = r.Object
		merged.MinTimestamp = min(merged.MinTimestamp, r.MinTimestamp)
		merged.MaxTimestamp = max(merged.MaxTimestamp, r.MaxTimestamp)
		merged.LeaderEpoch = max(merged.LeaderEpoch, r.LeaderEpoch)
	}
	snapshot, err := ProducerSnapshotOf(ctx, tr.cfg.Bucket, mt.ID, idx, run[len(run)-1])
	if err != nil {
		return 0, err
	}
	w := segment.NewWriter(tr.cfg.ID)
	if err := w.AddOwned(mt.ID, idx, merged.LeaderEpoch, data, snapshot); err != nil {
		return 0, fmt.Errorf("build merged object: %w", err)
	}
	e := w.Entries()[0]
	merged.Object = tr.newObjectKey("c.seg")
	merged.Offset, merged.Length, merged.CRC = e.Pos, e.Len, e.CRC
	if _, err := tr.cfg.Bucket.PutIfAbsent(ctx, merged.Object, w.Bytes()); err != nil {
		return 0, fmt.Errorf("upload %s: %w", merged.Object, err)
	}
	_, err = tr.host.Propose(ctx, metadata.ReplaceSegments{TopicID: mt.ID, Partition: idx, Old: old, New: merged})
	if err != nil {
		// Retention or another compaction got there first; the upload
		// is an orphan for garbage collection.
		if errors.Is(err, metadata.ErrNotContiguous) {
			return int64(len(data)), nil
		}
		return 0, fmt.Errorf("swap in %s: %w", merged.Object, err)
	}
	tr.compactions.Add(1)
	tr.log.Debug("compacted", "topic", mt.Name, "partition", idx, "ranges", len(run), "bytes", len(data), "object", merged.Object)
	return int64(len(data)), nil
}

// Retention and garbage collection run on the controller. Retention drops
// whole segment ranges from the front of each partition (retention.ms by
// the range's max timestamp, retention.bytes by the flushed bytes kept) by
// journaling a new log start; data still in the WAL is never dropped.
// Garbage collection deletes segment objects that no partition references
// any more, including uploads whose commit never happened, once they are
// older than a grace period (an upload is committed within moments, so the
// grace only has to outlast that).

// controllerLoop runs fn every interval, and whenever kick (may be nil)
// fires, while this agent is the controller.
func (tr *Tiering) controllerLoop(interval func() time.Duration, kick <-chan struct{}, name string, fn func(context.Context) error) {
	// The interval may change at run time (a dynamic broker config): it
	// is read again at least every second.
	last := time.Now()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		t.Reset(max(min(interval()-time.Since(last), time.Second), 0))
		select {
		case <-tr.ctx.Done():
			return
		case <-t.C:
			if time.Since(last) < interval() {
				continue
			}
		case <-kick:
			t.Stop()
		}
		last = time.Now()
		if !tr.host.IsController() {
			continue
		}
		switch err := fn(tr.ctx); {
		case err == nil || tr.ctx.Err() != nil:
		case errors.Is(err, metadata.ErrUnknownTopic):
			// A topic deleted during the pass; the next pass skips it,
			// and what this one wrote is garbage collection's.
			tr.log.Debug(name+" of a topic deleted meanwhile", "err", err)
		default:
			tr.log.Warn(name, "err", err)
		}
	}
}

func fixed(d time.Duration) func() time.Duration { return func() time.Duration { return d } }

func (tr *Tiering) retentionLoop() {
	tr.controllerLoop(fixed(tr.cfg.RetentionInterval), nil, "retention", func(ctx context.Context) error {
		if err := tr.enforceRetention(ctx); err != nil {
			return err
		}
		return tr.collectGarbage(ctx)
	})
}

// enforceRetention journals new log starts for partitions whose oldest
// flushed ranges fall outside retention.
func (tr *Tiering) enforceRetention(ctx context.Context) error {
	st := tr.host.State()
	now := time.Now().UnixMilli()
	var cmds []metadata.Command
	for _, mt := range st.Topics {
		if !mt.CleanupPolicyHas("delete") {
			continue // cleanup.policy=compact: kept whole, cleaned by key
		}
		retMs := mt.ConfigInt("retention.ms", 7*24*3600*1000)
		retBytes := mt.ConfigInt("retention.bytes", -1)
		for i, mp := range mt.Partitions {
			segs := mp.Segments
			drop := 0
			if retMs >= 0 {
				for drop < len(segs) && segs[drop].MaxTimestamp < now-retMs {
					drop++
				}
			}
			if retBytes >= 0 {
				var kept int64
				for _, s := range segs[drop:] {
					kept += s.Length
				}
				for drop < len(segs) && kept > retBytes {
					kept -= segs[drop].Length
					drop++
				}
			}
			if drop == 0 {
				continue
			}
			start := segs[drop-1].LastOffset + 1
			if start <= mp.LogStart {
				continue
			}
			cmds = append(cmds, metadata.SetLogStart{TopicID: mt.ID, Partition: int32(i), Offset: start})
		}
	}
	for len(cmds) > 0 {
		n := min(len(cmds), 500)
		if _, err := tr.host.Propose(ctx, cmds[:n]...); err != nil {
			return fmt.Errorf("journal new log starts: %w", err)
		}
		tr.retained.Add(int64(n))
		cmds = cmds[n:]
	}
	return nil
}

// collectGarbage deletes data/ objects that no partition references and
// that are older than the grace period. The decision is taken on a
// settled journal (see metadata.Store.Doom): no entry that can still land
// is missing from the state it reads, and no commit naming a doomed
// object is journaled afterwards, however late its proposal arrives.
func (tr *Tiering) collectGarbage(ctx context.Context) error {
	objs, err := tr.cfg.Bucket.List(ctx, "data/")
	if err != nil {
		return fmt.Errorf("list data/: %w", err)
	}
	doomed, err := tr.host.Doom(ctx, func(st *metadata.State) []string {
		// The state is read after listing: an object committed in
		// between is seen as referenced.
		referenced := map[string]bool{}
		for _, mt := range st.Topics {
			for _, mp := range mt.Partitions {
				for _, s := range mp.Segments {
					referenced[s.Object] = true
				}
			}
		}
		var doomed []string
		for _, o := range objs {
			if !referenced[o.Key] && time.Since(o.Modified) >= tr.cfg.OrphanGrace {
				doomed = append(doomed, o.Key)
			}
		}
		return doomed
	})
	if err != nil {
		return fmt.Errorf("settle the journal: %w", err)
	}
	var deleted []string
	defer func() { tr.host.Forget(deleted) }()
	for _, key := range doomed {
		if err := tr.cfg.Bucket.Delete(ctx, key); err != nil {
			return fmt.Errorf("delete %s: %w", key, err)
		}
		deleted = append(deleted, key)
		tr.deletedObjects.Add(1)
		tr.log.Debug("deleted unreferenced object", "object", key)
	}
	return nil
}

// ProducerSnapshotOf returns the producer snapshot the footer of ref's
// object holds for topic/idx (nil if none: a partition without idempotent
// producers, or a range compacted before snapshots were carried over).
func ProducerSnapshotOf(ctx context.Context, b tier.Bucket, topic uuid.UUID, idx int32, ref metadata.SegmentRef) ([]byte, error) {
	info, err := b.Stat(ctx, ref.Object)
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", ref.Object, err)
	}
	f, err := segment.Open(ctx, b, ref.Object, info.Size)
	if err != nil {
		return nil, fmt.Errorf("footer of %s: %w", ref.Object, err)
	}
	for _, e := range f.Entries {
		if e.TopicID == topic && e.Partition == idx {
			return bytes.Clone(e.ProducerSnapshot), nil
		}
	}
	return nil, nil
}
