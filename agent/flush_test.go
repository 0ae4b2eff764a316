package agent_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/segment"
	"github.com/tlog-io/tlog/tier/tiertest"
)

func fastFlush(c *agent.Config) {
	c.FlushInterval = 50 * time.Millisecond
	quiet(c)
}

// waitFlushed waits until every partition's flushed end reaches its HW.
func waitFlushed(t *testing.T, a *agent.Agent, topic string, parts int32) {
	t.Helper()
	tlogtest.CheckFor(t, 30*time.Second, 20*time.Millisecond, func() error {
		for i := int32(0); i < parts; i++ {
			o, ok := a.PartitionOffsets(topic, i)
			if !ok {
				return fmt.Errorf("no partition %s/%d", topic, i)
			}
			if o.FlushedEnd != o.HW {
				return fmt.Errorf("%s/%d flushed to %d of %d", topic, i, o.FlushedEnd, o.HW)
			}
		}
		return nil
	})
}

func listData(t *testing.T, b tier.Bucket) []tier.ObjectInfo {
	t.Helper()
	objs, err := b.List(context.Background(), "data/")
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// Everything acknowledged is flushed to the bucket; with the WAL directory
// deleted, a restarted agent serves all of it from the bucket alone.
func TestFlushThenReplayWithoutWAL(t *testing.T) {
	dir := t.TempDir()
	bucket := tiertest.NewFaulty(tier.NewMemBucket())
	a := tlogtest.StartAgent(t, dir, bucket, fastFlush)
	createTopic(t, dialRaw(t, a.Addr()), "hist", 16, nil)

	want := &tlogtest.Acked{}
	prod := tlogtest.NewClient(t, a.Addr(), kgo.ProducerLinger(2*time.Millisecond))
	tlogtest.Produce(t, prod, want, 30_000, func(i int) *kgo.Record {
		return &kgo.Record{Topic: "hist", Key: fmt.Appendf(nil, "k%d", i%101), Value: fmt.Appendf(nil, "v-%d-%s", i, strings.Repeat("x", i%200))}
	})
	waitFlushed(t, a, "hist", 16)
	objs := listData(t, bucket)
	if len(objs) == 0 {
		t.Fatal("nothing flushed to the bucket")
	}
	// Many partitions share each object: far fewer PUTs than partition
	// flushes.
	puts := bucket.Counts()[tiertest.OpPutIfAbsent]
	t.Logf("%d segment objects, %d conditional PUTs", len(objs), puts)

	// Reads across bucket and WAL while running.
	tlogtest.VerifyAll(t, a.Addr(), want, false)

	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "wal")); err != nil {
		t.Fatal(err)
	}
	a = tlogtest.StartAgent(t, dir, bucket, fastFlush)
	if rep := tlogtest.VerifyAll(t, a.Addr(), want, false); rep.Records != 30_000 {
		t.Fatalf("after losing the WAL: read %d of 30000", rep.Records)
	}
	// And new writes continue at the right offsets.
	more := &tlogtest.Acked{}
	tlogtest.Produce(t, tlogtest.NewClient(t, a.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner())), more, 100, func(i int) *kgo.Record {
		return &kgo.Record{Topic: "hist", Partition: 0, Value: fmt.Appendf(nil, "after-%d", i)}
	})
	for p, offs := range more.M["hist"] {
		for off := range offs {
			if _, dup := want.M["hist"][p][off]; dup {
				t.Fatalf("offset %d of partition %d reused after restart", off, p)
			}
		}
	}
}

// A bucket outage: produce keeps being acknowledged into the WAL, nothing
// flushes, and once the bucket returns everything flushes and reads back.
func TestBucketOutageKeepsAcknowledging(t *testing.T) {
	dir := t.TempDir()
	bucket := tiertest.NewFaulty(tier.NewMemBucket())
	a := tlogtest.StartAgent(t, dir, bucket, fastFlush)
	createTopic(t, dialRaw(t, a.Addr()), "outage", 4, nil)

	// The producer has its id before the outage: handing out ids is a
	// metadata write, which needs the bucket.
	want := &tlogtest.Acked{}
	prod := tlogtest.NewClient(t, a.Addr())
	tlogtest.Produce(t, prod, want, 1, func(i int) *kgo.Record {
		return &kgo.Record{Topic: "outage", Value: []byte("before")}
	})
	bucket.SetOutage(tiertest.ErrInjected)
	tlogtest.Produce(t, prod, want, 5_000, func(i int) *kgo.Record {
		return &kgo.Record{Topic: "outage", Value: fmt.Appendf(nil, "o-%d", i)}
	})
	time.Sleep(300 * time.Millisecond)
	var unflushed int64
	for i := int32(0); i < 4; i++ {
		o, _ := a.PartitionOffsets("outage", i)
		unflushed += o.HW - o.FlushedEnd
	}
	if unflushed < 5_000 {
		t.Fatalf("only %d records unflushed after 5000 acknowledged during the outage", unflushed)
	}
	bucket.SetOutage(nil)
	waitFlushed(t, a, "outage", 4)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(filepath.Join(dir, "wal"))
	a = tlogtest.StartAgent(t, dir, bucket, fastFlush)
	tlogtest.VerifyAll(t, a.Addr(), want, false)
}

