package agent_test

// Bad and edge-case input on the wire against an in-process agent: every
// malformed frame closes only its own connection, every invalid request
// gets the Kafka error code a client expects, and the log only ever holds
// what was validly produced.

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/agent/controller"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
)

// ---- A1: oversized requests ----

// A size prefix above socket.request.max.bytes closes the connection at
// once, before any body arrives, and allocates nothing of that size. Not
// parallel: it measures the process's allocations around the bad frame.
func TestWireOversizedRequestClosesConnection(t *testing.T) {
	a := startAgent(t, func(c *agent.Config) { c.MaxRequestBytes = 1 << 20 })
	serving(t, a.Addr())

	for _, tc := range []struct {
		name string
		size uint32
	}{
		{"1 GiB", 1 << 30},
		{"max+1", 1<<20 + 1},
		{"negative as int32", 0xFFFFFFF0},
	} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c := dialRaw(t, a.Addr())
		// Only the size: if the agent waited for (or allocated) the body
		// the read below would time out instead of seeing the close.
		c.write(binary.BigEndian.AppendUint32(nil, tc.size))
		c.expectClosed(tc.name)
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 256<<20 {
			t.Errorf("%s: %d MiB allocated while refusing the request", tc.name, grew>>20)
		}
		serving(t, a.Addr())
	}

	// A request just under the limit on the same agent is still served.
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "big", 1, nil)
	big := mkBatch(plainBatch(), strings.Repeat("x", 900<<10))
	if off := mustProduce(c, "big", 0, big); off != 0 {
		t.Fatalf("produce under socket.request.max.bytes: offset %d", off)
	}
}

// ---- A2: malformed frames ----

func TestWireMalformedFramesCloseConnection(t *testing.T) {
	t.Parallel()
	a := startAgent(t)

	rng := rand.New(rand.NewPCG(1, 2))
	garbage := make([]byte, 200)
	for i := range garbage {
		garbage[i] = byte(rng.UintN(256))
	}
	garbage[0], garbage[1] = 0x7f, 0x7f // api key 32639

	produceV2 := kmsg.NewPtrProduceRequest()
	produceV2.Version = 2
	produceV2.Acks = 1
	produceV2Frame := kmsg.NewRequestFormatter(kmsg.FormatterClientID("x")).AppendRequest(nil, produceV2, 1)

	randomProduceBody := append(header(0, 9, 1, "x"), 0) // header tags: none
	for range 64 {
		randomProduceBody = append(randomProduceBody, byte(rng.UintN(256)))
	}

	cases := []struct {
		name string
		raw  []byte
	}{
		{"garbage body", frame(garbage)},
		{"size 0", frame(nil)},
		{"size below 8", frame([]byte{0, 3, 0, 1, 0})},
		{"truncated header (no client id)", frame(header(3, 1, 1, "")[:8])},
		{"truncated header (half a client id length)", frame(header(3, 1, 1, "")[:9])},
		{"client id longer than the frame", frame(append(header(3, 1, 1, "")[:8], 0, 100, 'a', 'b'))},
		{"unknown api key 9999", frame(header(9999, 0, 1, "x"))},
		{"negative api key", frame(header(-1, 0, 1, "x"))},
		{"produce v2 (below range)", produceV2Frame},
		{"fetch v99 (above range)", frame(header(1, 99, 1, "x"))},
		{"metadata v-1", frame(header(3, -1, 1, "x"))},
		{"metadata v12 truncated body", frame(append(header(3, 12, 1, "x"), 0, 5, 2))},
		{"produce v9 random body", frame(randomProduceBody)},
		{"list offsets v8 empty body", frame(append(header(2, 8, 1, "x"), 0))},
	}
	for _, tc := range cases {
		c := dialRaw(t, a.Addr())
		c.write(tc.raw)
		c.expectClosed(tc.name)
		serving(t, a.Addr())
	}

	// A good request pipelined before a bad one is still answered, in
	// order, before the close.
	c := dialRaw(t, a.Addr())
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	corr := c.send(md)
	c.write(frame(header(9999, 0, 99, "x")))
	if resp := c.recv(md, corr).(*kmsg.MetadataResponse); len(resp.Brokers) != 1 {
		t.Fatalf("pipelined metadata: %d brokers", len(resp.Brokers))
	}
	c.expectClosed("bad request after a good one")
}

// ApiVersions above our range is answered at v0 with UNSUPPORTED_VERSION
// and the ApiVersions range (KIP-511), and the connection stays usable.
func TestWireApiVersionsTooHigh(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	// A v99 body we cannot know the layout of: the agent must not parse it.
	c.write(frame(append(header(18, 99, 42, "x"), 1, 2, 3, 4, 5)))
	body, err := c.readFrame(5 * time.Second)
	if err != nil {
		t.Fatalf("ApiVersions v99: %v (want a v0 response, not a closed connection)", err)
	}
	if corr := int32(binary.BigEndian.Uint32(body)); corr != 42 {
		t.Fatalf("correlation id %d, want 42", corr)
	}
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	if err := resp.ReadFrom(body[4:]); err != nil {
		t.Fatalf("decode as ApiVersions v0: %v", err)
	}
	if resp.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("error code %d, want UNSUPPORTED_VERSION (35)", resp.ErrorCode)
	}
	i := slices.IndexFunc(resp.ApiKeys, func(k kmsg.ApiVersionsResponseApiKey) bool { return k.ApiKey == 18 })
	if i < 0 || resp.ApiKeys[i].MinVersion != 0 || resp.ApiKeys[i].MaxVersion < 3 {
		t.Fatalf("ApiVersions range missing or wrong: %+v", resp.ApiKeys)
	}

	// The same connection then negotiates normally.
	req := kmsg.NewPtrApiVersionsRequest()
	req.ClientSoftwareName, req.ClientSoftwareVersion = "wire-test", "1.0"
	ok := do[*kmsg.ApiVersionsResponse](c, resp.ApiKeys[i].MaxVersion, req)
	if ok.ErrorCode != 0 || len(ok.ApiKeys) < 10 {
		t.Fatalf("ApiVersions after the retry: error %d, %d keys", ok.ErrorCode, len(ok.ApiKeys))
	}
	for _, k := range ok.ApiKeys {
		if k.MinVersion > k.MaxVersion {
			t.Errorf("api %d advertises min %d > max %d", k.ApiKey, k.MinVersion, k.MaxVersion)
		}
	}
}

// ---- A3: produce validation ----

