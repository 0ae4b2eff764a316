package kafka

import (
	"testing"

	"go.uber.org/goleak"
)

// Every goroutine a test starts (the accept loop, each connection's
// reader and writer) is gone when it ends.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
