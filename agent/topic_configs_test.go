package agent_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/tier/batch"
)

// Topic configs Kafka defines that change nothing in tlog are accepted at
// CreateTopics, shown by DescribeConfigs as set on the topic, with
// documentation saying why they have no effect, and refused when their
// value is one Kafka would refuse.
func TestTopicConfigsWithoutEffect(t *testing.T) {
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	set := map[string]string{
		"flush.messages": "10000", "flush.ms": "1000", "preallocate": "true", "unclean.leader.election.enable": "false",
		"message.format.version": "2.8-IV1", "index.interval.bytes": "4096", "segment.index.bytes": "10485760",
		"leader.replication.throttled.replicas": "*", "local.retention.ms": "-2", "remote.storage.enable": "true",
	}
	createTopic(t, c, "quiet-configs", 1, set)

	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "quiet-configs"
	req.Resources = append(req.Resources, rr)
	req.IncludeDocumentation = true
	got := configMap(do[*kmsg.DescribeConfigsResponse](c, 4, req).Resources[0])
	for name, want := range set {
		e, ok := got[name]
		if !ok || deref(e.Value) != want || e.Source != kmsg.ConfigSourceDynamicTopicConfig {
			t.Errorf("%s: %+v; want %q set on the topic", name, e, want)
			continue
		}
		if doc := deref(e.Documentation); !strings.Contains(doc, "no effect in tlog") {
			t.Errorf("%s: documentation %q does not say it has no effect", name, doc)
		}
	}
	if e := got["segment.jitter.ms"]; deref(e.Value) != "0" || e.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("segment.jitter.ms unset: %+v; want the default 0", e)
	}

	resp := do[*kmsg.CreateTopicsResponse](c, 5, createTopicsReq(false, topicSpec{"bad-flush", 1, 1, map[string]string{"flush.messages": "0"}}))
	if code := resp.Topics[0].ErrorCode; code != 40 { // INVALID_CONFIG
		t.Errorf("flush.messages=0: error %d, want INVALID_CONFIG", code)
	}
}

// message.timestamp.before.max.ms and .after.max.ms (or, where they are
// unset, the deprecated .difference.max.ms) refuse a CreateTime batch with
// a record stamped too far from the broker's clock: INVALID_TIMESTAMP,
// naming the record, and nothing stored. LogAppendTime topics and topics
// without bounds take any timestamp.
func TestTopicTimestampBounds(t *testing.T) {
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "bounded", 1, map[string]string{"message.timestamp.before.max.ms": "3600000", "message.timestamp.after.max.ms": "60000"})
	createTopic(t, c, "diff", 1, map[string]string{"message.timestamp.difference.max.ms": "3600000"})
	createTopic(t, c, "appendtime", 1, map[string]string{"message.timestamp.type": "LogAppendTime", "message.timestamp.before.max.ms": "0"})
	createTopic(t, c, "unbounded", 1, nil)

	now := time.Now().UnixMilli()
	at := func(ts int64) []byte { o := plainBatch(); o.firstTS = ts; return mkBatch(o, "x", "y") }
	for _, tc := range []struct {
		topic string
		ts    int64
		code  int16
	}{
		{"bounded", now, 0},
		{"bounded", now - 2*3600_000, kerr.InvalidTimestamp.Code},
		{"bounded", now + 10*60_000, kerr.InvalidTimestamp.Code},
		{"bounded", now + 30_000, 0},
		{"diff", now - 2*3600_000, kerr.InvalidTimestamp.Code},
		{"diff", now + 2*3600_000, kerr.InvalidTimestamp.Code},
		{"diff", now - 60_000, 0},
		{"appendtime", now - 2*3600_000, 0},
		{"unbounded", 1, 0},
	} {
		hwBefore := latest(c, tc.topic, 0)
		p := produce(c, tc.topic, 0, at(tc.ts))
		if p.ErrorCode != tc.code {
			t.Errorf("%s at now%+d ms: error %d (%s), want %d", tc.topic, tc.ts-now, p.ErrorCode, deref(p.ErrorMessage), tc.code)
			continue
		}
		if tc.code == 0 {
			continue
		}
		if len(p.ErrorRecords) != 2 || p.ErrorRecords[0].RelativeOffset != 0 || p.ErrorRecords[1].RelativeOffset != 1 {
			t.Errorf("%s at now%+d ms: error records %+v, want both records", tc.topic, tc.ts-now, p.ErrorRecords)
		}
		if hw := latest(c, tc.topic, 0); hw != hwBefore {
			t.Errorf("%s: a refused batch moved the high watermark from %d to %d", tc.topic, hwBefore, hw)
		}
	}
}

