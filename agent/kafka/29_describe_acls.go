package kafka

// DescribeAcls: v0-3
//
// Lists the ACLs one filter selects, grouped by resource pattern. Needs
// DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED); without an
// authorizer SECURITY_DISABLED, as Kafka answers. A filter naming what
// tlog does not keep (the USER resource type, an unknown enum) is
// INVALID_REQUEST.
//
// Version notes:
// * v1: ResourcePatternType (v0 filters literal patterns only)
// * v2: flexible versions
// * v3: the USER resource type (answered INVALID_REQUEST here)

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(29, 0, 3, handleDescribeACLs) }

func handleDescribeACLs(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DescribeACLsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeACLsResponse)
	fail := func(code int16, msg string) (reply, error) {
		resp.ErrorCode, resp.ErrorMessage = code, kmsg.StringPtr(msg)
		return now(resp), nil
	}
	if !s.cfg.Authorizer {
		return fail(kerr.SecurityDisabled.Code, "no authorizer is configured (--authorizer acl)")
	}
	if !r.allowedCluster(metadata.OpDescribe) {
		return fail(kerr.ClusterAuthorizationFailed.Code, r.Principal()+" may not list ACLs (DESCRIBE on the cluster)")
	}
	f, bad := aclFilterFromWire(req.ResourceType, req.ResourceName, req.ResourcePatternType, req.Principal, req.Host,
		req.Operation, req.PermissionType, req.Version)
	if bad != "" {
		return fail(kerr.InvalidRequest.Code, bad)
	}
	byResource := map[[3]string]int{}
	for _, a := range s.b.State().MatchingACLs(f) {
		key := [3]string{a.ResourceType, a.PatternType, a.Name}
		i, ok := byResource[key]
		if !ok {
			i = len(resp.Resources)
			byResource[key] = i
			res := kmsg.NewDescribeACLsResponseResource()
			res.ResourceType = wireCode(aclResourceTypes, a.ResourceType)
			res.ResourcePatternType = wireCode(aclPatternTypes, a.PatternType)
			res.ResourceName = a.Name
			resp.Resources = append(resp.Resources, res)
		}
		acl := kmsg.NewDescribeACLsResponseResourceACL()
		acl.Principal, acl.Host = a.Principal, a.Host
		acl.Operation = wireCode(aclOperations, a.Operation)
		acl.PermissionType = wireCode(aclPermissions, a.Permission)
		resp.Resources[i].ACLs = append(resp.Resources[i].ACLs, acl)
	}
	return now(resp), nil
}
