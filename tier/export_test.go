package tier

import "time"

// SetFSLockedDelay makes every FSBucket write sleep for d while holding its
// key's lock (0 restores normal behaviour).
func SetFSLockedDelay(d time.Duration) {
	if d <= 0 {
		testHookLocked = nil
		return
	}
	testHookLocked = func() { time.Sleep(d) }
}
