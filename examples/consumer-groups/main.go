// Command consumer-groups shows two consumer groups reading the same topic
// independently, after the "Carol and Cathy" story of Kafka's primer.
//
// Pat publishes casual messages. Carol has cloned herself: the two Carols
// form the group "carol" and split the topic's partitions between them, so
// each message is read by exactly one Carol. Cathy is her own group,
// "cathy", and reads every message too — a second group gets its own copy
// of the stream, with its own committed position. Run it twice: each group
// resumes after what it committed the first time.
//
// Start tlog first (`go run ./cmd/tlog dev`), then:
//
//	go run ./examples/consumer-groups -brokers 127.0.0.1:9092
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/consumer"
	"github.com/tlog-io/tlog/producer"
)

func main() {
	brokers := flag.String("brokers", "127.0.0.1:9092", "comma-separated seed brokers")
	topic := flag.String("topic", "casual", "topic Pat publishes to")
	messages := flag.Int("messages", 6, "messages Pat publishes")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	bs := strings.Split(*brokers, ",")

	ok, err := consumer.SupportsGroups(ctx, bs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "consumer-groups:", err)
		os.Exit(1)
	}
	if !ok {
		fmt.Fprintf(os.Stderr, "consumer-groups: the broker at %s does not support consumer groups "+
			"(it does not advertise JoinGroup).\n", *brokers)
		os.Exit(2)
	}
	if err := run(ctx, bs, *topic, *messages); err != nil {
		fmt.Fprintln(os.Stderr, "consumer-groups:", err)
		os.Exit(1)
	}
}

// reader is one consumer: a member of a group.
type reader struct {
	name, group string
	c           *consumer.Consumer
}

func run(ctx context.Context, brokers []string, topic string, messages int) error {
	p, err := producer.New(brokers, producer.WithClientID("pat"))
	if err != nil {
		return err
	}
	defer p.Close(context.Background())
	if err := ensureTopic(ctx, p, topic, 2); err != nil {
		return err
	}

	runID := time.Now().Format("150405.000")
	rctx, done := context.WithTimeout(ctx, 60*time.Second)
	defer done()

	// Groups "carol" (two members) and "cathy" (one member).
	var readers []*reader
	for _, m := range []struct{ name, group string }{{"Carol #1", "carol"}, {"Carol #2", "carol"}, {"Cathy", "cathy"}} {
		c, err := consumer.New(brokers,
			consumer.WithClientID(strings.ReplaceAll(m.name, " #", "-")),
			consumer.WithGroup(m.group, topic),
			consumer.WithOnAssigned(func(_ context.Context, tps []consumer.TopicPartition) {
				if len(tps) > 0 && rctx.Err() == nil {
					fmt.Printf("  %s (group %s) is assigned %v\n", m.name, m.group, tps)
				}
			}),
			consumer.WithOnRevoked(func(_ context.Context, tps []consumer.TopicPartition) {
				if len(tps) > 0 && rctx.Err() == nil {
					fmt.Printf("  %s (group %s) hands over %v\n", m.name, m.group, tps)
				}
			}))
		if err != nil {
			return err
		}
		defer c.Close(context.Background())
		readers = append(readers, &reader{m.name, m.group, c})
	}

	// Each group must read each of this run's messages; earlier runs'
	// messages were committed then, or are read and ignored now.
	var mu sync.Mutex
	read := map[string]map[string]string{"carol": {}, "cathy": {}} // group → message → reader
	var wg sync.WaitGroup
	for _, r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := r.c.Run(rctx, func(_ context.Context, rec *consumer.Record) error {
				v := string(rec.Value)
				if !strings.HasPrefix(v, "["+runID+"]") {
					return nil
				}
				mu.Lock()
				defer mu.Unlock()
				if by, dup := read[r.group][v]; dup {
					fmt.Printf("  %s read %q again (first read by %s)\n", r.name, v, by)
				}
				read[r.group][v] = r.name
				fmt.Printf("  %-8s (group %s) reads %s  [partition %d offset %d]\n", r.name, r.group, v, rec.Partition, rec.Offset)
				if len(read["carol"]) == messages && len(read["cathy"]) == messages {
					done()
				}
				return nil
			})
			if err != nil && !errors.Is(err, context.Canceled) {
				fmt.Fprintf(os.Stderr, "  %s: %v\n", r.name, err)
			}
		}()
	}

	// Let the groups settle — both Carols holding partitions — so the
	// split shows; a rebalance waits for members' next heartbeat.
	fmt.Println("waiting for the groups to assign partitions")
	for !allAssigned(readers) && rctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
	}

	fmt.Printf("Pat publishes %d casual messages to %q\n", messages, topic)
	for i := range messages {
		v := fmt.Sprintf("[%s] casual message %d from Pat", runID, i+1)
		r, err := p.Send(ctx, producer.Record{Topic: topic, Key: fmt.Appendf(nil, "msg-%d", i), Value: []byte(v)})
		if err != nil {
			return err
		}
		fmt.Printf("  %s → partition %d offset %d\n", v, r.Partition, r.Offset)
	}
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	for _, g := range []string{"carol", "cathy"} {
		per := map[string]int{}
		for _, name := range read[g] {
			per[name]++
		}
		fmt.Printf("group %-5s read %d of %d messages %v\n", g, len(read[g]), messages, per)
	}
	if len(read["carol"]) != messages || len(read["cathy"]) != messages {
		return fmt.Errorf("the groups did not each read all %d messages", messages)
	}
	fmt.Println("both groups read every message independently; each Carol read only her partitions")
	return nil
}

func allAssigned(rs []*reader) bool {
	for _, r := range rs {
		if len(r.c.Assignment()) == 0 {
			return false
		}
	}
	return true
}

// ensureTopic creates topic with the given partitions unless it exists.
func ensureTopic(ctx context.Context, p *producer.Producer, topic string, partitions int32) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic, t.NumPartitions, t.ReplicationFactor = topic, partitions, -1
	req.Topics = append(req.Topics, t)
	req.TimeoutMillis = 10_000
	resp, err := req.RequestWith(ctx, p.Client())
	if err != nil {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}
