package tests

// Tiered storage against a real MinIO: a `tlog dev` process whose bucket is
// s3://…, its WAL deleted, everything read back from the bucket; and MinIO
// killed (SIGKILL) and restarted while a producer keeps going. The tests
// skip when the minio binary is absent (.ci/run installs it).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier/miniotest"
)

// minioRig is one MinIO server, one bucket on it and a `tlog dev` process
// (started and restarted by the test) whose bucket URL points there.
type minioRig struct {
	t      *testing.T
	minio  *miniotest.Process
	s3     *s3.Client
	bucket string
	prefix string // tlog's keys live under bucket/prefix/
	bin    string
	data   string
	addr   string
	args   []string
}

// newMinIORig starts MinIO (skipping the test if it isn't installed),
// creates a bucket, points the AWS environment of tlog processes at it and
// builds tlog. extra flags are passed to every `tlog dev`.
func newMinIORig(t *testing.T, extra ...string) *minioRig {
	t.Helper()
	m := miniotest.StartProcess(t)
	r := &minioRig{
		t:      t,
		minio:  m,
		s3:     miniotest.Client(m.Endpoint(), m.AccessKey(), m.SecretKey()),
		bucket: "tlog",
		prefix: "dev",
		data:   t.TempDir(),
	}
	miniotest.CreateBucket(t, m.Endpoint(), m.AccessKey(), m.SecretKey(), r.bucket)
	// tlog dev takes credentials from the standard AWS chain.
	miniotest.SetCredentialsEnv(t, m)
	r.bin = tlogtest.BuildTlog(t)
	r.addr = tlogtest.FreeAddr(t)
	url := fmt.Sprintf("s3://%s/%s?endpoint=%s&region=us-east-1", r.bucket, r.prefix, m.Endpoint())
	r.args = append([]string{"dev", "--data", r.data, "--listen", r.addr, "--bucket", url}, extra...)
	return r
}

// start runs `tlog dev` on the rig's data directory, address and bucket.
func (r *minioRig) start() *tlogtest.Proc {
	r.t.Helper()
	return tlogtest.StartProc(r.t, r.bin, r.addr, r.args...)
}

// restartWithoutWAL stops p with SIGTERM, deletes DATA/wal and starts a new
// process on the same bucket: whatever it serves came from MinIO.
func (r *minioRig) restartWithoutWAL(p *tlogtest.Proc) *tlogtest.Proc {
	r.t.Helper()
	if err := p.Stop(30 * time.Second); err != nil {
		r.t.Fatalf("SIGTERM: %v\n%s", err, p.Output())
	}
	if err := os.RemoveAll(filepath.Join(r.data, "wal")); err != nil {
		r.t.Fatal(err)
	}
	return r.start()
}

// segmentStats lists the segment objects under prefix/data/: flush objects
// and compaction outputs (.c.seg) separately, and their total size.
type segmentStats struct {
	Flushed, Compacted int
	Bytes              int64
}

func (r *minioRig) segments(ctx context.Context) (segmentStats, error) {
	var st segmentStats
	pg := s3.NewListObjectsV2Paginator(r.s3, &s3.ListObjectsV2Input{
		Bucket: aws.String(r.bucket), Prefix: aws.String(r.prefix + "/data/"),
	})
	for pg.HasMorePages() {
		page, err := pg.NextPage(ctx)
		if err != nil {
			return st, err
		}
		for _, o := range page.Contents {
			if strings.HasSuffix(aws.ToString(o.Key), ".c.seg") {
				st.Compacted++
			} else {
				st.Flushed++
			}
			st.Bytes += aws.ToInt64(o.Size)
		}
	}
	return st, nil
}

// waitFlushed waits until no new flush object has appeared for quiet (the
// flusher writes one whenever anything is unflushed, every flush interval),
// so that everything acknowledged before the call is in the bucket.
func (r *minioRig) waitFlushed(quiet, timeout time.Duration) segmentStats {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	last, since := -1, time.Now()
	for {
		st, err := r.segments(ctx)
		switch {
		case err != nil && ctx.Err() != nil:
			r.t.Fatalf("flush objects still appearing after %v: %v", timeout, err)
		case err != nil:
		case st.Flushed != last:
			last, since = st.Flushed, time.Now()
		case time.Since(since) >= quiet:
			return st
		}
		select {
		case <-ctx.Done():
			r.t.Fatalf("flush objects still appearing after %v", timeout)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// tieredEnds asks the agent for the end offset of each partition of topic.
func tieredEnds(t *testing.T, addr, topic string, parts int) []int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(tlogtest.NewClient(t, addr)).ListEndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int64, parts)
	for p := range out {
		o, ok := ends.Lookup(topic, int32(p))
		if !ok || o.Err != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, p, o.Err)
		}
		out[p] = o.Offset
	}
	return out
}

