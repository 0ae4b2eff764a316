package metadata

import (
	"errors"
	"fmt"
)

// Store errors.
var (
	// ErrNotController: the Store does not hold a live controller lease.
	ErrNotController = errors.New("not the controller")
	// ErrConflict: another writer took the journal sequence number first.
	// The Store has re-read the journal; the proposer may validate against
	// the new state and retry once.
	ErrConflict = errors.New("journal sequence taken by another writer")
	// ErrUnavailable: the bucket failed a journal read or write, so the
	// proposal's outcome was not decided here; retrying may succeed.
	ErrUnavailable = errors.New("metadata journal unavailable")
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("metadata store closed")
	// ErrCorrupt: a lease, journal entry or snapshot in the bucket does not
	// decode or is inconsistent.
	ErrCorrupt = errors.New("corrupt metadata object")
)

// Command validation errors, returned (wrapped with context) by State.Apply,
// State.Next and Store.Propose.
var (
	ErrInvalidCommand     = errors.New("invalid command")
	ErrInvalidAgent       = errors.New("invalid agent")
	ErrUnknownAgent       = errors.New("unknown agent")
	ErrUnknownUser        = errors.New("unknown user or mechanism")
	ErrTopicExists        = errors.New("topic already exists")
	ErrInvalidTopic       = errors.New("invalid topic name")
	ErrUnknownTopic       = errors.New("unknown topic")
	ErrUnknownPartition   = errors.New("unknown partition")
	ErrInvalidPartitions  = errors.New("invalid partition count")
	ErrInvalidReplicas    = errors.New("invalid replica assignment")
	ErrInvalidConfig      = errors.New("invalid topic config")
	ErrOffsetOutOfRange   = errors.New("offset out of range")
	ErrStaleEpoch         = errors.New("stale leader epoch")
	ErrUnknownLeaderEpoch = errors.New("leader epoch newer than the partition's")
	ErrNotContiguous      = errors.New("segment does not start at the partition's flushed end")
	ErrInvalidSegment     = errors.New("invalid segment ref")
)

// errorKinds names every error a proposal can be refused with, so a
// refusal can cross the peer protocol and still satisfy errors.Is. Order
// matters where an error wraps two: the first match names it.
var errorKinds = []struct {
	kind string
	err  error
}{
	{"not_controller", ErrNotController},
	{"conflict", ErrConflict},
	{"closed", ErrClosed},
	{"unavailable", ErrUnavailable},
	{"corrupt", ErrCorrupt},
	{"stale_epoch", ErrStaleEpoch},
	{"unknown_leader_epoch", ErrUnknownLeaderEpoch},
	{"not_contiguous", ErrNotContiguous},
	{"invalid_segment", ErrInvalidSegment},
	{"topic_exists", ErrTopicExists},
	{"invalid_topic", ErrInvalidTopic},
	{"unknown_topic", ErrUnknownTopic},
	{"unknown_partition", ErrUnknownPartition},
	{"invalid_partitions", ErrInvalidPartitions},
	{"invalid_replicas", ErrInvalidReplicas},
	{"invalid_config", ErrInvalidConfig},
	{"offset_out_of_range", ErrOffsetOutOfRange},
	{"invalid_agent", ErrInvalidAgent},
	{"unknown_agent", ErrUnknownAgent},
	{"unknown_user", ErrUnknownUser},
	{"invalid_command", ErrInvalidCommand},
}

// ErrorKind names err's class for the wire ("" if none of ours).
func ErrorKind(err error) string {
	for _, k := range errorKinds {
		if errors.Is(err, k.err) {
			return k.kind
		}
	}
	return ""
}

// ErrorFromKind rebuilds an error from its kind and message.
func ErrorFromKind(kind, msg string) error {
	for _, k := range errorKinds {
		if k.kind == kind {
			return fmt.Errorf("%w (at the controller: %s)", k.err, msg)
		}
	}
	return errors.New(msg)
}
