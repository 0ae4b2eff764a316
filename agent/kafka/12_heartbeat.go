package kafka

// Heartbeat: v0-v4
//
// Keeps a member's session alive; REBALANCE_IN_PROGRESS tells it to
// rejoin, UNKNOWN_MEMBER_ID that it was removed, ILLEGAL_GENERATION that
// it missed a generation, FENCED_INSTANCE_ID that a newer process with its
// group.instance.id took its place.
// With an authorizer: READ on the group (GROUP_AUTHORIZATION_FAILED).
//
// Version notes:
// * v3: InstanceID
// * v4: flexible versions

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(12, 0, 4, handleHeartbeat) }

func handleHeartbeat(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.HeartbeatRequest)
	resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
	c, code := s.b.Coordinator(req.Group)
	if !r.allowedGroup(req.Group, metadata.OpRead) {
		code = kerr.GroupAuthorizationFailed.Code
	}
	if code == 0 {
		code = c.Heartbeat(req)
	}
	resp.ErrorCode = code
	return now(resp), nil
}