func TestWireProduceValidation(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "small", 1, map[string]string{"max.message.bytes": "1000"})

	good := mkBatch(plainBatch(), "a", "b", "c")

	badCRC := bytes.Clone(good)
	badCRC[len(badCRC)-1] ^= 0xff // a record byte, under the CRC

	tooBig := mkBatch(plainBatch(), strings.Repeat("x", 1200))

	twoBatches := append(bytes.Clone(good), mkBatch(plainBatch(), "d")...)

	control := mkBatch(batchOpts{pid: -1, epoch: -1, seq: -1, attrs: 0x20}, "marker")

	shortCount := bytes.Clone(good) // says 2 records, holds 3
	binary.BigEndian.PutUint32(shortCount[57:], 2)
	binary.BigEndian.PutUint32(shortCount[23:], 1)
	seal(shortCount)

	for _, tc := range []struct {
		name    string
		records []byte
		want    int16
	}{
		{"crc mismatch", badCRC, kerr.CorruptMessage.Code},
		{"batch above max.message.bytes", tooBig, kerr.MessageTooLarge.Code},
		{"two batches", twoBatches, kerr.InvalidRecord.Code},
		{"control batch", control, kerr.InvalidRecord.Code},
		{"record count disagrees with records", shortCount, kerr.InvalidRecord.Code},
		{"empty records", nil, kerr.InvalidRecord.Code},
		{"truncated batch", good[:40], kerr.CorruptMessage.Code},
	} {
		p := produce(c, "small", 0, tc.records)
		if p.ErrorCode != tc.want {
			t.Errorf("%s: error %d (%s), want %d", tc.name, p.ErrorCode, deref(p.ErrorMessage), tc.want)
		}
		if p.ErrorCode != 0 && p.ErrorMessage == nil {
			t.Errorf("%s: no error message at produce v9", tc.name)
		}
	}

	// acks=2 is refused whatever the batch.
	resp := do[*kmsg.ProduceResponse](c, 9, produceReq(2, "small", 0, good))
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != kerr.InvalidRequiredAcks.Code {
		t.Errorf("acks=2: error %d, want INVALID_REQUIRED_ACKS (21)", code)
	}

	// One request, one bad and one good partition entry: only the good
	// one lands.
	if got := latest(c, "small", 0); got != 0 {
		t.Fatalf("after refused produces the log end is %d, want 0", got)
	}
	if off := mustProduce(c, "small", 0, good); off != 0 {
		t.Fatalf("valid produce after the refusals: base offset %d, want 0", off)
	}
	if got := latest(c, "small", 0); got != 3 {
		t.Fatalf("log end %d, want 3 (only the valid records)", got)
	}
	fp := fetchOne(c, "small", 0, 0, 1<<20)
	if fp.ErrorCode != 0 {
		t.Fatalf("fetch: error %d", fp.ErrorCode)
	}
	if bases := countBatches(t, fp.RecordBatches); len(bases) != 1 || bases[0] != 0 {
		t.Fatalf("fetched batches at %v, want one at 0", bases)
	}
	if !bytes.Equal(fp.RecordBatches[21:], good[21:]) {
		t.Fatalf("stored batch differs from the produced one under the CRC")
	}
}

// ---- A4: topics ----

func TestWireCreateTopicsErrors(t *testing.T) {
	t.Parallel()
	a := startAgent(t, noAutoCreate)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "exists", 1, nil)

	for _, tc := range []struct {
		spec topicSpec
		want int16
	}{
		{topicSpec{"bad name!", 1, 1, nil}, kerr.InvalidTopicException.Code},
		{topicSpec{"..", 1, 1, nil}, kerr.InvalidTopicException.Code},
		{topicSpec{".", 1, 1, nil}, kerr.InvalidTopicException.Code},
		{topicSpec{"", 1, 1, nil}, kerr.InvalidTopicException.Code},
		{topicSpec{strings.Repeat("a", 250), 1, 1, nil}, kerr.InvalidTopicException.Code},
		{topicSpec{"exists", 1, 1, nil}, kerr.TopicAlreadyExists.Code},
		{topicSpec{"zero-parts", 0, 1, nil}, kerr.InvalidPartitions.Code},
		{topicSpec{"neg-parts", -5, 1, nil}, kerr.InvalidPartitions.Code},
		{topicSpec{"rf3", 1, 3, nil}, kerr.InvalidReplicationFactor.Code},
		{topicSpec{"rf0", 1, 0, nil}, kerr.InvalidReplicationFactor.Code},
		{topicSpec{"bad-config", 1, 1, map[string]string{"no.such.config": "1"}}, kerr.InvalidConfig.Code},
		{topicSpec{"bad-value", 1, 1, map[string]string{"retention.ms": "soon"}}, kerr.InvalidConfig.Code},
	} {
		for _, validateOnly := range []bool{false, true} {
			resp := do[*kmsg.CreateTopicsResponse](c, 7, createTopicsReq(validateOnly, tc.spec))
			st := resp.Topics[0]
			if st.ErrorCode != tc.want {
				t.Errorf("create %.20q (validate only %v): error %d, want %d", tc.spec.name, validateOnly, st.ErrorCode, tc.want)
			}
		}
	}
	if s := strings.Repeat("a", 249); true {
		createTopic(t, c, s, 1, nil) // the longest legal name
	}

	// Validate-only succeeds without creating anything.
	resp := do[*kmsg.CreateTopicsResponse](c, 7, createTopicsReq(true, topicSpec{"vo", 4, 1, nil}))
	if st := resp.Topics[0]; st.ErrorCode != 0 || st.NumPartitions != 4 {
		t.Fatalf("validate-only: error %d, %d partitions", st.ErrorCode, st.NumPartitions)
	}
	if md := metadata(c, "vo"); md.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("validate-only created the topic: metadata error %d", md.Topics[0].ErrorCode)
	}
	// ... and it can then be created for real.
	createTopic(t, c, "vo", 4, nil)
	if md := metadata(c, "vo"); md.Topics[0].ErrorCode != 0 || len(md.Topics[0].Partitions) != 4 {
		t.Fatalf("vo after creating: error %d, %d partitions", md.Topics[0].ErrorCode, len(md.Topics[0].Partitions))
	}
}

func TestWireUnknownTopics(t *testing.T) {
	t.Parallel()
	a := startAgent(t, noAutoCreate)
	c := dialRaw(t, a.Addr())

	md := metadata(c, "nope", "bad name!")
	if code := md.Topics[0].ErrorCode; code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("metadata for an unknown topic without auto-create: error %d, want 3", code)
	}
	if code := md.Topics[1].ErrorCode; code != kerr.InvalidTopicException.Code {
		t.Errorf("metadata for a bad name: error %d, want 17", code)
	}
	if md := metadata(c, "nope"); md.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("metadata created the topic with auto-create off")
	}

	if p := produce(c, "nope", 0, mkBatch(plainBatch(), "x")); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("produce to an unknown topic: error %d, want 3", p.ErrorCode)
	}
	if p := produce(c, "bad name!", 0, mkBatch(plainBatch(), "x")); p.ErrorCode != kerr.InvalidTopicException.Code {
		t.Errorf("produce to a bad name: error %d, want 17", p.ErrorCode)
	}
	if p := fetchOne(c, "nope", 0, 0, 1<<20); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("fetch of an unknown topic: error %d, want 3", p.ErrorCode)
	}
	if p := listOffset(c, "nope", 0, -1); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("list offsets of an unknown topic: error %d, want 3", p.ErrorCode)
	}

	// Known topic, unknown partition.
	createTopic(t, c, "known", 2, nil)
	if p := produce(c, "known", 2, mkBatch(plainBatch(), "x")); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("produce to partition 2 of 2: error %d, want 3", p.ErrorCode)
	}
	if p := produce(c, "known", -1, mkBatch(plainBatch(), "x")); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("produce to partition -1: error %d, want 3", p.ErrorCode)
	}
	if p := fetchOne(c, "known", 7, 0, 1<<20); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("fetch partition 7 of 2: error %d, want 3", p.ErrorCode)
	}

	// Fetch v13+ names topics by id.
	id := topicID(c, "known")
	req := fetchReq(0, 1, 1<<20)
	addFetch(req, "", id, 0, 0, 1<<20)
	addFetch(req, "", [16]byte{1, 2, 3}, 0, 0, 1<<20)
	resp := do[*kmsg.FetchResponse](c, 13, req)
	if len(resp.Topics) != 2 {
		t.Fatalf("fetch v13: %d topics in the response", len(resp.Topics))
	}
	if code := resp.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Errorf("fetch v13 of a known topic id: error %d", code)
	}
	if code := resp.Topics[1].Partitions[0].ErrorCode; code != kerr.UnknownTopicID.Code {
		t.Errorf("fetch v13 of an unknown topic id: error %d, want UNKNOWN_TOPIC_ID (100)", code)
	}
}

