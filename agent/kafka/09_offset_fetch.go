package kafka

// OffsetFetch: v0-v9
//
// A group's committed offsets, -1 for partitions without one; a null topic
// list (v2+) fetches every committed partition. v8+ asks for several groups
// at once; each is answered by this agent only if it coordinates it
// (else NOT_COORDINATOR for that group).
// With an authorizer: DESCRIBE on the group (GROUP_AUTHORIZATION_FAILED),
// DESCRIBE on each topic named (else TOPIC_AUTHORIZATION_FAILED for its
// partitions; with all topics asked, such topics are left out).
//
// Version notes:
// * v0: as v1 (Kafka read v0 from ZooKeeper; tlog has only the
//   coordinator, which v0 commits also go to)
// * v2: top-level ErrorCode, null topics = all
// * v5: LeaderEpoch
// * v6: flexible versions
// * v7: RequireStable: while a transaction has offsets pending for the
//   partitions asked (TxnOffsetCommit, not yet ended), the answer is
//   UNSTABLE_OFFSET_COMMIT and the client retries
// * v8: batched Groups
// * v9: MemberID/MemberEpoch: a consumer-protocol (KIP-848) member must
//   fetch at its current epoch (STALE_MEMBER_EPOCH, UNKNOWN_MEMBER_ID);
//   ignored for classic groups
// * v10 (topic ids) is not served.

import (
	"sort"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(9, 0, 9, handleOffsetFetch) }

type fetchedTopic struct {
	topic string
	parts []kmsg.OffsetFetchResponseGroupTopicPartition
}

// fetchGroupOffsets answers one group: topics nil means all. Topics the
// principal may not describe are left out of all, and answered
// TOPIC_AUTHORIZATION_FAILED when named.
func (s *Server) fetchGroupOffsets(r *request, groupID, memberID string, memberEpoch int32, topics map[string][]int32, order []string, requireStable bool) ([]fetchedTopic, int16) {
	if !r.allowedGroup(groupID, metadata.OpDescribe) {
		return nil, kerr.GroupAuthorizationFailed.Code
	}
	c, code := s.b.Coordinator(groupID)
	if code != 0 {
		return nil, code
	}
	var denied map[string][]int32
	if topics != nil {
		allowed := map[string][]int32{}
		for t, ps := range topics {
			if r.allowedTopic(t, metadata.OpDescribe) {
				allowed[t] = ps
				continue
			}
			if denied == nil {
				denied = map[string][]int32{}
			}
			denied[t] = ps
		}
		topics = allowed
	}
	if requireStable && c.Unstable(groupID, topics) {
		return nil, kerr.UnstableOffsetCommit.Code
	}
	offs, code := c.FetchOffsetsAs(groupID, memberID, memberEpoch, topics)
	if code != 0 {
		return nil, code
	}
	byTopic := map[string][]kmsg.OffsetFetchResponseGroupTopicPartition{}
	for tp, o := range offs {
		p := kmsg.NewOffsetFetchResponseGroupTopicPartition()
		p.Partition, p.Offset, p.LeaderEpoch = tp.Partition, o.Offset, o.LeaderEpoch
		if o.Offset >= 0 {
			m := o.Metadata
			p.Metadata = &m
		}
		byTopic[tp.Topic] = append(byTopic[tp.Topic], p)
	}
	if topics == nil {
		for t := range byTopic {
			if r.allowedTopic(t, metadata.OpDescribe) {
				order = append(order, t)
			}
		}
		sort.Strings(order)
	}
	var out []fetchedTopic
	for _, t := range order {
		if ps, ok := denied[t]; ok {
			ft := fetchedTopic{topic: t}
			for _, p := range ps {
				fp := kmsg.NewOffsetFetchResponseGroupTopicPartition()
				fp.Partition, fp.Offset, fp.ErrorCode = p, -1, kerr.TopicAuthorizationFailed.Code
				ft.parts = append(ft.parts, fp)
			}
			out = append(out, ft)
			continue
		}
		ps := byTopic[t]
		sort.Slice(ps, func(i, j int) bool { return ps[i].Partition < ps[j].Partition })
		out = append(out, fetchedTopic{topic: t, parts: ps})
	}
	return out, 0
}

func handleOffsetFetch(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.OffsetFetchRequest)
	resp := req.ResponseKind().(*kmsg.OffsetFetchResponse)
	if req.Version >= 8 {
		for _, rg := range req.Groups {
			topics, order := requestedTopics(rg.Topics == nil, len(rg.Topics), func(i int) (string, []int32) { return rg.Topics[i].Topic, rg.Topics[i].Partitions })
			memberID := ""
			if rg.MemberID != nil {
				memberID = *rg.MemberID
			}
			got, code := s.fetchGroupOffsets(r, rg.Group, memberID, rg.MemberEpoch, topics, order, req.RequireStable)
			g := kmsg.NewOffsetFetchResponseGroup()
			g.Group, g.ErrorCode = rg.Group, code
			for _, ft := range got {
				t := kmsg.NewOffsetFetchResponseGroupTopic()
				t.Topic, t.Partitions = ft.topic, ft.parts
				g.Topics = append(g.Topics, t)
			}
			resp.Groups = append(resp.Groups, g)
		}
		return now(resp), nil
	}
	all := req.Topics == nil && req.Version >= 2
	topics, order := requestedTopics(all, len(req.Topics), func(i int) (string, []int32) { return req.Topics[i].Topic, req.Topics[i].Partitions })
	got, code := s.fetchGroupOffsets(r, req.Group, "", -1, topics, order, req.RequireStable)
	if req.Version >= 2 {
		resp.ErrorCode = code
	}
	if code != 0 {
		// Per partition too, for clients before v2.
		for _, rt := range req.Topics {
			t := kmsg.NewOffsetFetchResponseTopic()
			t.Topic = rt.Topic
			for _, p := range rt.Partitions {
				sp := kmsg.NewOffsetFetchResponseTopicPartition()
				sp.Partition, sp.Offset, sp.ErrorCode = p, -1, code
				t.Partitions = append(t.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, t)
		}
		return now(resp), nil
	}
	for _, ft := range got {
		t := kmsg.NewOffsetFetchResponseTopic()
		t.Topic = ft.topic
		for _, p := range ft.parts {
			sp := kmsg.NewOffsetFetchResponseTopicPartition()
			sp.Partition, sp.Offset, sp.LeaderEpoch, sp.Metadata, sp.ErrorCode = p.Partition, p.Offset, p.LeaderEpoch, p.Metadata, p.ErrorCode
			t.Partitions = append(t.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, t)
	}
	return now(resp), nil
}

// requestedTopics turns a request's topic list into what FetchOffsets
// takes (nil for all) and the order to answer in.
func requestedTopics(all bool, n int, at func(int) (string, []int32)) (map[string][]int32, []string) {
	if all {
		return nil, nil
	}
	topics := map[string][]int32{}
	var order []string
	for i := 0; i < n; i++ {
		t, ps := at(i)
		if _, seen := topics[t]; !seen {
			order = append(order, t)
		}
		topics[t] = append(topics[t], ps...)
	}
	return topics, order
}
