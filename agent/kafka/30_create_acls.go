package kafka

// CreateAcls: v0-3
//
// Adds ACLs to the journal, all of a request's valid ones in one entry
// (an ACL already there is kept once). Per creation: INVALID_REQUEST for
// one tlog cannot hold (a principal not User:NAME, the USER resource
// type, ANY or MATCH patterns, the cluster named other than
// kafka-cluster, a prefixed "*"), CLUSTER_AUTHORIZATION_FAILED without
// ALTER on the cluster; SECURITY_DISABLED for all without an authorizer.
//
// Version notes:
// * v1: ResourcePatternType (v0 creates literal ACLs)
// * v2: flexible versions
// * v3: the USER resource type (refused)

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(30, 0, 3, handleCreateACLs) }

func handleCreateACLs(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.CreateACLsRequest)
	resp := req.ResponseKind().(*kmsg.CreateACLsResponse)
	resp.Results = make([]kmsg.CreateACLsResponseResult, len(req.Creations))
	var cmd metadata.CreateACLs
	var pending []int // results waiting on the journal
	for i, c := range req.Creations {
		res := &resp.Results[i]
		res.Default()
		switch {
		case !s.cfg.Authorizer:
			res.ErrorCode, res.ErrorMessage = kerr.SecurityDisabled.Code, kmsg.StringPtr("no authorizer is configured (--authorizer acl)")
			continue
		case !r.allowedCluster(metadata.OpAlter):
			res.ErrorCode, res.ErrorMessage = kerr.ClusterAuthorizationFailed.Code, kmsg.StringPtr(r.Principal()+" may not create ACLs (ALTER on the cluster)")
			continue
		}
		a, bad := aclFromWire(c, req.Version)
		if bad == "" {
			if err := a.Validate(); err != nil {
				bad = err.Error()
			}
		}
		if bad != "" {
			res.ErrorCode, res.ErrorMessage = kerr.InvalidRequest.Code, kmsg.StringPtr(bad)
			continue
		}
		cmd.ACLs = append(cmd.ACLs, a)
		pending = append(pending, i)
	}
	if len(cmd.ACLs) > 0 {
		if _, err := s.b.Propose(r.ctx, cmd); err != nil {
			code := errCode(err)
			if errors.Is(err, metadata.ErrInvalidCommand) {
				code = kerr.InvalidRequest.Code
			}
			for _, i := range pending {
				resp.Results[i].ErrorCode, resp.Results[i].ErrorMessage = code, errMsg(err)
			}
		} else {
			s.log.Info("ACLs created", "principal", r.Principal(), "count", len(cmd.ACLs))
		}
	}
	return now(resp), nil
}
