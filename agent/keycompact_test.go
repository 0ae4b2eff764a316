package agent_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/batch"
	"github.com/tlog-io/tlog/tier/tiertest"
)

// A keyed changelog on a cleanup.policy=compact topic: keys overwritten
// many times, a tenth of the writes tombstones (delete.retention.ms=0).
// Once flushed and compacted, a consumer from offset 0 reads exactly one
// record per live key, its latest value, no deleted key, in offset
// order, at the offsets they were written at; ListOffsets by timestamp
// answers the first live record at or after it. A record without a key is refused with
// INVALID_RECORD and nothing of its batch is stored.
func TestKeyCompactedTopic(t *testing.T) {
	t.Parallel()
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket(), func(c *agent.Config) {
		fastFlush(c)
		c.CompactionInterval = 100 * time.Millisecond
		c.CompactionBufferBytes = 1 << 20
	})
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "changelog", 1, map[string]string{"cleanup.policy": "compact", "delete.retention.ms": "0", "min.cleanable.dirty.ratio": "0.01"})

	// Keyless: refused, whole batch.
	o := plainBatch()
	b := mkBatch(o, "keyless")
	resp := do[*kmsg.ProduceResponse](c, 9, produceReq(-1, "changelog", 0, noKeys(b)))
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != kerr.InvalidRecord.Code || len(p.ErrorRecords) != 1 {
		t.Fatalf("keyless record: code %d (%v), error records %v", p.ErrorCode, kerr.ErrorForCode(p.ErrorCode), p.ErrorRecords)
	}
	// Every keyless record of a batch is named (librdkafka fails the
	// others with INVALID_DIFFERENT_RECORD).
	mixed := batch.Encode([]batch.KV{{Value: []byte("a")}, {Key: []byte("k"), Value: []byte("b")}, {Value: []byte("c")}}, time.Now().UnixMilli())
	resp = do[*kmsg.ProduceResponse](c, 9, produceReq(-1, "changelog", 0, mixed))
	p := resp.Topics[0].Partitions[0]
	var named []int32
	for _, re := range p.ErrorRecords {
		named = append(named, re.RelativeOffset)
	}
	if p.ErrorCode != kerr.InvalidRecord.Code || !slices.Equal(named, []int32{0, 2}) {
		t.Fatalf("two keyless records of three: code %d, error records at %v, want [0 2]", p.ErrorCode, named)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.DefaultProduceTopic("changelog"), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type rec struct {
		off   int64
		value string
	}
	latest := map[string]rec{}
	const keys, writes = 300, 6000
	for i := 0; i < writes; i += 200 {
		var rs []*kgo.Record
		for j := i; j < i+200; j++ {
			k := fmt.Sprintf("key-%03d", (j*7919)%keys)
			r := &kgo.Record{Key: []byte(k), Value: fmt.Appendf(nil, "v%d", j)}
			if j%10 == 3 {
				r.Value = nil
			}
			rs = append(rs, r)
		}
		res := cl.ProduceSync(ctx, rs...)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			latest[string(r.Record.Key)] = rec{r.Record.Offset, string(r.Record.Value)}
		}
	}
	waitFlushed(t, a, "changelog", 1)
	end := int64(writes + 0)
	var want []rec
	for _, r := range latest {
		if r.value != "" {
			want = append(want, r)
		}
	}
	// Passes may have run on part of the log while it was written: wait
	// for one that leaves it fully compacted.
	tlogtest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		seen := map[string]*kgo.Record{}
		for _, r := range readUntilIdle(t, a.Addr(), "changelog") {
			k := string(r.Key)
			switch {
			case seen[k] != nil:
				return fmt.Errorf("key %s still read twice", k)
			case r.Value == nil:
				return fmt.Errorf("tombstone of %s at %d still there", k, r.Offset)
			}
			seen[k] = r
		}
		for k, r := range seen {
			if w := latest[k]; w.off != r.Offset || w.value != string(r.Value) {
				t.Fatalf("key %s: read %q at %d, latest is %q at %d", k, r.Value, r.Offset, w.value, w.off)
			}
		}
		if len(seen) != len(want) {
			t.Fatalf("read %d live keys, want %d", len(seen), len(want))
		}
		return nil
	})
	if s := a.Stats(); s.KeyCompactions == 0 || s.KeyCompactedBytes == 0 || s.KeyCompactedRecords != int64(writes-len(want)) {
		t.Fatalf("compaction counted %+v, want %d records removed", s, writes-len(want))
	}
	// The leader reports the partition's dirty bytes as the "compaction"
	// log dir: none left, no cleaner lag.
	dirs := do[*kmsg.DescribeLogDirsResponse](c, 4, kmsg.NewPtrDescribeLogDirsRequest())
	found := false
	for _, d := range dirs.Dirs {
		for _, dt := range d.Topics {
			for _, dp := range dt.Partitions {
				if d.Dir == "compaction" && dt.Topic == "changelog" {
					found = true
					if dp.Size != 0 || dp.OffsetLag != 0 {
						t.Fatalf("compaction dir after a full pass: %d dirty bytes, lag %d", dp.Size, dp.OffsetLag)
					}
				}
			}
		}
	}
	if !found {
		t.Fatal("no compaction dir for the compacted topic in DescribeLogDirs")
	}
	// ListOffsets by timestamp across the gaps: the first live record at
	// or after each timestamp, as if the dropped ones had never been.
	live := readUntilIdle(t, a.Addr(), "changelog")
	adm := kadm.NewClient(cl)
	for i := 0; i < len(live); i += 17 {
		ts := live[i].Timestamp.UnixMilli()
		want := int64(-1)
		for _, r := range live {
			if r.Timestamp.UnixMilli() >= ts {
				want = r.Offset
				break
			}
		}
		res, err := adm.ListOffsetsAfterMilli(ctx, ts, "changelog")
		if err != nil {
			t.Fatal(err)
		}
		if o, _ := res.Lookup("changelog", 0); o.Err != nil || o.Offset != want {
			t.Fatalf("offset for timestamp %d: %d (%v), want %d", ts, o.Offset, o.Err, want)
		}
	}
	after := bucketBytes(t, a, "changelog")
	t.Logf("%d writes over %d keys: %d live keys read back; the log ends at %d; bucket bytes %d", writes, keys, len(want), end, after)
}