// tieredValue writes the value of record seq of partition p: a readable
// header, then a splitmix64 stream seeded by (p, seq). Any record can be
// re-derived, so a gigabyte is checked without holding it.
func tieredValue(dst []byte, p int32, seq int64) {
	mix := func(z uint64) uint64 {
		z = (z ^ z>>30) * 0xBF58476D1CE4E5B9
		z = (z ^ z>>27) * 0x94D049BB133111EB
		return z ^ z>>31
	}
	// Seed from a hash of (p, seq), so that no two records' streams
	// overlap and nothing compresses.
	x := mix(uint64(p)<<48 | uint64(seq))
	for i := 0; i+8 <= len(dst); i += 8 {
		x += 0x9E3779B97F4A7C15
		binary.LittleEndian.PutUint64(dst[i:], mix(x))
	}
	var hdr [32]byte
	copy(dst, fmt.Appendf(hdr[:0], "p%02d-s%010d|", p, seq))
}

const tieredMiB = 1 << 20

// TestTieredReplayFromMinIO produces 1 GiB into 16 partitions of a `tlog
// dev` on MinIO, deletes the WAL and replays every partition from offset 0
// out of the bucket, byte for byte. TLOG_HEAVY=1 (.ci/run) runs it.
func TestTieredReplayFromMinIO(t *testing.T) {
	if os.Getenv("TLOG_HEAVY") == "" {
		t.Skip("produces and replays 1 GiB through MinIO: set TLOG_HEAVY=1 (.ci/run does)")
	}
	tieredReplay(t, 1<<30)
}

// TestTieredReplayFromMinIOSmall is the same with 32 MiB, run by `go test
// ./...` whenever MinIO is installed.
func TestTieredReplayFromMinIOSmall(t *testing.T) {
	if testing.Short() {
		t.Skip("runs MinIO and the tlog binary")
	}
	tieredReplay(t, 32*tieredMiB)
}

