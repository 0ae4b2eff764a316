package kafka

// Produce: v3-12
//
// Each partition's records must be exactly one RecordBatch v2; it is
// validated (size against max.message.bytes first, then CRC-32C, counts,
// no control bit), checked against the idempotent producer's sequence
// window, given offsets and the leader epoch in place, and queued to the WAL
// before the next request on the connection is read. The reply waits for
// the batch: acks=1 until the leader's WAL has it, acks=all until the high
// watermark passes it (every in-sync replica has it), at most the
// request's timeout. acks=all with fewer in-sync replicas than
// min.insync.replicas is refused with NOT_ENOUGH_REPLICAS before anything
// is written; acks=0 is never answered.
// Duplicates of one of the producer's last five batches are answered with
// the original offsets. A transactional batch needs the request's
// transactional id, and a partition its coordinator has in the producer's
// open transaction (KIP-890's verification: the coordinator, on whichever
// agent, is asked with the transaction's first batch here); otherwise
// INVALID_TXN_STATE, and nothing is written.
// With an authorizer: WRITE on the transactional id if one is given
// (TRANSACTIONAL_ID_AUTHORIZATION_FAILED), and WRITE on each topic
// (TOPIC_AUTHORIZATION_FAILED, asked before the topic's existence); an
// idempotent batch's producer id must have been made for the principal
// (INVALID_PRODUCER_ID_MAPPING otherwise; producerids.go).
// producer_byte_rate quotas throttle (quotas.go). A record without a key
// on a compacted topic is INVALID_RECORD (every such record's index in
// ErrorRecords, v8+; librdkafka fails the others of the batch with
// INVALID_DIFFERENT_RECORD), and nothing of the batch is written.
//
// Version notes:
// * v3: RecordBatch only; transactional id
// * v5: LogStartOffset in response
// * v8: per-record errors and ErrorMessage
// * v9: flexible versions
// * v12: transactions version 2: the first batch of a transaction on a
//   partition adds the partition to it (the coordinator is asked to, on
//   whichever agent it is)
// * v13 (topic ids) is not served.

import (
	"context"
	"fmt"
	"hash/crc32"
	"math"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/topic"
	"github.com/tlog-io/tlog/agent/txn"
	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier/batch"
)

func init() { register(0, 3, 12, handleProduce) }

