package batch_test

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/tier/batch"
)

// A marker decodes as Kafka's control batch: transactional and control
// bits, the producer's id and epoch, one record keyed (0, type) whose value
// carries the coordinator epoch; ControlType reads the type back.
func TestEncodeControl(t *testing.T) {
	for _, commit := range []bool{true, false} {
		b := batch.EncodeControl(42, 7, commit, 3, 1700000000000)
		h, err := batch.ParseHeader(b)
		if err != nil {
			t.Fatal(err)
		}
		if !h.Control() || !h.Transactional() || h.ProducerID != 42 || h.ProducerEpoch != 7 || h.NumRecords != 1 {
			t.Fatalf("header %+v", h)
		}
		var rb kmsg.RecordBatch
		if err := rb.ReadFrom(b); err != nil {
			t.Fatal(err)
		}
		var r kmsg.Record
		if err := r.ReadFrom(rb.Records); err != nil {
			t.Fatal(err)
		}
		var key kmsg.ControlRecordKey
		if err := key.ReadFrom(r.Key); err != nil {
			t.Fatal(err)
		}
		var val kmsg.EndTxnMarker
		if err := val.ReadFrom(r.Value); err != nil {
			t.Fatal(err)
		}
		want := batch.ControlAbort
		if commit {
			want = batch.ControlCommit
		}
		if int16(key.Type) != want || val.CoordinatorEpoch != 3 {
			t.Fatalf("key %+v value %+v", key, val)
		}
		typ, err := batch.ControlType(b)
		if err != nil || typ != want {
			t.Fatalf("ControlType = %d, %v; want %d", typ, err, want)
		}
	}
	if _, err := batch.ControlType(batch.Encode([]batch.KV{{Key: []byte("k")}}, 0)); !errors.Is(err, batch.ErrCorrupt) {
		t.Fatalf("ControlType of a data batch: %v", err)
	}
}
