package producer_test

import (
	"context"
	"fmt"
	"log"

	"github.com/tlog-io/tlog/producer"
)

type order struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

// Keyed, typed sends: every status of an order goes to the same partition,
// in order.
func Example() {
	ctx := context.Background()
	p, err := producer.New([]string{"127.0.0.1:9092"})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(ctx)

	orders := producer.NewTyped(p, producer.String(), producer.JSON[order]())
	for _, status := range []string{"prepared", "shipped", "delivered"} {
		res, err := orders.Send(ctx, producer.Message[string, order]{
			Topic: "orders",
			Key:   "order-1",
			Value: order{ID: "order-1", Status: status},
		})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s at partition %d offset %d\n", status, res.Partition, res.Offset)
	}
}

// Asynchronous sends report through a callback; Flush waits for all of them.
func ExampleProducer_SendAsync() {
	ctx := context.Background()
	p, err := producer.New([]string{"127.0.0.1:9092"}, producer.WithAcks(producer.AcksLeader))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(ctx)
	for i := range 100 {
		p.SendAsync(ctx, producer.Record{Topic: "events", Value: fmt.Appendf(nil, "event %d", i)},
			func(r producer.Result, err error) {
				if err != nil {
					log.Print(err)
				}
			})
	}
	if err := p.Flush(ctx); err != nil {
		log.Fatal(err)
	}
}