func TestWireMetadataAutoCreate(t *testing.T) {
	t.Parallel()
	a := startAgent(t, func(c *agent.Config) { c.DefaultPartitions = 3 })
	c := dialRaw(t, a.Addr())

	md := metadata(c, "auto", "bad name!")
	if st := md.Topics[0]; st.ErrorCode != 0 || len(st.Partitions) != 3 {
		t.Fatalf("auto-created topic: error %d, %d partitions (want 0 and num.partitions=3)", st.ErrorCode, len(st.Partitions))
	}
	for _, p := range md.Topics[0].Partitions {
		if p.Leader != 0 || p.ErrorCode != 0 {
			t.Errorf("partition %d: leader %d, error %d", p.Partition, p.Leader, p.ErrorCode)
		}
	}
	if code := md.Topics[1].ErrorCode; code != kerr.InvalidTopicException.Code {
		t.Errorf("bad name with auto-create: error %d, want 17", code)
	}
	if off := mustProduce(c, "auto", 2, mkBatch(plainBatch(), "x")); off != 0 {
		t.Errorf("produce to the auto-created topic: offset %d", off)
	}

	// A client that disallows auto-creation (v4+) does not get it.
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr("not-auto")
	req.Topics = append(req.Topics, rt)
	req.AllowAutoTopicCreation = false
	if resp := do[*kmsg.MetadataResponse](c, 12, req); resp.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("AllowAutoTopicCreation=false: error %d, want 3", resp.Topics[0].ErrorCode)
	}
	// All topics (null list) lists what exists and creates nothing.
	all := kmsg.NewPtrMetadataRequest()
	all.Topics = nil
	resp := do[*kmsg.MetadataResponse](c, 12, all)
	var names []string
	for _, t := range resp.Topics {
		names = append(names, deref(t.Topic))
	}
	if !slices.Equal(names, []string{"auto"}) {
		t.Errorf("all topics: %v, want [auto]", names)
	}
}

// ---- A5: fetch ----

func TestWireFetchOffsetsAndDeleteRecords(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "f", 1, nil)
	for i := range 5 {
		if off := mustProduce(c, "f", 0, mkBatch(plainBatch(), "v")); off != int64(i) {
			t.Fatalf("batch %d at offset %d", i, off)
		}
	}

	if p := fetchOne(c, "f", 0, 6, 1<<20); p.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Errorf("fetch beyond the high watermark: error %d, want 1", p.ErrorCode)
	}
	if p := fetchOne(c, "f", 0, -1, 1<<20); p.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Errorf("fetch at -1: error %d, want 1", p.ErrorCode)
	}
	p := fetchOne(c, "f", 0, 5, 1<<20)
	if p.ErrorCode != 0 || len(p.RecordBatches) != 0 || p.HighWatermark != 5 {
		t.Errorf("fetch at the high watermark: error %d, %d bytes, hw %d (want empty, hw 5)", p.ErrorCode, len(p.RecordBatches), p.HighWatermark)
	}
	p = fetchOne(c, "f", 0, 2, 1<<20)
	if bases := countBatches(t, p.RecordBatches); !slices.Equal(bases, []int64{2, 3, 4}) {
		t.Errorf("fetch from 2: batches %v", bases)
	}

	// DeleteRecords to 3.
	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.TimeoutMillis = 5000
	drt := kmsg.NewDeleteRecordsRequestTopic()
	drt.Topic = "f"
	drp := kmsg.NewDeleteRecordsRequestTopicPartition()
	drp.Partition, drp.Offset = 0, 3
	drt.Partitions = append(drt.Partitions, drp)
	dr.Topics = append(dr.Topics, drt)
	drResp := do[*kmsg.DeleteRecordsResponse](c, 2, dr)
	if sp := drResp.Topics[0].Partitions[0]; sp.ErrorCode != 0 || sp.LowWatermark != 3 {
		t.Fatalf("delete records to 3: error %d, low watermark %d", sp.ErrorCode, sp.LowWatermark)
	}
	drt.Partitions[0].Offset = 9
	dr.Topics[0] = drt
	if sp := do[*kmsg.DeleteRecordsResponse](c, 2, dr).Topics[0].Partitions[0]; sp.ErrorCode != kerr.OffsetOutOfRange.Code {
		t.Errorf("delete records beyond the high watermark: error %d, want 1", sp.ErrorCode)
	}

	for _, off := range []int64{0, 2} {
		if p := fetchOne(c, "f", 0, off, 1<<20); p.ErrorCode != kerr.OffsetOutOfRange.Code || p.LogStartOffset != 3 {
			t.Errorf("fetch at %d below log start 3: error %d, log start %d", off, p.ErrorCode, p.LogStartOffset)
		}
	}
	p = fetchOne(c, "f", 0, 3, 1<<20)
	if bases := countBatches(t, p.RecordBatches); p.ErrorCode != 0 || !slices.Equal(bases, []int64{3, 4}) {
		t.Errorf("fetch at the new log start: error %d, batches %v", p.ErrorCode, bases)
	}
	if lo := listOffset(c, "f", 0, -2); lo.ErrorCode != 0 || lo.Offset != 3 {
		t.Errorf("earliest after delete records: %d (error %d), want 3", lo.Offset, lo.ErrorCode)
	}
	if lo := listOffset(c, "f", 0, -4); lo.ErrorCode != 0 || lo.Offset != 3 {
		t.Errorf("earliest local (v8) after delete records: %d (error %d), want 3", lo.Offset, lo.ErrorCode)
	}
	if got := latest(c, "f", 0); got != 5 {
		t.Errorf("latest after delete records: %d, want 5", got)
	}
	// New data continues after the old end.
	if off := mustProduce(c, "f", 0, mkBatch(plainBatch(), "after")); off != 5 {
		t.Errorf("produce after delete records: offset %d, want 5", off)
	}
}

