package fs

import "time"

// SetLockedDelay makes every Bucket write sleep for d while holding its
// key's lock (0 restores normal behaviour).
func SetLockedDelay(d time.Duration) {
	if d <= 0 {
		testHookLocked = nil
		return
	}
	testHookLocked = func() { time.Sleep(d) }
}
