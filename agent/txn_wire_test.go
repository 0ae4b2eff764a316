package agent_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// retryCodes retries fn while it answers a code a client retries.
func retryCodes(t *testing.T, what string, fn func() int16) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		code := fn()
		switch code {
		case 0:
			return
		case kerr.CoordinatorNotAvailable.Code, kerr.CoordinatorLoadInProgress.Code, kerr.NotCoordinator.Code, kerr.ConcurrentTransactions.Code:
			if time.Now().After(deadline) {
				t.Fatalf("%s: still %d after 10 s", what, code)
			}
			time.Sleep(20 * time.Millisecond)
		default:
			t.Fatalf("%s: error %d", what, code)
		}
	}
}

// initTransactional finds id's coordinator (creating __transaction_state)
// and gets id a producer id and epoch, retrying what a client retries.
func initTransactional(t *testing.T, c *rawConn, id string) (pid int64, epoch int16) {
	t.Helper()
	retryCodes(t, "FindCoordinator", func() int16 {
		req := kmsg.NewPtrFindCoordinatorRequest()
		req.CoordinatorType, req.CoordinatorKey = 1, id
		return do[*kmsg.FindCoordinatorResponse](c, 3, req).ErrorCode
	})
	retryCodes(t, "InitProducerId", func() int16 {
		r := initProducerID(c, kmsg.StringPtr(id), -1, -1)
		pid, epoch = r.ProducerID, r.ProducerEpoch
		return r.ErrorCode
	})
	return pid, epoch
}