// Past --wal-max-bytes with the bucket down, produce is refused with a
// retriable error; acknowledged data is kept and flushed later.
func TestWALMaxBytesBackpressure(t *testing.T) {
	dir := t.TempDir()
	bucket := tiertest.NewFaulty(tier.NewMemBucket())
	a := tlogtest.StartAgent(t, dir, bucket, fastFlush, func(c *agent.Config) { c.WALMaxBytes = 64 << 10 })
	createTopic(t, dialRaw(t, a.Addr()), "bp", 1, nil)
	cl := tlogtest.NewClient(t, a.Addr(), kgo.RecordRetries(0), kgo.RecordDeliveryTimeout(2*time.Second), kgo.DisableIdempotentWrite())
	want := &tlogtest.Acked{}
	bucket.SetOutage(tiertest.ErrInjected)
	var refused int
	for i := 0; i < 200; i++ {
		v := make([]byte, 1024) // random: compression must not shrink it
		rand.Read(v)
		r := &kgo.Record{Topic: "bp", Value: v}
		if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
			refused++
			continue
		}
		want.Add(r)
	}
	if refused == 0 || want.N == 0 {
		t.Fatalf("acknowledged %d, refused %d: want both", want.N, refused)
	}
	bucket.SetOutage(nil)
	waitFlushed(t, a, "bp", 1)
	tlogtest.VerifyAll(t, a.Addr(), want, false)
}

// segmentWatch is a bucket that holds segment uploads until released,
// then delays each as a remote store would, and records which partitions
// each upload carried and which uploads overlapped.
type segmentWatch struct {
	tier.Bucket
	release chan struct{}

	mu       sync.Mutex
	inflight map[int32]int // partition → uploads under way holding it
	running  int
	maxRun   int
	overlap  []int32   // partitions in two uploads at once
	order    [][]int32 // each upload's partitions, in the order they started
}

func (s *segmentWatch) PutIfAbsent(ctx context.Context, key string, body []byte) (string, error) {
	if !strings.HasSuffix(key, ".seg") || strings.HasSuffix(key, ".c.seg") {
		return s.Bucket.PutIfAbsent(ctx, key, body)
	}
	n, crc, err := segment.ParseTrailer(body)
	if err != nil {
		return "", err
	}
	f, err := segment.ParseFooter(body[len(body)-segment.TrailerSize-n : len(body)-segment.TrailerSize])
	if err != nil || segment.CheckFooter(body[len(body)-segment.TrailerSize-n:len(body)-segment.TrailerSize], crc) != nil {
		return "", fmt.Errorf("segment %s: footer: %v", key, err)
	}
	var parts []int32
	for _, e := range f.Entries {
		parts = append(parts, e.Partition)
	}
	<-s.release
	s.mu.Lock()
	s.order = append(s.order, parts)
	s.running++
	s.maxRun = max(s.maxRun, s.running)
	for _, p := range parts {
		if s.inflight[p] > 0 {
			s.overlap = append(s.overlap, p)
		}
		s.inflight[p]++
	}
	s.mu.Unlock()
	time.Sleep(30 * time.Millisecond)
	defer func() {
		s.mu.Lock()
		s.running--
		for _, p := range parts {
			s.inflight[p]--
		}
		s.mu.Unlock()
	}()
	return s.Bucket.PutIfAbsent(ctx, key, body)
}

// Under a backlog the flusher uploads several segments at once, never
// two holding the same partition, and takes partitions in turn: with
// every partition holding more than a segment, the first segments cover
// them all. (One upload at a time, each starting at partition 0, held a
// single agent to a fraction of its produce rate and left the last
// partitions' batches, and the WAL files under them, until producers
// stopped.)
func TestFlushesConcurrentAndInTurn(t *testing.T) {
	const parts, perPart = 8, 24
	watch := &segmentWatch{Bucket: tier.NewMemBucket(), release: make(chan struct{}), inflight: map[int32]int{}}
	a := tlogtest.StartAgent(t, t.TempDir(), watch, func(c *agent.Config) {
		quiet(c)
		c.FlushInterval = 50 * time.Millisecond
		c.FlushBytes, c.SegmentBytes = 32<<10, 32<<10
	})
	createTopic(t, dialRaw(t, a.Addr()), "turns", parts, nil)
	cl := tlogtest.NewClient(t, a.Addr(), kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.ProducerLinger(0))
	want := &tlogtest.Acked{}
	for i := range perPart {
		for p := range int32(parts) {
			v := make([]byte, 8<<10)
			rand.Read(v)
			r := &kgo.Record{Topic: "turns", Partition: p, Value: v, Key: fmt.Appendf(nil, "%d-%d", p, i)}
			if err := cl.ProduceSync(context.Background(), r).FirstErr(); err != nil {
				t.Fatal(err)
			}
			want.Add(r)
		}
	}
	// Every partition now holds 192 KiB unflushed, six segments' worth.
	close(watch.release)
	waitFlushed(t, a, "turns", parts)
	tlogtest.VerifyAll(t, a.Addr(), want, false)

	watch.mu.Lock()
	defer watch.mu.Unlock()
	if len(watch.overlap) > 0 {
		t.Errorf("partitions %v were in two uploads at once", watch.overlap)
	}
	if watch.maxRun < 2 {
		t.Errorf("at most %d upload at a time under a backlog of %d segments", watch.maxRun, len(watch.order))
	}
	// The uploads blocked before the release took what was there then;
	// after them, each takes the next partitions in turn, so the next
	// few hold every partition.
	seen := map[int32]bool{}
	after := watch.order[min(len(watch.order), maxFlushesInTest):]
	for _, ps := range after[:min(len(after), parts)] {
		for _, p := range ps {
			seen[p] = true
		}
	}
	if len(seen) != parts {
		t.Errorf("the %d uploads after the first %d held partitions %v of %d: %v", parts, maxFlushesInTest, seen, parts, watch.order)
	}
	t.Logf("%d uploads, at most %d at once; first ones: %v", len(watch.order), watch.maxRun, watch.order[:min(len(watch.order), 12)])
}

// maxFlushesInTest is tiering's maxFlushes: the uploads that may have
// started before the backlog was complete.
const maxFlushesInTest = 3
