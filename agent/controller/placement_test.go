package controller_test

import (
	"errors"
	"testing"

	"github.com/google/uuid"

	"github.com/tlog-io/tlog/agent/controller"
	"github.com/tlog-io/tlog/metadata"
)

// Topics and the cluster are held to what an agent serves and restarts
// with (controller.MaxTopicPartitions, controller.MaxClusterPartitions).
func TestPartitionLimits(t *testing.T) {
	st := &metadata.State{Topics: map[uuid.UUID]*metadata.Topic{}}
	if err := controller.CheckPartitionLimits(st, 0, controller.MaxTopicPartitions); err != nil {
		t.Fatalf("a topic at the limit: %v", err)
	}
	if err := controller.CheckPartitionLimits(st, 0, controller.MaxTopicPartitions+1); !errors.Is(err, controller.ErrInvalidPartitions) {
		t.Fatalf("a topic past the limit: %v", err)
	}
	if err := controller.CheckPartitionLimits(st, controller.MaxTopicPartitions-1, 2); !errors.Is(err, controller.ErrInvalidPartitions) {
		t.Fatalf("growing a topic past the limit: %v", err)
	}
	for range controller.MaxClusterPartitions / controller.MaxTopicPartitions {
		st.Topics[uuid.New()] = &metadata.Topic{Partitions: make([]metadata.Partition, controller.MaxTopicPartitions)}
	}
	if err := controller.CheckPartitionLimits(st, 0, 1); !errors.Is(err, controller.ErrInvalidPartitions) {
		t.Fatalf("one partition past the cluster's limit: %v", err)
	}
}
