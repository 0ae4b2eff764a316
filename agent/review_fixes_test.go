package agent_test

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// An explicit replica assignment is checked before anything is sized by
// it: a huge or negative partition index is INVALID_REPLICA_ASSIGNMENT, not
// gigabytes of allocation or a panic.
func TestCreateTopicsAssignmentIndexes(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	for _, idx := range []int32{2_000_000_000, -1, 1} {
		req := createTopicsReq(false, topicSpec{name: "assign", partitions: -1, rf: -1})
		ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		ra.Partition, ra.Replicas = idx, []int32{0}
		req.Topics[0].ReplicaAssignment = append(req.Topics[0].ReplicaAssignment, ra)
		resp := do[*kmsg.CreateTopicsResponse](c, 7, req)
		if got := resp.Topics[0].ErrorCode; got != kerr.InvalidReplicaAssignment.Code {
			t.Errorf("assignment for partition %d: error %d, want INVALID_REPLICA_ASSIGNMENT (39)", idx, got)
		}
	}
	// A proper one works.
	req := createTopicsReq(false, topicSpec{name: "assign", partitions: -1, rf: -1})
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, []int32{0}
	req.Topics[0].ReplicaAssignment = append(req.Topics[0].ReplicaAssignment, ra)
	if got := do[*kmsg.CreateTopicsResponse](c, 7, req).Topics[0].ErrorCode; got != 0 {
		t.Fatalf("valid assignment: error %d", got)
	}
}

// MinBytes 0 answers at once, however long MaxWait is.
func TestFetchMinBytesZeroAnswersAtOnce(t *testing.T) {
	t.Parallel()
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "idle", 1, nil)
	req := fetchReq(30_000, 0, 1<<20)
	addFetch(req, "idle", [16]byte{}, 0, 0, 1<<20)
	start := time.Now()
	resp := do[*kmsg.FetchResponse](c, 12, req)
	if waited := time.Since(start); waited > 15*time.Second {
		t.Fatalf("fetch with MinBytes 0 waited %v of its 30s MaxWait", waited)
	}
	if p := resp.Topics[0].Partitions[0]; p.ErrorCode != 0 || len(p.RecordBatches) != 0 {
		t.Fatalf("empty partition: error %d, %d bytes", p.ErrorCode, len(p.RecordBatches))
	}
}
