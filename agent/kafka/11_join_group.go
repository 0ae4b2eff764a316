package kafka

// JoinGroup: v0-v9
//
// The classic group protocol's join: answered when the group's rebalance
// completes (every member rejoined, or the rebalance timeout passed; a
// new group waits group.initial.rebalance.delay.ms for more members),
// with the leader getting every member's metadata to assign from. v4+
// clients joining without a member id get MEMBER_ID_REQUIRED and one to
// rejoin with (KIP-394); static members (group.instance.id, v5+) keep
// their place across restarts without a rebalance (KIP-345).
// With an authorizer: READ on the group (GROUP_AUTHORIZATION_FAILED).
//
// Version notes:
// * v1: RebalanceTimeoutMillis
// * v4: MEMBER_ID_REQUIRED
// * v5: InstanceID
// * v6: flexible versions
// * v7: ProtocolType in the response
// * v8: Reason
// * v9: SkipAssignment (KIP-814)

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(11, 0, 9, handleJoinGroup) }

func handleJoinGroup(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.JoinGroupRequest)
	c, code := s.b.Coordinator(req.Group)
	if !r.allowedGroup(req.Group, metadata.OpRead) {
		code = kerr.GroupAuthorizationFailed.Code
	}
	if code != 0 {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation, resp.MemberID = code, -1, req.MemberID
		return now(resp), nil
	}
	ch := make(chan *kmsg.JoinGroupResponse, 1)
	c.Join(req, r.clientID, r.c.clientHost(), func(resp *kmsg.JoinGroupResponse) { ch <- resp })
	return func() kmsg.Response {
		select {
		case resp := <-ch:
			resp.Version = req.Version
			return resp
		case <-r.ctx.Done():
			return nil
		}
	}, nil
}
