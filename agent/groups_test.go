package agent_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/tests/tlogtest"
	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/tiertest"
)

// fastGroups: a short initial rebalance delay, so members started
// together share the first generation.
func fastGroups(c *agent.Config) {
	c.GroupInitialRebalanceDelay = 500 * time.Millisecond
	c.GroupMinSessionTimeout = time.Second
}

// Two group members split a topic's partitions; each record is consumed
// by one of them; committed offsets survive a restart of the agent, and
// a member that joins later resumes from them.
func TestGroupConsumeCommitResume(t *testing.T) {
	dir, bucket := t.TempDir(), tier.NewMemBucket()
	a := tlogtest.StartAgent(t, dir, bucket, fastGroups)
	cl := tlogtest.NewClient(t, a.Addr())
	if _, err := kadm.NewClient(cl).CreateTopic(context.Background(), 6, 1, nil, "g-topic"); err != nil {
		t.Fatal(err)
	}
	acked := &tlogtest.Acked{}
	tlogtest.Produce(t, cl, acked, 3000, func(i int) *kgo.Record {
		return &kgo.Record{Topic: "g-topic", Key: fmt.Appendf(nil, "k%d", i%50), Value: fmt.Appendf(nil, "v%d", i)}
	})

	var mu sync.Mutex
	seen := map[string]int{}
	byMember := map[int]int{}
	consume := func(member int, until int, commit bool) {
		c := tlogtest.NewClient(t, a.Addr(), kgo.ConsumerGroup("workers"), kgo.ConsumeTopics("g-topic"),
			kgo.SessionTimeout(6*time.Second), kgo.DisableAutoCommit(), kgo.FetchMaxWait(100*time.Millisecond))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		for {
			mu.Lock()
			n := len(seen)
			mu.Unlock()
			if n >= until {
				break
			}
			pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
			fs := c.PollRecords(pctx, 200)
			pcancel()
			if ctx.Err() != nil {
				t.Errorf("member %d: %d of %d read", member, n, until)
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				mu.Lock()
				seen[string(r.Value)]++
				byMember[member]++
				mu.Unlock()
			})
			if commit {
				if err := c.CommitUncommittedOffsets(ctx); err != nil {
					t.Errorf("commit: %v", err)
				}
			}
		}
		if commit {
			if err := c.CommitUncommittedOffsets(ctx); err != nil {
				t.Errorf("final commit: %v", err)
			}
		}
		c.Close()
	}
	var wg sync.WaitGroup
	for m := 0; m < 2; m++ {
		wg.Add(1)
		go func() { defer wg.Done(); consume(m, 3000, true) }()
	}
	wg.Wait()
	for v, n := range seen {
		if n > 1 {
			t.Fatalf("%s consumed %d times by a group of two", v, n)
		}
	}
	if byMember[0] == 0 || byMember[1] == 0 {
		t.Fatalf("one member did all the work: %v", byMember)
	}

	// Committed offsets survive a restart; nothing new is re-read.
	a.Close()
	a = tlogtest.StartAgent(t, dir, bucket, fastGroups)
	adm := kadm.NewClient(tlogtest.NewClient(t, a.Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var offs kadm.OffsetResponses
	tlogtest.CheckFor(t, 15*time.Second, 50*time.Millisecond, func() error {
		var err error
		offs, err = adm.FetchOffsets(ctx, "workers")
		if err == nil {
			err = offs.Error()
		}
		return err
	})
	var total int64
	offs.Each(func(o kadm.OffsetResponse) { total += o.At })
	if total != 3000 {
		t.Fatalf("committed offsets add to %d, want 3000", total)
	}
	cl2 := tlogtest.NewClient(t, a.Addr())
	tlogtest.Produce(t, cl2, acked, 100, func(i int) *kgo.Record {
		return &kgo.Record{Topic: "g-topic", Value: fmt.Appendf(nil, "late%d", i)}
	})
	mu.Lock()
	seen = map[string]int{}
	mu.Unlock()
	consume(2, 100, true)
	for v := range seen {
		if v[:4] != "late" {
			t.Fatalf("re-read %s after the restart", v)
		}
	}
	groups, err := adm.DescribeGroups(ctx, "workers")
	if err != nil {
		t.Fatal(err)
	}
	if g := groups["workers"]; g.State != "Empty" {
		t.Fatalf("group state after everyone left: %q (%v)", g.State, g.Err)
	}
}

// The bucket is down when an agent that lost its WAL takes over the
// group coordinator: loading the groups fails, is retried, and completes
// once the bucket is back, with the committed offsets intact.
func TestGroupsLoadAfterBucketOutage(t *testing.T) {
	dir, bucket := t.TempDir(), tiertest.NewFaulty(tier.NewMemBucket())
	cfg := func(c *agent.Config) {
		fastFlush(c)
		fastGroups(c)
	}
	a := tlogtest.StartAgent(t, dir, bucket, cfg)
	adm := kadm.NewClient(tlogtest.NewClient(t, a.Addr()))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := adm.CreateTopic(ctx, 2, 1, nil, "gl-topic"); err != nil {
		t.Fatal(err)
	}
	var commit kadm.Offsets
	commit.AddOffset("gl-topic", 0, 17, -1)
	commit.AddOffset("gl-topic", 1, 4, -1)
	if resp, err := adm.CommitOffsets(ctx, "gl-group", commit); err != nil || resp.Error() != nil {
		t.Fatalf("commit: %v, %v", err, resp.Error())
	}
	waitFlushed(t, a, "__consumer_offsets", 16)
	a.Close()
	if err := os.RemoveAll(filepath.Join(dir, "wal")); err != nil {
		t.Fatal(err)
	}

	bucket.SetError(tiertest.OpGetRange, errors.New("injected: bucket down"))
	a = tlogtest.StartAgent(t, dir, bucket, cfg)
	before := bucket.Counts()[tiertest.OpGetRange]
	tlogtest.CheckFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if n := bucket.Counts()[tiertest.OpGetRange] - before; n < 3 {
			return fmt.Errorf("%d ranged reads refused so far", n)
		}
		return nil
	})
	bucket.SetError(tiertest.OpGetRange, nil)

	adm = kadm.NewClient(tlogtest.NewClient(t, a.Addr()))
	tlogtest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
		fctx, fcancel := context.WithTimeout(ctx, 2*time.Second)
		defer fcancel()
		offs, err := adm.FetchOffsets(fctx, "gl-group")
		if err == nil {
			err = offs.Error()
		}
		if err != nil {
			return err
		}
		if o0, o1 := offs["gl-topic"][0].At, offs["gl-topic"][1].At; o0 != 17 || o1 != 4 {
			return fmt.Errorf("offsets %d, %d; want 17, 4", o0, o1)
		}
		return nil
	})
}