func tieredReplay(t *testing.T, total int64) {
	const (
		parts     = 16
		valueSize = 1024
		topic     = "replay"
	)
	n := total / valueSize
	r := newMinIORig(t, "--wal-sync", "never", "--flush-interval", "100ms")
	p := r.start()
	createTopics(t, r.addr, parts, topic)

	// Produce: record i goes to partition i%16 as its (i/16)th record, so
	// with one idempotent producer its offset must be i/16.
	prod := tlogtest.NewClient(t, r.addr,
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), // idempotence is on by default
		kgo.ProducerLinger(5*time.Millisecond),
		kgo.ProducerBatchMaxBytes(1*tieredMiB),
		kgo.ProducerBatchCompression(kgo.NoCompression()), // 1 GiB means 1 GiB in the bucket
		kgo.MaxBufferedBytes(32*tieredMiB),
		kgo.RecordDeliveryTimeout(2*time.Minute),
	)
	var acked [parts]atomic.Int64
	var errMu sync.Mutex
	var firstErr error
	setErr := func(err error) {
		errMu.Lock()
		defer errMu.Unlock()
		if firstErr == nil {
			firstErr = err
		}
	}
	var wg sync.WaitGroup
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	for i := int64(0); i < n && ctx.Err() == nil; i++ {
		part, seq := int32(i%parts), i/parts
		v := make([]byte, valueSize)
		tieredValue(v, part, seq)
		wg.Add(1)
		prod.Produce(ctx, &kgo.Record{Topic: topic, Partition: part, Value: v}, func(rec *kgo.Record, err error) {
			defer wg.Done()
			switch {
			case err != nil:
				setErr(fmt.Errorf("produce %d/%d: %w", part, seq, err))
			case rec.Offset != seq:
				setErr(fmt.Errorf("partition %d: record %d acknowledged at offset %d", part, seq, rec.Offset))
			default:
				acked[part].Add(1)
			}
		})
	}
	wg.Wait()
	produceTime := time.Since(start)
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	if ctx.Err() != nil {
		t.Fatalf("produce did not finish: %v", ctx.Err())
	}
	t.Logf("produced %d records, %.0f MiB in %v: %.1f MiB/s", n, float64(n*valueSize)/tieredMiB,
		produceTime.Round(time.Millisecond), float64(n*valueSize)/tieredMiB/produceTime.Seconds())

	// All acknowledged: the high watermarks say so, and once flush objects
	// stop appearing, everything is in the bucket.
	hw := tieredEnds(t, r.addr, topic, parts)
	for part := range parts {
		if hw[part] != acked[part].Load() {
			t.Fatalf("partition %d: high watermark %d, acknowledged %d", part, hw[part], acked[part].Load())
		}
	}
	flushWait := time.Now()
	st := r.waitFlushed(time.Second, 2*time.Minute)
	t.Logf("flushed: %d segment objects (+%d compacted), %.1f MiB in the bucket; quiet after %v",
		st.Flushed, st.Compacted, float64(st.Bytes)/tieredMiB, time.Since(flushWait).Round(time.Millisecond))

	// Lose the disk: stop, delete DATA/wal, start on the same bucket.
	p = r.restartWithoutWAL(p)
	ends := tieredEnds(t, r.addr, topic, parts)
	for part := range parts {
		if ends[part] != hw[part] {
			t.Fatalf("partition %d: %d records after the WAL was deleted, %d acknowledged and flushed", part, ends[part], hw[part])
		}
	}

	// Replay everything from offset 0 out of the bucket.
	offsets := map[int32]kgo.Offset{}
	for part := range int32(parts) {
		offsets[part] = kgo.NewOffset().At(0)
	}
	cons := tlogtest.NewClient(t, r.addr,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}),
		kgo.FetchMaxBytes(64*tieredMiB), kgo.FetchMaxPartitionBytes(8*tieredMiB),
		kgo.FetchMaxWait(200*time.Millisecond),
	)
	var next [parts]int64
	remaining := n
	var read int64
	want := make([]byte, valueSize)
	start = time.Now()
	for remaining > 0 {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("replay: %d records still missing: %v", remaining, ctx.Err())
		}
		fs.EachError(func(topic string, part int32, err error) { t.Fatalf("fetch %s/%d: %v", topic, part, err) })
		fs.EachRecord(func(rec *kgo.Record) {
			part := rec.Partition
			if rec.Offset != next[part] {
				t.Fatalf("partition %d: read offset %d, want %d (gap or reorder)", part, rec.Offset, next[part])
			}
			if rec.Offset >= ends[part] {
				t.Fatalf("partition %d: offset %d beyond the end %d", part, rec.Offset, ends[part])
			}
			next[part]++
			tieredValue(want, part, rec.Offset)
			if string(rec.Value) != string(want) {
				t.Fatalf("partition %d offset %d: value differs from what was produced (read %d bytes starting %q)",
					part, rec.Offset, len(rec.Value), rec.Value[:min(len(rec.Value), 20)])
			}
			read += int64(len(rec.Value))
			remaining--
		})
	}
	replayTime := time.Since(start)
	t.Logf("replayed %d records, %.0f MiB from offset 0 after deleting the WAL in %v: %.1f MiB/s, %.0f records/s",
		n, float64(read)/tieredMiB, replayTime.Round(time.Millisecond), float64(read)/tieredMiB/replayTime.Seconds(),
		float64(n)/replayTime.Seconds())
	if st, err := r.segments(ctx); err == nil {
		t.Logf("bucket now: %d segment objects (+%d compacted), %.1f MiB", st.Flushed, st.Compacted, float64(st.Bytes)/tieredMiB)
	}
	if err := p.Stop(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, p.Output())
	}
}

