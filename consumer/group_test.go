package consumer_test

// Group mode against tlog's group coordinator (or, with
// TLOG_TEST_GROUP_BROKERS, another broker).

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/consumer"
	"github.com/tlog-io/tlog/tests/tlogtest"
)

func groupConsumer(t *testing.T, addr, group, topic string, opts ...consumer.Option) *consumer.Consumer {
	t.Helper()
	return newConsumer(t, addr, append([]consumer.Option{
		consumer.WithGroup(group, topic),
		consumer.WithErrorHandler(func(err error) { t.Logf("group %s: %v", group, err) }),
	}, opts...)...)
}

// protocols are the group protocols the group tests run with.
var protocols = []string{"classic", "consumer"}

// A handler error stops Run after committing what was processed; the next
// member of the group starts at the failed record.
func TestGroupAtLeastOnce(t *testing.T) {
	for _, p := range protocols {
		t.Run(p, func(t *testing.T) { groupAtLeastOnce(t, p) })
	}
}

func groupAtLeastOnce(t *testing.T, protocol string) {
	addr := groupBroker(t)
	topic, group := uniq("galo"), uniq("g")
	createTopic(t, addr, topic, 3)
	produce(t, addr, topic, 200, 20)

	a := newSeen()
	ca := groupConsumer(t, addr, group, topic, consumer.WithMaxPollRecords(30), consumer.WithGroupProtocol(protocol))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	err := ca.Run(ctx, func(_ context.Context, r *consumer.Record) error {
		if len(a.order) == 77 {
			return errBoom
		}
		a.add(r)
		return nil
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Run: %v", err)
	}
	if err := ca.Close(ctx); err != nil {
		t.Fatal(err)
	}
	b := newSeen()
	cb := groupConsumer(t, addr, group, topic, consumer.WithGroupProtocol(protocol))
	if err := runUntil(t, cb, collect(b), func() bool { return a.distinct()+b.distinct() >= 200 }); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	for v := range b.count {
		if a.has(v) {
			t.Errorf("%s processed by both members: its commit was lost", v)
		}
	}
	if a.distinct()+b.distinct() != 200 {
		t.Fatalf("%d+%d distinct, want 200", a.distinct(), b.distinct())
	}
	if got := groupType(t, addr, group); got != protocol {
		t.Fatalf("the group used the %s protocol, want %s", got, protocol)
	}
}

// groupType is the group's type in ListGroups: classic or consumer.
func groupType(t *testing.T, addr, group string) string {
	t.Helper()
	cl := tlogtest.NewClient(t, brokers(addr)[0])
	req := kmsg.NewPtrListGroupsRequest()
	req.Version = 5
	resp, err := req.RequestWith(ctx10(t), cl)
	if err != nil {
		t.Fatalf("list groups: %v", err)
	}
	for _, g := range resp.Groups {
		if g.Group == group {
			return g.GroupType
		}
	}
	t.Fatalf("group %s not listed", group)
	return ""
}

// A second member joining takes partitions from the first; what the first
// processed on them is committed before they move, so nothing is processed
// twice and nothing is lost.
func TestGroupRebalanceCommitsRevoked(t *testing.T) {
	for _, p := range protocols {
		t.Run(p, func(t *testing.T) { groupRebalanceCommitsRevoked(t, p) })
	}
}

func groupRebalanceCommitsRevoked(t *testing.T, protocol string) {
	addr := groupBroker(t)
	topic, group := uniq("greb"), uniq("g")
	const n = 1000
	createTopic(t, addr, topic, 4)
	produce(t, addr, topic, n, 100)

	all := newSeen()
	var byB atomic.Int64
	var revokedA atomic.Bool
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	handler := func(isB bool) consumer.Handler {
		return func(_ context.Context, r *consumer.Record) error {
			all.add(r)
			if isB {
				byB.Add(1)
			}
			if !revokedA.Load() {
				// Keep A busy until B's join reaches it (at A's next
				// heartbeat), so partitions move mid-stream.
				time.Sleep(5 * time.Millisecond)
			}
			if all.distinct() >= n {
				cancel()
			}
			return nil
		}
	}
	ca := groupConsumer(t, addr, group, topic, consumer.WithMaxPollRecords(10), consumer.WithGroupProtocol(protocol),
		consumer.WithOnAssigned(func(_ context.Context, tps []consumer.TopicPartition) { t.Logf("A assigned %v", tps) }),
		consumer.WithOnRevoked(func(_ context.Context, tps []consumer.TopicPartition) {
			t.Logf("A revoked %v", tps)
			if len(tps) > 0 {
				revokedA.Store(true)
			}
		}))
	cb := groupConsumer(t, addr, group, topic, consumer.WithMaxPollRecords(10), consumer.WithGroupProtocol(protocol),
		consumer.WithOnAssigned(func(_ context.Context, tps []consumer.TopicPartition) { t.Logf("B assigned %v", tps) }))
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); ca.Run(ctx, handler(false)) }()
	for all.distinct() < 50 && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
	go func() { defer wg.Done(); cb.Run(ctx, handler(true)) }()
	wg.Wait()
	if all.distinct() != n {
		t.Fatalf("%d distinct records processed, want %d", all.distinct(), n)
	}
	if !revokedA.Load() || byB.Load() == 0 {
		t.Fatalf("no rebalance happened: A revoked %v, B processed %d", revokedA.Load(), byB.Load())
	}
	for v, c := range all.count {
		if c > 1 {
			t.Errorf("%s processed %d times across the rebalance", v, c)
		}
	}
	t.Logf("B processed %d of %d records after the rebalance", byB.Load(), n)
}

