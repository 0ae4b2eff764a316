package kafka

// FindCoordinator: v0-v6
//
// A group's coordinator is the leader of its __consumer_offsets partition
// (abs(javaHash(group)) % partitions, as Kafka). The topic is created on
// the first request, answered COORDINATOR_NOT_AVAILABLE meanwhile so the
// client retries; so is a partition without a live leader. A
// transactional id's coordinator (type 1) is the leader of its
// __transaction_state partition, found the same way.
// With an authorizer: DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED) or
// transactional id (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), per key, before
// the internal topic is created.
//
// Version notes:
// * v1: CoordinatorType, ErrorMessage
// * v3: flexible versions
// * v4: batched CoordinatorKeys (KIP-699)
// * v6: share coordinators (type 2, KIP-932): tlog has no share groups,
//   so type 2 keys are INVALID_REQUEST

import (
	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/agent/txn"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(10, 0, 6, handleFindCoordinator) }

func handleFindCoordinator(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	// Keys the principal may not describe are answered before anything
	// else, and only allowed ones create the internal topic.
	denied := make([]int16, len(keys))
	anyAllowed := false
	for i, key := range keys {
		switch {
		case req.CoordinatorType == 0 && !r.allowedGroup(key, metadata.OpDescribe):
			denied[i] = kerr.GroupAuthorizationFailed.Code
		case req.CoordinatorType == 1 && !r.allowedTxnID(key, metadata.OpDescribe):
			denied[i] = kerr.TransactionalIDAuthorizationFailed.Code
		default:
			anyAllowed = true
		}
	}
	switch {
	case len(keys) > 0 && !anyAllowed:
	case req.CoordinatorType == 0 && s.b.TopicByName(group.OffsetsTopic) == nil:
		if err := s.b.EnsureOffsetsTopic(r.ctx); err != nil {
			s.log.Warn("create "+group.OffsetsTopic, "err", err)
		}
	case req.CoordinatorType == 1 && s.b.TopicByName(txn.Topic) == nil:
		if err := s.b.EnsureTxnTopic(r.ctx); err != nil {
			s.log.Warn("create "+txn.Topic, "err", err)
		}
	}
	for i, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID = key, -1
		switch denied[i] {
		case 0:
			c.ErrorCode, c.ErrorMessage = s.findCoordinator(r.c.lst.Name, req.CoordinatorType, key, &c)
		case kerr.GroupAuthorizationFailed.Code:
			c.ErrorCode, c.ErrorMessage = denied[i], kmsg.StringPtr(r.Principal()+" may not describe group "+key)
		default:
			c.ErrorCode, c.ErrorMessage = denied[i], kmsg.StringPtr(r.Principal()+" may not describe transactional id "+key)
		}
		resp.Coordinators = append(resp.Coordinators, c)
	}
	if req.Version < 4 && len(resp.Coordinators) == 1 {
		c := resp.Coordinators[0]
		resp.Coordinators = nil
		resp.ErrorCode, resp.NodeID, resp.Host, resp.Port = c.ErrorCode, c.NodeID, c.Host, c.Port
		if req.Version >= 1 {
			resp.ErrorMessage = c.ErrorMessage
		}
	}
	return now(resp), nil
}

func (s *Server) findCoordinator(listener string, typ int8, key string, c *kmsg.FindCoordinatorResponseCoordinator) (int16, *string) {
	msg := func(s string) *string { return &s }
	topicName := group.OffsetsTopic
	switch {
	case typ == 1:
		if key == "" {
			return kerr.InvalidRequest.Code, msg("empty transactional id")
		}
		topicName = txn.Topic
	case typ == 2:
		return kerr.InvalidRequest.Code, msg("share groups (KIP-932) are not served")
	case typ != 0:
		return kerr.InvalidRequest.Code, msg("unknown coordinator type")
	case key == "":
		return kerr.InvalidGroupID.Code, msg("empty group id")
	}
	t := s.b.TopicByName(topicName)
	if t == nil || len(t.Parts) == 0 {
		return kerr.CoordinatorNotAvailable.Code, msg(topicName + " is being created")
	}
	mp := t.Meta.Partitions[group.CoordinatorPartition(key, len(t.Parts))]
	st := s.b.State()
	ag, ok := st.Agents[mp.Leader]
	if mp.Leader < 0 || !ok || ag.Fenced {
		return kerr.CoordinatorNotAvailable.Code, msg("the coordinator's partition of " + topicName + " has no live leader")
	}
	c.NodeID = ag.ID
	c.Host, c.Port = splitHostPort(ag.AddrFor(listener))
	return 0, nil
}
