package agent

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/wal"
	"github.com/tlog-io/tlog/metadata"
	"github.com/tlog-io/tlog/tier"
	"github.com/tlog-io/tlog/tier/batch"
)

// oneRecordBatch is a sealed one-record batch at base offset base.
func oneRecordBatch(base int64) []byte {
	r := kmsg.NewRecord()
	r.Value = []byte("v")
	body := r.AppendTo(nil)[1:]
	r.Length = int32(len(body))
	rb := kmsg.NewRecordBatch()
	rb.FirstOffset = base
	rb.Magic = 2
	rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = -1, -1, -1
	rb.NumRecords = 1
	rb.Records = r.AppendTo(nil)
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[8:], uint32(len(b)-12))
	binary.BigEndian.PutUint32(b[17:], crc32.Checksum(b[21:], crc32.MakeTable(crc32.Castagnoli)))
	return b
}

// recover means to drop WAL batches wholly below each partition's log
// start ("Drop batches wholly below each partition's log start"), e.g. ones
// left behind when the agent died between journaling a DeleteRecords and
// deleting the batches. It calls p.SetLogStart(o.LogStart), which is a
// no-op because the partition was created with that very log start, so the
// stale batches stay in the WAL for good (reported stale on every restart).
func TestRecoverDropsBatchesBelowLogStart(t *testing.T) {
	t.Parallel()
	dir, bucket := t.TempDir(), tier.NewMemBucket()
	cfg := Config{DataDir: dir, Listen: "127.0.0.1:0", Bucket: bucket, LeaseTTL: 2 * time.Second,
		Logger: slog.New(slog.DiscardHandler)}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.createTopic(ctx, "r", 1, 1); err != nil {
		t.Fatal(err)
	}
	tp := a.topicByName("r")
	p := tp.Parts[0]
	for range 5 {
		b := oneRecordBatch(0)
		h, err := batch.ValidateProduce(b, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		if _, err := p.Append(b, h, -1, func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.propose(ctx, metadata.SetLogStart{TopicID: tp.ID, Partition: 0, Offset: 3}); err != nil {
		t.Fatal(err)
	}
	key := p.Key()
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	// What a crash between the journal entry and the WAL delete leaves.
	files, err := walKind(dir+"/wal", cfg.WALStoreKind)
	if err != nil {
		t.Fatal(err)
	}
	w, err := wal.Open(wal.Options{Dir: dir + "/wal", Files: files, Logger: cfg.Logger})
	if err != nil {
		t.Fatal(err)
	}
	for base := int64(0); base < 3; base++ {
		done := make(chan error, 1)
		if err := w.Append(key, base, oneRecordBatch(base), func(err error) { done <- err }); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	w.Close()

	a, err = Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if o := a.topicByName("r").Parts[0].Offsets(); o.LogStart != 3 || o.HW != 5 {
		t.Fatalf("after restart: %+v", o)
	}
	var below []int64
	a.wal.Read(key, 0, func(base int64, _ []byte) bool {
		if base < 3 {
			below = append(below, base)
		}
		return true
	})
	if len(below) > 0 {
		t.Errorf("BUG: WAL still holds batches %v below log start 3 after recovery (agent.go recover: "+
			"SetLogStart(o.LogStart) is a no-op)", below)
	}
}
