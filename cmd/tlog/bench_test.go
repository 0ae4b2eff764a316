package main

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
)

// endOffsets asks again while the topic is not yet known to the agent (a
// topic created a moment ago), rather than taking the error entry kadm
// returns for it as partition -1: `tlog bench e2e` failed that way right
// after creating its topic on a 3-agent cluster.
func TestEndOffsetsWaitsForTheTopic(t *testing.T) {
	a := tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket())
	cl, err := kgo.NewClient(kgo.SeedBrokers(a.Addr()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	created := make(chan error, 1)
	go func() {
		time.Sleep(300 * time.Millisecond)
		_, err := adm.CreateTopic(ctx, 3, 1, nil, "late")
		created <- err
	}()
	ends, err := endOffsets(ctx, adm, "late")
	if err != nil {
		t.Fatal(err)
	}
	if err := <-created; err != nil {
		t.Fatal(err)
	}
	if len(ends) != 3 {
		t.Fatalf("end offsets %v, want partitions 0, 1 and 2", ends)
	}
	for p, o := range ends {
		if p < 0 || p > 2 || o != 0 {
			t.Fatalf("end offsets %v, want 0 for partitions 0, 1 and 2", ends)
		}
	}
}
