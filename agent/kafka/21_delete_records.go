package kafka

// DeleteRecords: v0-2
//
// Moves a partition's log start forward (offset -1 means the high
// watermark). The new log start is journaled first, so every replica and a
// restarted agent agree on it; then the partition drops WAL batches wholly
// below it. An offset beyond the high watermark is OFFSET_OUT_OF_RANGE.
// With an authorizer: DELETE on the topic (TOPIC_AUTHORIZATION_FAILED).
//
// Version notes:
// * v2: flexible versions

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/metadata"
)

func init() { register(21, 0, 2, handleDeleteRecords) }

func handleDeleteRecords(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DeleteRecordsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		t := s.b.TopicByName(rt.Topic)
		allowed := r.allowedTopic(rt.Topic, metadata.OpDelete)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			switch {
			case !allowed:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.Parts):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case t.Name == group.OffsetsTopic:
				sp.ErrorCode = kerr.InvalidTopicException.Code
			case !t.Parts[rp.Partition].IsLeader():
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
			default:
				p := t.Parts[rp.Partition]
				o := p.Offsets()
				off := rp.Offset
				if off == -1 {
					off = o.HW
				}
				switch {
				case off < 0 || off > o.HW:
					sp.ErrorCode = kerr.OffsetOutOfRange.Code
				case off <= o.LogStart:
					sp.LowWatermark = o.LogStart
				default:
					_, err := s.b.Propose(r.ctx, metadata.SetLogStart{TopicID: t.ID, Partition: rp.Partition, Offset: off})
					if err == nil {
						err = p.SetLogStart(off)
					}
					if err != nil {
						sp.ErrorCode = errCode(err)
						break
					}
					sp.LowWatermark = off
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return now(resp), nil
}
