package kafka

import (
	"context"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tlog-io/tlog/agent/group"
	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/topic"
	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier/batch"
)

// errInvalidTimestamp: a produced record's timestamp is outside the
// topic's bounds (INVALID_TIMESTAMP).
var errInvalidTimestamp = errors.New("timestamp out of range")

// errCode maps an internal error to the Kafka error code a client expects.
func errCode(err error) int16 {
	switch {
	case err == nil:
		return 0
	case errors.Is(err, errInvalidTimestamp):
		return kerr.InvalidTimestamp.Code
	case errors.Is(err, partition.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, partition.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, partition.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, partition.ErrStorage):
		return kerr.KafkaStorageError.Code
	case errors.Is(err, partition.ErrClosed):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, partition.ErrNotLeader), errors.Is(err, partition.ErrNotFollower):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, partition.ErrNotEnoughReplicas):
		return kerr.NotEnoughReplicas.Code
	case errors.Is(err, partition.ErrProducersLoading):
		return kerr.LeaderNotAvailable.Code
	case errors.Is(err, metadata.ErrStaleEpoch), errors.Is(err, metadata.ErrUnknownLeaderEpoch):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, metadata.ErrNotController), errors.Is(err, metadata.ErrConflict), errors.Is(err, metadata.ErrClosed):
		// Lost the journal to another writer, or shutting down: another
		// agent is (or will be) the controller.
		return kerr.NotController.Code
	case errors.Is(err, metadata.ErrUnavailable):
		// The bucket failed the journal: retriable, as a Kafka
		// controller's timeout is.
		return kerr.RequestTimedOut.Code
	case errors.Is(err, metadata.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, metadata.ErrInvalidTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, metadata.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, metadata.ErrInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, metadata.ErrInvalidReplicas):
		return kerr.InvalidReplicaAssignment.Code
	case errors.Is(err, metadata.ErrUnknownPartition):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, metadata.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, topic.ErrInvalidConfig), errors.Is(err, metadata.ErrInvalidConfig):
		return kerr.InvalidConfig.Code
	case errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	}
	if c := batch.KafkaErrorCode(err); c > 0 {
		return c
	}
	return kerr.UnknownServerError.Code
}

// errMsg returns a message for v8+ style ErrorMessage fields.
func errMsg(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

// errInternalTopic refuses client writes and changes to __consumer_offsets:
// only coordinators write it, and its partition count fixes where every
// group lives.
var errInternalTopic = fmt.Errorf("%w: %s is internal to the group coordinators", metadata.ErrInvalidTopic, group.OffsetsTopic)
