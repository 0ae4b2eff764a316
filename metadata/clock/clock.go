// Package clock is the seam through which tlog's time-based decisions
// read the time: the agent's session with the controller, the
// controller's liveness and fencing, the controller lease, and a leader's
// view of follower lag. Production code runs on Real; tests pass a fake
// (clocktest.Fake) and move time with Advance instead of sleeping.
//
// It lives under metadata, the lowest package that decides on time (the
// lease), so that metadata and every agent package may import it; it
// imports nothing of tlog's.
//
// Only instants go through a Clock. Timers and tickers that pace loops
// (heartbeats, the controller's tick, lease renewals) stay on real time:
// with a fake clock a loop still runs, and decides by the fake time.
package clock

import "time"

// Clock tells the time. Implementations are safe for concurrent use and
// never go backwards: the session rule compares instants read from one
// Clock with Before and Sub, as Go's monotonic clock guarantees for Real.
type Clock interface {
	Now() time.Time
}

// Real is the process's clock: time.Now, with its monotonic reading, so
// comparisons between its instants ignore steps of the wall clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// Or returns c, or Real if c is nil (the default of every Config.Clock).
func Or(c Clock) Clock {
	if c == nil {
		return Real{}
	}
	return c
}
