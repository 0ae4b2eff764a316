package kafka

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The front end over a Backend without an agent: a franz-go client
// creates a topic, produces to it idempotently and reads it back in
// order; after Stop nothing listens. What it proves is the
// seam: every handler it uses reaches its state through Backend.
func TestFrontEndOverBackend(t *testing.T) {
	s, b, addr := startServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics("fe"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "fe"); err != nil {
		t.Fatal(err)
	}
	if b.TopicByName("fe") == nil || len(b.TopicByName("fe").Parts) != 2 {
		t.Fatalf("CreateTopics did not reach the backend: %+v", b.TopicByName("fe"))
	}
	const n = 200
	for i := range n {
		r := &kgo.Record{Topic: "fe", Partition: int32(i % 2), Value: fmt.Appendf(nil, "%d", i)}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	next := map[int32]int{0: 0, 1: 1}
	for got := 0; got < n; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("fetch after %d records: %v", got, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			if want := fmt.Sprint(next[r.Partition]); string(r.Value) != want {
				t.Fatalf("partition %d offset %d: got %q, want %q", r.Partition, r.Offset, r.Value, want)
			}
			next[r.Partition] += 2
			got++
		})
	}
	offs, err := adm.ListEndOffsets(ctx, "fe")
	if err != nil {
		t.Fatal(err)
	}
	for p := range int32(2) {
		if o, _ := offs.Lookup("fe", p); o.Offset != n/2 {
			t.Fatalf("partition %d ends at %d, want %d", p, o.Offset, n/2)
		}
	}

	cl.Close()
	s.Stop()
	s.Wait()
	if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		c.Close()
		t.Fatal("the listener still accepts after Stop")
	}
}