// TestMinIOKilledDuringFlush kills MinIO with SIGKILL while a producer is
// mid-stream and flushes go every 100 ms (right after a segment upload,
// around its journal commit), and brings it back 3 seconds later
// on the same directory and port. The agent keeps acknowledging from its
// WAL, its failed flushes are retried, and in the end every acknowledged
// record reads back once, in order — from the running agent, and again from
// the bucket alone after the WAL is deleted.
func TestMinIOKilledDuringFlush(t *testing.T) {
	if testing.Short() {
		t.Skip("runs MinIO and the tlog binary")
	}
	const (
		total   = 20_000
		rate    = 2_000 // records per second
		killAt  = 6_000 // acknowledged records before MinIO is killed
		parts   = 4
		topic   = "outage"
		outage  = 3 * time.Second
		padding = 1000
	)
	r := newMinIORig(t, "--wal-sync", "never", "--flush-interval", "100ms")
	p := r.start()
	createTopics(t, r.addr, parts, topic)
	prod := tlogtest.NewClient(t, r.addr,
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerLinger(2*time.Millisecond),
		kgo.RecordDeliveryTimeout(60*time.Second),
	)
	want := &tlogtest.Acked{}
	pad := strings.Repeat("x", padding)
	var ackedN atomic.Int64
	var errMu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	produced := make(chan struct{})
	start := time.Now()
	go func() { // a steady stream: 100 records every 50 ms
		defer close(produced)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; i < total; {
			<-tick.C
			for range rate / 20 {
				wg.Add(1)
				rec := &kgo.Record{Topic: topic, Key: fmt.Appendf(nil, "k%d", i%101), Value: fmt.Appendf(nil, "o-%d-%s", i, pad)}
				prod.Produce(context.Background(), rec, func(rec *kgo.Record, err error) {
					defer wg.Done()
					if err != nil {
						errMu.Lock()
						errs = append(errs, err)
						errMu.Unlock()
						return
					}
					want.Add(rec)
					ackedN.Add(1)
				})
				i++
			}
		}
		wg.Wait()
	}()

	tlogtest.CheckFor(t, 30*time.Second, 5*time.Millisecond, func() error {
		if n := ackedN.Load(); n < killAt {
			return fmt.Errorf("only %d acknowledged", n)
		}
		return nil
	})
	// Kill the moment a new segment object shows up: its journal commit
	// (the second half of a flush) is then in flight or just done, and the
	// next upload is at most 100 ms away.
	before, err := r.segments(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tlogtest.CheckFor(t, 10*time.Second, time.Millisecond, func() error {
		st, err := r.segments(context.Background())
		if err == nil && st.Flushed == before.Flushed {
			err = errors.New("no new segment object yet")
		}
		if err == nil {
			before = st
		}
		return err
	})
	r.minio.Stop() // SIGKILL
	killed, ackedAtKill := time.Now(), ackedN.Load()
	time.Sleep(outage)
	ackedInOutage := ackedN.Load() - ackedAtKill
	r.minio.Restart()
	t.Logf("MinIO killed after %v with %d acknowledged and %d flush objects; down for %v, %d acknowledged meanwhile",
		killed.Sub(start).Round(time.Millisecond), ackedAtKill, before.Flushed, time.Since(killed).Round(time.Millisecond), ackedInOutage)
	if ackedInOutage == 0 {
		t.Errorf("nothing was acknowledged while MinIO was down; the WAL should absorb an outage")
	}

	select {
	case <-produced:
	case <-time.After(90 * time.Second):
		t.Fatalf("producer did not finish: %d of %d acknowledged", ackedN.Load(), total)
	}
	if len(errs) > 0 {
		t.Fatalf("%d produces failed, first: %v", len(errs), errs[0])
	}
	if want.N != total {
		t.Fatalf("%d acknowledged, want %d", want.N, total)
	}
	t.Logf("produced %d records in %v", total, time.Since(start).Round(time.Millisecond))
	if out := p.Output(); !strings.Contains(out, "flush failed") {
		t.Errorf("expected failed flushes while MinIO was down; agent log:\n%s", out)
	}

	// Everything acknowledged reads back from the running agent...
	if rep := tlogtest.VerifyAll(t, r.addr, want, false); rep.Records != total {
		t.Fatalf("read %d records, want %d", rep.Records, total)
	}
	// ...and reaches the bucket once MinIO is back.
	st := r.waitFlushed(time.Second, 30*time.Second)
	t.Logf("after the outage: %d flush objects (%d before the kill)", st.Flushed, before.Flushed)
	p = r.restartWithoutWAL(p)
	if rep := tlogtest.VerifyAll(t, r.addr, want, false); rep.Records != total {
		t.Fatalf("from the bucket alone: read %d records, want %d", rep.Records, total)
	}
	if err := p.Stop(30 * time.Second); err != nil {
		t.Fatalf("SIGTERM: %v\n%s", err, p.Output())
	}
}
