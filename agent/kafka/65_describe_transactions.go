package kafka

// DescribeTransactions: v0
//
// The state of each named transactional id this agent coordinates:
// producer id and epoch, state, timeout, start time and partitions.
// NOT_COORDINATOR for ids another agent coordinates (clients find it with
// FindCoordinator), TRANSACTIONAL_ID_NOT_FOUND for unknown ones.
// With an authorizer: DESCRIBE on each transactional id
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED); topics without DESCRIBE are
// left out of the partitions, as Kafka does.

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/txn"
	"github.com/tlog-io/tlog/metadata"
)

func init() { register(65, 0, 0, handleDescribeTransactions) }

func handleDescribeTransactions(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DescribeTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeTransactionsResponse)
	for _, id := range req.TransactionalIDs {
		ts := kmsg.NewDescribeTransactionsResponseTransactionState()
		ts.TransactionalID = id
		ts.ProducerID, ts.ProducerEpoch, ts.StartTimestamp = -1, -1, -1
		if !r.allowedTxnID(id, metadata.OpDescribe) {
			ts.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
			resp.TransactionStates = append(resp.TransactionStates, ts)
			continue
		}
		c, code := s.b.TxnCoordinator(id)
		if code == 0 {
			var info txn.Info
			info, code = c.Describe(id)
			if code == 0 {
				ts.State = info.State.String()
				ts.TimeoutMillis = int32(info.Timeout.Milliseconds())
				if !info.Started.IsZero() {
					ts.StartTimestamp = info.Started.UnixMilli()
				}
				ts.ProducerID, ts.ProducerEpoch = info.ProducerID, info.Epoch
				byTopic := map[string]int{}
				for _, tp := range info.Partitions {
					i, ok := byTopic[tp.Topic]
					if !ok {
						i = len(ts.Topics)
						byTopic[tp.Topic] = i
						tt := kmsg.NewDescribeTransactionsResponseTransactionStateTopic()
						tt.Topic = tp.Topic
						ts.Topics = append(ts.Topics, tt)
					}
					ts.Topics[i].Partitions = append(ts.Topics[i].Partitions, tp.Partition)
				}
				ts.Topics = slices.DeleteFunc(ts.Topics, func(t kmsg.DescribeTransactionsResponseTransactionStateTopic) bool {
					return !r.allowedTopic(t.Topic, metadata.OpDescribe)
				})
			}
		}
		ts.ErrorCode = code
		resp.TransactionStates = append(resp.TransactionStates, ts)
	}
	return now(resp), nil
}