func TestWireFetchLongPoll(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "lp", 1, nil)

	// No data: the fetch waits about MaxWait and returns empty.
	req := fetchReq(300, 1, 1<<20)
	addFetch(req, "lp", [16]byte{}, 0, 0, 1<<20)
	start := time.Now()
	resp := do[*kmsg.FetchResponse](c, 12, req)
	took := time.Since(start)
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) != 0 {
		t.Fatalf("idle long poll: error %d, %d bytes", p.ErrorCode, len(p.RecordBatches))
	}
	if took < 250*time.Millisecond || took > 3*time.Second {
		t.Errorf("idle fetch with MaxWait 300ms took %v", took)
	}

	// A produce on another connection wakes the waiting fetch long before
	// MaxWait.
	const maxWait = 10_000
	req = fetchReq(maxWait, 1, 1<<20)
	addFetch(req, "lp", [16]byte{}, 0, 0, 1<<20)
	type result struct {
		resp *kmsg.FetchResponse
		took time.Duration
	}
	done := make(chan result, 1)
	fc := dialRaw(t, a.Addr())
	req.SetVersion(12)
	corr := fc.send(req)
	go func() {
		start := time.Now()
		// recv may call Fatal: only from the test goroutine. Read raw.
		body, err := fc.readFrame(30 * time.Second)
		r := result{took: time.Since(start)}
		if err == nil {
			rd := body[4:]
			if binary.BigEndian.Uint32(body) == uint32(corr) {
				rd = rd[1:] // header tags
				fr := kmsg.NewPtrFetchResponse()
				fr.Version = 12
				if fr.ReadFrom(rd) == nil {
					r.resp = fr
				}
			}
		}
		done <- r
	}()
	time.Sleep(100 * time.Millisecond)
	pc := dialRaw(t, a.Addr())
	mustProduce(pc, "lp", 0, mkBatch(plainBatch(), "wake", "up"))
	r := <-done
	if r.resp == nil {
		t.Fatal("long poll: no decodable response")
	}
	p := r.resp.Topics[0].Partitions[0]
	if bases := countBatches(t, p.RecordBatches); p.ErrorCode != 0 || len(bases) != 1 {
		t.Fatalf("woken fetch: error %d, batches %v", p.ErrorCode, bases)
	}
	if r.took > maxWait*time.Millisecond/2 {
		t.Errorf("fetch with MaxWait %dms took %v although data arrived after ~100ms: not woken by the produce", maxWait, r.took)
	}
}

func TestWireFetchMaxBytes(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "mb", 2, nil)
	val := strings.Repeat("v", 400)
	var size int
	for range 10 {
		for part := range int32(2) {
			b := mkBatch(plainBatch(), val)
			size = len(b)
			mustProduce(c, "mb", part, b)
		}
	}

	fetch := func(maxBytes int32, parts ...int32) [][]int64 {
		t.Helper()
		req := fetchReq(0, 1, maxBytes)
		for _, p := range parts {
			addFetch(req, "mb", [16]byte{}, p, 0, 1<<20)
		}
		resp := do[*kmsg.FetchResponse](c, 12, req)
		var out [][]int64
		for _, p := range resp.Topics[0].Partitions {
			if p.ErrorCode != 0 {
				t.Fatalf("fetch partition %d: error %d", p.Partition, p.ErrorCode)
			}
			out = append(out, countBatches(t, p.RecordBatches))
		}
		return out
	}

	if got := fetch(1<<20, 0); len(got[0]) != 10 {
		t.Errorf("MaxBytes 1 MiB: %d batches, want all 10", len(got[0]))
	}
	// KIP-74: the first batch comes back whole even if larger than the limit.
	if got := fetch(1, 0); !slices.Equal(got[0], []int64{0}) {
		t.Errorf("MaxBytes 1: batches %v, want exactly the first", got[0])
	}
	if got := fetch(int32(size*5/2), 0); !slices.Equal(got[0], []int64{0, 1}) {
		t.Errorf("MaxBytes 2.5 batches: batches %v, want [0 1]", got[0])
	}
	// The response-wide limit spans partitions: once the first partition
	// has used it, the second gets nothing rather than another oversize
	// batch.
	if got := fetch(1, 0, 1); len(got[0]) != 1 || len(got[1]) != 0 {
		t.Errorf("MaxBytes 1 over two partitions: %v, want one batch then none", got)
	}
	if got := fetch(int32(size*3), 0, 1); len(got[0]) != 3 || len(got[1]) != 0 {
		t.Errorf("MaxBytes 3 batches over two partitions: %v", got)
	}

	// PartitionMaxBytes limits each partition; the first batch still
	// comes back whole.
	req := fetchReq(0, 1, 1<<20)
	addFetch(req, "mb", [16]byte{}, 0, 0, 1)
	addFetch(req, "mb", [16]byte{}, 1, 3, int32(size*2))
	resp := do[*kmsg.FetchResponse](c, 12, req)
	if b := countBatches(t, resp.Topics[0].Partitions[0].RecordBatches); !slices.Equal(b, []int64{0}) {
		t.Errorf("PartitionMaxBytes 1: batches %v, want [0]", b)
	}
	if b := countBatches(t, resp.Topics[0].Partitions[1].RecordBatches); !slices.Equal(b, []int64{3, 4}) {
		t.Errorf("PartitionMaxBytes 2 batches from 3: batches %v, want [3 4]", b)
	}
}

// ---- A6: ListOffsets by timestamp: timestamps_test.go ----

// ---- A7: idempotent producers on the wire ----

func initProducerID(c *rawConn, txnID *string, pid int64, epoch int16) *kmsg.InitProducerIDResponse {
	c.t.Helper()
	req := kmsg.NewPtrInitProducerIDRequest()
	req.TransactionalID = txnID
	req.TransactionTimeoutMillis = 60000
	req.ProducerID, req.ProducerEpoch = pid, epoch
	return do[*kmsg.InitProducerIDResponse](c, 4, req)
}

