package kafka

// ConsumerGroupDescribe: v0-v1
//
// Consumer-protocol (KIP-848) groups this agent coordinates: state, group
// and assignment epochs, assignor, and each member's subscription, epoch,
// current and target assignment. GROUP_ID_NOT_FOUND for unknown and
// classic groups, NOT_COORDINATOR for groups coordinated elsewhere.
//
// Version notes:
// * v1: MemberType

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(69, 0, 1, handleConsumerGroupDescribe) }

func handleConsumerGroupDescribe(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.ConsumerGroupDescribeRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	names := s.b.GroupTopicNames()
	for _, id := range req.Groups {
		c, code := s.b.Coordinator(id)
		if code != 0 {
			g := kmsg.NewConsumerGroupDescribeResponseGroup()
			g.Group, g.ErrorCode = id, code
			resp.Groups = append(resp.Groups, g)
			continue
		}
		resp.Groups = append(resp.Groups, c.DescribeConsumer(id, names))
	}
	return now(resp), nil
}
