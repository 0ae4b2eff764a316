package kafka

// SyncGroup: v0-v5
//
// The group leader sends the assignment it computed; every member's
// SyncGroup is answered with its part once the assignment is committed to
// the group's offsets partition. REBALANCE_IN_PROGRESS while members are
// rejoining; ILLEGAL_GENERATION for an old generation.
// With an authorizer: READ on the group (GROUP_AUTHORIZATION_FAILED).
//
// Version notes:
// * v3: InstanceID
// * v4: flexible versions
// * v5: ProtocolType and Protocol, checked against the group's

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(14, 0, 5, handleSyncGroup) }

func handleSyncGroup(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.SyncGroupRequest)
	c, code := s.b.Coordinator(req.Group)
	if !r.allowedGroup(req.Group, metadata.OpRead) {
		code = kerr.GroupAuthorizationFailed.Code
	}
	if code != 0 {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = code
		return now(resp), nil
	}
	ch := make(chan *kmsg.SyncGroupResponse, 1)
	c.Sync(req, func(resp *kmsg.SyncGroupResponse) { ch <- resp })
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