func TestWireIdempotentProducer(t *testing.T) {
	t.Parallel()
	dir, bucket := t.TempDir(), tier.NewMemBucket()
	a := tlogtest.StartAgent(t, dir, bucket, quiet)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "idem", 1, nil)

	// A transactional id before its coordinator was looked up: no
	// __transaction_state yet, so no coordinator.
	if r := initProducerID(c, kmsg.StringPtr("txn"), -1, -1); r.ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Errorf("InitProducerId with a transactional id before FindCoordinator: error %d, want COORDINATOR_NOT_AVAILABLE", r.ErrorCode)
	}
	ip := initProducerID(c, nil, -1, -1)
	if ip.ErrorCode != 0 || ip.ProducerID < 0 || ip.ProducerEpoch != 0 {
		t.Fatalf("InitProducerId: error %d, pid %d, epoch %d", ip.ErrorCode, ip.ProducerID, ip.ProducerEpoch)
	}
	pid := ip.ProducerID
	if ip2 := initProducerID(c, nil, -1, -1); ip2.ProducerID == pid {
		t.Errorf("two InitProducerId calls returned the same id %d", pid)
	}
	idem := func(epoch int16, seq int32, vals ...string) []byte {
		return mkBatch(batchOpts{pid: pid, epoch: epoch, seq: seq, firstTS: 1_700_000_000_000}, vals...)
	}

	b0 := idem(0, 0, "a", "b") // seq 0-1, offsets 0-1
	b1 := idem(0, 2, "c")      // seq 2, offset 2
	if off := mustProduce(c, "idem", 0, b0); off != 0 {
		t.Fatalf("first batch at %d", off)
	}
	if off := mustProduce(c, "idem", 0, b1); off != 2 {
		t.Fatalf("second batch at %d", off)
	}
	// Duplicates of the last and of an earlier batch in the window.
	if off := mustProduce(c, "idem", 0, bytes.Clone(b1)); off != 2 {
		t.Errorf("duplicate of the last batch: offset %d, want 2", off)
	}
	if off := mustProduce(c, "idem", 0, bytes.Clone(b0)); off != 0 {
		t.Errorf("duplicate of the first batch: offset %d, want 0", off)
	}
	if got := latest(c, "idem", 0); got != 3 {
		t.Fatalf("log end %d after duplicates, want 3", got)
	}
	// A gap.
	if p := produce(c, "idem", 0, idem(0, 5, "gap")); p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Errorf("sequence gap: error %d, want OUT_OF_ORDER_SEQUENCE_NUMBER (45)", p.ErrorCode)
	}
	// A producer with no state here may start at any sequence, as in Kafka
	// (its state may have gone with retention); the log grows by one.
	if p := produce(c, "idem", 0, mkBatch(batchOpts{pid: pid + 100, epoch: 0, seq: 3, firstTS: 1}, "x")); p.ErrorCode != 0 || p.BaseOffset != 3 {
		t.Errorf("unknown producer at sequence 3: error %d offset %d, want accepted at 3", p.ErrorCode, p.BaseOffset)
	}

	// Re-initialising without a transactional id gets a fresh id, as Kafka
	// answers, even when the current id and epoch are named.
	fresh := initProducerID(c, nil, pid, 0)
	if fresh.ErrorCode != 0 || fresh.ProducerID == pid || fresh.ProducerEpoch != 0 {
		t.Fatalf("re-init: error %d, pid %d epoch %d; want a new pid at epoch 0", fresh.ErrorCode, fresh.ProducerID, fresh.ProducerEpoch)
	}
	// A producer that moves to a higher epoch on its own id fences the
	// old epoch (the broker-side rule transactional bumps rely on).
	if p := produce(c, "idem", 0, idem(1, 4, "x")); p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Errorf("new epoch not at sequence 0: error %d, want 45", p.ErrorCode)
	}
	b2 := idem(1, 0, "d", "e") // offsets 4-5
	if off := mustProduce(c, "idem", 0, b2); off != 4 {
		t.Fatalf("first batch of epoch 1 at %d, want 4", off)
	}
	if p := produce(c, "idem", 0, idem(0, 3, "old")); p.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Errorf("old epoch after a bump: error %d, want INVALID_PRODUCER_EPOCH (47)", p.ErrorCode)
	}
	if got := latest(c, "idem", 0); got != 6 {
		t.Fatalf("log end %d, want 6", got)
	}

	// Restart on the same WAL and bucket: producer state comes back from
	// the batches, so a retry is still a duplicate.
	c.nc.Close()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a = tlogtest.StartAgent(t, dir, bucket, quiet)
	c = dialRaw(t, a.Addr())
	if off := mustProduce(c, "idem", 0, bytes.Clone(b2)); off != 4 {
		t.Errorf("duplicate after restart: offset %d, want 4", off)
	}
	if p := produce(c, "idem", 0, idem(0, 3, "old")); p.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Errorf("old epoch after restart: error %d, want 47", p.ErrorCode)
	}
	if p := produce(c, "idem", 0, idem(1, 7, "gap")); p.ErrorCode != kerr.OutOfOrderSequenceNumber.Code {
		t.Errorf("gap after restart: error %d, want 45", p.ErrorCode)
	}
	if off := mustProduce(c, "idem", 0, idem(1, 2, "f")); off != 6 {
		t.Errorf("next in sequence after restart: offset %d, want 6", off)
	}
	if got := latest(c, "idem", 0); got != 7 {
		t.Errorf("log end after restart %d, want 7", got)
	}
	// Producer ids are not handed out twice across restarts.
	if ip := initProducerID(c, nil, -1, -1); ip.ErrorCode != 0 || ip.ProducerID == pid {
		t.Errorf("InitProducerId after restart: error %d, pid %d (old %d)", ip.ErrorCode, ip.ProducerID, pid)
	}
}

// ---- A8: configs ----

func describeTopicConfigs(c *rawConn, v int16, topic string) kmsg.DescribeConfigsResponseResource {
	c.t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, topic
	req.Resources = append(req.Resources, rr)
	req.IncludeSynonyms = true
	return do[*kmsg.DescribeConfigsResponse](c, v, req).Resources[0]
}

func configMap(r kmsg.DescribeConfigsResponseResource) map[string]kmsg.DescribeConfigsResponseResourceConfig {
	m := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, c := range r.Configs {
		m[c.Name] = c
	}
	return m
}

