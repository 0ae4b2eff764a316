package kafka

// OffsetCommit: v0-v9
//
// Commits go to the group's offsets partition as records and are answered
// once committed there (every in-sync replica has them). A member commits
// with its generation; a commit from outside the group (generation -1, no
// member: tools, offset resets, consumers without a group) is accepted
// only while the group is Empty or unknown, so it cannot race a live
// member. OFFSET_METADATA_TOO_LARGE above 4096 bytes of metadata;
// UNKNOWN_TOPIC_OR_PARTITION (nothing stored) for a topic or partition
// that does not exist.
// With an authorizer: READ on the group (GROUP_AUTHORIZATION_FAILED for
// every partition), READ on each topic (TOPIC_AUTHORIZATION_FAILED, not
// committed).
//
// Version notes:
// * v0: no generation or member: a commit from outside the group. Kafka
//   stored v0 commits in ZooKeeper (and answers UNSUPPORTED_VERSION in
//   KRaft mode); tlog has only the coordinator and stores them there, as
//   v1 would with generation -1
// * v1: generation and member; a per-partition commit timestamp (ignored:
//   the coordinator stamps its own)
// * v2-v4: RetentionTimeMillis (ignored: offsets.retention applies)
// * v5: no RetentionTimeMillis
// * v6: LeaderEpoch per partition
// * v7: InstanceID
// * v8: flexible versions
// * v10 (topic ids) is not served.

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(8, 0, 9, handleOffsetCommit) }

func handleOffsetCommit(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.OffsetCommitRequest)
	c, code := s.b.Coordinator(req.Group)
	if !r.allowedGroup(req.Group, metadata.OpRead) {
		code = kerr.GroupAuthorizationFailed.Code
	}
	if code != 0 {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewOffsetCommitResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewOffsetCommitResponseTopicPartition()
				sp.Partition, sp.ErrorCode = rp.Partition, code
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return now(resp), nil
	}
	// Offsets for topics the principal may not read, or topics or
	// partitions that do not exist, are refused (TOPIC_AUTHORIZATION_FAILED,
	// UNKNOWN_TOPIC_OR_PARTITION) and not stored, as Kafka does; the rest
	// go to the coordinator.
	known := *req
	known.Topics = nil
	var unknown []kmsg.OffsetCommitResponseTopic
	for _, rt := range req.Topics {
		allowed := r.allowedTopic(rt.Topic, metadata.OpRead)
		t := s.b.TopicByName(rt.Topic)
		kt := rt
		kt.Partitions = nil
		var ut *kmsg.OffsetCommitResponseTopic
		for _, rp := range rt.Partitions {
			if allowed && t != nil && rp.Partition >= 0 && int(rp.Partition) < len(t.Parts) {
				kt.Partitions = append(kt.Partitions, rp)
				continue
			}
			if ut == nil {
				unknown = append(unknown, kmsg.NewOffsetCommitResponseTopic())
				ut = &unknown[len(unknown)-1]
				ut.Topic = rt.Topic
			}
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition, sp.ErrorCode = rp.Partition, kerr.UnknownTopicOrPartition.Code
			if !allowed {
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			}
			ut.Partitions = append(ut.Partitions, sp)
		}
		if len(kt.Partitions) > 0 {
			known.Topics = append(known.Topics, kt)
		}
	}
	if len(unknown) > 0 && len(known.Topics) == 0 {
		resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
		resp.Topics = unknown
		return now(resp), nil
	}
	ch := make(chan *kmsg.OffsetCommitResponse, 1)
	c.Commit(&known, func(resp *kmsg.OffsetCommitResponse) { ch <- resp })
	return func() kmsg.Response {
		select {
		case resp := <-ch:
			resp.Topics = append(resp.Topics, unknown...)
			return resp
		case <-r.ctx.Done():
			return nil
		}
	}, nil
}
