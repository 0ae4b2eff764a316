package agent_test

// Helpers for the wire-level tests: an in-process agent, a raw Kafka
// connection that sends requests at exactly the version a test asks for (kgo
// always negotiates the highest one), and RecordBatch builders.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/batch"
)

// quiet drops the agent's logs (closing connections on bad input logs a
// warning per test case).
func quiet(c *agent.Config) { c.Logger = slog.New(slog.DiscardHandler) }

func noAutoCreate(c *agent.Config) { c.AutoCreateTopics = false }

// startAgent runs an agent on a fresh directory and memory bucket.
func startAgent(t *testing.T, mod ...func(*agent.Config)) *agent.Agent {
	t.Helper()
	return tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket(), append([]func(*agent.Config){quiet}, mod...)...)
}

// rawConn is one Kafka connection driven by hand.
type rawConn struct {
	t    testing.TB
	nc   net.Conn
	f    *kmsg.RequestFormatter
	corr int32
}

func dialRaw(t testing.TB, addr string) *rawConn {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &rawConn{t: t, nc: nc, f: kmsg.NewRequestFormatter(kmsg.FormatterClientID("wire-test"))}
}

// write sends raw bytes.
func (c *rawConn) write(b []byte) {
	c.t.Helper()
	c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// send writes req at the version set on it and returns its correlation id.
func (c *rawConn) send(req kmsg.Request) int32 {
	c.t.Helper()
	c.corr++
	c.write(c.f.AppendRequest(nil, req, c.corr))
	return c.corr
}

// readFrame reads one size-prefixed frame.
func (c *rawConn) readFrame(timeout time.Duration) ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(timeout))
	var size [4]byte
	if _, err := io.ReadFull(c.nc, size[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(size[:])
	if n > 64<<20 {
		return nil, fmt.Errorf("response frame of %d bytes", n)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(c.nc, body); err != nil {
		return nil, err
	}
	return body, nil
}

// recv reads the response to req (sent with correlation id corr).
func (c *rawConn) recv(req kmsg.Request, corr int32) kmsg.Response {
	c.t.Helper()
	body, err := c.readFrame(15 * time.Second)
	if err != nil {
		c.t.Fatalf("%s v%d: read response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	rd := kbin.Reader{Src: body}
	if got := rd.Int32(); got != corr {
		c.t.Fatalf("%s: correlation id %d, want %d", kmsg.NameForKey(req.Key()), got, corr)
	}
	if req.IsFlexible() && req.Key() != 18 {
		kmsg.SkipTags(&rd)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(rd.Src); err != nil {
		c.t.Fatalf("%s v%d: decode response: %v", kmsg.NameForKey(req.Key()), req.GetVersion(), err)
	}
	return resp
}

// do sends req at version v and returns the response.
func do[R kmsg.Response](c *rawConn, v int16, req kmsg.Request) R {
	c.t.Helper()
	req.SetVersion(v)
	corr := c.send(req)
	return c.recv(req, corr).(R)
}

// expectClosed asserts the agent closes the connection without answering.
func (c *rawConn) expectClosed(what string) {
	c.t.Helper()
	start := time.Now()
	b, err := c.readFrame(5 * time.Second)
	switch {
	case err == nil:
		c.t.Fatalf("%s: got a %d-byte response, want the connection closed", what, len(b))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed), isReset(err):
		if d := time.Since(start); d > 3*time.Second {
			c.t.Fatalf("%s: connection closed only after %v", what, d)
		}
	default:
		c.t.Fatalf("%s: want the connection closed, read returned %v", what, err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// header is a request header v1 (key, version, correlation id, client id).
func header(key, version int16, corr int32, clientID string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(key))
	b = binary.BigEndian.AppendUint16(b, uint16(version))
	b = binary.BigEndian.AppendUint32(b, uint32(corr))
	b = binary.BigEndian.AppendUint16(b, uint16(len(clientID)))
	return append(b, clientID...)
}

// frame prefixes body with its size.
func frame(body []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// ---- record batches ----

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

type batchOpts struct {
	pid     int64
	epoch   int16
	seq     int32
	attrs   int16
	firstTS int64
}

func plainBatch() batchOpts {
	return batchOpts{pid: -1, epoch: -1, seq: -1, firstTS: 1_700_000_000_000}
}

// mkBatch builds a sealed, uncompressed RecordBatch v2 holding one record
// per value.
func mkBatch(o batchOpts, values ...string) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.NewRecord()
		r.OffsetDelta = int32(i)
		r.Key = []byte(fmt.Sprintf("k%d", i))
		r.Value = []byte(v)
		body := r.AppendTo(nil)[1:] // Length 0 encodes as one byte
		r.Length = int32(len(body))
		recs = r.AppendTo(recs)
	}
	rb := kmsg.NewRecordBatch()
	rb.PartitionLeaderEpoch = -1
	rb.Magic = 2
	rb.Attributes = o.attrs
	rb.LastOffsetDelta = int32(len(values) - 1)
	rb.FirstTimestamp = o.firstTS
	rb.MaxTimestamp = o.firstTS
	rb.ProducerID = o.pid
	rb.ProducerEpoch = o.epoch
	rb.FirstSequence = o.seq
	rb.NumRecords = int32(len(values))
	rb.Records = recs
	return seal(rb.AppendTo(nil))
}

// seal fixes batchLength and the CRC-32C after edits.
func seal(b []byte) []byte {
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], castagnoli))
	return b
}

// countBatches counts the whole batches in a fetch response's records and
// returns their base offsets.
func countBatches(t testing.TB, records []byte) []int64 {
	t.Helper()
	var bases []int64
	err := batch.Iterate(records, func(h batch.Header, _ []byte) bool {
		bases = append(bases, h.BaseOffset)
		return true
	})
	if err != nil {
		t.Fatalf("fetched records: %v", err)
	}
	return bases
}

// ---- requests ----

type topicSpec struct {
	name       string
	partitions int32
	rf         int16
	configs    map[string]string
}

func createTopicsReq(validateOnly bool, specs ...topicSpec) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10000
	req.ValidateOnly = validateOnly
	for _, s := range specs {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = s.name, s.partitions, s.rf
		for k, v := range s.configs {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = k, kmsg.StringPtr(v)
			rt.Configs = append(rt.Configs, c)
		}
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// createTopic creates a topic and fails the test if that does not work.
func createTopic(t testing.TB, c *rawConn, name string, partitions int32, configs map[string]string) {
	t.Helper()
	resp := do[*kmsg.CreateTopicsResponse](c, 7, createTopicsReq(false, topicSpec{name, partitions, 1, configs}))
	if code := resp.Topics[0].ErrorCode; code != 0 {
		t.Fatalf("create %s: error %d (%s)", name, code, deref(resp.Topics[0].ErrorMessage))
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// produceReq is one produce request for topic/partition → records.
func produceReq(acks int16, topic string, partition int32, records ...[]byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.Acks = acks
	req.TimeoutMillis = 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	for _, r := range records {
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Partition = partition
		rp.Records = r
		rt.Partitions = append(rt.Partitions, rp)
	}
	req.Topics = append(req.Topics, rt)
	return req
}

// produce sends one batch (produce v9) and returns the partition response.
func produce(c *rawConn, topic string, partition int32, records []byte) kmsg.ProduceResponseTopicPartition {
	c.t.Helper()
	resp := do[*kmsg.ProduceResponse](c, 9, produceReq(-1, topic, partition, records))
	return resp.Topics[0].Partitions[0]
}

// mustProduce produces and fails the test on an error code.
func mustProduce(c *rawConn, topic string, partition int32, records []byte) int64 {
	c.t.Helper()
	p := produce(c, topic, partition, records)
	if p.ErrorCode != 0 {
		c.t.Fatalf("produce to %s/%d: error %d (%s)", topic, partition, p.ErrorCode, deref(p.ErrorMessage))
	}
	return p.BaseOffset
}

func fetchReq(maxWait, minBytes, maxBytes int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID = -1
	req.MaxWaitMillis = maxWait
	req.MinBytes = minBytes
	req.MaxBytes = maxBytes
	req.SessionEpoch = -1
	return req
}

func addFetch(req *kmsg.FetchRequest, topic string, id [16]byte, partition int32, offset int64, partMax int32) {
	var rt *kmsg.FetchRequestTopic
	for i := range req.Topics {
		if req.Topics[i].Topic == topic && req.Topics[i].TopicID == id {
			rt = &req.Topics[i]
		}
	}
	if rt == nil {
		nt := kmsg.NewFetchRequestTopic()
		nt.Topic, nt.TopicID = topic, id
		req.Topics = append(req.Topics, nt)
		rt = &req.Topics[len(req.Topics)-1]
	}
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition = partition
	rp.FetchOffset = offset
	rp.PartitionMaxBytes = partMax
	rp.CurrentLeaderEpoch = -1
	rp.LastFetchedEpoch = -1
	rp.LogStartOffset = -1
	rt.Partitions = append(rt.Partitions, rp)
}

// fetchOne fetches one partition by name (fetch v12) without waiting.
func fetchOne(c *rawConn, topic string, partition int32, offset int64, maxBytes int32) kmsg.FetchResponseTopicPartition {
	c.t.Helper()
	req := fetchReq(0, 1, maxBytes)
	addFetch(req, topic, [16]byte{}, partition, offset, maxBytes)
	resp := do[*kmsg.FetchResponse](c, 12, req)
	if resp.ErrorCode != 0 {
		c.t.Fatalf("fetch: top-level error %d", resp.ErrorCode)
	}
	return resp.Topics[0].Partitions[0]
}

// listOffset asks ListOffsets (v8) for one partition.
func listOffset(c *rawConn, topic string, partition int32, ts int64) kmsg.ListOffsetsResponseTopicPartition {
	c.t.Helper()
	return listOffsetV(c, 8, topic, partition, ts)
}

func listOffsetV(c *rawConn, v int16, topic string, partition int32, ts int64) kmsg.ListOffsetsResponseTopicPartition {
	c.t.Helper()
	return do[*kmsg.ListOffsetsResponse](c, v, listOffsetsReq(topic, partition, ts, 1)).Topics[0].Partitions[0]
}

// listOffsetV0 asks ListOffsets v0 for at most max offsets.
func listOffsetV0(c *rawConn, topic string, partition int32, ts int64, max int32) kmsg.ListOffsetsResponseTopicPartition {
	c.t.Helper()
	return do[*kmsg.ListOffsetsResponse](c, 0, listOffsetsReq(topic, partition, ts, max)).Topics[0].Partitions[0]
}

func listOffsetsReq(topic string, partition int32, ts int64, max int32) *kmsg.ListOffsetsRequest {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition, rp.Timestamp, rp.MaxNumOffsets, rp.CurrentLeaderEpoch = partition, ts, max, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// latest is ListOffsets -1 (the high watermark), failing on an error.
func latest(c *rawConn, topic string, partition int32) int64 {
	c.t.Helper()
	p := listOffset(c, topic, partition, -1)
	if p.ErrorCode != 0 {
		c.t.Fatalf("list offsets %s/%d: error %d", topic, partition, p.ErrorCode)
	}
	return p.Offset
}

// metadata asks for the named topics (v12, auto-create allowed).
func metadata(c *rawConn, names ...string) *kmsg.MetadataResponse {
	c.t.Helper()
	req := kmsg.NewPtrMetadataRequest()
	req.AllowAutoTopicCreation = true
	for _, n := range names {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(n)
		req.Topics = append(req.Topics, rt)
	}
	return do[*kmsg.MetadataResponse](c, 12, req)
}

// topicID looks a topic's id up through Metadata.
func topicID(c *rawConn, name string) [16]byte {
	c.t.Helper()
	resp := metadata(c, name)
	if resp.Topics[0].ErrorCode != 0 {
		c.t.Fatalf("metadata %s: error %d", name, resp.Topics[0].ErrorCode)
	}
	return resp.Topics[0].TopicID
}

// serving checks that a fresh connection is answered.
func serving(t testing.TB, addr string) {
	t.Helper()
	c := dialRaw(t, addr)
	resp := do[*kmsg.MetadataResponse](c, 12, kmsg.NewPtrMetadataRequest())
	if len(resp.Brokers) != 1 {
		t.Fatalf("metadata from a fresh connection: %d brokers", len(resp.Brokers))
	}
	c.nc.Close()
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}