func TestWireTopicConfigs(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "cfg", 1, map[string]string{"max.message.bytes": "5000"})

	want := []string{"cleanup.policy", "compression.type", "max.message.bytes", "message.timestamp.type",
		"min.insync.replicas", "retention.bytes", "retention.ms", "segment.bytes", "segment.ms"}
	r := describeTopicConfigs(c, 4, "cfg")
	if r.ErrorCode != 0 {
		t.Fatalf("describe: error %d", r.ErrorCode)
	}
	m := configMap(r)
	for _, n := range want {
		e, ok := m[n]
		switch {
		case !ok:
			t.Errorf("config %s not described", n)
		case e.Value == nil:
			t.Errorf("config %s has no value", n)
		case n == "max.message.bytes":
			if *e.Value != "5000" || e.Source != kmsg.ConfigSourceDynamicTopicConfig {
				t.Errorf("max.message.bytes: %q source %v, want 5000 from the topic", *e.Value, e.Source)
			}
		case e.Source != kmsg.ConfigSourceDefaultConfig:
			t.Errorf("%s: source %v, want DEFAULT_CONFIG", n, e.Source)
		}
	}
	if v := deref(m["retention.ms"].Value); v != "604800000" {
		t.Errorf("default retention.ms %q", v)
	}
	// v0 has IsDefault instead of a source.
	m0 := configMap(describeTopicConfigs(c, 0, "cfg"))
	if m0["max.message.bytes"].IsDefault || !m0["retention.ms"].IsDefault {
		t.Errorf("v0 IsDefault: max.message.bytes %v, retention.ms %v", m0["max.message.bytes"].IsDefault, m0["retention.ms"].IsDefault)
	}
	if r := describeTopicConfigs(c, 4, "missing"); r.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("describe a missing topic: error %d, want 3", r.ErrorCode)
	}

	incr := func(name string, op kmsg.IncrementalAlterConfigOp, value *string) int16 {
		req := kmsg.NewPtrIncrementalAlterConfigsRequest()
		rr := kmsg.NewIncrementalAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "cfg"
		rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		rc.Name, rc.Op, rc.Value = name, op, value
		rr.Configs = append(rr.Configs, rc)
		req.Resources = append(req.Resources, rr)
		return do[*kmsg.IncrementalAlterConfigsResponse](c, 1, req).Resources[0].ErrorCode
	}
	if code := incr("retention.ms", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("3600000")); code != 0 {
		t.Fatalf("SET retention.ms: error %d", code)
	}
	if code := incr("segment.bytes", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("1048576")); code != 0 {
		t.Fatalf("SET segment.bytes: error %d", code)
	}
	m = configMap(describeTopicConfigs(c, 4, "cfg"))
	if e := m["retention.ms"]; deref(e.Value) != "3600000" || e.Source != kmsg.ConfigSourceDynamicTopicConfig {
		t.Errorf("retention.ms after SET: %q source %v", deref(e.Value), e.Source)
	}
	if e := m["max.message.bytes"]; deref(e.Value) != "5000" {
		t.Errorf("SET retention.ms changed max.message.bytes to %q", deref(e.Value))
	}
	before := deref(configMap(describeTopicConfigs(c, 4, "cfg"))["retention.ms"].Value)
	for _, tc := range []struct {
		name  string
		value string
	}{
		{"retention.ms", "soon"},
		{"retention.ms", "-2"},
		{"max.message.bytes", "-1"},
		{"cleanup.policy", "compact,squash"},
		{"min.cleanable.dirty.ratio", "1.5"},
		{"segment.bytes", "13"},
		{"segment.ms", "0"},
		{"no.such.config", "1"},
	} {
		if code := incr(tc.name, kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr(tc.value)); code != kerr.InvalidConfig.Code {
			t.Errorf("SET %s=%s: error %d, want INVALID_CONFIG (40)", tc.name, tc.value, code)
		}
	}
	if v := deref(configMap(describeTopicConfigs(c, 4, "cfg"))["retention.ms"].Value); v != before {
		t.Errorf("a refused SET changed retention.ms from %q to %q", before, v)
	}
	if code := incr("retention.ms", kmsg.IncrementalAlterConfigOpDelete, nil); code != 0 {
		t.Fatalf("DELETE retention.ms: error %d", code)
	}
	if e := configMap(describeTopicConfigs(c, 4, "cfg"))["retention.ms"]; deref(e.Value) != "604800000" || e.Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("retention.ms after DELETE: %q source %v, want the default", deref(e.Value), e.Source)
	}

	// AlterConfigs on a broker is refused; on a missing topic, unknown.
	alter := func(typ kmsg.ConfigResourceType, name string) int16 {
		req := kmsg.NewPtrAlterConfigsRequest()
		rr := kmsg.NewAlterConfigsRequestResource()
		rr.ResourceType, rr.ResourceName = typ, name
		rc := kmsg.NewAlterConfigsRequestResourceConfig()
		rc.Name, rc.Value = "retention.ms", kmsg.StringPtr("1000")
		rr.Configs = append(rr.Configs, rc)
		req.Resources = append(req.Resources, rr)
		return do[*kmsg.AlterConfigsResponse](c, 2, req).Resources[0].ErrorCode
	}
	if code := alter(kmsg.ConfigResourceTypeBroker, "0"); code == 0 {
		t.Errorf("AlterConfigs on the broker succeeded")
	}
	if code := alter(kmsg.ConfigResourceTypeTopic, "missing"); code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("AlterConfigs on a missing topic: error %d, want 3", code)
	}
	// Legacy AlterConfigs replaces the whole set.
	if code := alter(kmsg.ConfigResourceTypeTopic, "cfg"); code != 0 {
		t.Fatalf("AlterConfigs on the topic: error %d", code)
	}
	m = configMap(describeTopicConfigs(c, 4, "cfg"))
	if deref(m["retention.ms"].Value) != "1000" || m["max.message.bytes"].Source != kmsg.ConfigSourceDefaultConfig {
		t.Errorf("after AlterConfigs: retention.ms %q, max.message.bytes source %v", deref(m["retention.ms"].Value), m["max.message.bytes"].Source)
	}
}

// The topic's max.message.bytes, changed at run time, governs produce.
func TestWireMaxMessageBytesFollowsConfig(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "mm", 1, nil)
	b := mkBatch(plainBatch(), strings.Repeat("x", 2000))
	mustProduce(c, "mm", 0, b)

	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeTopic, "mm"
	rc := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
	rc.Name, rc.Op, rc.Value = "max.message.bytes", kmsg.IncrementalAlterConfigOpSet, kmsg.StringPtr("1000")
	rr.Configs = append(rr.Configs, rc)
	req.Resources = append(req.Resources, rr)
	if code := do[*kmsg.IncrementalAlterConfigsResponse](c, 1, req).Resources[0].ErrorCode; code != 0 {
		t.Fatalf("set max.message.bytes: error %d", code)
	}
	if p := produce(c, "mm", 0, mkBatch(plainBatch(), strings.Repeat("x", 2000))); p.ErrorCode != kerr.MessageTooLarge.Code {
		t.Errorf("produce above the new limit: error %d, want 10", p.ErrorCode)
	}
}

// ---- A9: partitions and topic deletion ----

func TestWireCreatePartitionsAndDeleteTopics(t *testing.T) {
	t.Parallel()
	a := startAgent(t, noAutoCreate)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "grow", 1, nil)
	mustProduce(c, "grow", 0, mkBatch(plainBatch(), "a", "b"))

	createParts := func(topic string, count int32, validateOnly bool) int16 {
		req := kmsg.NewPtrCreatePartitionsRequest()
		req.TimeoutMillis = 5000
		req.ValidateOnly = validateOnly
		rt := kmsg.NewCreatePartitionsRequestTopic()
		rt.Topic, rt.Count = topic, count
		req.Topics = append(req.Topics, rt)
		return do[*kmsg.CreatePartitionsResponse](c, 3, req).Topics[0].ErrorCode
	}
	if code := createParts("grow", 5, true); code != 0 {
		t.Fatalf("validate-only grow: error %d", code)
	}
	if n := len(metadata(c, "grow").Topics[0].Partitions); n != 1 {
		t.Fatalf("validate-only grew the topic to %d partitions", n)
	}
	if code := createParts("grow", 3, false); code != 0 {
		t.Fatalf("grow to 3: error %d", code)
	}
	if n := len(metadata(c, "grow").Topics[0].Partitions); n != 3 {
		t.Fatalf("after growing: %d partitions, want 3", n)
	}
	if off := mustProduce(c, "grow", 2, mkBatch(plainBatch(), "new")); off != 0 {
		t.Errorf("produce to new partition 2: offset %d, want 0", off)
	}
	for _, n := range []int32{2, 3} {
		if code := createParts("grow", n, false); code != kerr.InvalidPartitions.Code {
			t.Errorf("set partitions to %d of 3: error %d, want INVALID_PARTITIONS (37)", n, code)
		}
	}
	if code := createParts("missing", 3, false); code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("grow a missing topic: error %d, want 3", code)
	}

	// Delete, then the name is unknown everywhere.
	del := func(name string) int16 {
		req := kmsg.NewPtrDeleteTopicsRequest()
		req.TimeoutMillis = 5000
		rt := kmsg.NewDeleteTopicsRequestTopic()
		rt.Topic = kmsg.StringPtr(name)
		req.Topics = append(req.Topics, rt)
		return do[*kmsg.DeleteTopicsResponse](c, 6, req).Topics[0].ErrorCode
	}
	oldID := topicID(c, "grow")
	if code := del("grow"); code != 0 {
		t.Fatalf("delete: error %d", code)
	}
	if code := del("grow"); code != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("delete again: error %d, want 3", code)
	}
	if md := metadata(c, "grow"); md.Topics[0].ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("metadata after delete: error %d, want 3", md.Topics[0].ErrorCode)
	}
	if p := produce(c, "grow", 0, mkBatch(plainBatch(), "x")); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("produce after delete: error %d, want 3", p.ErrorCode)
	}
	if p := fetchOne(c, "grow", 0, 0, 1<<20); p.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Errorf("fetch after delete: error %d, want 3", p.ErrorCode)
	}

	// Recreated, the same name is a new, empty topic.
	createTopic(t, c, "grow", 1, nil)
	if id := topicID(c, "grow"); id == oldID {
		t.Errorf("recreated topic kept the old id")
	}
	if lo, hi := listOffset(c, "grow", 0, -2).Offset, latest(c, "grow", 0); lo != 0 || hi != 0 {
		t.Errorf("recreated topic: offsets [%d, %d), want empty", lo, hi)
	}
	if p := fetchOne(c, "grow", 0, 0, 1<<20); p.ErrorCode != 0 || len(p.RecordBatches) != 0 {
		t.Errorf("recreated topic: fetch error %d, %d bytes", p.ErrorCode, len(p.RecordBatches))
	}
	if off := mustProduce(c, "grow", 0, mkBatch(plainBatch(), "fresh")); off != 0 {
		t.Errorf("first produce to the recreated topic: offset %d, want 0", off)
	}
}

