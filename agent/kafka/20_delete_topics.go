package kafka

// DeleteTopics: v0-6
//
// Served by the controller. Removes the topic from metadata; every agent
// then closes its partitions and drops their WAL entries (and, once
// flushed data exists, garbage collection removes unreferenced objects).
// With an authorizer: DELETE on the topic (TOPIC_AUTHORIZATION_FAILED,
// asked before its existence when named; by id, an unknown id is
// UNKNOWN_TOPIC_ID and a known one's name is told only with DESCRIBE).
//
// Version notes:
// * v4: flexible versions
// * v5: ErrorMessage
// * v6: topics by name or TopicID

import (
	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/metadata"
)

func init() { register(20, 0, 6, handleDeleteTopics) }

func handleDeleteTopics(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DeleteTopicsRequest)
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	type target struct {
		name *string
		id   uuid.UUID
	}
	var targets []target
	if req.Version >= 6 {
		for _, t := range req.Topics {
			targets = append(targets, target{name: t.Topic, id: t.TopicID})
		}
	} else {
		for _, n := range req.TopicNames {
			targets = append(targets, target{name: &n})
		}
	}
	for _, tg := range targets {
		st := kmsg.NewDeleteTopicsResponseTopic()
		st.Topic = tg.name
		st.TopicID = tg.id
		state := s.b.State()
		var mt *metadata.Topic
		if tg.name != nil {
			mt, _ = state.TopicByName(*tg.name)
		} else {
			mt = state.Topics[tg.id]
		}
		switch {
		case tg.name != nil && !r.allowedTopic(*tg.name, metadata.OpDelete),
			mt != nil && tg.name == nil && !r.allowedTopic(mt.Name, metadata.OpDelete):
			st.ErrorCode = kerr.TopicAuthorizationFailed.Code
			st.ErrorMessage = kmsg.StringPtr(r.Principal() + " may not delete this topic")
			if mt != nil && tg.name == nil && r.allowedTopic(mt.Name, metadata.OpDescribe) {
				name := mt.Name
				st.Topic = &name
			}
		case mt == nil && tg.name == nil:
			st.ErrorCode = kerr.UnknownTopicID.Code
		case mt != nil && mt.Name == group.OffsetsTopic:
			st.ErrorCode = kerr.InvalidTopicException.Code
			st.ErrorMessage = errMsg(errInternalTopic)
		case mt == nil:
			st.ErrorCode = kerr.UnknownTopicOrPartition.Code
		default:
			name := mt.Name
			st.Topic = &name
			st.TopicID = mt.ID
			if _, err := s.b.Propose(r.ctx, metadata.DeleteTopic{ID: mt.ID}); err != nil {
				st.ErrorCode = errCode(err)
				st.ErrorMessage = errMsg(err)
			}
		}
		if req.Version < 5 {
			st.ErrorMessage = nil
		}
		resp.Topics = append(resp.Topics, st)
	}
	return now(resp), nil
}
