package peertest_test

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test starts is gone when it ends.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