// ---- bugs found while writing the above ----

// A client that pipelines many ApiVersions requests above our range and
// goes away must not wedge the agent. Those requests are answered from
// conn.decode, which sends to the pending channel without watching c.done;
// once the writer has died (the client closed), the reader blocks there
// forever, leaking the connection's goroutines and hanging Agent.Close.
func TestWireApiVersionsFloodThenClose(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, err := agent.Start(context.Background(), agent.Config{
		DataDir: dir, Listen: "127.0.0.1:0", Bucket: tier.NewMemBucket(),
		LeaseTTL: 2 * time.Second, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	c := dialRaw(t, a.Addr())
	var flood []byte
	for i := range 50_000 {
		flood = append(flood, frame(header(18, 99, int32(i), "x"))...)
	}
	// Send everything, then close without reading a single response.
	c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	c.nc.Write(flood) // the agent may reset the connection midway
	c.nc.Close()
	time.Sleep(200 * time.Millisecond)

	serving(t, a.Addr())
	closed := make(chan error, 1)
	go func() { closed <- a.Close() }()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		// Leave the wedged agent behind: closing it cannot finish.
		t.Fatal("BUG: Agent.Close hangs: a connection reader is blocked in conn.decode sending an " +
			"UNSUPPORTED_VERSION ApiVersions reply to c.pending after the writer exited (server.go)")
	}
}

// Metadata changes (any proposal re-syncs every topic, rewriting its
// configs and metadata) must not race with produce handlers reading the
// topic. A produce request spanning many partitions keeps the handler
// reading the topic long enough for the race detector to see it. Not
// parallel so a race report is attributed to this test alone.
func TestWireConcurrentMetadataChangesAndProduce(t *testing.T) {
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	const parts = 64
	createTopic(t, c, "busy", parts, nil)

	cl := tlogtest.NewClient(t, a.Addr())
	var wg sync.WaitGroup
	stop := make(chan struct{})
	var rounds int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		ctx := context.Background()
		for {
			select {
			case <-stop:
				return
			default:
			}
			req := kmsg.NewPtrProduceRequest()
			req.Acks = 1
			req.TimeoutMillis = 10000
			rt := kmsg.NewProduceRequestTopic()
			rt.Topic = "busy"
			for p := range int32(parts) {
				rp := kmsg.NewProduceRequestTopicPartition()
				rp.Partition = p
				rp.Records = mkBatch(plainBatch(), "v")
				rt.Partitions = append(rt.Partitions, rp)
			}
			req.Topics = append(req.Topics, rt)
			resp, err := req.RequestWith(ctx, cl)
			if err != nil {
				t.Error(err)
				return
			}
			for _, p := range resp.Topics[0].Partitions {
				if p.ErrorCode != 0 {
					t.Errorf("produce to busy/%d: error %d", p.Partition, p.ErrorCode)
					return
				}
			}
			rounds++
		}
	}()
	for i := range 30 {
		createTopic(t, c, "other-"+strconv.Itoa(i), 1, nil)
	}
	close(stop)
	wg.Wait()
	for p := range int32(parts) {
		if got := latest(c, "busy", p); got != rounds {
			t.Fatalf("busy/%d: log end %d, produced %d", p, got, rounds)
		}
	}
}

// Producer state must survive DeleteRecords plus a restart. The agent
// rebuilds producer state only from WAL batches at or above the log start,
// and refuses an unknown producer id unless its batch starts at sequence 0,
// so after the restart the producer's next in-sequence batch is refused.
// Kafka keeps producer state across DeleteRecords (and, with none left,
// accepts any sequence from a producer it no longer knows).
func TestWireIdempotentProducerAfterDeleteRecordsAndRestart(t *testing.T) {
	t.Parallel()
	dir, bucket := t.TempDir(), tier.NewMemBucket()
	a := tlogtest.StartAgent(t, dir, bucket, quiet)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "gone", 1, nil)
	ip := initProducerID(c, nil, -1, -1)
	pid := ip.ProducerID
	idem := func(seq int32, vals ...string) []byte {
		return mkBatch(batchOpts{pid: pid, epoch: 0, seq: seq, firstTS: 1}, vals...)
	}
	mustProduce(c, "gone", 0, idem(0, "a", "b"))
	mustProduce(c, "gone", 0, idem(2, "c"))

	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.TimeoutMillis = 5000
	drt := kmsg.NewDeleteRecordsRequestTopic()
	drt.Topic = "gone"
	drp := kmsg.NewDeleteRecordsRequestTopicPartition()
	drp.Offset = -1 // the high watermark
	drt.Partitions = append(drt.Partitions, drp)
	dr.Topics = append(dr.Topics, drt)
	if sp := do[*kmsg.DeleteRecordsResponse](c, 2, dr).Topics[0].Partitions[0]; sp.ErrorCode != 0 || sp.LowWatermark != 3 {
		t.Fatalf("delete records: error %d, low watermark %d", sp.ErrorCode, sp.LowWatermark)
	}
	c.nc.Close()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	a = tlogtest.StartAgent(t, dir, bucket, quiet)
	c = dialRaw(t, a.Addr())
	if lo := listOffset(c, "gone", 0, -2); lo.Offset != 3 {
		t.Fatalf("log start after restart: %d, want 3", lo.Offset)
	}
	p := produce(c, "gone", 0, idem(3, "d"))
	if p.ErrorCode != 0 || p.BaseOffset != 3 {
		t.Errorf("next in-sequence batch after DeleteRecords and a restart: error %d (%s), offset %d; want success at 3",
			p.ErrorCode, deref(p.ErrorMessage), p.BaseOffset)
	}
}

