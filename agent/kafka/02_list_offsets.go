package kafka

// ListOffsets: v0-10
//
// Timestamps: -2 earliest (log start), -1 latest (the high watermark, or
// for read_committed the last stable offset), -3 the
// offset of the largest timestamp (v7+), -4 earliest local (v8+; the log
// start, since every retained offset is readable here); otherwise, as Kafka
// answers it, the earliest offset at or after the log start whose record
// timestamp is at or after the given one, with that record's timestamp (every
// record of a LogAppendTime batch has the batch's max timestamp). Both
// lookups span the bucket and the WAL (timestamps.go): committed ranges are
// narrowed by their min/max timestamps in metadata, WAL batches by the
// partition's index, and the batches that qualify are walked record by
// record (decompressed if need be); a batch that cannot be read or decoded
// is answered by its first offset and max timestamp, so a consumer may then
// see a few records before the timestamp, never miss one after it. A range
// the bucket cannot serve answers KAFKA_STORAGE_ERROR (retriable).
// With an authorizer: DESCRIBE on each topic (TOPIC_AUTHORIZATION_FAILED).
//
// Version notes:
// * v0: the answer is a list (OldStyleOffsets) of at most MaxNumOffsets
//   offsets, as Kafka's legacy lookup gives it for consumers: -1 the high
//   watermark, -2 the log start; for a timestamp Kafka listed the base
//   offsets of log segments last modified before it, newest first, and
//   tlog, whose segments are ranges in the bucket, lists the offset a v1
//   lookup finds (the first record at or after it; the high watermark if
//   none). Served for the tools that still send it (Burrow 1.2 asks for
//   -1 with MaxNumOffsets 1).
// * v1: one offset and its timestamp
// * v2: isolation level (read_committed: latest is the LSO)
// * v4: CurrentLeaderEpoch fencing, LeaderEpoch in response
// * v6: flexible versions
// * v9: -5, the latest offset in remote storage (KIP-1005): in tlog the
//   last offset flushed to the bucket, -1 if none is (with no timestamp
//   and leader epoch -1, as Kafka answers when it cannot name the epoch)
// * v10: TimeoutMillis (KIP-1075), ignored: a lookup is bounded by the
//   request's own life

import (
	"context"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/metadata"
)

func init() { register(2, 0, 10, handleListOffsets) }

// listOffsetsBucketTimeout bounds the bucket reads of one request's
// timestamp lookups.
const listOffsetsBucketTimeout = 30 * time.Second

func handleListOffsets(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.ListOffsetsRequest)
	// Answered in request order, as Kafka does, even when a timestamp
	// lookup waits on the bucket.
	ctx, cancel := context.WithTimeout(r.ctx, listOffsetsBucketTimeout)
	defer cancel()
	return now(s.listOffsets(ctx, r, req)), nil
}

func (s *Server) listOffsets(ctx context.Context, r *request, req *kmsg.ListOffsetsRequest) *kmsg.ListOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		t := s.b.TopicByName(rt.Topic)
		allowed := r.allowedTopic(rt.Topic, metadata.OpDescribe)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			switch {
			case !allowed:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.Parts):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case !t.Parts[rp.Partition].IsLeader() && req.ReplicaID != -2:
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
			default:
				p := t.Parts[rp.Partition]
				o := p.Offsets()
				if code := checkLeaderEpoch(rp.CurrentLeaderEpoch, o.Epoch); code != 0 {
					sp.ErrorCode = code
					break
				}
				sp.LeaderEpoch = o.Epoch
				switch ts := rp.Timestamp; {
				case ts == -2 || (ts == -4 && req.Version >= 8):
					sp.Offset = o.LogStart
				case ts == -1 && req.IsolationLevel == 1 && o.LSO < 0:
					sp.ErrorCode = errCode(partition.ErrProducersLoading)
				case ts == -1 && req.IsolationLevel == 1:
					sp.Offset = o.LSO
				case ts == -1:
					sp.Offset = o.HW
				case ts == -5 && req.Version >= 9:
					sp.Offset, sp.Timestamp, sp.LeaderEpoch = -1, -1, -1
					if o.FlushedEnd > 0 {
						sp.Offset = o.FlushedEnd - 1
					}
				case ts == -3 && req.Version >= 7:
					hit, ok, err := p.MaxTimestamp(ctx)
					setTimestampHit(&sp, hit, ok, err)
				case ts < 0:
					sp.ErrorCode = kerr.UnsupportedVersion.Code
				default:
					hit, ok, err := p.OffsetForTimestamp(ctx, ts)
					setTimestampHit(&sp, hit, ok, err)
					if req.Version == 0 && err == nil && !ok {
						sp.Offset = o.HW
					}
				}
			}
			if req.Version == 0 {
				legacyOffsets(&sp, rp.MaxNumOffsets)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

// legacyOffsets puts a v1-style answer as v0's list: the offset found
// (none on an error), at most max of them.
func legacyOffsets(sp *kmsg.ListOffsetsResponseTopicPartition, max int32) {
	if sp.ErrorCode == 0 && max > 0 && sp.Offset >= 0 {
		sp.OldStyleOffsets = []int64{sp.Offset}
	} else {
		sp.OldStyleOffsets = []int64{}
	}
}

// setTimestampHit answers a timestamp lookup: the record found with the
// epoch of its batch, which clients use to detect truncation; offset,
// timestamp and epoch -1 when there is none.
func setTimestampHit(sp *kmsg.ListOffsetsResponseTopicPartition, hit partition.Hit, ok bool, err error) {
	switch {
	case err != nil:
		sp.ErrorCode, sp.LeaderEpoch = errCode(err), -1
	case ok:
		sp.Offset, sp.Timestamp, sp.LeaderEpoch = hit.Offset, hit.Timestamp, hit.Epoch
	default:
		sp.LeaderEpoch = -1
	}
}
