package kafka

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier/tiertest"
)

// Transient metadata failures reach clients as codes they retry, never as
// UNKNOWN_SERVER_ERROR.
func TestErrCodeTransientMetadata(t *testing.T) {
	dial := errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
	for _, tc := range []struct {
		name string
		err  error
		want int16
	}{
		{"journal write failed", fmt.Errorf("metadata: propose: write x: %w: %w", metadata.ErrUnavailable, tiertest.ErrInjected), kerr.RequestTimedOut.Code},
		{"unavailable at the controller", metadata.ErrorFromKind(metadata.ErrorKind(fmt.Errorf("%w: x", metadata.ErrUnavailable)), "x"), kerr.RequestTimedOut.Code},
		{"controller unreachable", fmt.Errorf("%w: %w", metadata.ErrNotController, dial), kerr.NotController.Code},
		{"journal lost twice", fmt.Errorf("metadata: propose: %w", metadata.ErrConflict), kerr.NotController.Code},
		{"store closed", metadata.ErrClosed, kerr.NotController.Code},
		{"deadline", fmt.Errorf("propose: %w", context.DeadlineExceeded), kerr.RequestTimedOut.Code},
	} {
		if got := errCode(tc.err); got != tc.want {
			t.Errorf("%s: code %d, want %d", tc.name, got, tc.want)
		}
		if !kerr.IsRetriable(kerr.ErrorForCode(tc.want)) {
			t.Errorf("%s: %d is not retriable", tc.name, tc.want)
		}
	}
}
