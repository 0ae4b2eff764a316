package kafka

// DeleteAcls: v0-3
//
// Removes every ACL each filter selects (MATCH selects what applies to a
// resource; ANY any pattern of the name) in one journal entry, and
// reports per filter the ACLs it removed. Per filter: INVALID_REQUEST for
// a filter naming what tlog does not keep, CLUSTER_AUTHORIZATION_FAILED
// without ALTER on the cluster; SECURITY_DISABLED without an authorizer.
//
// Version notes:
// * v1: ResourcePatternType (v0 filters literal patterns only)
// * v2: flexible versions
// * v3: the USER resource type (refused)

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(31, 0, 3, handleDeleteACLs) }

func handleDeleteACLs(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DeleteACLsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteACLsResponse)
	resp.Results = make([]kmsg.DeleteACLsResponseResult, len(req.Filters))
	st := s.b.State()
	var cmd metadata.DeleteACLs
	seen := map[metadata.ACL]bool{}
	var pending []int
	for i, wf := range req.Filters {
		res := &resp.Results[i]
		res.Default()
		switch {
		case !s.cfg.Authorizer:
			res.ErrorCode, res.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr("no authorizer is configured (--authorizer acl)")
			continue
		case !r.allowedCluster(metadata.OpAlter):
			res.ErrorCode, res.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, kmsg.StringPtr(r.Principal()+" may not delete ACLs (ALTER on the cluster)")
			continue
		}
		f, bad := aclFilterFromWire(wf.ResourceType, wf.ResourceName, wf.ResourcePatternType, wf.Principal, wf.Host,
			wf.Operation, wf.PermissionType, req.Version)
		if bad != "" {
			res.ErrorCode, res.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(bad)
			continue
		}
		for _, a := range st.MatchingACLs(f) {
			m := kmsg.NewDeleteACLsResponseResultMatchingACL()
			m.ResourceType = wireCode(aclResourceTypes, a.ResourceType)
			m.ResourcePatternType = wireCode(aclPatternTypes, a.PatternType)
			m.ResourceName, m.Principal, m.Host = a.Name, a.Principal, a.Host
			m.Operation = wireCode(aclOperations, a.Operation)
			m.PermissionType = wireCode(aclPermissions, a.Permission)
			res.MatchingACLs = append(res.MatchingACLs, m)
			if !seen[a] {
				seen[a] = true
				cmd.ACLs = append(cmd.ACLs, a)
			}
		}
		pending = append(pending, i)
	}
	if len(cmd.ACLs) > 0 {
		if _, err := s.b.Propose(r.ctx, cmd); err != nil {
			for _, i := range pending {
				resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = errCode(err), errMsg(err)
				resp.Results[i].MatchingACLs = nil
			}
		} else {
			s.log.Info("ACLs deleted", "principal", r.Principal(), "count", len(cmd.ACLs))
		}
	}
	return now(resp), nil
}
