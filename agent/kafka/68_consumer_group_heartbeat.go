package kafka

// ConsumerGroupHeartbeat: v0-v1
//
// The consumer group protocol of KIP-848: members join (epoch 0),
// heartbeat with their epoch and owned partitions, and leave (-1, or -2
// for a static member coming back); the coordinator assigns partitions
// itself with the "uniform" or "range" assignor and answers each member
// with its next assignment (agent/group/consumer.go). Answers wait until
// the change they carry is committed to __consumer_offsets.
// With an authorizer: READ on the group (GROUP_AUTHORIZATION_FAILED) and,
// as Kafka 4.0, DESCRIBE on every SubscribedTopicNames topic
// (TOPIC_AUTHORIZATION_FAILED); regex subscriptions are not filtered.
//
// Version notes:
// * v0: the coordinator names a joining member
// * v1: members name themselves (KIP-1082); SubscribedTopicRegex

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(68, 0, 1, handleConsumerGroupHeartbeat) }

func handleConsumerGroupHeartbeat(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.ConsumerGroupHeartbeatRequest)
	refuse := func(code int16, msg string) (reply, error) {
		resp := req.ResponseKind().(*kmsg.ConsumerGroupHeartbeatResponse)
		resp.ErrorCode = code
		if msg != "" {
			resp.ErrorMessage = kmsg.StringPtr(msg)
		}
		return now(resp), nil
	}
	if !r.allowedGroup(req.Group, metadata.OpRead) {
		return refuse(kerr.GroupAuthorizationFailed.Code, r.Principal()+" may not read group "+req.Group)
	}
	for _, t := range req.SubscribedTopicNames {
		if !r.allowedTopic(t, metadata.OpDescribe) {
			return refuse(kerr.TopicAuthorizationFailed.Code, r.Principal()+" may not describe topic "+t)
		}
	}
	c, code := s.b.Coordinator(req.Group)
	if code != 0 {
		return refuse(code, "")
	}
	ch := make(chan *kmsg.ConsumerGroupHeartbeatResponse, 1)
	c.ConsumerHeartbeat(req, r.clientID, r.c.clientHost(), func(resp *kmsg.ConsumerGroupHeartbeatResponse) { ch <- resp })
	return func() kmsg.Response {
		select {
		case resp := <-ch:
			return resp
		case <-r.ctx.Done():
			return nil
		}
	}, nil
}
