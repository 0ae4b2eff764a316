package kafka

// OffsetForLeaderEpoch: v0-4
//
// For each partition, the largest leader epoch at or below the requested
// one and the offset where the next epoch began (or the log end), from the
// epoch cache rebuilt out of the batches themselves. Clients use it to
// detect truncation after a leader change (KIP-320).
// With an authorizer: DESCRIBE on each topic (TOPIC_AUTHORIZATION_FAILED);
// as a replica (ReplicaID ≥ 0), CLUSTER_ACTION on the cluster
// (CLUSTER_AUTHORIZATION_FAILED).
//
// Version notes:
// * v0: the end offset only
// * v1: LeaderEpoch in the response
// * v2: CurrentLeaderEpoch fencing
// * v3: ReplicaID
// * v4: flexible versions

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(23, 0, 4, handleOffsetForLeaderEpoch) }

func handleOffsetForLeaderEpoch(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.OffsetForLeaderEpochRequest)
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	asReplica := req.Version >= 3 && req.ReplicaID >= 0
	replicaAllowed := !asReplica || r.allowedCluster(metadata.OpClusterAction)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		t := s.b.TopicByName(rt.Topic)
		allowed := asReplica || r.allowedTopic(rt.Topic, metadata.OpDescribe)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			switch {
			case !replicaAllowed:
				sp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
			case !allowed:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
			case t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.Parts):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case !t.Parts[rp.Partition].IsLeader():
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
			default:
				p := t.Parts[rp.Partition]
				if code := checkLeaderEpoch(rp.CurrentLeaderEpoch, p.Offsets().Epoch); code != 0 {
					sp.ErrorCode = code
					break
				}
				sp.LeaderEpoch, sp.EndOffset = p.EndOffsetForEpoch(rp.LeaderEpoch)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return now(resp), nil
}
