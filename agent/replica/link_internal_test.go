package replica

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/tlog-io/tlog/agent/wal"
	"github.com/tlog-io/tlog/metadata/clock"
)

// Answers from a connection that broke arrive after the link redialed
// (the old connection's callbacks fail as it closes): they must not take
// messages out of the new connection's window, or the window opens past
// linkWindow (inflight went below zero).
func TestAnswersFromAnEarlierConnection(t *testing.T) {
	r := &Replicator{cfg: Config{Clock: clock.Real{}}, log: slog.Default()}
	l := &link{r: r, wake: make(chan struct{}, 1), feeds: map[wal.PartKey]*feed{}}
	f := &feed{r: r, state: streaming, truncate: -1, reset: -1}
	l.feeds[wal.PartKey{}] = f
	send := func() []outMsg {
		var out []outMsg
		l.mu.Lock()
		l.appendMsg(&out, f, []byte("batch"), 0)
		l.mu.Unlock()
		return out
	}
	old := append(send(), send()...)
	l.redialed(nil)
	f.state = streaming // probed again on the new connection
	current := send()
	for _, m := range old {
		m.cb(nil, errors.New("connection closed"))
	}
	l.mu.Lock()
	inflight := l.inflight
	l.mu.Unlock()
	if inflight != len(current) {
		t.Fatalf("%d messages in the window after the old connection's answers, want %d (the new one's)", inflight, len(current))
	}
}
