package kafka

// ListGroups: v0-v5
//
// The groups this agent coordinates (clients ask every agent and merge),
// optionally filtered by state (v4+) and type (v5+: "classic", or
// "consumer" for KIP-848 groups).
// With an authorizer: every group with DESCRIBE on the cluster, else only
// the groups with DESCRIBE on them (no error).
//
// Version notes:
// * v3: flexible versions
// * v4: StatesFilter, GroupState
// * v5: TypesFilter, GroupType

import (
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(16, 0, 5, handleListGroups) }

func handleListGroups(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.ListGroupsRequest)
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	all := r.allowedCluster(metadata.OpDescribe)
	for _, c := range s.b.Coordinators() {
		infos, code := c.List()
		if code != 0 {
			resp.ErrorCode = code
			continue
		}
		for _, g := range infos {
			if len(req.StatesFilter) > 0 && !slices.ContainsFunc(req.StatesFilter, func(s string) bool { return strings.EqualFold(s, g.State.String()) }) {
				continue
			}
			if len(req.TypesFilter) > 0 && !slices.ContainsFunc(req.TypesFilter, func(t string) bool { return strings.EqualFold(t, g.Type) }) {
				continue
			}
			if !all && !r.allowedGroup(g.ID, metadata.OpDescribe) {
				continue
			}
			lg := kmsg.NewListGroupsResponseGroup()
			lg.Group, lg.ProtocolType, lg.GroupState, lg.GroupType = g.ID, g.ProtocolType, g.State.String(), g.Type
			resp.Groups = append(resp.Groups, lg)
		}
	}
	slices.SortFunc(resp.Groups, func(x, y kmsg.ListGroupsResponseGroup) int { return strings.Compare(x.Group, y.Group) })
	return now(resp), nil
}
