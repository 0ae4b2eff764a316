package agent_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent"
	"github.com/tlog-io/tlog/agent/wal"
	"github.com/tlog-io/tlog/agent/wal/waltest"
)

// A produce whose WAL write fails is answered with KAFKA_STORAGE_ERROR and
// never acknowledged; the high watermark stays below it; every later
// produce to the agent, to that partition or another, fails the same way
// (the WAL is fail-stop) instead of landing after a hole; and what was
// acknowledged before still reads back.
func TestWALWriteFailureFailsProduce(t *testing.T) {
	t.Parallel()
	for _, acks := range []int16{1, -1} {
		t.Run(fmt.Sprintf("acks=%d", acks), func(t *testing.T) {
			t.Parallel()
			store := waltest.NewFaulty(wal.NewMemStore())
			a := startAgent(t, func(c *agent.Config) {
				c.WALStore = store
				c.FlushInterval = time.Hour // nothing else writes to the WAL
			})
			c := dialRaw(t, a.Addr())
			createTopic(t, c, "walfail", 1, nil)
			createTopic(t, c, "other", 1, nil)
			produce := func(topic, v string) kmsg.ProduceResponseTopicPartition {
				t.Helper()
				resp := do[*kmsg.ProduceResponse](c, 9, produceReq(acks, topic, 0, mkBatch(plainBatch(), v)))
				return resp.Topics[0].Partitions[0]
			}
			for i := range int64(3) {
				if p := produce("walfail", "ok"); p.ErrorCode != 0 || p.BaseOffset != i {
					t.Fatalf("produce %d: error %d (%s) at %d", i, p.ErrorCode, deref(p.ErrorMessage), p.BaseOffset)
				}
			}
			if hw := latest(c, "walfail", 0); hw != 3 {
				t.Fatalf("HW %d after 3 acknowledged produces", hw)
			}
			applies := store.Count(waltest.OpApply)

			store.FailNth(waltest.OpApply, 1, waltest.ErrInjected)
			p := produce("walfail", "lost")
			if p.ErrorCode != kerr.KafkaStorageError.Code {
				t.Fatalf("produce whose WAL write fails: error %d (%s) at %d, want KAFKA_STORAGE_ERROR", p.ErrorCode, deref(p.ErrorMessage), p.BaseOffset)
			}
			t.Logf("answered: %s", deref(p.ErrorMessage))
			if p.BaseOffset != -1 {
				t.Errorf("failed produce answered with base offset %d", p.BaseOffset)
			}
			// The store works again; the agent still refuses to write.
			for _, topic := range []string{"walfail", "other", "walfail"} {
				if p := produce(topic, "after"); p.ErrorCode != kerr.KafkaStorageError.Code {
					t.Fatalf("produce to %s after the failure: error %d (%s), want KAFKA_STORAGE_ERROR", topic, p.ErrorCode, deref(p.ErrorMessage))
				}
			}
			if hw := latest(c, "walfail", 0); hw != 3 {
				t.Fatalf("HW %d after a failed WAL write, want 3", hw)
			}
			if hw := latest(c, "other", 0); hw != 0 {
				t.Fatalf("HW of the other topic %d, want 0", hw)
			}
			if got := store.Count(waltest.OpApply) - applies; got != 1 {
				t.Errorf("%d WAL writes reached the store after the acknowledged ones, want only the failed one", got)
			}

			// Acknowledged data reads back, and is all the store holds.
			f := fetchOne(c, "walfail", 0, 0, 1<<20)
			if f.ErrorCode != 0 || f.HighWatermark != 3 {
				t.Fatalf("fetch after the failure: error %d, HW %d", f.ErrorCode, f.HighWatermark)
			}
			if got := countBatches(t, f.RecordBatches); !slices.Equal(got, []int64{0, 1, 2}) {
				t.Fatalf("fetched batches %v, want 0 1 2", got)
			}
			var stored int
			prefix := wal.NewPartKey(topicID(c, "walfail"), 0).BatchPrefix()
			err := store.Inner().Iterate(prefix, nil, false, func(wal.Item) (bool, error) {
				stored++
				return true, nil
			})
			if err != nil || stored != 3 {
				t.Errorf("the WAL store holds %d batches (%v), want the 3 acknowledged", stored, err)
			}
		})
	}
}