// acks=0 produces are never answered; the next request's response is the
// next frame on the connection, and only valid batches land.
func TestWireProduceAcksZero(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "fire", 1, nil)
	req := produceReq(0, "fire", 0, mkBatch(plainBatch(), "a", "b"))
	req.SetVersion(9)
	c.send(req)
	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	corr := c.send(md)
	c.recv(md, corr) // no produce response: fails on a correlation id mismatch
	tlogtest.CheckFor(t, 5*time.Second, 10*time.Millisecond, func() error {
		if got := latest(c, "fire", 0); got != 2 {
			return fmt.Errorf("log end %d, want 2", got)
		}
		return nil
	})
	// A failed acks=0 produce closes the connection, as Kafka does, so the
	// producer refreshes its metadata; nothing of it is written.
	bad := produceReq(0, "fire", 0, mkBatch(batchOpts{pid: -1, epoch: -1, seq: -1, attrs: 0x20}, "ctl"))
	bad.SetVersion(9)
	c.send(bad)
	c.expectClosed("acks=0 produce with an invalid batch")
	if got := latest(dialRaw(t, a.Addr()), "fire", 0); got != 2 {
		t.Fatalf("log end %d after the refused batch, want 2", got)
	}
}

// With acks=1 the leader answers once the batch is in its log; the request
// timeout only bounds waiting for other replicas (acks=all). tlog applies
// TimeoutMillis to acks=1 as well, so a short timeout reports
// REQUEST_TIMED_OUT (offset -1) for a batch that was written: a client that
// retries then duplicates it.
func TestWireProduceAcksOneIgnoresTimeout(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "a1", 1, nil)
	const n = 10
	failed := 0
	for range n {
		req := produceReq(1, "a1", 0, mkBatch(plainBatch(), "x"))
		req.TimeoutMillis = 0
		if p := do[*kmsg.ProduceResponse](c, 9, req).Topics[0].Partitions[0]; p.ErrorCode != 0 {
			failed++
		}
	}
	written := latest(c, "a1", 0)
	if failed > 0 {
		t.Errorf("acks=1, timeout 0: %d of %d produces answered with an error, yet %d records were written", failed, n, written)
	}
}

// ValidateOnly must report what the real create would: Kafka refuses names
// that collide with an existing topic once '.' and '_' are unified.
func TestWireCreateTopicsValidateOnlyMatchesCreate(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "a_b", 1, nil)
	real := do[*kmsg.CreateTopicsResponse](c, 7, createTopicsReq(false, topicSpec{"a.b", 1, 1, nil})).Topics[0].ErrorCode
	if real != kerr.InvalidTopicException.Code {
		t.Errorf("create a.b next to a_b: error %d, want 17", real)
	}
	vo := do[*kmsg.CreateTopicsResponse](c, 7, createTopicsReq(true, topicSpec{"a.b", 1, 1, nil})).Topics[0].ErrorCode
	if vo != real {
		t.Errorf("validate-only create of a.b next to a_b: error %d, the real create gives %d", vo, real)
	}
}

// A Fetch naming one partition 10,000 times (in one topic entry and in a
// second entry for the same topic) is answered with that partition once.
func TestFetchRepeatedPartitionAnsweredOnce(t *testing.T) {
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "rep", 1, nil)
	mustProduce(c, "rep", 0, mkBatch(plainBatch(), strings.Repeat("x", 4000)))
	for _, v := range []int16{12, 13} {
		req := fetchReq(0, 0, 50<<20)
		id := [16]byte{}
		name := "rep"
		if v >= 13 {
			id, name = topicID(c, "rep"), ""
		}
		for range 10000 {
			addFetch(req, name, id, 0, 0, 1<<20)
		}
		nt := kmsg.NewFetchRequestTopic()
		nt.Topic, nt.TopicID = name, id
		nt.Partitions = req.Topics[0].Partitions[:2]
		req.Topics = append(req.Topics, nt)
		r := do[*kmsg.FetchResponse](c, v, req)
		n, bytes := 0, 0
		for _, rt := range r.Topics {
			for _, rp := range rt.Partitions {
				n++
				bytes += len(rp.RecordBatches)
			}
		}
		if n != 1 || bytes == 0 || bytes > 8000 {
			t.Fatalf("fetch v%d: %d partitions answered, %d record bytes; want the partition once", v, n, bytes)
		}
	}
}

// Metadata never lists a topic with no partitions and no error: while
// topics are being created, each one asked for is either whole or carries
// an error (UNKNOWN_TOPIC_OR_PARTITION, or LEADER_NOT_AVAILABLE when
// auto-creation is under way), as Kafka answers. kafka-go's test helper
// waitForTopic logs the partitionless entries of those error answers.
func TestMetadataNeverListsATopicWithoutPartitions(t *testing.T) {
	for _, auto := range []bool{false, true} {
		a := startAgent(t, func(c *agent.Config) { c.AutoCreateTopics = auto })
		c := dialRaw(t, a.Addr())
		poll := dialRaw(t, a.Addr())
		const n = 40
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range n {
				req := createTopicsReq(false, topicSpec{name: fmt.Sprintf("mt-%d", i), partitions: 3, rf: 1})
				req.SetVersion(4)
				corr := c.send(req)
				c.recv(req, corr)
			}
		}()
		seen := 0
		for stop := false; !stop; {
			select {
			case <-done:
				stop = true
			default:
			}
			req := kmsg.NewPtrMetadataRequest()
			req.AllowAutoTopicCreation = auto
			for i := range n {
				rt := kmsg.NewMetadataRequestTopic()
				rt.Topic = kmsg.StringPtr(fmt.Sprintf("mt-%d", i))
				req.Topics = append(req.Topics, rt)
			}
			r := do[*kmsg.MetadataResponse](poll, 9, req)
			for _, rt := range r.Topics {
				if rt.ErrorCode == 0 && len(rt.Partitions) == 0 {
					t.Fatalf("auto=%v: topic %s listed with no partitions and no error", auto, deref(rt.Topic))
				}
				if rt.ErrorCode == 0 {
					seen++
				}
			}
		}
		if seen == 0 {
			t.Fatalf("auto=%v: no topic was ever listed", auto)
		}
	}
}

// CreateTopics and CreatePartitions past controller.MaxTopicPartitions are refused
// with INVALID_PARTITIONS and a message; nothing is created.
func TestTopicPartitionLimitOnTheWire(t *testing.T) {
	a := startAgent(t, noAutoCreate)
	c := dialRaw(t, a.Addr())
	req := createTopicsReq(false, topicSpec{name: "huge", partitions: controller.MaxTopicPartitions + 1, rf: 1})
	r := do[*kmsg.CreateTopicsResponse](c, 4, req)
	if r.Topics[0].ErrorCode != kerr.InvalidPartitions.Code || !strings.Contains(deref(r.Topics[0].ErrorMessage), "at most") {
		t.Fatalf("create: %d %q", r.Topics[0].ErrorCode, deref(r.Topics[0].ErrorMessage))
	}
	createTopic(t, c, "grow", 2, nil)
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cpt := kmsg.NewCreatePartitionsRequestTopic()
	cpt.Topic, cpt.Count = "grow", controller.MaxTopicPartitions+1
	cp.Topics = append(cp.Topics, cpt)
	cp.TimeoutMillis = 5000
	pr := do[*kmsg.CreatePartitionsResponse](c, 1, cp)
	if pr.Topics[0].ErrorCode != kerr.InvalidPartitions.Code {
		t.Fatalf("create partitions: %d", pr.Topics[0].ErrorCode)
	}
	if md := metadata(c, "huge", "grow"); len(md.Topics[1].Partitions) != 2 || md.Topics[0].ErrorCode == 0 {
		t.Fatalf("metadata after refusals: %+v", md.Topics)
	}
}