// readUntilIdle reads partition 0 of topic from the start until nothing
// more arrives for a second (a compacted log may end in a gap).
func readUntilIdle(t *testing.T, addr, topic string) []*kgo.Record {
	t.Helper()
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var out []*kgo.Record
	last := int64(-1)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cons.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset <= last {
				t.Fatalf("offset %d after %d", r.Offset, last)
			}
			last = r.Offset
			out = append(out, r)
			n++
		})
		if n == 0 {
			return out
		}
	}
}

// noKeys turns the records of an uncompressed batch built by mkBatch into
// keyless ones (key length -1), resealing it.
func noKeys(b []byte) []byte {
	s := string(b)
	// mkBatch keys are "k<i>": varint length 2 (0x04) then 'k'.
	s = strings.Replace(s, "\x04k0", "\x01", 1)
	out := []byte(s)
	// The record's length varint shrank by 2 bytes: fix it and reseal.
	out[61] -= 4
	return seal(out)
}

// bucketBytes sums the committed ranges of topic's partitions.
func bucketBytes(t *testing.T, a *agent.Agent, topic string) int64 {
	t.Helper()
	mp, ok := a.PartitionMeta(topic, 0)
	if !ok {
		t.Fatalf("no %s/0", topic)
	}
	var n int64
	for _, s := range mp.Segments {
		n += s.Length
	}
	return n
}

// readTopic reads partition 0 of topic from the start to end (exclusive).
func readTopic(t *testing.T, addr, topic string, end int64) []*kgo.Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cons, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	var out []*kgo.Record
	last := int64(-1)
	for last < end-1 {
		fs := cons.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("read %s up to %d of %d: %v", topic, last, end, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) {
			if r.Offset <= last {
				t.Fatalf("offset %d after %d", r.Offset, last)
			}
			last = r.Offset
			out = append(out, r)
		})
	}
	return out
}

