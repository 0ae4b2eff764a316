package group

import (
	"testing"
	"time"

	"github.com/tlog-io/tlog/tier/batch"
)

// A marker committed on the partition while its coordinator replays it is
// applied once the replay is done, even when it arrives before the replay
// reaches the transaction's offsets (applied at once, it found nothing
// pending, and the offsets then stayed pending for good).
func TestMarkerDuringReplayWaitsForIt(t *testing.T) {
	for _, commit := range []bool{true, false} {
		c := New(Config{Write: func(_ []batch.KV, done func(error)) { go done(nil) }, Now: time.Now})
		t.Cleanup(c.Close)
		c.MarkerWritten(7, commit) // committed past the replay's end
		if err := c.ApplyTxn(7, offsetKey("g", "t", 0), offsetValue(Offset{Offset: 42, LeaderEpoch: -1})); err != nil {
			t.Fatal(err)
		}
		c.Loaded()
		got, code := c.FetchOffsets("g", nil)
		o, ok := got[TP{Topic: "t", Partition: 0}]
		switch {
		case code != 0:
			t.Fatalf("commit %v: fetch error %d", commit, code)
		case commit && (!ok || o.Offset != 42):
			t.Fatalf("committed offsets %v, want t/0 at 42", got)
		case !commit && ok:
			t.Fatalf("aborted offsets visible: %v", got)
		}
		if c.Unstable("g", nil) {
			t.Fatalf("commit %v: offsets still pending after the replay", commit)
		}
	}
}
