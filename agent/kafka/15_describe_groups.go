package kafka

// DescribeGroups: v0-v5
//
// State, protocol type, chosen protocol and members (client id, host,
// metadata, assignment) of groups this agent coordinates; NOT_COORDINATOR
// for the others, Dead with no members for unknown ones (as Kafka). A
// consumer-protocol (KIP-848) group is shown as a classic "consumer"
// group would be: members with their subscriptions and current
// assignments in the consumer protocol's encoding, the assignor as the
// protocol (Kafka answers GROUP_ID_NOT_FOUND instead; this way tools that
// compute lag from DescribeGroups keep working).
// With an authorizer: DESCRIBE on each group (GROUP_AUTHORIZATION_FAILED
// for that group, nothing else told).
//
// Version notes:
// * v3: AuthorizedOperations (when IncludeAuthorizedOperations)
// * v4: InstanceID of members
// * v5: flexible versions

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(15, 0, 5, handleDescribeGroups) }

func handleDescribeGroups(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	var names map[[16]byte]string
	for _, id := range req.Groups {
		c, code := s.b.Coordinator(id)
		if !r.allowedGroup(id, metadata.OpDescribe) {
			code = kerr.GroupAuthorizationFailed.Code
		}
		if code != 0 {
			g := kmsg.NewDescribeGroupsResponseGroup()
			g.Group, g.ErrorCode = id, code
			resp.Groups = append(resp.Groups, g)
			continue
		}
		if names == nil {
			names = s.b.GroupTopicNames()
		}
		g := c.Describe(id, names)
		if req.Version >= 3 && req.IncludeAuthorizedOperations && g.ErrorCode == 0 {
			g.AuthorizedOperations = r.authorizedOps(metadata.ResourceGroup, id, groupOps)
		}
		resp.Groups = append(resp.Groups, g)
	}
	return now(resp), nil
}