// A pass cut short: uploads are slowed, and the agent is closed right
// after the pass's first range swap, with more to go. Restarted with the
// WAL deleted and the compactor held off, the log is half cleaned (some
// key is still read twice) yet the last record read of every key is its
// latest value; restarted again with the compactor on, it ends with
// exactly the latest record per live key.
func TestKeyCompactionCutShortThenRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bucket := tiertest.NewFaulty(tier.NewMemBucket())
	cfg := func(interval time.Duration) func(c *agent.Config) {
		return func(c *agent.Config) {
			fastFlush(c)
			c.CompactionInterval = interval
			c.CompactInterval = time.Hour // keep the small ranges apart
		}
	}
	a := tlogtest.StartAgent(t, dir, bucket, cfg(100*time.Millisecond))
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "state", 1, map[string]string{"delete.retention.ms": "0", "min.cleanable.dirty.ratio": "0.01"})
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.DefaultProduceTopic("state"), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	latest := map[string]string{}
	var end int64
	for round := range 8 {
		var rs []*kgo.Record
		for k := range 50 {
			v := fmt.Appendf(nil, "r%d", round)
			if (round+k)%9 == 0 {
				v = nil
			}
			rs = append(rs, &kgo.Record{Key: fmt.Appendf(nil, "k%02d", k), Value: v})
		}
		res := cl.ProduceSync(ctx, rs...)
		if err := res.FirstErr(); err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			latest[string(r.Record.Key)] = string(r.Record.Value)
			end = r.Record.Offset + 1
		}
		waitFlushed(t, a, "state", 1) // a range per round
	}
	if mp, _ := a.PartitionMeta("state", 0); len(mp.Segments) < 4 {
		t.Fatalf("%d ranges; the test needs several", len(mp.Segments))
	}
	bucket.SetLatency(tiertest.OpPutIfAbsent, 300*time.Millisecond)
	alter := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "state"
	cfgOp := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	cfgOp.Name, cfgOp.Value = "cleanup.policy", kmsg.StringPtr("compact")
	rr.Configs = append(rr.Configs, cfgOp)
	alter.Resources = append(alter.Resources, rr)
	if code := do[*kmsg.IncrementalAlterConfigsResponse](c, 1, alter).Resources[0].ErrorCode; code != 0 {
		t.Fatalf("set cleanup.policy=compact: %v", kerr.ErrorForCode(code))
	}
	tlogtest.CheckFor(t, 20*time.Second, 5*time.Millisecond, func() error {
		if a.Stats().KeyCompactedBytes == 0 {
			return fmt.Errorf("no range swapped yet")
		}
		return nil
	})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	bucket.SetLatency(tiertest.OpPutIfAbsent, 0)
	if err := os.RemoveAll(filepath.Join(dir, "wal")); err != nil {
		t.Fatal(err)
	}

	a = tlogtest.StartAgent(t, dir, bucket, cfg(time.Hour))
	last, twice := map[string]string{}, 0
	for _, r := range readTopic(t, a.Addr(), "state", end) {
		if _, ok := last[string(r.Key)]; ok {
			twice++
		}
		last[string(r.Key)] = string(r.Value)
	}
	if twice == 0 {
		t.Fatal("the log was fully compacted before the close: the test did not cut a pass short")
	}
	for k, v := range latest {
		if last[k] != v {
			t.Fatalf("after the cut: key %s reads %q last, latest is %q", k, last[k], v)
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	a = tlogtest.StartAgent(t, dir, bucket, cfg(100*time.Millisecond))
	tlogtest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		got := map[string]string{}
		for _, r := range readTopic(t, a.Addr(), "state", end) {
			k := string(r.Key)
			if _, dup := got[k]; dup {
				return fmt.Errorf("key %s still read twice", k)
			}
			if r.Value == nil {
				return fmt.Errorf("tombstone of %s still there", k)
			}
			got[k] = string(r.Value)
		}
		for k, v := range latest {
			if got[k] != v {
				t.Fatalf("compacted: key %s reads %q, latest is %q", k, got[k], v)
			}
		}
		return nil
	})
}

