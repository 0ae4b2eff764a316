// Command order-status streams order status changes through tlog and checks
// that each order's statuses are read in the order they happened.
//
// Every order goes prepared → shipped → delivered. The producer keys each
// status record by order ID, so all of an order's records land in one
// partition (the one Java's partitioner would pick too) and keep their
// order there, even though the topic has several partitions and the orders
// are interleaved. The consumer reads every partition from the moment the
// run started and verifies, per order, that no status arrives out of turn.
//
//	go run ./cmd/tlog dev &
//	go run ./examples/order-status -orders 8
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/consumer"
	"github.com/tlog-io/tlog/producer"
)

// StatusChange is one record of the stream: its value, as JSON.
type StatusChange struct {
	Order  string    `json:"order"`
	Status string    `json:"status"`
	At     time.Time `json:"at"`
}

var lifecycle = []string{"prepared", "shipped", "delivered"}

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated seed brokers")
	topic := flag.String("topic", "order-status", "topic (created with -partitions if missing)")
	partitions := flag.Int("partitions", 3, "partitions of the topic when it is created")
	orders := flag.Int("orders", 5, "how many orders to push through their lifecycle")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, strings.Split(*brokers, ","), *topic, int32(*partitions), *orders); err != nil {
		fmt.Fprintln(os.Stderr, "order-status:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, brokers []string, topic string, partitions int32, orders int) error {
	p, err := producer.New(brokers, producer.WithClientID("order-service"))
	if err != nil {
		return err
	}
	defer p.Close(context.Background())
	if err := ensureTopic(ctx, p.Client(), topic, partitions); err != nil {
		return err
	}

	// Records of earlier runs stay in the topic; this run reads from now.
	start := time.Now()
	run := start.Format("150405")
	statuses := producer.NewTyped(p, producer.String(), producer.JSON[StatusChange]())

	// Interleave orders: step 1 of every order, then step 2, … — with a
	// shuffle inside each step, so only the key keeps an order's records
	// together and in sequence.
	fmt.Printf("producing %d orders × %d statuses to %q\n", orders, len(lifecycle), topic)
	for _, status := range lifecycle {
		for _, i := range rand.Perm(orders) {
			id := fmt.Sprintf("order-%s-%d", run, i+1)
			statuses.SendAsync(ctx, producer.Message[string, StatusChange]{
				Topic: topic,
				Key:   id,
				Value: StatusChange{Order: id, Status: status, At: time.Now()},
			}, func(r producer.Result, err error) {
				if err != nil {
					fmt.Fprintf(os.Stderr, "  %s %s: %v\n", id, status, err)
					return
				}
				fmt.Printf("  sent %-22s %-9s → partition %d offset %d\n", id, status, r.Partition, r.Offset)
			})
		}
		// Flush between steps so each step is acknowledged before the
		// next is sent: the statuses happen in this order.
		if err := p.Flush(ctx); err != nil {
			return err
		}
	}

	c, err := consumer.New(brokers,
		consumer.WithClientID("order-tracker"),
		consumer.WithAssignment(topic, nil, consumer.AtTime(start)))
	if err != nil {
		return err
	}
	defer c.Close(context.Background())

	fmt.Println("reading back, checking each order's statuses are in order")
	next := map[string]int{} // order → index in lifecycle of the status expected next
	delivered := 0
	rctx, done := context.WithTimeout(ctx, 30*time.Second)
	defer done()
	errOutOfOrder := errors.New("status out of order")
	err = c.Run(rctx, consumer.Typed(consumer.String(), consumer.JSON[StatusChange](),
		func(_ context.Context, m consumer.Message[string, StatusChange]) error {
			if !strings.HasPrefix(m.Key, "order-"+run+"-") {
				return nil // another run's order
			}
			want := lifecycle[min(next[m.Key], len(lifecycle)-1)]
			if next[m.Key] >= len(lifecycle) || m.Value.Status != want {
				return fmt.Errorf("%s: read %q, expected %q: %w", m.Key, m.Value.Status, want, errOutOfOrder)
			}
			next[m.Key]++
			fmt.Printf("  read %-22s %-9s ✓ (partition %d offset %d)\n", m.Key, m.Value.Status, m.Partition, m.Offset)
			if m.Value.Status == "delivered" {
				if delivered++; delivered == orders {
					done() // everything arrived
				}
			}
			return nil
		}))
	switch {
	case delivered == orders:
		fmt.Printf("all %d orders read prepared → shipped → delivered, in order\n", orders)
		return nil
	case errors.Is(err, errOutOfOrder):
		return err
	default:
		return fmt.Errorf("only %d of %d orders delivered: %w", delivered, orders, err)
	}
}

// ensureTopic creates topic with the given partitions unless it exists.
func ensureTopic(ctx context.Context, cl *kgo.Client, topic string, partitions int32) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = topic, partitions, -1
	req.Topics = append(req.Topics, t)
	req.TimeoutMillis = 10_000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}
