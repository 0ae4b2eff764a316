package agent

// FindCoordinator: v0-v5
//
// A group's coordinator is the leader of its __consumer_offsets partition
// (abs(javaHash(group)) % partitions, as Kafka). The topic is created on
// the first request, answered COORDINATOR_NOT_AVAILABLE meanwhile so the
// client retries; so is a partition without a live leader. Transaction
// coordinators (type 1) are not served: transactions are not.
//
// Version notes:
// * v1: CoordinatorType, ErrorMessage
// * v3: flexible versions
// * v4: batched CoordinatorKeys (KIP-699)

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func init() { register(10, 0, 5, handleFindCoordinator) }

func handleFindCoordinator(a *Agent, r *request) (reply, error) {
	req := r.kreq.(*kmsg.FindCoordinatorRequest)
	resp := req.ResponseKind().(*kmsg.FindCoordinatorResponse)
	keys := req.CoordinatorKeys
	if req.Version < 4 {
		keys = []string{req.CoordinatorKey}
	}
	if req.CoordinatorType == 0 && a.topicByName(offsetsTopic) == nil {
		if err := a.ensureOffsetsTopic(r.ctx); err != nil {
			a.log.Warn("create "+offsetsTopic, "err", err)
		}
	}
	for _, key := range keys {
		c := kmsg.NewFindCoordinatorResponseCoordinator()
		c.Key, c.NodeID = key, -1
		c.ErrorCode, c.ErrorMessage = a.findCoordinator(req.CoordinatorType, key, &c)
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

func (a *Agent) findCoordinator(typ int8, key string, c *kmsg.FindCoordinatorResponseCoordinator) (int16, *string) {
	msg := func(s string) *string { return &s }
	switch {
	case typ != 0:
		return kerr.CoordinatorNotAvailable.Code, msg("transactions are not supported")
	case key == "":
		return kerr.InvalidGroupID.Code, msg("empty group id")
	}
	t := a.topicByName(offsetsTopic)
	if t == nil || len(t.parts) == 0 {
		return kerr.CoordinatorNotAvailable.Code, msg(offsetsTopic + " is being created")
	}
	mp := t.meta.Partitions[coordinatorPartition(key, len(t.parts))]
	st := a.meta.State()
	ag, ok := st.Agents[mp.Leader]
	if mp.Leader < 0 || !ok || ag.Fenced {
		return kerr.CoordinatorNotAvailable.Code, msg("the group's offsets partition has no live leader")
	}
	c.NodeID = ag.ID
	c.Host, c.Port = splitHostPort(ag.Addr)
	return 0, nil
}