// Bad transactional input gets Kafka's error codes and writes nothing: a
// transactional batch without a transactional id, a non-transactional
// batch with one, a partition not added to the transaction, a stale
// epoch, a fenced producer's EndTxn, a control batch from a client.
func TestWireTransactionsBadInput(t *testing.T) {
	t.Parallel()
	a := startAgent(t, quiet)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "t", 2, nil)
	const id = "wire-txn"

	pid, epoch := initTransactional(t, c, id)
	txnBatch := func(seq int32, e int16) []byte {
		return mkBatch(batchOpts{pid: pid, epoch: e, seq: seq, attrs: 0x10, firstTS: 1_700_000_000_000}, "v")
	}
	txnProduce := func(txnID *string, p int32, b []byte) kmsg.ProduceResponseTopicPartition {
		req := produceReq(-1, "t", p, b)
		req.TransactionID = txnID
		return do[*kmsg.ProduceResponse](c, 9, req).Topics[0].Partitions[0]
	}
	if r := txnProduce(kmsg.StringPtr(id), 0, txnBatch(0, epoch)); r.ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("produce to a partition not in the transaction: error %d, want INVALID_TXN_STATE", r.ErrorCode)
	}
	add := func(p int32, e int16) int16 {
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch = id, pid, e
		rt := kmsg.NewAddPartitionsToTxnRequestTopic()
		rt.Topic, rt.Partitions = "t", []int32{p}
		req.Topics = append(req.Topics, rt)
		return do[*kmsg.AddPartitionsToTxnResponse](c, 3, req).Topics[0].Partitions[0].ErrorCode
	}
	if code := add(0, epoch+1); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("AddPartitionsToTxn from a future epoch: error %d", code)
	}
	retryCodes(t, "AddPartitionsToTxn", func() int16 { return add(0, epoch) })
	if r := txnProduce(nil, 0, txnBatch(0, epoch)); r.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("transactional batch without a transactional id: error %d, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", r.ErrorCode)
	}
	if r := txnProduce(kmsg.StringPtr(id), 0, mkBatch(plainBatch(), "plain")); r.ErrorCode != kerr.InvalidRecord.Code {
		t.Fatalf("plain batch with a transactional id: error %d, want INVALID_RECORD", r.ErrorCode)
	}
	control := mkBatch(batchOpts{pid: pid, epoch: epoch, seq: -1, attrs: 0x30, firstTS: 1_700_000_000_000}, "x")
	if r := txnProduce(kmsg.StringPtr(id), 0, control); r.ErrorCode != kerr.InvalidRecord.Code {
		t.Fatalf("a control batch from a client: error %d, want INVALID_RECORD", r.ErrorCode)
	}
	if r := txnProduce(kmsg.StringPtr(id), 0, txnBatch(0, epoch)); r.ErrorCode != 0 || r.BaseOffset != 0 {
		t.Fatalf("produce in the transaction: error %d at %d", r.ErrorCode, r.BaseOffset)
	}

	end := func(e int16, commit bool) int16 {
		req := kmsg.NewPtrEndTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, pid, e, commit
		return do[*kmsg.EndTxnResponse](c, 3, req).ErrorCode
	}
	// A new producer for the id fences this one (and aborts its
	// transaction); the old epoch's EndTxn is then refused.
	var epoch2 int16
	retryCodes(t, "InitProducerId again", func() int16 {
		r := initProducerID(c, kmsg.StringPtr(id), -1, -1)
		epoch2 = r.ProducerEpoch
		return r.ErrorCode
	})
	if epoch2 <= epoch {
		t.Fatalf("epoch after fencing %d, want > %d", epoch2, epoch)
	}
	if code := end(epoch, true); code != kerr.ProducerFenced.Code {
		t.Fatalf("EndTxn from the fenced epoch: error %d, want PRODUCER_FENCED", code)
	}
	if r := txnProduce(kmsg.StringPtr(id), 0, txnBatch(1, epoch)); r.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("the fenced producer's produce: error %d, want INVALID_PRODUCER_EPOCH", r.ErrorCode)
	}

	// What is stored: the one accepted batch and the abort marker; a
	// read_committed fetch returns both with the transaction aborted.
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis, req.MaxBytes, req.IsolationLevel = 0, 1<<20, 1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic = "t"
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes = 1 << 20
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	deadline := time.Now().Add(10 * time.Second)
	for {
		sp := do[*kmsg.FetchResponse](c, 11, req).Topics[0].Partitions[0]
		if sp.LastStableOffset == 2 {
			if got := countBatches(t, sp.RecordBatches); len(got) != 2 || sp.HighWatermark != 2 {
				t.Fatalf("stored batches %v, HW %d; want the batch and its marker", got, sp.HighWatermark)
			}
			if len(sp.AbortedTransactions) != 1 || sp.AbortedTransactions[0].ProducerID != pid || sp.AbortedTransactions[0].FirstOffset != 0 {
				t.Fatalf("aborted transactions %+v", sp.AbortedTransactions)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("LSO %d, HW %d: the abort marker never came", sp.LastStableOffset, sp.HighWatermark)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Transactions version 2 on the wire: a Produce v12 batch adds its
// partition (no AddPartitionsToTxn); EndTxn v5 bumps the epoch and names
// it; a late write from the ended transaction's epoch is fenced; a retried
// EndTxn at the old epoch is answered with the new one; a Produce below
// v12 still only verifies.
func TestWireTransactionsVersion2(t *testing.T) {
	t.Parallel()
	a := startAgent(t, quiet)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "t2", 2, nil)
	const id = "wire-tv2"
	pid, epoch := initTransactional(t, c, id)
	produce := func(version int16, p int32, seq int32, e int16) int16 {
		req := produceReq(-1, "t2", p, mkBatch(batchOpts{pid: pid, epoch: e, seq: seq, attrs: 0x10, firstTS: 1_700_000_000_000}, "v"))
		req.TransactionID = kmsg.StringPtr(id)
		return do[*kmsg.ProduceResponse](c, version, req).Topics[0].Partitions[0].ErrorCode
	}
	retryCodes(t, "Produce v12 opening the transaction", func() int16 { return produce(12, 0, 0, epoch) })
	end := func(e int16, commit bool) *kmsg.EndTxnResponse {
		req := kmsg.NewPtrEndTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit = id, pid, e, commit
		return do[*kmsg.EndTxnResponse](c, 5, req)
	}
	var resp *kmsg.EndTxnResponse
	retryCodes(t, "EndTxn v5", func() int16 { resp = end(epoch, true); return resp.ErrorCode })
	if resp.ProducerID != pid || resp.ProducerEpoch != epoch+1 {
		t.Fatalf("EndTxn v5 answered producer %d epoch %d, want %d epoch %d", resp.ProducerID, resp.ProducerEpoch, pid, epoch+1)
	}
	if code := produce(12, 0, 1, epoch); code != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("late write at the ended transaction's epoch: error %d, want INVALID_PRODUCER_EPOCH", code)
	}
	if r := end(epoch, true); r.ErrorCode != 0 || r.ProducerEpoch != epoch+1 {
		t.Fatalf("retried EndTxn: error %d epoch %d, want 0 and %d", r.ErrorCode, r.ProducerEpoch, epoch+1)
	}
	if code := produce(9, 1, 0, epoch+1); code != kerr.InvalidTxnState.Code {
		t.Fatalf("Produce v9 to a partition never added: error %d, want INVALID_TXN_STATE", code)
	}
	retryCodes(t, "Produce v12 at the new epoch", func() int16 { return produce(12, 1, 0, epoch+1) })
	retryCodes(t, "EndTxn v5 abort", func() int16 { resp = end(epoch+1, false); return resp.ErrorCode })
	if resp.ProducerEpoch != epoch+2 {
		t.Fatalf("abort answered epoch %d, want %d", resp.ProducerEpoch, epoch+2)
	}
}
