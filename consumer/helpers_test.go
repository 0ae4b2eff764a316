package consumer_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/consumer"
	"github.com/tlog-io/tlog/producer"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
)

// startTlog starts an in-process tlog agent and returns its address.
func startTlog(t *testing.T) string {
	t.Helper()
	return tlogtest.StartAgent(t, t.TempDir(), tier.NewMemBucket(), func(c *agent.Config) {
		c.GroupInitialRebalanceDelay = 200 * time.Millisecond     // tests start members together
		c.GroupConsumerHeartbeatInterval = 200 * time.Millisecond // so KIP-848 rebalances are quick
	}).Addr()
}

// groupBroker returns a broker that serves consumer groups, or skips.
// TLOG_TEST_GROUP_BROKERS (comma-separated) points the group tests at
// another broker (Kafka, say); otherwise they run against an in-process
// tlog agent, and skip if it does not advertise JoinGroup.
func groupBroker(t *testing.T) string {
	t.Helper()
	addr := os.Getenv("TLOG_TEST_GROUP_BROKERS")
	if addr == "" {
		addr = startTlog(t)
	}
	cl := tlogtest.NewClient(t, strings.Split(addr, ",")[0])
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx10(t), cl)
	if err != nil {
		t.Fatalf("api versions: %v", err)
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey == int16(kmsg.JoinGroup) {
			return addr
		}
	}
	t.Skip("the broker does not serve consumer groups (no JoinGroup)")
	return ""
}

func brokers(addr string) []string { return strings.Split(addr, ",") }

// createTopic creates topic with n partitions.
func createTopic(t *testing.T, addr, topic string, n int32) {
	t.Helper()
	cl := tlogtest.NewClient(t, brokers(addr)[0])
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, n, 1
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 10000
	resp, err := req.RequestWith(ctx10(t), cl)
	if err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil {
		t.Fatalf("create topic %s: %v", topic, err)
	}
}

func ctx10(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func uniq(prefix string) string { return fmt.Sprintf("%s-%d", prefix, time.Now().UnixNano()) }

// produce writes n records with unique values "v-0000"…, keyed "k-<i%keys>"
// (keys 0: no key), and returns value → where it was written.
func produce(t *testing.T, addr, topic string, n, keys int) map[string]producer.Result {
	t.Helper()
	p, err := producer.New(brokers(addr), producer.WithLinger(5*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())
	return produceWith(t, p, topic, 0, n, keys)
}

func produceWith(t *testing.T, p *producer.Producer, topic string, from, n, keys int) map[string]producer.Result {
	t.Helper()
	var mu sync.Mutex
	out := map[string]producer.Result{}
	var firstErr error
	ctx := ctx10(t)
	for i := from; i < from+n; i++ {
		v := fmt.Sprintf("v-%04d", i)
		r := producer.Record{Topic: topic, Value: []byte(v)}
		if keys > 0 {
			r.Key = fmt.Appendf(nil, "k-%d", i%keys)
		}
		p.SendAsync(ctx, r, func(res producer.Result, err error) {
			mu.Lock()
			defer mu.Unlock()
			if err != nil && firstErr == nil {
				firstErr = err
			}
			out[v] = res
		})
	}
	if err := p.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if firstErr != nil {
		t.Fatal(firstErr)
	}
	return out
}

func newConsumer(t *testing.T, addr string, opts ...consumer.Option) *consumer.Consumer {
	t.Helper()
	c, err := consumer.New(brokers(addr), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

// seen records what handlers processed, by value.
type seen struct {
	mu    sync.Mutex
	count map[string]int
	order []*consumer.Record
}

func newSeen() *seen { return &seen{count: map[string]int{}} }

func (s *seen) add(r *consumer.Record) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.count[string(r.Value)]++
	s.order = append(s.order, r)
	return len(s.order)
}

func (s *seen) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.count)
}

func (s *seen) has(v string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.count[v] > 0
}

// runUntil runs c with h until cond holds (checked after every record),
// then cancels; it returns Run's error, which is then context.Canceled if
// cond was met.
func runUntil(t *testing.T, c *consumer.Consumer, h consumer.Handler, cond func() bool) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	err := c.Run(ctx, func(ctx context.Context, r *consumer.Record) error {
		err := h(ctx, r)
		if err == nil && cond() {
			cancel()
		}
		return err
	})
	if ctx.Err() == context.DeadlineExceeded {
		t.Fatalf("Run did not reach its goal in time (err %v)", err)
	}
	return err
}

// deleteRecords moves tp's log start to offset.
func deleteRecords(t *testing.T, addr string, tp consumer.TopicPartition, offset int64) {
	t.Helper()
	cl := tlogtest.NewClient(t, brokers(addr)[0])
	req := kmsg.NewPtrDeleteRecordsRequest()
	rt := kmsg.NewDeleteRecordsRequestTopic()
	rt.Topic = tp.Topic
	rp := kmsg.NewDeleteRecordsRequestTopicPartition()
	rp.Partition, rp.Offset = tp.Partition, offset
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	resp, err := req.RequestWith(ctx10(t), cl)
	if err != nil {
		t.Fatal(err)
	}
	if err := kerr.ErrorForCode(resp.Topics[0].Partitions[0].ErrorCode); err != nil {
		t.Fatalf("delete records of %s below %d: %v", tp, offset, err)
	}
}
