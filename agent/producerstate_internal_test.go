package agent

import (
	"context"
	"testing"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/wal"
)

// A replica whose log restarts at a flushed end its metadata has not seen
// committed yet must not adopt an older footer's producer state, nor start
// its producers fresh: the producers' batches in between would be missing,
// and a sequence error (or any sequence accepted) would follow when it
// leads. It waits for the commit instead.
func TestRestoreProducersWaitsForTheCommit(t *testing.T) {
	t.Parallel()
	a := startInternalAgent(t)
	if err := a.createTopic(context.Background(), "pr", 1, 1); err != nil {
		t.Fatal(err)
	}
	tp := a.topicByName("pr")
	if mp, _ := a.meta.State().Partition(tp.ID, 0); mp.FlushedEnd != 0 {
		t.Fatalf("flushed end %d", mp.FlushedEnd)
	}
	// A follower told by its leader to restart at 10, which this agent's
	// metadata does not show flushed yet.
	p := partition.New(partition.Config{Key: wal.NewPartKey(tp.ID, 0), Topic: "pr", FlushedEnd: 10, WAL: a.wal})
	if at, missing := p.ProducersMissing(); !missing || at != 10 {
		t.Fatalf("missing %v at %d", missing, at)
	}
	if err := a.restoreProducers(tp, 0, p, 10); err == nil {
		t.Fatal("adopted producer state without the commit that ends at the log start")
	}
	if _, missing := p.ProducersMissing(); !missing {
		t.Fatal("producer state was settled without the commit")
	}
}
