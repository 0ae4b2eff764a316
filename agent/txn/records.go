package txn

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/tier/batch"
)

// encode is t's state record: Kafka's __transaction_state key and value.
func encode(t *txn) batch.KV {
	key := kmsg.NewTxnMetadataKey()
	key.TransactionalID = t.id
	val := kmsg.NewTxnMetadataValue()
	val.ProducerID = t.pid
	val.ProducerEpoch = t.epoch
	val.TimeoutMillis = int32(t.timeout / time.Millisecond)
	val.State = t.state
	val.LastUpdateTimestamp = t.updated.UnixMilli()
	if t.tv2 || t.prevPID >= 0 || t.nextPID >= 0 {
		// Version 1 carries these as tagged fields, as Kafka writes them.
		val.Version = 1
		val.PreviousProducerID, val.NextProducerID = t.prevPID, t.nextPID
		if t.tv2 {
			val.ClientTransactionVersion = 2
		}
	}
	val.StartTimestamp = -1
	if t.state != kmsg.TransactionStateEmpty {
		val.StartTimestamp = t.started.UnixMilli()
	}
	byTopic := map[string]int{}
	for _, tp := range sortedTPs(t.partitions) {
		i, ok := byTopic[tp.Topic]
		if !ok {
			i = len(val.Topics)
			byTopic[tp.Topic] = i
			vt := kmsg.NewTxnMetadataValueTopic()
			vt.Topic = tp.Topic
			val.Topics = append(val.Topics, vt)
		}
		val.Topics[i].Partitions = append(val.Topics[i].Partitions, tp.Partition)
	}
	return batch.KV{Key: key.AppendTo(nil), Value: val.AppendTo(nil)}
}

// Apply replays one record of the partition (before Loaded). A nil value
// deletes the transactional id.
func (c *Coordinator) Apply(k, v []byte) error {
	var key kmsg.TxnMetadataKey
	if err := key.ReadFrom(k); err != nil {
		return fmt.Errorf("transaction state key: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if v == nil {
		delete(c.txns, key.TransactionalID)
		return nil
	}
	var val kmsg.TxnMetadataValue
	if err := val.ReadFrom(v); err != nil {
		return fmt.Errorf("transaction state of %q: %w", key.TransactionalID, err)
	}
	if val.State < kmsg.TransactionStateEmpty || val.State > kmsg.TransactionStateCompleteAbort {
		return fmt.Errorf("transaction state of %q: state %d", key.TransactionalID, val.State)
	}
	t := &txn{
		id: key.TransactionalID, pid: val.ProducerID, epoch: val.ProducerEpoch,
		timeout: time.Duration(val.TimeoutMillis) * time.Millisecond, state: val.State,
		partitions: map[TP]struct{}{}, updated: time.UnixMilli(val.LastUpdateTimestamp),
		tv2: val.ClientTransactionVersion >= 2, prevPID: val.PreviousProducerID, nextPID: val.NextProducerID,
	}
	if val.StartTimestamp >= 0 {
		t.started = time.UnixMilli(val.StartTimestamp)
	}
	for _, vt := range val.Topics {
		for _, p := range vt.Partitions {
			t.partitions[TP{Topic: vt.Topic, Partition: p}] = struct{}{}
		}
	}
	c.txns[t.id] = t
	return nil
}

// Info describes one transaction, for DescribeTransactions,
// ListTransactions and DescribeProducers.
type Info struct {
	TransactionalID string
	ProducerID      int64
	Epoch           int16
	State           State
	Timeout         time.Duration
	Started         time.Time
	Partitions      []TP
}

// Describe returns txnID's transaction, if this coordinator has it.
func (c *Coordinator) Describe(txnID string) (Info, int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if code := c.availableLocked(); code != 0 {
		return Info{}, code
	}
	t := c.txns[txnID]
	if t == nil {
		return Info{}, kerr.TransactionalIDNotFound.Code
	}
	return infoOf(t), 0
}

// List returns every transaction of this coordinator.
func (c *Coordinator) List() ([]Info, int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if code := c.availableLocked(); code != 0 {
		return nil, code
	}
	out := make([]Info, 0, len(c.txns))
	for _, t := range c.txns {
		out = append(out, infoOf(t))
	}
	return out, 0
}

func infoOf(t *txn) Info {
	return Info{TransactionalID: t.id, ProducerID: t.pid, Epoch: t.epoch, State: t.state,
		Timeout: t.timeout, Started: t.started, Partitions: sortedTPs(t.partitions)}
}