// Carol's group and Cathy's group each read every record of the topic.
func TestGroupsReadIndependently(t *testing.T) {
	addr := groupBroker(t)
	topic := uniq("casual")
	createTopic(t, addr, topic, 2)
	produce(t, addr, topic, 50, 5)
	for _, group := range []string{uniq("carol"), uniq("cathy")} {
		s := newSeen()
		c := groupConsumer(t, addr, group, topic)
		if err := runUntil(t, c, collect(s), func() bool { return s.distinct() == 50 }); !errors.Is(err, context.Canceled) {
			t.Fatalf("group %s: %v", group, err)
		}
		if len(s.order) != 50 {
			t.Fatalf("group %s read %d records, want 50", group, len(s.order))
		}
	}
}

func TestGroupSeekReplay(t *testing.T) {
	addr := groupBroker(t)
	topic, group := uniq("gseek"), uniq("g")
	createTopic(t, addr, topic, 1)
	produce(t, addr, topic, 10, 0)
	c := groupConsumer(t, addr, group, topic)
	tp := consumer.TopicPartition{Topic: topic, Partition: 0}
	var got []int64
	replayed := false
	err := runUntil(t, c, func(_ context.Context, r *consumer.Record) error {
		got = append(got, r.Offset)
		if r.Offset == 9 && !replayed {
			replayed = true
			return c.Seek(tp, consumer.At(4))
		}
		return nil
	}, func() bool { return len(got) == 16 })
	if !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	for i, want := range []int64{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 4, 5, 6, 7, 8, 9} {
		if got[i] != want {
			t.Fatalf("offsets %v", got)
		}
	}
	if err := c.Seek(consumer.TopicPartition{Topic: topic, Partition: 3}, consumer.Earliest()); !errors.Is(err, consumer.ErrNotAssigned) {
		t.Fatalf("seek of a partition the group did not assign: %v", err)
	}
}

// At most once in a group: the batch is committed before the handler runs,
// so after a failure the next member starts past the batch.
func TestGroupAtMostOnce(t *testing.T) {
	addr := groupBroker(t)
	topic, group := uniq("gamo"), uniq("g")
	createTopic(t, addr, topic, 1)
	produce(t, addr, topic, 100, 0)
	a := newSeen()
	ca := groupConsumer(t, addr, group, topic, consumer.WithAtMostOnce(), consumer.WithMaxPollRecords(20))
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if err := ca.Run(ctx, func(_ context.Context, r *consumer.Record) error {
		if a.add(r) == 30 {
			return errBoom
		}
		return nil
	}); !errors.Is(err, errBoom) {
		t.Fatalf("Run: %v", err)
	}
	last := a.order[len(a.order)-1].Offset
	ca.Close(ctx)
	b := newSeen()
	cb := groupConsumer(t, addr, group, topic, consumer.WithAtMostOnce())
	if err := runUntil(t, cb, collect(b), func() bool { return b.order[len(b.order)-1].Offset == 99 }); !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if first := b.order[0].Offset; first <= last {
		t.Fatalf("next member started at %d, not past the failed batch (failed at %d)", first, last)
	}
	for v := range b.count {
		if a.has(v) {
			t.Errorf("%s processed twice under at-most-once", v)
		}
	}
}