// __consumer_offsets is a compacted topic: a group's offsets committed
// over and over, and a deleted group, leave at most one record per key
// once compacted, the deleted group's as tombstones; an agent restarted
// with its WAL deleted serves the latest offsets and not the deleted
// group.
func TestOffsetsTopicCompacted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bucket := tier.NewMemBucket()
	cfg := func(c *agent.Config) {
		fastFlush(c)
		c.CompactionInterval = 100 * time.Millisecond
		c.OffsetsPartitions = 1
	}
	a := tlogtest.StartAgent(t, dir, bucket, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	admin := func(a *agent.Agent) *kadm.Client {
		cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(cl.Close)
		return kadm.NewClient(cl)
	}
	adm := admin(a)
	if _, err := adm.CreateTopic(ctx, 3, 1, nil, "orders"); err != nil {
		t.Fatal(err)
	}
	const rounds = 200
	commit := func(group string, at int64) {
		t.Helper()
		offs := kadm.Offsets{}
		for p := range int32(3) {
			offs.Add(kadm.Offset{Topic: "orders", Partition: p, At: at, LeaderEpoch: -1})
		}
		res, err := adm.CommitOffsets(ctx, group, offs)
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			t.Fatalf("commit %s at %d: %v", group, at, err)
		}
	}
	for i := range int64(rounds) {
		commit("keep", i)
		if i%50 == 0 {
			commit("gone", i)
		}
	}
	if res, err := adm.DeleteGroups(ctx, "gone"); err != nil || res.Error() != nil {
		t.Fatalf("delete group: %v %v", err, res.Error())
	}
	rc, err := adm.DescribeTopicConfigs(ctx, "__consumer_offsets")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := rc.On("__consumer_offsets", func(c *kadm.ResourceConfig) error {
		for _, kv := range c.Configs {
			if kv.Key == "cleanup.policy" && kv.MaybeValue() == "compact" {
				return nil
			}
		}
		return fmt.Errorf("cleanup.policy is not compact: %+v", c.Configs)
	}); err != nil || v.Err != nil {
		t.Fatalf("__consumer_offsets configs: %v %v", err, v.Err)
	}

	waitFlushed(t, a, "__consumer_offsets", 1)
	tlogtest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		recs := readUntilIdle(t, a.Addr(), "__consumer_offsets")
		seen := map[string]bool{}
		for _, r := range recs {
			if seen[string(r.Key)] {
				return fmt.Errorf("a key is still read twice (%d records)", len(recs))
			}
			seen[string(r.Key)] = true
			if r.Value != nil && strings.Contains(string(r.Key), "gone") {
				return fmt.Errorf("the deleted group's record at %d is not a tombstone", r.Offset)
			}
		}
		if len(recs) < 3 {
			t.Fatalf("%d records of __consumer_offsets read, want keep's 3 offsets at least", len(recs))
		}
		if len(recs) > 8 { // keep's 3 offsets; gone's 3 offset and 1 group tombstones
			t.Fatalf("%d records left, want at most 8", len(recs))
		}
		return nil
	})
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "wal")); err != nil {
		t.Fatal(err)
	}

	a = tlogtest.StartAgent(t, dir, bucket, cfg)
	adm = admin(a)
	tlogtest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		got, err := adm.FetchOffsets(ctx, "keep")
		if err != nil {
			return err
		}
		for p := range int32(3) {
			if o, ok := got.Lookup("orders", p); !ok || o.At != rounds-1 {
				return fmt.Errorf("keep's offset of orders/%d after the restart: %+v", p, o)
			}
		}
		return nil
	})
	gone, err := adm.FetchOffsets(ctx, "gone")
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 0 {
		t.Fatalf("the deleted group has offsets after the restart: %+v", gone)
	}
}

// Transactions on a compacted topic: every transaction of one producer
// overwrites the same keys, a quarter of them aborted. Once compacted, no
// aborted record is left and a marker only for the transaction with
// records left (the last one); a read_committed consumer reads exactly
// the last committed value per key, though the aborted-transaction index
// still names the aborted transactions of that producer, whose markers
// are gone (a fetch leaves those out, or the consumer would drop the
// producer's later batches waiting for them).
func TestKeyCompactedTransactions(t *testing.T) {
	t.Parallel()
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket(), func(c *agent.Config) {
		fastFlush(c)
		c.CompactionInterval = 100 * time.Millisecond
	})
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "txlog", 1, map[string]string{"cleanup.policy": "compact", "delete.retention.ms": "0", "min.cleanable.dirty.ratio": "0.01"})
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.DefaultProduceTopic("txlog"), kgo.TransactionalID("txlog-writer"), kgo.ProducerLinger(0))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const txns, keys = 40, 10
	for i := range txns {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		commit := i%4 != 1 || i == txns-1
		var rs []*kgo.Record
		for k := range keys {
			rs = append(rs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", k), Value: fmt.Appendf(nil, "t%d", i)})
		}
		if err := cl.ProduceSync(ctx, rs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	waitFlushed(t, a, "txlog", 1)
	tlogtest.CheckFor(t, 30*time.Second, 100*time.Millisecond, func() error {
		var data, control int
		for off := int64(0); ; {
			p := fetchOne(c, "txlog", 0, off, 1<<20)
			if p.ErrorCode != 0 {
				t.Fatalf("fetch at %d: %v", off, kerr.ErrorForCode(p.ErrorCode))
			}
			if len(p.RecordBatches) == 0 {
				break
			}
			err := batch.Iterate(p.RecordBatches, func(h batch.Header, b []byte) bool {
				if h.Control() {
					control++
				} else {
					data += int(h.NumRecords)
				}
				off = h.LastOffset() + 1
				return true
			})
			if err != nil {
				t.Fatal(err)
			}
			if off >= p.HighWatermark {
				break
			}
		}
		if data != keys || control != 1 {
			return fmt.Errorf("%d records and %d markers left, want %d and 1", data, control, keys)
		}
		return nil
	})
	cons, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"txlog": {0: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	got := map[string]string{}
	for len(got) < keys {
		fs := cons.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read_committed: %d keys read: %v", len(got), got)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if _, dup := got[string(r.Key)]; dup {
				t.Fatalf("key %s read twice", r.Key)
			}
			got[string(r.Key)] = string(r.Value)
		})
	}
	for k, v := range got {
		if v != fmt.Sprintf("t%d", txns-1) {
			t.Fatalf("key %s reads %q, want the last transaction's", k, v)
		}
	}
}
