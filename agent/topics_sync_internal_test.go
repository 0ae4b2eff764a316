package agent

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier"
)

func startInternalAgent(t *testing.T) *Agent {
	t.Helper()
	a, err := Start(context.Background(), Config{
		DataDir: t.TempDir(), Listen: "127.0.0.1:0", Bucket: tier.NewMemBucket(),
		LeaseTTL: 2 * time.Second, Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// When one metadata sync sees a topic deleted and a new topic of the same
// name created (two proposals between syncs: concurrent admin clients, or a
// follower catching up on the journal), the agent must serve the new topic.
// syncTopics adds the new topic under the name first, then deletes the old
// topic's name entry — which is now the new topic's.
func TestSyncTopicsDeleteAndRecreateInOneSync(t *testing.T) {
	t.Parallel()
	a := startInternalAgent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.createTopic(ctx, "phoenix", 1, 1); err != nil {
		t.Fatal(err)
	}
	old := a.topicByName("phoenix")
	if old == nil {
		t.Fatal("created topic not live")
	}
	newID := uuid.New()
	_, err := a.propose(ctx,
		metadata.DeleteTopic{ID: old.ID},
		metadata.CreateTopic{ID: newID, Name: "phoenix", Partitions: []metadata.PartitionSpec{{Replicas: []int32{0}, Leader: 0}}},
	)
	if err != nil {
		t.Fatal(err)
	}
	if mt, ok := a.meta.State().TopicByName("phoenix"); !ok || mt.ID != newID {
		t.Fatalf("metadata does not hold the recreated topic")
	}
	if a.topicByID(newID) == nil {
		t.Fatalf("recreated topic not live by id")
	}
	got := a.topicByName("phoenix")
	if got == nil {
		t.Fatal("BUG: recreated topic missing from a.topics: syncTopics deleted the new topic's name entry " +
			"while removing the old topic (agent.go syncTopics)")
	}
	if got.ID != newID {
		t.Fatalf("topic %q is live with id %s, want %s", "phoenix", got.ID, newID)
	}
	// A later sync does not repair it either: a.applied already matches.
	a.syncTopics()
	if a.topicByName("phoenix") == nil {
		t.Fatal("BUG: recreated topic still missing after another sync")
	}
}