func handleProduce(s *Server, r *request) (reply, error) {
	start := time.Now()
	req := r.kreq.(*kmsg.ProduceRequest)
	resp := req.ResponseKind().(*kmsg.ProduceResponse)

	type waitFor struct {
		rp   *kmsg.ProduceResponseTopicPartition
		done chan error
	}
	var waits []waitFor
	failedAcks0 := false
	live := s.b.SessionLive()
	fail := func(rp *kmsg.ProduceResponseTopicPartition, code int16, err error) {
		rp.ErrorCode = code
		if req.Version >= 8 && err != nil {
			rp.ErrorMessage = errMsg(err)
		}
	}

	txnAllowed := req.TransactionID == nil || r.allowedTxnID(*req.TransactionID, metadata.OpWrite)
	for _, rt := range req.Topics {
		topicAllowed := r.allowedTopic(rt.Topic, metadata.OpWrite)
		st := kmsg.NewProduceResponseTopic()
		st.Topic = rt.Topic
		st.Partitions = make([]kmsg.ProduceResponseTopicPartition, len(rt.Partitions))
		resp.Topics = append(resp.Topics, st)
		rs := &resp.Topics[len(resp.Topics)-1]
		t := s.b.TopicByName(rt.Topic)
		for i, rp := range rt.Partitions {
			sp := &rs.Partitions[i]
			*sp = kmsg.NewProduceResponseTopicPartition()
			sp.Partition = rp.Partition
			switch {
			case req.Acks != 0 && req.Acks != 1 && req.Acks != -1:
				fail(sp, kerr.InvalidRequiredAcks.Code, fmt.Errorf("acks must be -1, 0 or 1, got %d", req.Acks))
				continue
			case !txnAllowed:
				fail(sp, kerr.TransactionalIDAuthorizationFailed.Code, fmt.Errorf("%s may not write transactional id %q", r.Principal(), *req.TransactionID))
				continue
			case !topicAllowed:
				fail(sp, kerr.TopicAuthorizationFailed.Code, fmt.Errorf("%s may not write topic %q", r.Principal(), rt.Topic))
				continue
			case rt.Topic == group.OffsetsTopic:
				fail(sp, kerr.InvalidTopicException.Code, errInternalTopic)
				continue
			case t == nil && metadata.ValidateTopicName(rt.Topic) != nil:
				fail(sp, kerr.InvalidTopicException.Code, fmt.Errorf("invalid topic name %q", rt.Topic))
				continue
			case t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.Parts):
				fail(sp, kerr.UnknownTopicOrPartition.Code, nil)
				continue
			case !t.Parts[rp.Partition].IsLeader():
				fail(sp, kerr.NotLeaderForPartition.Code, nil)
				continue
			}
			if s.b.UnflushedBytes() >= s.cfg.WALMaxBytes {
				// The bucket is behind (or down): refuse with a
				// retriable error rather than grow the WAL without bound.
				fail(sp, kerr.KafkaStorageError.Code, fmt.Errorf("unflushed data reached --wal-max-bytes (%d); the bucket is not keeping up", s.cfg.WALMaxBytes))
				continue
			}
			h, err := batch.ValidateProduce(rp.Records, t.MaxMessageBytes(s.topicDefaults()))
			if err != nil {
				fail(sp, errCode(err), err)
				continue
			}
			if t.Compacted() {
				keyless, err := batch.NullKeys(rp.Records, batch.InflateLimit(t.MaxMessageBytes(s.topicDefaults())))
				if err == nil && len(keyless) > 0 {
					err = fmt.Errorf("compacted topic %s cannot take a record without a key (%d of the batch's records)", rt.Topic, len(keyless))
					if req.Version >= 8 { // ErrorRecords
						for _, i := range keyless {
							re := kmsg.NewProduceResponseTopicPartitionErrorRecord()
							re.RelativeOffset, re.ErrorMessage = int32(i), kmsg.StringPtr("compacted topic: a record needs a key")
							sp.ErrorRecords = append(sp.ErrorRecords, re)
						}
					}
				}
				if err != nil {
					fail(sp, kerr.InvalidRecord.Code, err)
					continue
				}
			}
			if !h.Transactional() && !r.producerIDBound(h.ProducerID) {
				fail(sp, kerr.InvalidProducerIDMapping.Code, fmt.Errorf("producer id %d was not given to %s", h.ProducerID, r.Principal()))
				continue
			}
			if code, err := s.checkTransactional(r.ctx, req.TransactionID, h, t.Parts[rp.Partition], rt.Topic, rp.Partition, req.Version >= 12); code != 0 {
				fail(sp, code, err)
				continue
			}
			if codec, level, ok := t.Recompression(s.topicDefaults()); ok && h.Compression() != codec {
				// compression.type: the leader recompresses, as Kafka does.
				maxBytes := t.MaxMessageBytes(s.topicDefaults())
				b, err := batch.Recompress(rp.Records, codec, level, batch.InflateLimit(maxBytes))
				if err == nil && len(b) > maxBytes {
					err = fmt.Errorf("batch recompressed to %s is %d bytes, above max.message.bytes %d: %w", codecName(codec), len(b), maxBytes, batch.ErrTooLarge)
				}
				if err == nil {
					h, err = batch.ParseHeader(b)
				}
				if err != nil {
					fail(sp, errCode(err), err)
					continue
				}
				rp.Records = b
			}
			tt, _ := t.ConfigValue("message.timestamp.type", s.topicDefaults())
			if tt != "LogAppendTime" {
				if bad, err := checkTimestamps(t, s.topicDefaults(), rp.Records, time.Now().UnixMilli()); err != nil {
					if req.Version >= 8 {
						for _, i := range bad {
							re := kmsg.NewProduceResponseTopicPartitionErrorRecord()
							re.RelativeOffset, re.ErrorMessage = int32(i), kmsg.StringPtr("timestamp out of range")
							sp.ErrorRecords = append(sp.ErrorRecords, re)
						}
					}
					fail(sp, errCode(err), err)
					continue
				}
			}
			if tt == "LogAppendTime" {
				sp.LogAppendTime = time.Now().UnixMilli()
				setLogAppendTime(rp.Records, sp.LogAppendTime)
				// The index keeps what the bytes now say.
				h.MaxTimestamp = sp.LogAppendTime
				h.Attributes |= 1 << 3
			}
			p := t.Parts[rp.Partition]
			if !live {
				// Woken from a pause, or cut off: act on it before the
				// heartbeat loop does (see checkSession).
				p.SetSessionLapsed(true)
			}
			done := make(chan error, 1)
			res, err := p.Append(rp.Records, h, req.Acks, func(err error) { done <- err })
			if err != nil {
				fail(sp, errCode(err), err)
				sp.LogAppendTime = -1
				failedAcks0 = true
				continue
			}
			sp.BaseOffset = res.BaseOffset
			sp.LogStartOffset = res.LogStart
			if res.Duplicate {
				// A duplicate's original LogAppendTime isn't kept.
				sp.LogAppendTime = -1
			}
			waits = append(waits, waitFor{rp: sp, done: done})
			s.metrics.produced(res.Duplicate, len(rp.Records), h.NumRecords)
		}
	}
	if s.b.UnflushedBytes() >= s.cfg.FlushBytes {
		s.b.Flush()
	}
	produced := 0
	for _, rt := range req.Topics {
		for _, rp := range rt.Partitions {
			produced += len(rp.Records)
		}
	}
	throttle := s.quotas.record(s.b.State(), metadata.QuotaProducerByteRate, r.Principal(), r.clientID, produced, time.Now(), false)
	if req.Acks == 0 {
		// Kafka closes an acks=0 producer's connection on any error, the
		// only way to make it refresh metadata (e.g. after a leader move).
		for _, st := range resp.Topics {
			for _, sp := range st.Partitions {
				if sp.ErrorCode != 0 {
					failedAcks0 = true
				}
			}
		}
		if failedAcks0 {
			return nil, fmt.Errorf("acks=0 produce failed for at least one partition")
		}
		return nil, nil
	}
	timeout := time.Duration(max(req.TimeoutMillis, 0)) * time.Millisecond
	return func() kmsg.Response {
		defer s.metrics.produceDone(start)
		resp.ThrottleMillis = throttleMillis(throttle)
		// TimeoutMillis bounds the wait for the in-sync replicas (acks=all),
		// from when the request was read; the leader's own WAL write
		// (acks=1) is waited for regardless, as Kafka's leader append is
		// synchronous.
		var expiry <-chan time.Time
		if req.Acks == -1 {
			timer := time.NewTimer(time.Until(start.Add(timeout)))
			defer timer.Stop()
			expiry = timer.C
		}
		expired := false
		for _, w := range waits {
			var err error
			if expired {
				select {
				case err = <-w.done:
				default:
					err = errTimedOut
				}
			} else {
				select {
				case err = <-w.done:
				case <-expiry:
					expired = true
					select {
					case err = <-w.done:
					default:
						err = errTimedOut
					}
				case <-r.ctx.Done():
					// The agent or connection is going away: answer
					// nothing, so the client retries elsewhere rather
					// than take an error for an outcome not known.
					return nil
				}
			}
			if err != nil {
				fail(w.rp, errCode(err), err)
				w.rp.BaseOffset = -1
			}
		}
		return resp
	}, nil
}

