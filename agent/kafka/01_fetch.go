package kafka

// Fetch: v4-17
//
// Serves whole batches below the high watermark, the batch holding the
// requested offset first. The first batch of the response is returned even
// if it exceeds MaxBytes or the partition's limit (KIP-74), so a consumer
// always progresses. Waits up to MaxWaitMillis for MinBytes, woken whenever
// any partition's high watermark moves. A partition named more than once
// is answered once. Fetch sessions (KIP-227) are not
// kept: every response is full and carries session id 0, which clients
// treat as "sessions unavailable".
// With an authorizer: READ on each topic (TOPIC_AUTHORIZATION_FAILED,
// asked before the topic's existence when it is named).
// consumer_byte_rate quotas throttle (quotas.go): an over-quota fetch is
// answered empty with the throttle time.
//
// Version notes:
// * below v10: a partition whose answer holds a zstd batch (a producer's,
//   or the leader's under compression.type=zstd) gets
//   UNSUPPORTED_COMPRESSION_TYPE and no data, as Kafka answers clients
//   that predate zstd
// * v4: LastStableOffset, isolation level: read_committed (1) reads below
//   the LSO only and gets the aborted transactions the data overlaps
//   (AbortedTransactions), which the client drops
// * v5: LogStartOffset
// * v7: sessions (declined as above)
// * v9: CurrentLeaderEpoch fencing (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH)
// * v11: rack (ignored: one replica serves)
// * v12: flexible versions, LastFetchedEpoch (divergence is checked by clients
//   through OffsetForLeaderEpoch)
// * v13: topics by TopicID (UNKNOWN_TOPIC_ID)
// * v17: ReplicaDirectoryID (KIP-853; followers of Kafka's own
//   replication only, ignored)

import (
	"errors"
	"time"

	"github.com/google/uuid"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/topic"
	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier/batch"
)

func init() { register(1, 4, 17, handleFetch) }

// fetchMaxBytes is Kafka's fetch.max.bytes default: the most one response
// carries, however much the client asks for.
const fetchMaxBytes = 55 << 20

func handleFetch(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.FetchRequest)
	return func() kmsg.Response {
		deadline := time.Now().Add(time.Duration(max(req.MaxWaitMillis, 0)) * time.Millisecond)
		for {
			wake := s.b.DataMoved()
			resp, n, stop := s.fetchOnce(r, req)
			// MinBytes 0 (or no wait) answers at once, as Kafka does.
			if stop || (n > 0 && n >= int(req.MinBytes)) || req.MinBytes <= 0 || !time.Now().Before(deadline) {
				return s.throttleFetch(r, resp, n)
			}
			timer := time.NewTimer(time.Until(deadline))
			select {
			case <-wake:
			case <-timer.C:
			case <-r.ctx.Done():
				timer.Stop()
				return s.throttleFetch(r, resp, n)
			}
			timer.Stop()
		}
	}, nil
}

// throttleFetch counts a response's n record bytes against the client's
// consumer_byte_rate quota; over it, the client gets an empty response
// with the throttle time instead (the bytes uncounted), as from Kafka.
func (s *Server) throttleFetch(r *request, resp *kmsg.FetchResponse, n int) *kmsg.FetchResponse {
	throttle := s.quotas.record(s.b.State(), metadata.QuotaConsumerByteRate, r.Principal(), r.clientID, n, time.Now(), true)
	if throttle <= 0 {
		return resp
	}
	empty := r.kreq.(*kmsg.FetchRequest).ResponseKind().(*kmsg.FetchResponse)
	empty.ThrottleMillis = throttleMillis(throttle)
	return empty
}

