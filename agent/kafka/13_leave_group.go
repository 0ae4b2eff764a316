package kafka

// LeaveGroup: v0-v5
//
// Members leave (v3+: several at once, by member id or group.instance.id);
// the rest rebalance, or the group becomes Empty.
// With an authorizer: READ on the group (GROUP_AUTHORIZATION_FAILED, at the
// top level only).
//
// Version notes:
// * v3: Members (batched, with instance ids)
// * v4: flexible versions
// * v5: Reason

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/metadata"
)

func init() { register(13, 0, 5, handleLeaveGroup) }

func handleLeaveGroup(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.LeaveGroupRequest)
	resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
	c, code := s.b.Coordinator(req.Group)
	if !r.allowedGroup(req.Group, metadata.OpRead) {
		code = kerr.GroupAuthorizationFailed.Code
	}
	if code != 0 {
		resp.ErrorCode = code
		return now(resp), nil
	}
	var members []group.LeaveMember
	if req.Version < 3 {
		members = []group.LeaveMember{{MemberID: req.MemberID}}
	} else {
		for _, m := range req.Members {
			members = append(members, group.LeaveMember{MemberID: m.MemberID, InstanceID: m.InstanceID})
		}
	}
	code, codes := c.Leave(req.Group, members)
	resp.ErrorCode = code
	if req.Version < 3 {
		if code == 0 && len(codes) == 1 {
			resp.ErrorCode = codes[0]
		}
		return now(resp), nil
	}
	for i, m := range req.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = m.MemberID, m.InstanceID
		if i < len(codes) {
			rm.ErrorCode = codes[i]
		}
		resp.Members = append(resp.Members, rm)
	}
	return now(resp), nil
}