// The topics Kafka Streams 3.9 creates, with the configs it sets on them
// (InternalTopicConfig's message.timestamp.type=CreateTime on all;
// RepartitionTopicConfig's cleanup.policy=delete, segment.bytes=52428800,
// retention.ms=-1; the changelogs' cleanup.policy compact, or
// compact,delete with a retention for windowed stores, or compact with
// min.compaction.lag.ms for versioned ones), are created as asked, shown
// by DescribeConfigs, and honoured: a changelog refuses a record without a
// key, as a compacted topic does, and a repartition topic takes one.
func TestKafkaStreamsInternalTopics(t *testing.T) {
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	topics := map[string]map[string]string{
		"app-KSTREAM-REPARTITION-0000000003-repartition": {"message.timestamp.type": "CreateTime", "cleanup.policy": "delete",
			"segment.bytes": "52428800", "retention.ms": "-1", "segment.ms": "600000"},
		"app-store-changelog":           {"message.timestamp.type": "CreateTime", "cleanup.policy": "compact"},
		"app-window-store-changelog":    {"message.timestamp.type": "CreateTime", "cleanup.policy": "compact,delete", "retention.ms": "172800000"},
		"app-versioned-store-changelog": {"message.timestamp.type": "CreateTime", "cleanup.policy": "compact", "min.compaction.lag.ms": "86400000"},
	}
	for name, cfgs := range topics {
		createTopic(t, c, name, 2, cfgs)
		got := configMap(describeTopicConfigs(c, 4, name))
		for k, v := range cfgs {
			if e := got[k]; deref(e.Value) != v || e.Source != kmsg.ConfigSourceDynamicTopicConfig {
				t.Errorf("%s: %s = %q (source %d), want %q set on the topic", name, k, deref(e.Value), e.Source, v)
			}
		}
	}
	keyless := func() []byte {
		r := kmsg.NewRecord()
		r.Value = []byte("v") // a nil key encodes as length -1: no key
		r.Length = int32(len(r.AppendTo(nil)[1:]))
		rb := kmsg.NewRecordBatch()
		rb.PartitionLeaderEpoch, rb.Magic = -1, 2
		rb.FirstTimestamp, rb.MaxTimestamp = time.Now().UnixMilli(), time.Now().UnixMilli()
		rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = -1, -1, -1
		rb.NumRecords, rb.Records = 1, r.AppendTo(nil)
		return seal(rb.AppendTo(nil))
	}
	if p := produce(c, "app-store-changelog", 0, keyless()); p.ErrorCode != kerr.InvalidRecord.Code {
		t.Errorf("a keyless record to a changelog: error %d, want INVALID_RECORD", p.ErrorCode)
	}
	if p := produce(c, "app-KSTREAM-REPARTITION-0000000003-repartition", 0, keyless()); p.ErrorCode != 0 {
		t.Errorf("a keyless record to a repartition topic: error %d (%s)", p.ErrorCode, deref(p.ErrorMessage))
	}
}

