package tests

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tlog-io/tlog/tests/tlogtest"
)

// attempt is one transaction of the consume-transform-produce loop, as the
// loop saw it: the inputs it consumed, how many records it produced, and
// how it ended (committed, aborted, or unknown: EndTransaction failed).
type attempt struct {
	inputs  []string
	records int
	outcome string
}

// txnHistory is what the loop did, for the checker.
type txnHistory struct {
	mu       sync.Mutex
	attempts []*attempt
}

func (h *txnHistory) begin() (int, *attempt) {
	h.mu.Lock()
	defer h.mu.Unlock()
	a := &attempt{outcome: "open"}
	h.attempts = append(h.attempts, a)
	return len(h.attempts) - 1, a
}

func (h *txnHistory) end(a *attempt, outcome string) {
	h.mu.Lock()
	a.outcome = outcome
	h.mu.Unlock()
}

// TestProcTxnHistory checks transactions under faults: a transactional
// consume-transform-produce loop (franz-go's GroupTransactSession,
// read_committed) copies an input topic to an output topic on three agent
// processes, RF=3, while the leader of an input partition, the leader of
// an output partition and the transaction coordinator are each SIGKILLed
// in turn (and restarted). Every output record names the transaction
// attempt that wrote it, and every seventh attempt aborts on purpose.
// Then, reading the output read_committed, it
// counts: aborted reads (records of an attempt that aborted), torn
// transactions (a committed or unknown attempt with some but not all of
// its records), lost records (an input whose output never committed) and
// duplicates (an input copied by more than one visible attempt). All must
// be zero. Bounded to about two minutes; TLOG_HEAVY=1, which .ci/run sets
// (the aborted reads it found are in docs/reliability.md).
func TestProcTxnHistory(t *testing.T) {
	if os.Getenv("TLOG_HEAVY") == "" {
		t.Skip("heavy (three agent processes killed in turn for about 2 minutes); set TLOG_HEAVY=1")
	}
	bin := tlogtest.BuildTlog(t)
	c := tlogtest.StartProcCluster(t, bin, "file://"+t.TempDir(), 3, append([]string{"--flush-interval", "500ms"}, clusterFlags...)...)
	t.Cleanup(func() {
		if t.Failed() {
			for _, a := range c.Agents {
				if a.P != nil {
					t.Logf("agent %d log:\n%s", a.ID, tlogtest.Tail(a.P.Output(), 80))
				}
			}
		}
	})
	seeds := c.Seeds()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	adm := kadm.NewClient(tlogtest.NewClient(t, seeds[0], kgo.SeedBrokers(seeds...)))
	if _, err := adm.CreateTopics(ctx, 3, 3, nil, "hin", "hout"); err != nil {
		t.Fatal(err)
	}
	const inputs = 4000
	prod := tlogtest.NewClient(t, seeds[0], kgo.SeedBrokers(seeds...), kgo.RequiredAcks(kgo.AllISRAcks()))
	for i := range inputs {
		prod.Produce(ctx, &kgo.Record{Topic: "hin", Value: fmt.Appendf(nil, "in-%05d", i)}, nil)
	}
	if err := prod.Flush(ctx); err != nil {
		t.Fatal(err)
	}

	// The loop, until every input is in a committed attempt or time is up.
	hist := &txnHistory{}
	loopCtx, stopLoop := context.WithTimeout(ctx, 150*time.Second)
	defer stopLoop()
	var loop sync.WaitGroup
	var loopErrs []string
	var committedInputs sync.Map
	var restarts int
	loop.Add(1)
	go func() {
		defer loop.Done()
		newSession := func() (*kgo.GroupTransactSession, error) {
			return kgo.NewGroupTransactSession(
				kgo.SeedBrokers(seeds...), kgo.TransactionalID("hist-ctp"), kgo.TransactionTimeout(20*time.Second),
				kgo.ConsumerGroup("hist"), kgo.ConsumeTopics("hin"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
				kgo.RequireStableFetchOffsets(), kgo.SessionTimeout(6*time.Second), kgo.RequiredAcks(kgo.AllISRAcks()),
				kgo.DefaultProduceTopic("hout"), kgo.RecordDeliveryTimeout(30*time.Second),
				kgo.RetryTimeout(30*time.Second), kgo.MetadataMinAge(100*time.Millisecond),
				kgo.WithLogger(chaosLogger(t, io.Discard)), // TLOG_CHAOS_KGO_LOG=path keeps a debug log
			)
		}
		sess, err := newSession()
		if err != nil {
			loopErrs = append(loopErrs, err.Error())
			return
		}
		defer func() { sess.Close() }()
		for loopCtx.Err() == nil {
			done := 0
			committedInputs.Range(func(_, _ any) bool { done++; return true })
			if done == inputs {
				return
			}
			// Ten records a transaction, paced, so the loop spans every
			// fault below (about 400 transactions over 40 s).
			time.Sleep(80 * time.Millisecond)
			pctx, pcancel := context.WithTimeout(loopCtx, time.Second)
			fs := sess.PollRecords(pctx, 10)
			pcancel()
			var recs []*kgo.Record
			fs.EachRecord(func(r *kgo.Record) { recs = append(recs, r) })
			if len(recs) == 0 {
				continue
			}
			if err := sess.Begin(); err != nil {
				// A producer error the client cannot recover from (franz-go
				// says so, e.g. for a coordinator it cannot map to a broker
				// while agents restart): do what an application must, and
				// start a new client with the same transactional id, which
				// fences the old one. At most a few times.
				t.Logf("client restarted after: %v", err)
				restarts++
				sess.Close()
				if restarts > 5 {
					loopErrs = append(loopErrs, "begin: "+err.Error())
					sess, _ = newSession()
					return
				}
				if sess, err = newSession(); err != nil {
					loopErrs = append(loopErrs, err.Error())
					return
				}
				continue
			}
			id, a := hist.begin()
			for _, r := range recs {
				a.inputs = append(a.inputs, string(r.Value))
				sess.Produce(loopCtx, &kgo.Record{Value: fmt.Appendf(nil, "%s|a%d", r.Value, id)}, nil)
				a.records++
			}
			// Every seventh attempt aborts on purpose, its records
			// flushed first so they are in the log: its inputs are
			// consumed again, and its outputs must never be read.
			commit := id%7 != 3
			if !commit {
				sess.Client().Flush(loopCtx)
			}
			committed, err := sess.End(loopCtx, kgo.TransactionEndTry(commit))
			switch {
			case err != nil:
				hist.end(a, "unknown")
			case committed:
				hist.end(a, "committed")
				for _, in := range a.inputs {
					committedInputs.Store(in, true)
				}
			default:
				hist.end(a, "aborted")
			}
		}
	}()

	// The faults, each agent killed for a few seconds and restarted.
	leaderOf := func(topic string, p int32) int32 {
		var leader int32 = -1
		tlogtest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
			views, _, err := describe(ctx, seeds[0], topic)
			if err != nil {
				return err
			}
			if v, ok := views[p]; ok && v.leader >= 0 && c.Agents[v.leader].P != nil {
				leader = v.leader
				return nil
			}
			return fmt.Errorf("%s/%d has no running leader", topic, p)
		})
		return leader
	}
	coordinator := func() int32 {
		var id int32 = -1
		tlogtest.CheckFor(t, 20*time.Second, 100*time.Millisecond, func() error {
			d, err := adm.DescribeTransactions(ctx, "hist-ctp")
			if err != nil {
				return err
			}
			dt := d["hist-ctp"]
			if dt.Err != nil {
				return dt.Err
			}
			id = dt.Coordinator
			return nil
		})
		return id
	}
	killFor := func(what string, id int32) {
		t.Logf("SIGKILL agent %d (%s)", id, what)
		c.Kill(id)
		time.Sleep(4 * time.Second)
		c.Start(id)
	}
	time.Sleep(5 * time.Second)
	killFor("leader of hin/0", leaderOf("hin", 0))
	time.Sleep(8 * time.Second)
	killFor("leader of hout/1", leaderOf("hout", 1))
	time.Sleep(8 * time.Second)
	killFor("transaction coordinator", coordinator())
	loop.Wait()
	if len(loopErrs) > 0 {
		t.Fatalf("the loop stopped: %s", strings.Join(loopErrs, "; "))
	}

	// Read the output both ways, up to its end.
	where := map[string]string{} // output value → partition@offset (read_committed)
	var controls []string        // control records, read_uncommitted
	read := func(iso kgo.IsolationLevel) []string {
		// read_uncommitted keeps control records (the markers move the
		// position to the end, and are listed on failure); read_committed
		// does not, as applications read, and ends at 3 s of quiet.
		opts := []kgo.Opt{kgo.SeedBrokers(seeds...), kgo.ConsumeTopics("hout"),
			kgo.FetchIsolationLevel(iso), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart())}
		if iso == kgo.ReadUncommitted() {
			opts = append(opts, kgo.KeepControlRecords())
		}
		rd := tlogtest.NewClient(t, seeds[0], opts...)
		var ends kadm.ListedOffsets
		tlogtest.CheckFor(t, 30*time.Second, 200*time.Millisecond, func() error {
			var err error
			if iso == kgo.ReadCommitted() {
				ends, err = adm.ListCommittedOffsets(ctx, "hout")
			} else {
				ends, err = adm.ListEndOffsets(ctx, "hout")
			}
			if err == nil {
				err = ends.Error()
			}
			return err
		})
		pos := map[int32]int64{}
		reached := func() bool {
			for p, o := range ends["hout"] {
				if pos[p] < o.Offset {
					return false
				}
			}
			return true
		}
		var out []string
		rctx, rcancel := context.WithTimeout(ctx, 60*time.Second)
		defer rcancel()
		quiet := time.Now()
		for !reached() && rctx.Err() == nil {
			if iso == kgo.ReadCommitted() && time.Since(quiet) > 3*time.Second {
				return out
			}
			pctx, pcancel := context.WithTimeout(rctx, time.Second)
			fs := rd.PollFetches(pctx)
			pcancel()
			if fs.NumRecords() > 0 {
				quiet = time.Now()
			}
			fs.EachRecord(func(r *kgo.Record) {
				pos[r.Partition] = r.Offset + 1
				switch {
				case !r.Attrs.IsControl():
					out = append(out, string(r.Value))
					if iso == kgo.ReadCommitted() {
						where[string(r.Value)] = fmt.Sprintf("%d@%d", r.Partition, r.Offset)
					}
				case iso == kgo.ReadUncommitted():
					typ := "?"
					if len(r.Key) == 4 {
						typ = map[byte]string{0: "ABORT", 1: "COMMIT"}[r.Key[3]]
					}
					controls = append(controls, fmt.Sprintf("%d@%d %s pid %d epoch %d", r.Partition, r.Offset, typ, r.ProducerID, r.ProducerEpoch))
				}
			})
		}
		if !reached() {
			t.Fatalf("reading hout (%v) did not reach its end: at %v, end %v", iso, pos, ends)
		}
		return out
	}
	committedRead := read(kgo.ReadCommitted())
	uncommittedRead := read(kgo.ReadUncommitted())

	hist.mu.Lock()
	defer hist.mu.Unlock()
	byAttempt := map[int]int{}
	perInput := map[string]int{}
	for _, v := range committedRead {
		in, a, ok := strings.Cut(v, "|a")
		var id int
		if _, err := fmt.Sscan(a, &id); !ok || err != nil || id >= len(hist.attempts) {
			t.Fatalf("output record %q names no attempt", v)
		}
		byAttempt[id]++
		perInput[in]++
	}
	var aborted, torn, lost, dups, committed, abortedTxns, unknown int
	for id, a := range hist.attempts {
		switch a.outcome {
		case "committed":
			committed++
		case "aborted":
			abortedTxns++
		default:
			unknown++
		}
		got := byAttempt[id]
		switch {
		case a.outcome == "aborted" && got > 0:
			aborted += got
			var at []string
			for _, in := range a.inputs {
				at = append(at, where[fmt.Sprintf("%s|a%d", in, id)])
			}
			t.Logf("aborted attempt %d (%d records) read_committed at %v", id, got, at)
		case got > 0 && got != a.records:
			torn++
		case a.outcome == "committed" && got == 0:
			torn++ // committed, yet none of it visible
		}
	}
	for i := range inputs {
		switch n := perInput[fmt.Sprintf("in-%05d", i)]; {
		case n == 0:
			lost++
		case n > 1:
			dups += n - 1
		}
	}
	t.Logf("transactions: %d committed, %d aborted, %d unknown, %d client restarts; output: %d read_committed, %d read_uncommitted",
		committed, abortedTxns, unknown, restarts, len(committedRead), len(uncommittedRead))
	t.Logf("aborted reads %d, torn transactions %d, lost records %d, duplicate outputs %d", aborted, torn, lost, dups)
	if aborted+torn+lost+dups > 0 {
		t.Logf("control records: %s", strings.Join(controls, "; "))
		t.Fatalf("transactional history broken: aborted reads %d, torn %d, lost %d, duplicates %d", aborted, torn, lost, dups)
	}
}
