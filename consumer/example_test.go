package consumer_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/tlog-io/tlog/consumer"
)

// Assignment mode with the position kept in a file: a restarted process
// resumes after the last record it processed.
func Example() {
	store, err := consumer.NewFileStore("orders.offsets.json")
	if err != nil {
		log.Fatal(err)
	}
	c, err := consumer.New([]string{"127.0.0.1:9092"},
		consumer.WithAssignment("orders", nil, consumer.Earliest()),
		consumer.WithOffsetStore(store))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(context.Background())

	err = c.Run(context.Background(), consumer.Typed(consumer.String(), consumer.JSON[order](),
		func(_ context.Context, m consumer.Message[string, order]) error {
			fmt.Printf("%s is %s\n", m.Key, m.Value.Status)
			return nil // processed: its position is saved after the batch
		}))
	log.Print(err)
}

// Group mode: members of one group split the partitions; the group commits
// what it processed, also before a rebalance moves partitions away.
func ExampleWithGroup() {
	c, err := consumer.New([]string{"127.0.0.1:9092"}, consumer.WithGroup("billing", "orders"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(context.Background())
	err = c.Run(context.Background(), func(_ context.Context, r *consumer.Record) error {
		fmt.Printf("%s/%d@%d %s\n", r.Topic, r.Partition, r.Offset, r.Value)
		return nil
	})
	log.Print(err)
}

// Replaying the last hour: SeekAll to a time, resolved with ListOffsets.
func ExampleConsumer_SeekAll() {
	c, err := consumer.New([]string{"127.0.0.1:9092"}, consumer.WithAssignment("orders", nil, consumer.Latest()))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(context.Background())
	if err := c.SeekAll(consumer.AtTime(time.Now().Add(-time.Hour))); err != nil {
		log.Fatal(err)
	}
	log.Print(c.Run(context.Background(), func(_ context.Context, r *consumer.Record) error {
		fmt.Println(string(r.Value))
		return nil
	}))
}