// compression.type other than producer has the leader recompress each
// batch in another codec: what is fetched is in the topic's codec, with the
// same records, and a batch already in it is stored as sent.
func TestTopicCompressionType(t *testing.T) {
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "zstd-topic", 1, map[string]string{"compression.type": "zstd", "compression.zstd.level": "1"})
	createTopic(t, c, "plain-topic", 1, map[string]string{"compression.type": "uncompressed"})

	values := []string{"alpha", "beta", "gamma", "delta"}
	sent := mkBatch(plainBatch(), values...)
	mustProduce(c, "zstd-topic", 0, sent)
	gz, err := batch.Recompress(sent, batch.CompressionGzip, 0, 1<<20) // as a gzip producer would send it
	if err != nil {
		t.Fatal(err)
	}
	mustProduce(c, "plain-topic", 0, gz)
	mustProduce(c, "plain-topic", 0, sent) // already uncompressed: stored as sent

	for _, tc := range []struct {
		topic  string
		codecs []int8
	}{
		{"zstd-topic", []int8{batch.CompressionZstd}},
		{"plain-topic", []int8{batch.CompressionNone, batch.CompressionNone}},
	} {
		p := fetchOne(c, tc.topic, 0, 0, 1<<20)
		if p.ErrorCode != 0 {
			t.Fatalf("fetch %s: error %d", tc.topic, p.ErrorCode)
		}
		data := p.RecordBatches
		for i, want := range tc.codecs {
			h, size, err := batch.Next(data)
			if err != nil {
				t.Fatalf("%s batch %d: %v", tc.topic, i, err)
			}
			if h.Compression() != want {
				t.Errorf("%s batch %d: codec %d, want %d", tc.topic, i, h.Compression(), want)
			}
			recs, err := batch.Records(data[:size], 1<<20)
			if err != nil || len(recs) != len(values) {
				t.Fatalf("%s batch %d: %d records, %v", tc.topic, i, len(recs), err)
			}
			for j, r := range recs {
				if string(r.Value) != values[j] {
					t.Errorf("%s batch %d record %d: %q, want %q", tc.topic, i, j, r.Value, values[j])
				}
			}
			data = data[size:]
		}
	}

	// A client from before zstd (Fetch below v10) is told so, as Kafka
	// tells it, rather than handed batches it cannot read.
	old := fetchReq(0, 1, 1<<20)
	addFetch(old, "zstd-topic", [16]byte{}, 0, 0, 1<<20)
	if p := do[*kmsg.FetchResponse](c, 9, old).Topics[0].Partitions[0]; p.ErrorCode != kerr.UnsupportedCompressionType.Code || len(p.RecordBatches) != 0 {
		t.Errorf("Fetch v9 of zstd batches: error %d, %d bytes; want UNSUPPORTED_COMPRESSION_TYPE and none", p.ErrorCode, len(p.RecordBatches))
	}
	old = fetchReq(0, 1, 1<<20)
	addFetch(old, "plain-topic", [16]byte{}, 0, 0, 1<<20)
	if p := do[*kmsg.FetchResponse](c, 9, old).Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) == 0 {
		t.Errorf("Fetch v9 of uncompressed batches: error %d, %d bytes", p.ErrorCode, len(p.RecordBatches))
	}

	for _, bad := range []map[string]string{{"compression.type": "brotli"}, {"compression.gzip.level": "10"}, {"compression.lz4.level": "0"}, {"compression.zstd.level": "23"}} {
		resp := do[*kmsg.CreateTopicsResponse](c, 5, createTopicsReq(false, topicSpec{"bad-compression", 1, 1, bad}))
		if code := resp.Topics[0].ErrorCode; code != kerr.InvalidConfig.Code {
			t.Errorf("%v: error %d, want INVALID_CONFIG", bad, code)
		}
	}
}

// A client reads what the leader recompressed, in every codec.
func TestTopicCompressionTypeReadByFranzGo(t *testing.T) {
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	for _, codec := range []string{"gzip", "snappy", "lz4", "zstd"} {
		name := "recompressed-" + codec
		createTopic(t, c, name, 1, map[string]string{"compression.type": codec})
		mustProduce(c, name, 0, mkBatch(plainBatch(), "one", "two", "three"))
		cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{name: {0: kgo.NewOffset().AtStart()}}))
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for deadline := time.Now().Add(10 * time.Second); len(got) < 3 && time.Now().Before(deadline); {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			fs := cl.PollFetches(ctx)
			cancel()
			if err := fs.Err0(); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s: %v", codec, err)
			}
			fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
		}
		cl.Close()
		if strings.Join(got, ",") != "one,two,three" {
			t.Errorf("%s: franz-go read %v", codec, got)
		}
	}
}