// Pipelined commits of one partition's offset apply in the order they
// were sent (librdkafka's async commits, 0030_offset_commit): the last one
// sent is what OffsetFetch answers, every time.
func TestPipelinedOffsetCommitsApplyInOrder(t *testing.T) {
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "po", 1, nil)
	waitCoordinator(t, c, "pipelined")
	commit := func(off int64) *kmsg.OffsetCommitRequest {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.SetVersion(8)
		req.Group, req.Generation = "pipelined", -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "po"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, off
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return req
	}
	const rounds, perRound, window = 100, 1000, 250
	next := int64(0)
	for round := range rounds {
		for sent := 0; sent < perRound; sent += window {
			reqs := make([]kmsg.Request, 0, window)
			corrs := make([]int32, 0, window)
			for range window {
				next++
				req := commit(next)
				reqs = append(reqs, req)
				corrs = append(corrs, c.send(req))
			}
			for i, req := range reqs {
				r := c.recv(req, corrs[i]).(*kmsg.OffsetCommitResponse)
				if code := r.Topics[0].Partitions[0].ErrorCode; code != 0 {
					t.Fatalf("round %d: commit: error %d", round, code)
				}
			}
		}
		of := kmsg.NewPtrOffsetFetchRequest()
		of.Group = "pipelined"
		ft := kmsg.NewOffsetFetchRequestTopic()
		ft.Topic, ft.Partitions = "po", []int32{0}
		of.Topics = append(of.Topics, ft)
		r := do[*kmsg.OffsetFetchResponse](c, 7, of)
		if got := r.Topics[0].Partitions[0].Offset; got != next {
			t.Fatalf("round %d: OffsetFetch answers %d after commits up to %d", round, got, next)
		}
	}
}

// A commit for a topic or partition that does not exist is refused with
// UNKNOWN_TOPIC_OR_PARTITION and not stored (librdkafka 0030
// do_nonexist_commit); the rest of the request is committed.
func TestOffsetCommitUnknownTopic(t *testing.T) {
	a := startAgent(t, noAutoCreate)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "known", 1, nil)
	waitCoordinator(t, c, "g-unknown")
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group, req.Generation = "g-unknown", -1
	for _, tp := range []struct {
		topic string
		part  int32
	}{{"nope", 0}, {"known", 0}, {"known", 7}} {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = tp.topic
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = tp.part, 42
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	r := do[*kmsg.OffsetCommitResponse](c, 8, req)
	codes := map[string]int16{}
	for _, rt := range r.Topics {
		for _, rp := range rt.Partitions {
			codes[fmt.Sprintf("%s/%d", rt.Topic, rp.Partition)] = rp.ErrorCode
		}
	}
	want := map[string]int16{"nope/0": kerr.UnknownTopicOrPartition.Code, "known/0": 0, "known/7": kerr.UnknownTopicOrPartition.Code}
	for k, v := range want {
		if got, ok := codes[k]; !ok || got != v {
			t.Errorf("%s: code %d (present %v), want %d", k, got, ok, v)
		}
	}
	of := kmsg.NewPtrOffsetFetchRequest()
	of.Group = "g-unknown"
	of.Topics = nil // every committed offset
	f := do[*kmsg.OffsetFetchResponse](c, 7, of)
	for _, ft := range f.Topics {
		for _, fp := range ft.Partitions {
			if ft.Topic != "known" || fp.Partition != 0 {
				t.Errorf("stored an offset for %s/%d", ft.Topic, fp.Partition)
			}
		}
	}
}

// waitCoordinator waits until FindCoordinator for group succeeds (the
// first one creates __consumer_offsets).
func waitCoordinator(t *testing.T, c *rawConn, group string) {
	t.Helper()
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = group
	tlogtest.CheckFor(t, 10*time.Second, 20*time.Millisecond, func() error {
		if r := do[*kmsg.FindCoordinatorResponse](c, 3, fc); r.ErrorCode != 0 {
			return fmt.Errorf("find coordinator: %d", r.ErrorCode)
		}
		// Found is not loaded: until its partition is read, the
		// coordinator answers COORDINATOR_LOAD_IN_PROGRESS.
		of := kmsg.NewPtrOffsetFetchRequest()
		of.Group = group
		if r := do[*kmsg.OffsetFetchResponse](c, 5, of); r.ErrorCode != 0 {
			return fmt.Errorf("offset fetch: %d", r.ErrorCode)
		}
		return nil
	})
}