// checkTransactional checks a batch against the request's transactional
// id: a transactional batch needs one, and a partition in the producer's
// open transaction, which the first batch of each transaction here checks
// with the coordinator (Backend.VerifyTxn; KIP-890); a request with one
// carries only transactional batches. With add (Produce v12, transactions
// version 2) the coordinator adds the partition instead: such clients
// send no AddPartitionsToTxn.
func (s *Server) checkTransactional(ctx context.Context, txnID *string, h batch.Header, p *partition.Partition, topicName string, idx int32, add bool) (int16, error) {
	switch {
	case txnID == nil && h.Transactional():
		// Kafka's KafkaApis answers this as an unauthorized transactional id.
		return kerr.TransactionalIDAuthorizationFailed.Code, fmt.Errorf("a transactional batch needs the request's transactional id")
	case txnID == nil:
		return 0, nil
	case !h.Transactional():
		return kerr.InvalidRecord.Code, fmt.Errorf("a request with a transactional id carries only transactional batches")
	}
	if p.InTransaction(h.ProducerID, h.ProducerEpoch) {
		return 0, nil // verified with its first batch here
	}
	code := s.b.VerifyTxn(ctx, *txnID, h.ProducerID, h.ProducerEpoch, txn.TP{Topic: topicName, Partition: idx}, add)
	switch code {
	case 0:
		return 0, nil
	case kerr.ConcurrentTransactions.Code:
		// The previous transaction's markers are still going out (the
		// agent retried briefly): the producer retries.
		return code, fmt.Errorf("transactional id %q is completing its previous transaction", *txnID)
	case kerr.InvalidProducerEpoch.Code, kerr.InvalidProducerIDMapping.Code, kerr.ProducerFenced.Code:
		return kerr.InvalidProducerEpoch.Code, fmt.Errorf("producer %d epoch %d is not transactional id %q's", h.ProducerID, h.ProducerEpoch, *txnID)
	case kerr.InvalidTxnState.Code:
		return code, fmt.Errorf("%s/%d is not in transactional id %q's open transaction", topicName, idx, *txnID)
	}
	// The coordinator could not be asked (moving, loading): retriable.
	return kerr.NotEnoughReplicas.Code, fmt.Errorf("cannot verify the transaction of %q with its coordinator: %s", *txnID, kerr.ErrorForCode(code))
}

