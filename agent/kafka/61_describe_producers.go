package kafka

// DescribeProducers: v0
//
// The producers with state in each partition this agent leads: id, epoch,
// last sequence and the start offset of an open transaction (what
// kafka-transactions.sh find-hanging reads). Last timestamps and
// coordinator epochs are not kept (-1).
// With an authorizer: READ on each topic (TOPIC_AUTHORIZATION_FAILED,
// asked before the topic's existence).

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(61, 0, 0, handleDescribeProducers) }

func handleDescribeProducers(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DescribeProducersRequest)
	resp := req.ResponseKind().(*kmsg.DescribeProducersResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDescribeProducersResponseTopic()
		st.Topic = rt.Topic
		t := s.b.TopicByName(rt.Topic)
		allowed := r.allowedTopic(rt.Topic, metadata.OpRead)
		for _, idx := range rt.Partitions {
			sp := kmsg.NewDescribeProducersResponseTopicPartition()
			sp.Partition = idx
			p := t.Partition(idx)
			switch {
			case !allowed:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				sp.ErrorMessage = kmsg.StringPtr(r.Principal() + " may not read topic " + rt.Topic)
			case p == nil:
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case !p.IsLeader():
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
			default:
				for _, pi := range p.Producers() {
					ap := kmsg.NewDescribeProducersResponseTopicPartitionActiveProducer()
					ap.ProducerID, ap.ProducerEpoch, ap.LastSequence = pi.ID, int32(pi.Epoch), pi.LastSequence
					ap.LastTimestamp, ap.CoordinatorEpoch, ap.CurrentTxnStartOffset = -1, -1, pi.TxnStartOffset
					sp.ActiveProducers = append(sp.ActiveProducers, ap)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return now(resp), nil
}
