package kafka

// OffsetDelete: v0
//
// Deletes a group's committed offsets for partitions it does not consume
// (GROUP_SUBSCRIBED_TO_TOPIC for topics a live consumer-protocol member
// subscribes to or is assigned); all of them when the group is empty.

import (
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/group"
)

func init() { register(47, 0, 0, handleOffsetDelete) }

func handleOffsetDelete(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.OffsetDeleteRequest)
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	var tps []group.TP
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			tps = append(tps, group.TP{Topic: rt.Topic, Partition: rp.Partition})
		}
	}
	fill := func(code int16, codes []int16) *kmsg.OffsetDeleteResponse {
		resp.ErrorCode = code
		i := 0
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetDeleteResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetDeleteResponseTopicPartition()
				sp.Partition = rp.Partition
				if i < len(codes) {
					sp.ErrorCode = codes[i]
				}
				i++
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp
	}
	c, code := s.b.Coordinator(req.Group)
	if code != 0 {
		return now(fill(code, nil)), nil
	}
	ch := make(chan *kmsg.OffsetDeleteResponse, 1)
	c.DeleteOffsets(req.Group, tps, func(code int16, codes []int16) { ch <- fill(code, codes) })
	return func() kmsg.Response {
		select {
		case resp := <-ch:
			return resp
		case <-r.ctx.Done():
			return nil
		}
	}, nil
}
