package batch

// Control batches: the COMMIT and ABORT markers a transaction coordinator
// writes to every partition of a transaction. A control batch is
// transactional, carries the producer's id and epoch, and holds one record
// whose key is (version int16 = 0, type int16: 0 ABORT, 1 COMMIT) and whose
// value is (version int16 = 0, coordinator epoch int32). Clients never
// write them (checkProduceHeader refuses the control bit).

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// Control record types.
const (
	ControlAbort  int16 = 0
	ControlCommit int16 = 1
)

const attrControl16 = attrTransactional | attrControl

// EncodeControl builds the marker ending producer pid's transaction at
// epoch: COMMIT if commit, else ABORT, stamped ts.
func EncodeControl(pid int64, epoch int16, commit bool, coordinatorEpoch int32, ts int64) []byte {
	typ := ControlAbort
	if commit {
		typ = ControlCommit
	}
	key := kmsg.ControlRecordKey{Type: kmsg.ControlRecordKeyType(typ)}
	val := kmsg.EndTxnMarker{CoordinatorEpoch: coordinatorEpoch}
	r := kmsg.NewRecord()
	r.Key = key.AppendTo(nil)
	r.Value = val.AppendTo(nil)
	body := r.AppendTo(nil)[1:] // Length 0 encodes as one byte
	r.Length = int32(len(body))
	rb := kmsg.NewRecordBatch()
	rb.PartitionLeaderEpoch = -1
	rb.Magic = 2
	rb.Attributes = int16(attrControl16)
	rb.FirstTimestamp, rb.MaxTimestamp = ts, ts
	rb.ProducerID, rb.ProducerEpoch, rb.FirstSequence = pid, epoch, -1
	rb.NumRecords = 1
	rb.Records = r.AppendTo(nil)
	b := rb.AppendTo(nil)
	binary.BigEndian.PutUint32(b[offBatchLength:], uint32(len(b)-int(lengthOverhead)))
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[crcStart:], castagnoli))
	return b
}

// ControlType returns the marker type of control batch b (ControlAbort or
// ControlCommit). Control batches are never compressed.
func ControlType(b []byte) (int16, error) {
	h, err := ParseHeader(b)
	switch {
	case err != nil:
		return 0, err
	case !h.Control():
		return 0, fmt.Errorf("batch: not a control batch: %w", ErrCorrupt)
	case h.Compression() != CompressionNone || h.NumRecords < 1 || len(b) <= HeaderSize:
		return 0, fmt.Errorf("batch: control batch with %d records, codec %d: %w", h.NumRecords, h.Compression(), ErrCorrupt)
	}
	var r kmsg.Record
	if err := r.ReadFrom(b[HeaderSize:]); err != nil {
		return 0, fmt.Errorf("batch: control record: %w: %v", ErrCorrupt, err)
	}
	var key kmsg.ControlRecordKey
	if err := key.ReadFrom(r.Key); err != nil {
		return 0, fmt.Errorf("batch: control record key: %w: %v", ErrCorrupt, err)
	}
	typ := int16(key.Type)
	if typ != ControlAbort && typ != ControlCommit {
		return 0, fmt.Errorf("batch: control record type %d: %w", typ, ErrCorrupt)
	}
	return typ, nil
}
