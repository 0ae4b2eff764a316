package kafka

// ListTransactions: v0-1
//
// The transactional ids this agent coordinates, filtered by state, by
// producer id and (v1) by how long the transaction has been running; an
// admin client asks every agent and merges the answers. An unknown state
// filter is listed in UnknownStateFilters and matches nothing.
// With an authorizer: only ids with DESCRIBE on them are listed.

import (
	"slices"
	"sort"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/metadata"
)

func init() { register(66, 0, 1, handleListTransactions) }

func handleListTransactions(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.ListTransactionsRequest)
	resp := req.ResponseKind().(*kmsg.ListTransactionsResponse)
	states := map[string]bool{}
	for _, f := range req.StateFilters {
		if _, err := kmsg.ParseTransactionState(f); err != nil {
			resp.UnknownStateFilters = append(resp.UnknownStateFilters, f)
			continue
		}
		states[f] = true
	}
	at := time.Now()
	for _, c := range s.b.TxnCoordinators() {
		infos, code := c.List()
		if code != 0 {
			resp.ErrorCode = code
			continue
		}
		for _, info := range infos {
			state := info.State.String()
			switch {
			case len(req.StateFilters) > 0 && !states[state]:
				continue
			case len(req.ProducerIDFilters) > 0 && !slices.Contains(req.ProducerIDFilters, info.ProducerID):
				continue
			case req.Version >= 1 && req.DurationFilterMillis >= 0 &&
				(info.Started.IsZero() || at.Sub(info.Started) < time.Duration(req.DurationFilterMillis)*time.Millisecond):
				continue
			case !r.allowedTxnID(info.TransactionalID, metadata.OpDescribe):
				continue
			}
			ts := kmsg.NewListTransactionsResponseTransactionState()
			ts.TransactionalID, ts.ProducerID, ts.TransactionState = info.TransactionalID, info.ProducerID, state
			resp.TransactionStates = append(resp.TransactionStates, ts)
		}
	}
	sort.Slice(resp.TransactionStates, func(i, j int) bool {
		return resp.TransactionStates[i].TransactionalID < resp.TransactionStates[j].TransactionalID
	})
	return now(resp), nil
}