// fetchOnce builds a response from what is readable now. stop says an error
// makes waiting pointless.
func (s *Server) fetchOnce(r *request, req *kmsg.FetchRequest) (*kmsg.FetchResponse, int, bool) {
	ctx := r.ctx
	resp := req.ResponseKind().(*kmsg.FetchResponse)
	// Capped by fetch.max.bytes whatever the client asks; the first batch
	// is returned regardless (KIP-74).
	budget := min(max(int(req.MaxBytes), 0), fetchMaxBytes)
	// Under a consumer_byte_rate quota, no more than the quota's window
	// allows (as Kafka caps it), so one response alone is never over it.
	if limit, _, ok := s.b.State().QuotaFor(quotaUser(r.Principal()), r.clientID, metadata.QuotaConsumerByteRate); ok {
		budget = min(budget, max(int(limit*(quotaSamples-1)), 1))
	}
	total, stop := 0, false
	// A partition named twice is answered once, as Kafka's fetch map
	// keeps one entry per partition: repeats would multiply the
	// response past every limit.
	type tp struct {
		name string
		id   [16]byte
		p    int32
	}
	seen := make(map[tp]bool)
	s.prefetch(r, req)
	for _, rt := range req.Topics {
		st := kmsg.NewFetchResponseTopic()
		st.Topic = rt.Topic
		st.TopicID = rt.TopicID
		var t *topic.Topic
		if req.Version >= 13 {
			t = s.b.TopicByID(uuid.UUID(rt.TopicID))
		} else {
			t = s.b.TopicByName(rt.Topic)
		}
		allowed := true
		if req.Version >= 13 {
			allowed = t == nil || r.allowedTopic(t.Name, metadata.OpRead)
		} else {
			allowed = r.allowedTopic(rt.Topic, metadata.OpRead)
		}
		for _, rp := range rt.Partitions {
			k := tp{rt.Topic, rt.TopicID, rp.Partition}
			if req.Version >= 13 {
				k.name = ""
			}
			if seen[k] {
				continue
			}
			seen[k] = true
			sp := kmsg.NewFetchResponseTopicPartition()
			sp.Partition = rp.Partition
			// Empty, not null: librdkafka rejects a null record set.
			sp.RecordBatches = []byte{}
			sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = -1, -1, -1
			switch {
			case !allowed:
				sp.ErrorCode = kerr.TopicAuthorizationFailed.Code
				stop = true
			case t == nil && req.Version >= 13:
				sp.ErrorCode = kerr.UnknownTopicID.Code
				stop = true
			case t == nil || rp.Partition < 0 || int(rp.Partition) >= len(t.Parts):
				sp.ErrorCode = kerr.UnknownTopicOrPartition.Code
				stop = true
			case !t.Parts[rp.Partition].IsLeader():
				sp.ErrorCode = kerr.NotLeaderForPartition.Code
				stop = true
			default:
				p := t.Parts[rp.Partition]
				o := p.Offsets()
				if code := checkLeaderEpoch(rp.CurrentLeaderEpoch, o.Epoch); code != 0 {
					sp.ErrorCode = code
					stop = true
					break
				}
				// Only the response's first batch may overshoot the limits.
				limit := max(min(int(rp.PartitionMaxBytes), budget), 0)
				var data []byte
				var err error
				if req.IsolationLevel == 1 {
					var aborted []partition.AbortedTxn
					data, o, aborted, err = p.ReadCommitted(ctx, rp.FetchOffset, limit, total == 0)
					for _, at := range aborted {
						ka := kmsg.NewFetchResponseTopicPartitionAbortedTransaction()
						ka.ProducerID, ka.FirstOffset = at.ProducerID, at.FirstOffset
						sp.AbortedTransactions = append(sp.AbortedTransactions, ka)
					}
				} else {
					data, o, err = p.Read(ctx, rp.FetchOffset, limit, total == 0)
				}
				sp.HighWatermark, sp.LastStableOffset, sp.LogStartOffset = o.HW, o.LSO, o.LogStart
				if err != nil {
					sp.ErrorCode = errCode(err)
					// A read cut short by the client leaving is not worth a warning.
					if !errors.Is(err, partition.ErrOffsetOutOfRange) && !errors.Is(err, partition.ErrProducersLoading) && ctx.Err() == nil {
						s.log.Warn("fetch read", "topic", t.Name, "partition", rp.Partition, "err", err)
					}
					stop = true
					break
				}
				if req.Version < 10 && holdsZstd(data) {
					// As Kafka answers a client too old to know zstd
					// (KIP-110): nothing, and this error.
					sp.ErrorCode = kerr.UnsupportedCompressionType.Code
					stop = true
					break
				}
				if data != nil {
					sp.RecordBatches = data
				}
				total += len(data)
				budget -= len(data)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		if len(st.Partitions) > 0 || len(rt.Partitions) == 0 {
			resp.Topics = append(resp.Topics, st)
		}
	}
	return resp, total, stop
}

// prefetch asks every partition the request names to start reading the
// bucket where its fetch offset is flushed, before the partitions are read
// in turn: a replay of many partitions then waits for overlapping GETs, not
// for one after another.
func (s *Server) prefetch(r *request, req *kmsg.FetchRequest) {
	for _, rt := range req.Topics {
		var t *topic.Topic
		if req.Version >= 13 {
			t = s.b.TopicByID(uuid.UUID(rt.TopicID))
		} else {
			t = s.b.TopicByName(rt.Topic)
		}
		if t == nil || !r.allowedTopic(t.Name, metadata.OpRead) {
			continue
		}
		for _, rp := range rt.Partitions {
			if rp.Partition >= 0 && int(rp.Partition) < len(t.Parts) {
				t.Parts[rp.Partition].Prefetch(rp.FetchOffset)
			}
		}
	}
}

// holdsZstd reports whether any whole batch in data is zstd-compressed.
func holdsZstd(data []byte) bool {
	found := false
	_ = batch.Iterate(data, func(h batch.Header, _ []byte) bool {
		found = h.Compression() == batch.CompressionZstd
		return !found
	})
	return found
}

// checkLeaderEpoch fences clients with a stale or future view (KIP-320).
// -1 means the client doesn't know.
func checkLeaderEpoch(clientEpoch, epoch int32) int16 {
	switch {
	case clientEpoch < 0 || clientEpoch == epoch:
		return 0
	case clientEpoch < epoch:
		return kerr.FencedLeaderEpoch.Code
	default:
		return kerr.UnknownLeaderEpoch.Code
	}
}
