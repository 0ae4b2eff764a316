package agent

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/tlog-io/tlog/metadata"
)

// Topics and the cluster are held to what an agent serves and restarts
// with (MaxTopicPartitions, MaxClusterPartitions).
func TestPartitionLimits(t *testing.T) {
	st := &metadata.State{Topics: map[uuid.UUID]*metadata.Topic{}}
	if err := checkPartitionLimits(st, 0, MaxTopicPartitions); err != nil {
		t.Fatalf("a topic at the limit: %v", err)
	}
	if err := checkPartitionLimits(st, 0, MaxTopicPartitions+1); !errors.Is(err, errInvalidPartitions) {
		t.Fatalf("a topic past the limit: %v", err)
	}
	if err := checkPartitionLimits(st, MaxTopicPartitions-1, 2); !errors.Is(err, errInvalidPartitions) {
		t.Fatalf("growing a topic past the limit: %v", err)
	}
	for range MaxClusterPartitions / MaxTopicPartitions {
		st.Topics[uuid.New()] = &metadata.Topic{Partitions: make([]metadata.Partition, MaxTopicPartitions)}
	}
	if err := checkPartitionLimits(st, 0, 1); !errors.Is(err, errInvalidPartitions) {
		t.Fatalf("one partition past the cluster's limit: %v", err)
	}
}
