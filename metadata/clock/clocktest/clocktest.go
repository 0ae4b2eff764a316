// Package clocktest holds test support for clock: a clock that moves only
// when the test says so.
package clocktest

import (
	"fmt"
	"sync"
	"time"
)

// Fake is a clock.Clock that stands still until Advance moves it forward.
// It is safe for concurrent use. Everything timed by it waits for Advance:
// sessions, leases, fencing and follower lag, and also the backoffs that
// read it (a replication feed's retry), so a test that freezes an agent's
// clock moves it to let those proceed.
type Fake struct {
	mu  sync.Mutex
	now time.Time
}

// NewFake returns a Fake reading start. time.Now() makes a good start:
// fake instants then sit beside real ones (a unix timestamp, a log line)
// without looking absurd.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// Now returns the fake time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

// Advance moves the clock forward by d and returns the new time. The
// clock never goes backwards: a negative d panics.
func (f *Fake) Advance(d time.Duration) time.Time {
	if d < 0 {
		panic(fmt.Sprintf("clocktest: Advance(%v): a clock does not go backwards", d))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	return f.now
}