// errTimedOut: the in-sync replicas did not all take the batch within the
// request's timeout. The batch stays in the log and may still be
// replicated; an idempotent producer's retry is answered as a duplicate.
var errTimedOut = fmt.Errorf("%w: not replicated to every in-sync replica within the request timeout", context.DeadlineExceeded)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func codecName(c int8) string {
	return [...]string{"uncompressed", "gzip", "snappy", "lz4", "zstd"}[c]
}

// checkTimestamps applies a CreateTime topic's timestamp bounds
// (message.timestamp.before.max.ms and .after.max.ms) to every record of a
// produced batch, as Kafka's LogValidator does: a record stamped further
// from now (ms) fails the whole batch with INVALID_TIMESTAMP, naming the
// records at fault. Records without a timestamp (-1) pass. Without bounds
// (the default) nothing is read.
func checkTimestamps(t *topic.Topic, d topic.Defaults, records []byte, now int64) ([]int, error) {
	before, after := t.TimestampBounds(d)
	if before == math.MaxInt64 && after == math.MaxInt64 {
		return nil, nil
	}
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	if now >= math.MinInt64+before { // now - before does not underflow (before ≥ 0)
		lo = now - before
	}
	if after <= math.MaxInt64-now { // nor now + after overflow
		hi = now + after
	}
	var bad []int
	first := int64(0)
	err := batch.RecordTimestamps(records, batch.InflateLimit(t.MaxMessageBytes(d)), func(i int, ts int64) {
		if ts != -1 && (ts < lo || ts > hi) {
			if bad == nil {
				first = ts
			}
			bad = append(bad, i)
		}
	})
	if err != nil {
		return nil, err // validated already: cannot happen
	}
	if len(bad) > 0 {
		return bad, fmt.Errorf("%w: record %d has timestamp %d, outside [%d, %d] (message.timestamp.before.max.ms %d, after.max.ms %d)",
			errInvalidTimestamp, bad[0], first, lo, hi, before, after)
	}
	return nil, nil
}

// setLogAppendTime marks a batch as LogAppendTime with max timestamp ts and
// recomputes its CRC, as a Kafka broker does for such topics.
func setLogAppendTime(b []byte, ts int64) {
	attrs := uint16(b[21])<<8 | uint16(b[22])
	attrs |= 1 << 3
	b[21], b[22] = byte(attrs>>8), byte(attrs)
	for i := 0; i < 8; i++ {
		b[35+i] = byte(uint64(ts) >> (56 - 8*i))
	}
	crc := crc32.Checksum(b[21:], castagnoli)
	b[17], b[18], b[19], b[20] = byte(crc>>24), byte(crc>>16), byte(crc>>8), byte(crc)
}
