// An application's integration test against tlog in Docker, as the
// README's "Use tlog in your own integration tests" shows it: start tlog,
// point a Kafka client at it, check what the application does. Only
// Docker and Go are needed; the image is built from tlog's source on the
// first run (FROM scratch, no registry).
package testcontainers_test

import (
	"context"
	"testing"
	"time"

	"github.com/testcontainers/testcontainers-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/tests/tlogcontainer"
)

func TestOrdersRoundTrip(t *testing.T) {
	if testing.Short() {
		t.Skip("containers: not in -short")
	}
	// Ryuk (testcontainers' reaper) is an image from a registry; without
	// one, tests terminate their containers themselves.
	t.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	testcontainers.SkipIfProviderIsNotHealthy(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	tl, err := tlogcontainer.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tl.Terminate(context.Background()) })

	cl, err := kgo.NewClient(kgo.SeedBrokers(tl.Brokers()...),
		kgo.DefaultProduceTopic("orders"), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeTopics("orders"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte("order-1"), Value: []byte("shipped")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fs := cl.PollFetches(ctx)
	if err := fs.Err(); err != nil {
		t.Fatal(err)
	}
	if r := fs.Records(); len(r) != 1 || string(r[0].Value) != "shipped" {
		t.Fatalf("read %v", r)
	}
}
