package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

type offsetKind uint8

const (
	kindEarliest offsetKind = iota // the zero Offset is Earliest
	kindLatest
	kindAt
	kindTime
)

// Offset is a position to start or seek to. The zero Offset is Earliest.
type Offset struct {
	kind offsetKind
	at   int64
	t    time.Time
}

// Earliest is the first record still in the partition (its log start).
func Earliest() Offset { return Offset{kind: kindEarliest} }

// Latest is the end of the partition: only records written afterwards are
// read.
func Latest() Offset { return Offset{kind: kindLatest} }

// At is a given offset: the record at that offset is read next. An offset
// outside the partition is replaced by the reset offset
// (WithResetOffset).
func At(offset int64) Offset { return Offset{kind: kindAt, at: offset} }

// AtTime is the first record whose timestamp is at or after t, resolved
// with a ListOffsets request; if every record is older, it is Latest.
func AtTime(t time.Time) Offset { return Offset{kind: kindTime, t: t} }

// String describes the offset.
func (o Offset) String() string {
	switch o.kind {
	case kindEarliest:
		return "earliest"
	case kindLatest:
		return "latest"
	case kindAt:
		return fmt.Sprintf("offset %d", o.at)
	case kindTime:
		return "time " + o.t.Format(time.RFC3339Nano)
	}
	return "invalid offset"
}

func (o Offset) validate() error {
	switch {
	case o.kind > kindTime:
		return fmt.Errorf("invalid offset kind %d", o.kind)
	case o.kind == kindAt && o.at < 0:
		return fmt.Errorf("negative offset %d", o.at)
	case o.kind == kindTime && o.t.IsZero():
		return fmt.Errorf("zero time")
	}
	return nil
}

// kgo converts o for kgo, which lists offsets itself for AtTime.
func (o Offset) kgo() kgo.Offset {
	switch o.kind {
	case kindLatest:
		return kgo.NewOffset().AtEnd()
	case kindAt:
		return kgo.NewOffset().At(o.at)
	case kindTime:
		return kgo.NewOffset().AfterMilli(o.t.UnixMilli())
	}
	return kgo.NewOffset().AtStart()
}

// ListOffsets timestamps with special meaning.
const (
	listLatest   = -1
	listEarliest = -2
)

// listOffsets resolves want to concrete offsets with ListOffsets requests.
// Retriable errors (a leader moving, a topic being created) are retried
// until ctx ends.
func listOffsets(ctx context.Context, cl *kgo.Client, want map[TopicPartition]Offset) (map[TopicPartition]int64, error) {
	out := make(map[TopicPartition]int64, len(want))
	ts := map[TopicPartition]int64{}
	for tp, o := range want {
		switch o.kind {
		case kindAt:
			out[tp] = o.at
		case kindEarliest:
			ts[tp] = listEarliest
		case kindLatest:
			ts[tp] = listLatest
		case kindTime:
			ts[tp] = o.t.UnixMilli()
		}
	}
	backoff := 100 * time.Millisecond
	for len(ts) > 0 {
		got, err := listOnce(ctx, cl, ts)
		if err != nil {
			return nil, err
		}
		var retry error
		again := false // a time past the end was turned into Latest
		for tp, t := range ts {
			r, ok := got[tp]
			switch {
			case !ok:
				retry = fmt.Errorf("list offsets of %s: partition missing from the response", tp)
			case r.err != nil && kerr.IsRetriable(r.err):
				retry = fmt.Errorf("list offsets of %s: %w", tp, r.err)
			case r.err != nil:
				return nil, fmt.Errorf("list offsets of %s at %d: %w", tp, t, r.err)
			case r.offset < 0 && t >= 0:
				// No record at or after the time: start at the end.
				ts[tp] = listLatest
				again = true
			case r.offset < 0:
				return nil, fmt.Errorf("list offsets of %s at %d: broker returned offset %d", tp, t, r.offset)
			default:
				out[tp] = r.offset
				delete(ts, tp)
			}
		}
		if len(ts) == 0 || (again && retry == nil) {
			continue
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (last error: %w)", ctx.Err(), retry)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
	return out, nil
}

type listResult struct {
	offset int64
	err    error
}

func listOnce(ctx context.Context, cl *kgo.Client, ts map[TopicPartition]int64) (map[TopicPartition]listResult, error) {
	req := kmsg.NewPtrListOffsetsRequest()
	req.ReplicaID = -1
	byTopic := map[string]int{}
	for tp, t := range ts {
		i, ok := byTopic[tp.Topic]
		if !ok {
			i = len(req.Topics)
			byTopic[tp.Topic] = i
			rt := kmsg.NewListOffsetsRequestTopic()
			rt.Topic = tp.Topic
			req.Topics = append(req.Topics, rt)
		}
		rp := kmsg.NewListOffsetsRequestTopicPartition()
		rp.Partition = tp.Partition
		rp.Timestamp = t
		rp.CurrentLeaderEpoch = -1
		req.Topics[i].Partitions = append(req.Topics[i].Partitions, rp)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return nil, fmt.Errorf("list offsets: %w", err)
	}
	out := map[TopicPartition]listResult{}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			tp := TopicPartition{rt.Topic, rp.Partition}
			if _, asked := ts[tp]; !asked {
				continue
			}
			r := listResult{offset: rp.Offset, err: kerr.ErrorForCode(rp.ErrorCode)}
			if resp.Version == 0 { // v0 answers with a list of offsets
				r.offset = -1
				if len(rp.OldStyleOffsets) > 0 {
					r.offset = rp.OldStyleOffsets[0]
				}
			}
			out[tp] = r
		}
	}
	return out, nil
}

// partitionsOf returns the partitions of topic, waiting (until ctx ends)
// for a topic that does not exist yet or has no leader.
func partitionsOf(ctx context.Context, cl *kgo.Client, topic string) ([]int32, error) {
	backoff := 100 * time.Millisecond
	for {
		req := kmsg.NewPtrMetadataRequest()
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(topic)
		req.Topics = append(req.Topics, rt)
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return nil, fmt.Errorf("metadata of %s: %w", topic, err)
		}
		var last error
		for _, t := range resp.Topics {
			if t.Topic == nil || *t.Topic != topic {
				continue
			}
			if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
				if !kerr.IsRetriable(err) {
					return nil, fmt.Errorf("metadata of %s: %w", topic, err)
				}
				last = err
				break
			}
			if len(t.Partitions) == 0 {
				last = errors.New("topic has no partitions")
				break
			}
			ps := make([]int32, 0, len(t.Partitions))
			for _, p := range t.Partitions {
				ps = append(ps, p.Partition)
			}
			return ps, nil
		}
		if last == nil {
			last = errors.New("topic missing from the metadata response")
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("metadata of %s: %w (last error: %w)", topic, ctx.Err(), last)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// SupportsGroups reports whether the broker at brokers serves the classic
// consumer-group protocol (it advertises JoinGroup, API key 11), as tlog
// does.
func SupportsGroups(ctx context.Context, brokers []string) (bool, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		return false, fmt.Errorf("supports groups: %w", err)
	}
	defer cl.Close()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		return false, fmt.Errorf("supports groups: api versions: %w", err)
	}
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return false, fmt.Errorf("supports groups: api versions: %w", err)
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey == int16(kmsg.JoinGroup) {
			return true, nil
		}
	}
	return false, nil
}
