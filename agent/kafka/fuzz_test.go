package kafka

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// seedRequests are requests as franz-go's formatter encodes them on the
// wire (the same code kgo sends with), minus the 4-byte size prefix.
func seedRequests(tb testing.TB) [][]byte {
	tb.Helper()
	f := kmsg.NewRequestFormatter(kmsg.FormatterClientID("kgo"))
	strp := func(s string) *string { return &s }
	var reqs []kmsg.Request

	av := kmsg.NewPtrApiVersionsRequest()
	av.Version = 3
	av.ClientSoftwareName, av.ClientSoftwareVersion = "kgo", "1.0.0"
	reqs = append(reqs, av)

	md := kmsg.NewPtrMetadataRequest()
	md.Version = 12
	mt := kmsg.NewMetadataRequestTopic()
	mt.Topic = strp("fuzz")
	md.Topics = append(md.Topics, mt)
	md.AllowAutoTopicCreation = true
	reqs = append(reqs, md)

	ct := kmsg.NewPtrCreateTopicsRequest()
	ct.Version = 7
	ctt := kmsg.NewCreateTopicsRequestTopic()
	ctt.Topic, ctt.NumPartitions, ctt.ReplicationFactor = "fuzz2", 2, 1
	ct.Topics = append(ct.Topics, ctt)
	reqs = append(reqs, ct)

	pr := kmsg.NewPtrProduceRequest()
	pr.Version = 9
	pr.Acks = -1
	pr.TimeoutMillis = 1000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic = "fuzz"
	pp := kmsg.NewProduceRequestTopicPartition()
	pp.Records = sampleBatch()
	pt.Partitions = append(pt.Partitions, pp)
	pr.Topics = append(pr.Topics, pt)
	reqs = append(reqs, pr)

	fr := kmsg.NewPtrFetchRequest()
	fr.Version = 12
	fr.MaxWaitMillis = 1
	fr.MaxBytes = 1 << 20
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "fuzz"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	fp.CurrentLeaderEpoch = -1
	ft.Partitions = append(ft.Partitions, fp)
	fr.Topics = append(fr.Topics, ft)
	reqs = append(reqs, fr)

	lo := kmsg.NewPtrListOffsetsRequest()
	lo.Version = 7
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "fuzz"
	lp := kmsg.NewListOffsetsRequestTopicPartition()
	lp.Timestamp = -1
	lt.Partitions = append(lt.Partitions, lp)
	lo.Topics = append(lo.Topics, lt)
	reqs = append(reqs, lo)

	ip := kmsg.NewPtrInitProducerIDRequest()
	ip.Version = 4
	reqs = append(reqs, ip)

	dc := kmsg.NewPtrDescribeConfigsRequest()
	dc.Version = 4
	dr := kmsg.NewDescribeConfigsRequestResource()
	dr.ResourceType, dr.ResourceName = 2, "fuzz"
	dc.Resources = append(dc.Resources, dr)
	reqs = append(reqs, dc)

	var out [][]byte
	for i, r := range reqs {
		b := f.AppendRequest(nil, r, int32(i))
		out = append(out, b[4:])
	}
	return out
}

// sampleBatch is a valid one-record, uncompressed RecordBatch v2.
func sampleBatch() []byte {
	rec := kmsg.NewRecord()
	rec.Key = []byte("k")
	rec.Value = []byte("hello")
	recBytes := rec.AppendTo(nil)
	b := kmsg.NewRecordBatch()
	b.Magic = 2
	b.ProducerID = -1
	b.ProducerEpoch = -1
	b.FirstSequence = -1
	b.NumRecords = 1
	b.FirstTimestamp = time.Now().UnixMilli()
	b.MaxTimestamp = b.FirstTimestamp
	b.Records = recBytes
	raw := b.AppendTo(nil)
	binary.BigEndian.PutUint32(raw[8:], uint32(len(raw)-12))
	crc := crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli))
	binary.BigEndian.PutUint32(raw[17:], crc)
	return raw
}

// FuzzDecodeRequest feeds arbitrary request bodies through the decoder and,
// when they decode, through the handler and its reply: whatever the bytes,
// the front end must answer or refuse, never panic or hang.
func FuzzDecodeRequest(f *testing.F) {
	for _, s := range seedRequests(f) {
		f.Add(s)
	}
	s, _, _ := startServer(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		c := &conn{s: s, remote: "fuzz", pending: make(chan pendingReply, 4), done: make(chan struct{})}
		r, early, err := c.decode(body)
		if err != nil || early != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		r.ctx = ctx
		// Bound long polls so the fuzzer keeps moving.
		if fr, ok := r.kreq.(*kmsg.FetchRequest); ok && fr.MaxWaitMillis > 10 {
			fr.MaxWaitMillis = 10
		}
		if pr, ok := r.kreq.(*kmsg.ProduceRequest); ok && pr.TimeoutMillis > 100 {
			pr.TimeoutMillis = 100
		}
		// Keep the one shared backend small: every iteration may create
		// topics, and 100,000-partition topics would only measure memory.
		if ct, ok := r.kreq.(*kmsg.CreateTopicsRequest); ok {
			for i := range ct.Topics {
				ct.Topics[i].NumPartitions = min(ct.Topics[i].NumPartitions, 4)
				if len(ct.Topics[i].ReplicaAssignment) > 4 {
					ct.Topics[i].ReplicaAssignment = ct.Topics[i].ReplicaAssignment[:4]
				}
			}
		}
		if cp, ok := r.kreq.(*kmsg.CreatePartitionsRequest); ok {
			for i := range cp.Topics {
				cp.Topics[i].Count = min(cp.Topics[i].Count, 8)
			}
		}
		fn, err := c.handle(r)
		if err != nil || fn == nil {
			return
		}
		resp := c.complete(pendingReply{corr: r.corr, key: r.kreq.Key(), fn: fn})
		if resp != nil {
			_ = resp.AppendTo(nil)
		}
	})
}

func TestSeedRequestsDecode(t *testing.T) {
	s, _, _ := startServer(t)
	for i, body := range seedRequests(t) {
		c := &conn{s: s, remote: "test", pending: make(chan pendingReply, 4), done: make(chan struct{})}
		r, _, err := c.decode(body)
		if err != nil || r == nil {
			t.Fatalf("seed %d: decode: %v", i, err)
		}
		r.ctx = context.Background()
		fn, err := c.handle(r)
		if err != nil {
			t.Fatalf("seed %d (%s): %v", i, kmsg.NameForKey(r.kreq.Key()), err)
		}
		if fn != nil && c.complete(pendingReply{corr: r.corr, key: r.kreq.Key(), fn: fn}) == nil {
			t.Fatalf("seed %d: no response", i)
		}
	}
}

func TestSkipTagsRefusesImpossibleCounts(t *testing.T) {
	// A count of 2^32-1 tags followed by nothing.
	rd := kbin.Reader{Src: []byte{0xff, 0xff, 0xff, 0xff, 0x0f}}
	if skipTags(&rd) {
		t.Fatal("skipTags accepted a tag count larger than the bytes left")
	}
	rd = kbin.Reader{Src: []byte{0x01, 0x00, 0x01, 0xaa}}
	if !skipTags(&rd) || len(rd.Src) != 0 {
		t.Fatalf("skipTags on one 1-byte tag: ok=%v, %d bytes left", rd.Ok(), len(rd.Src))
	}
}
