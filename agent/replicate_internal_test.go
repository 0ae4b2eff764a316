package agent

import (
	"context"
	"testing"

	"github.com/tlog-io/tlog/agent/peer"
)

// A follower whose metadata already names the sender leader of the epoch,
// while its own partition has not stepped down yet, answers Retry: Fenced
// would make the rightful leader take itself for deposed and refuse every
// write until its next epoch.
func TestFollowerStillSteppingDownAnswersRetry(t *testing.T) {
	t.Parallel()
	a := startInternalAgent(t)
	if err := a.createTopic(context.Background(), "sd", 1, 1); err != nil {
		t.Fatal(err)
	}
	tp := a.topicByName("sd")
	mp, _ := a.meta.State().Partition(tp.ID, 0)
	// Here the agent is itself the leader metadata names, and its
	// partition leads: the same state as a follower that has applied the
	// new epoch naming the sender but not yet stepped down.
	if !tp.Parts[0].IsLeader() || mp.Leader != a.cfg.ID {
		t.Fatalf("setup: leader %d, leads %v", mp.Leader, tp.Parts[0].IsLeader())
	}
	if _, code, msg := a.repl.FollowerCheck(mp.Leader, tp.ID, 0, mp.LeaderEpoch); code != peer.Retry {
		t.Fatalf("code %d (%s), want Retry", code, msg)
	}
	if _, code, _ := a.repl.FollowerCheck(mp.Leader, tp.ID, 0, mp.LeaderEpoch-1); code != peer.Fenced {
		t.Fatalf("an older epoch: code %d, want Fenced", code)
	}
}
