package kafka

// WriteTxnMarkers: v0-1
//
// A transaction coordinator on another agent ends a transaction on
// partitions this agent leads: each marker (a COMMIT or ABORT control
// batch with the producer's id and epoch) is appended and answered once
// every in-sync replica has it. A marker from an epoch older than the
// producer's is refused with INVALID_PRODUCER_EPOCH.
// With an authorizer: CLUSTER_ACTION on the cluster
// (CLUSTER_AUTHORIZATION_FAILED on every partition, nothing written).
//
// Version notes:
// * v1: flexible versions

import (
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(27, 0, 1, handleWriteTxnMarkers) }

func handleWriteTxnMarkers(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.WriteTxnMarkersRequest)
	resp := req.ResponseKind().(*kmsg.WriteTxnMarkersResponse)
	// pending counts appends in flight, plus one until all are issued;
	// the last to finish closes appended.
	var pending atomic.Int64
	pending.Store(1)
	appended := make(chan struct{})
	finished := func() {
		if pending.Add(-1) == 0 {
			close(appended)
		}
	}
	for _, m := range req.Markers {
		rm := kmsg.NewWriteTxnMarkersResponseMarker()
		rm.ProducerID = m.ProducerID
		for _, mt := range m.Topics {
			rt := kmsg.NewWriteTxnMarkersResponseMarkerTopic()
			rt.Topic = mt.Topic
			rt.Partitions = make([]kmsg.WriteTxnMarkersResponseMarkerTopicPartition, len(mt.Partitions))
			rm.Topics = append(rm.Topics, rt)
		}
		resp.Markers = append(resp.Markers, rm)
	}
	if !r.allowedCluster(metadata.OpClusterAction) {
		for i, m := range req.Markers {
			for j, mt := range m.Topics {
				for k, idx := range mt.Partitions {
					sp := &resp.Markers[i].Topics[j].Partitions[k]
					*sp = kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
					sp.Partition, sp.ErrorCode = idx, kerr.ClusterAuthorizationFailed.Code
				}
			}
		}
		return now(resp), nil
	}
	for i, m := range req.Markers {
		for j, mt := range m.Topics {
			t := s.b.TopicByName(mt.Topic)
			for k, idx := range mt.Partitions {
				sp := &resp.Markers[i].Topics[j].Partitions[k]
				*sp = kmsg.NewWriteTxnMarkersResponseMarkerTopicPartition()
				sp.Partition = idx
				p := t.Partition(idx)
				switch {
				case p == nil:
					sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
					continue
				case !p.IsLeader():
					sp.ErrorCode = kerr.NotLeaderForPartition.Code
					continue
				}
				pending.Add(1)
				topicName, pid, commit := mt.Topic, m.ProducerID, m.Committed
				done := func(err error) {
					sp.ErrorCode = errCode(err)
					if err == nil {
						s.b.TxnMarkerWritten(topicName, idx, pid, commit)
					}
					finished()
				}
				if _, err := p.AppendMarker(m.ProducerID, m.ProducerEpoch, m.Committed, m.CoordinatorEpoch, done); err != nil {
					done(err)
				}
			}
		}
	}
	finished()
	return func() kmsg.Response {
		select {
		case <-appended:
			return resp
		case <-r.ctx.Done():
			// Shutting down: answer nothing (the coordinator retries
			// elsewhere). The appends finish or fail as the partitions
			// close, after the front end has stopped, so they are not
			// waited for here.
			return nil
		}
	}, nil
}
