package kafka

// OffsetDelete: v0
//
// Deletes a group's committed offsets for partitions it does not consume
// (GROUP_SUBSCRIBED_TO_TOPIC for topics a live consumer-protocol member
// subscribes to or is assigned); all of them when the group is empty.
// With an authorizer: DELETE on the group (GROUP_AUTHORIZATION_FAILED at the
// top level), READ on each topic (TOPIC_AUTHORIZATION_FAILED, not deleted).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/metadata"
)

func init() { register(47, 0, 0, handleOffsetDelete) }

func handleOffsetDelete(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.OffsetDeleteRequest)
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if !r.allowedGroup(req.Group, metadata.OpDelete) {
		resp.ErrorCode = kerr.GroupAuthorizationFailed.Code
		return now(resp), nil
	}
	// Topics the principal may not read are answered
	// TOPIC_AUTHORIZATION_FAILED and not passed to the coordinator.
	denied := map[string]bool{}
	var tps []group.TP
	for _, rt := range req.Topics {
		if !r.allowedTopic(rt.Topic, metadata.OpRead) {
			denied[rt.Topic] = true
			continue
		}
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
				if denied[rt.Topic] {
					sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				} else {
					if i < len(codes) {
						sp.ErrorCode = codes[i]
					}
					i++
				}
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
