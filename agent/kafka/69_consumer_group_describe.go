package kafka

// ConsumerGroupDescribe: v0-v1
//
// Consumer-protocol (KIP-848) groups this agent coordinates: state, group
// and assignment epochs, assignor, and each member's subscription, epoch,
// current and target assignment. GROUP_ID_NOT_FOUND for unknown and
// classic groups, NOT_COORDINATOR for groups coordinated elsewhere.
// With an authorizer: DESCRIBE on each group (GROUP_AUTHORIZATION_FAILED)
// and, as Kafka 4.0, on every topic its members are or will be assigned
// (else TOPIC_AUTHORIZATION_FAILED, nothing else told).
//
// Version notes:
// * v1: MemberType

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(69, 0, 1, handleConsumerGroupDescribe) }

func handleConsumerGroupDescribe(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.ConsumerGroupDescribeRequest)
	resp := req.ResponseKind().(*kmsg.ConsumerGroupDescribeResponse)
	names := s.b.GroupTopicNames()
	for _, id := range req.Groups {
		fail := func(code int16, msg string) {
			g := kmsg.NewConsumerGroupDescribeResponseGroup()
			g.Group, g.ErrorCode = id, code
			if msg != "" {
				g.ErrorMessage = kmsg.StringPtr(msg)
			}
			resp.Groups = append(resp.Groups, g)
		}
		if !r.allowedGroup(id, metadata.OpDescribe) {
			fail(kerr.GroupAuthorizationFailed.Code, r.Principal()+" may not describe group "+id)
			continue
		}
		c, code := s.b.Coordinator(id)
		if code != 0 {
			fail(code, "")
			continue
		}
		g := c.DescribeConsumer(id, names)
		if !r.mayDescribeAssigned(g) {
			fail(kerr.TopicAuthorizationFailed.Code, r.Principal()+" may not describe every topic of group "+id)
			continue
		}
		if req.IncludeAuthorizedOperations && g.ErrorCode == 0 {
			g.AuthorizedOperations = r.authorizedOps(metadata.ResourceGroup, id, groupOps)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return now(resp), nil
}

// mayDescribeAssigned says whether the principal may describe every topic
// in the group's members' current and target assignments (topics no
// longer known by id have no name to hide).
func (r *request) mayDescribeAssigned(g kmsg.ConsumerGroupDescribeResponseGroup) bool {
	for _, m := range g.Members {
		for _, a := range []kmsg.Assignment{m.Assignment, m.TargetAssignment} {
			for _, tp := range a.TopicPartitions {
				if tp.Topic != "" && !r.allowedTopic(tp.Topic, metadata.OpDescribe) {
					return false
				}
			}
		}
	}
	return true
}
