package agent

// DescribeGroups: v0-v5
//
// State, protocol type, chosen protocol and members (client id, host,
// metadata, assignment) of groups this agent coordinates; NOT_COORDINATOR
// for the others, Dead with no members for unknown ones (as Kafka).
//
// Version notes:
// * v3: AuthorizedOperations (unknown)
// * v4: InstanceID of members
// * v5: flexible versions

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(15, 0, 5, handleDescribeGroups) }

func handleDescribeGroups(a *Agent, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DescribeGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	for _, id := range req.Groups {
		c, code := a.coordinatorFor(id)
		if code != 0 {
			g := kmsg.NewDescribeGroupsResponseGroup()
			g.Group, g.ErrorCode = id, code
			resp.Groups = append(resp.Groups, g)
			continue
		}
		resp.Groups = append(resp.Groups, c.Describe(id))
	}
	return now(resp), nil
}
