package kafka

// Metadata: v0-12
//
// Names every live (unfenced) agent as a broker and, per partition, the
// leader, leader epoch, replicas and in-sync replicas from cluster
// metadata; replicas on fenced agents are listed as offline. A null topic
// list (v1+) means all topics. Missing topics are created when the agent
// allows auto-creation and the request does (v4+; always for older
// versions), with num.partitions partitions.
// With an authorizer: a topic needs DESCRIBE to be listed (all topics:
// the others are left out; named ones: TOPIC_AUTHORIZATION_FAILED,
// whether or not they exist), and auto-creation CREATE on the cluster or
// the topic.
//
// Version notes:
// * v1: ControllerID, IsInternal, Rack
// * v2: ClusterID
// * v4: AllowAutoTopicCreation
// * v5: OfflineReplicas
// * v7: LeaderEpoch
// * v8: authorized operations (when asked for; "unknown", -2147483648,
//   otherwise)
// * v9: flexible versions
// * v10: TopicID; topics may be requested by id (v10+ with null name)

import (
	"net"
	"sort"
	"strconv"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/metadata"
)

func init() { register(3, 0, 12, handleMetadata) }

func handleMetadata(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.MetadataRequest)
	resp := req.ResponseKind().(*kmsg.MetadataResponse)

	allTopics := req.Topics == nil || (req.Version == 0 && len(req.Topics) == 0)
	autoCreate := s.cfg.AutoCreateTopics && (req.Version < 4 || req.AllowAutoTopicCreation)

	// Create what is missing first, in one pass, so the state we describe
	// below includes it.
	createErr := map[string]error{}
	if !allTopics && autoCreate {
		for _, rt := range req.Topics {
			if rt.Topic == nil || *rt.Topic == group.OffsetsTopic || s.b.TopicByName(*rt.Topic) != nil || metadata.ValidateTopicName(*rt.Topic) != nil {
				continue
			}
			if !r.allowedTopic(*rt.Topic, metadata.OpDescribe) || !r.mayCreateTopic(*rt.Topic) {
				continue // answered TOPIC_AUTHORIZATION_FAILED below
			}
			if err := s.createTopic(r.ctx, *rt.Topic); err != nil && errCode(err) != kerr.TopicAlreadyExists.Code {
				s.log.Warn("auto-create topic", "topic", *rt.Topic, "err", err)
				createErr[*rt.Topic] = err
			}
		}
	}

	st := s.b.State()
	agents := make([]metadata.AgentInfo, 0, len(st.Agents))
	for _, ag := range st.Agents {
		if !ag.Fenced {
			agents = append(agents, ag)
		}
	}
	sort.Slice(agents, func(i, j int) bool { return agents[i].ID < agents[j].ID })
	for _, ag := range agents {
		host, port := splitHostPort(ag.AddrFor(r.c.lst.Name))
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID = ag.ID
		b.Host = host
		b.Port = port
		if ag.Zone != "" {
			z := ag.Zone
			b.Rack = &z
		}
		resp.Brokers = append(resp.Brokers, b)
	}
	cid := s.cfg.ClusterID
	resp.ClusterID = &cid
	resp.ControllerID = s.b.ControllerID()
	resp.AuthorizedOperations = authorizedOpsUnknown
	if req.IncludeClusterAuthorizedOperations {
		resp.AuthorizedOperations = r.authorizedOps(metadata.ResourceCluster, metadata.ClusterResourceName, clusterOps)
	}

	describe := func(mt *metadata.Topic) kmsg.MetadataResponseTopic {
		t := kmsg.NewMetadataResponseTopic()
		name := mt.Name
		t.Topic = &name
		t.TopicID = mt.ID
		t.IsInternal = isInternalTopic(mt.Name)
		t.AuthorizedOperations = authorizedOpsUnknown
		if req.IncludeTopicAuthorizedOperations {
			t.AuthorizedOperations = r.authorizedOps(metadata.ResourceTopic, mt.Name, topicOps)
		}
		for i, mp := range mt.Partitions {
			p := kmsg.NewMetadataResponseTopicPartition()
			p.Partition = int32(i)
			p.Leader = mp.Leader
			p.LeaderEpoch = mp.LeaderEpoch
			p.Replicas = append([]int32(nil), mp.Replicas...)
			p.ISR = append([]int32(nil), mp.ISR...)
			for _, rep := range mp.Replicas {
				if !st.AgentLive(rep) {
					p.OfflineReplicas = append(p.OfflineReplicas, rep)
				}
			}
			if !st.AgentLive(mp.Leader) {
				p.ErrorCode = kerr.LeaderNotAvailable.Code
			}
			t.Partitions = append(t.Partitions, p)
		}
		return t
	}

	if allTopics {
		names := make([]string, 0, len(st.Topics))
		byName := make(map[string]*metadata.Topic, len(st.Topics))
		for _, mt := range st.Topics {
			if !r.allowedTopic(mt.Name, metadata.OpDescribe) {
				continue
			}
			names = append(names, mt.Name)
			byName[mt.Name] = mt
		}
		sort.Strings(names)
		for _, n := range names {
			resp.Topics = append(resp.Topics, describe(byName[n]))
		}
		return now(resp), nil
	}

	for _, rt := range req.Topics {
		var mt *metadata.Topic
		switch {
		case rt.Topic != nil:
			mt, _ = st.TopicByName(*rt.Topic)
		case rt.TopicID != uuid.Nil:
			mt = st.Topics[uuid.UUID(rt.TopicID)]
		}
		var allowed bool
		switch {
		case rt.Topic != nil:
			allowed = r.allowedTopic(*rt.Topic, metadata.OpDescribe)
		case mt != nil:
			allowed = r.allowedTopic(mt.Name, metadata.OpDescribe)
		}
		if mt != nil && allowed {
			resp.Topics = append(resp.Topics, describe(mt))
			continue
		}
		t := kmsg.NewMetadataResponseTopic()
		t.Topic = rt.Topic
		t.TopicID = rt.TopicID
		switch {
		case mt != nil && rt.Topic == nil:
			// Named by id and not describable: neither its name nor its
			// existence is told.
			t.ErrorCode = kerr.TopicAuthorizationFailed.Code
		case rt.Topic == nil:
			t.ErrorCode = kerr.UnknownTopicID.Code
		case !allowed, autoCreate && !r.mayCreateTopic(*rt.Topic):
			t.ErrorCode = kerr.TopicAuthorizationFailed.Code
		case metadata.ValidateTopicName(*rt.Topic) != nil:
			t.ErrorCode = kerr.InvalidTopicException.Code
		case createErr[*rt.Topic] != nil:
			// A creation that can't succeed (a name colliding on '.' vs
			// '_') is reported, not retried forever; one that may yet (no
			// controller reachable, the journal unavailable) is retried
			// as a topic still being created.
			t.ErrorCode = errCode(createErr[*rt.Topic])
			if kerr.IsRetriable(kerr.ErrorForCode(t.ErrorCode)) {
				t.ErrorCode = kerr.LeaderNotAvailable.Code
			}
		case autoCreate:
			// Creation was attempted above; the client retries.
			t.ErrorCode = kerr.LeaderNotAvailable.Code
		default:
			t.ErrorCode = kerr.UnknownTopicOrPartition.Code
		}
		resp.Topics = append(resp.Topics, t)
	}
	return now(resp), nil
}

// mayCreateTopic says whether the principal may create the topic: CREATE
// on the cluster or on the topic, as Kafka asks.
func (r *request) mayCreateTopic(name string) bool {
	return r.allowedCluster(metadata.OpCreate) || r.allowedTopic(name, metadata.OpCreate)
}

func isInternalTopic(name string) bool { return name == "__consumer_offsets" }

// splitHostPort splits an advertised address into what Kafka responses
// carry (9092 if it names no port).
func splitHostPort(addr string) (string, int32) {
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, 9092
	}
	n, _ := strconv.Atoi(p)
	return h, int32(n)
}
