package kafka

// DeleteGroups: v0-v2
//
// Deletes empty groups and their committed offsets (tombstones in the
// offsets partition); NON_EMPTY_GROUP while members remain,
// GROUP_ID_NOT_FOUND for unknown ones.
// With an authorizer: DELETE on each group (GROUP_AUTHORIZATION_FAILED for
// that group, not deleted).
//
// Version notes:
// * v2: flexible versions

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(42, 0, 2, handleDeleteGroups) }

func handleDeleteGroups(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DeleteGroupsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	codes := make([]chan int16, len(req.Groups))
	for i, id := range req.Groups {
		codes[i] = make(chan int16, 1)
		c, code := s.b.Coordinator(id)
		if !r.allowedGroup(id, metadata.OpDelete) {
			code = kerr.GroupAuthorizationFailed.Code
		}
		if code != 0 {
			codes[i] <- code
			continue
		}
		ch := codes[i]
		c.Delete(id, func(code int16) { ch <- code })
	}
	return func() kmsg.Response {
		for i, id := range req.Groups {
			g := kmsg.NewDeleteGroupsResponseGroup()
			g.Group = id
			select {
			case g.ErrorCode = <-codes[i]:
			case <-r.ctx.Done():
				return nil
			}
			resp.Groups = append(resp.Groups, g)
		}
		return resp
	}, nil
}
