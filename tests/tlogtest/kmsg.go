package tlogtest

import (
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func newListOffsets(topic string, p int32, ts int64) *kmsg.ListOffsetsRequest {
	req := kmsg.NewPtrListOffsetsRequest()
	rt := kmsg.NewListOffsetsRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewListOffsetsRequestTopicPartition()
	rp.Partition = p
	rp.Timestamp = ts
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// RecordBatch is an uncompressed RecordBatch v2 holding one record per
// value, as a non-idempotent producer sends it.
func RecordBatch(values ...string) []byte {
	var recs []byte
	for i, v := range values {
		r := kmsg.NewRecord()
		r.OffsetDelta = int32(i)
		r.Value = []byte(v)
		body := r.AppendTo(nil)[1:] // Length 0 encodes as one byte
		r.Length = int32(len(body))
		recs = r.AppendTo(recs)
	}
	rb := kmsg.NewRecordBatch()
	rb.PartitionLeaderEpoch = -1
	rb.Magic = 2
	rb.LastOffsetDelta = int32(len(values) - 1)
	rb.FirstTimestamp = time.Now().UnixMilli()
	rb.MaxTimestamp = rb.FirstTimestamp
	rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = -1, -1, -1
	rb.NumRecords = int32(len(values))
	rb.Records = recs
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// ProduceTo sends one batch of values to topic/p on the agent at addr
// itself, whatever metadata says leads it, and returns the partition's
// error code (and message) and base offset.
func ProduceTo(ctx context.Context, addr, topic string, p int32, acks int16, values ...string) (int16, int64, error) {
	// kgo stamps its own acks setting on raw produce requests.
	ack := kgo.AllISRAcks()
	if acks == 1 {
		ack = kgo.LeaderAck()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.RequiredAcks(ack), kgo.DisableIdempotentWrite())
	if err != nil {
		return 0, 0, err
	}
	defer cl.Close()
	req := kmsg.NewPtrProduceRequest()
	req.TimeoutMillis = 1000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Partition = p
	rp.Records = RecordBatch(values...)
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return 0, 0, err
	}
	pr := resp.(*kmsg.ProduceResponse).Topics[0].Partitions[0]
	if pr.ErrorCode != 0 && pr.ErrorMessage != nil {
		return pr.ErrorCode, pr.BaseOffset, fmt.Errorf("%s", *pr.ErrorMessage)
	}
	return pr.ErrorCode, pr.BaseOffset, nil
}
