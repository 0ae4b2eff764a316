package metadata

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Bucket keys.
const (
	ControllerKey  = "meta/controller"
	JournalPrefix  = "meta/journal/"
	SnapshotPrefix = "meta/snapshot/"
)

// JournalKey is the key of journal entry seq.
func JournalKey(seq uint64) string { return fmt.Sprintf("%s%020d", JournalPrefix, seq) }

// SnapshotKey is the key of the snapshot taken after entry seq.
func SnapshotKey(seq uint64) string { return fmt.Sprintf("%s%020d", SnapshotPrefix, seq) }

// parseSeqKey extracts the sequence number of a journal or snapshot key.
func parseSeqKey(prefix, key string) (uint64, bool) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok || len(rest) != 20 {
		return 0, false
	}
	seq, err := strconv.ParseUint(rest, 10, 64)
	return seq, err == nil
}

// Entry is one journal entry: the commands one controller decided, applied
// atomically.
type Entry struct {
	Seq   uint64    // position in the journal, from 1
	Epoch int64     // controller epoch of the writer
	Agent int32     // agent id of the writer
	Cmds  []Command // applied all or nothing
}

type entryJSON struct {
	Seq   uint64            `json:"seq"`
	Epoch int64             `json:"epoch"`
	Agent int32             `json:"agent"`
	Cmds  []json.RawMessage `json:"cmds"`
}

// MarshalJSON encodes the entry with each command tagged by its type.
func (e Entry) MarshalJSON() ([]byte, error) {
	j := entryJSON{Seq: e.Seq, Epoch: e.Epoch, Agent: e.Agent, Cmds: make([]json.RawMessage, len(e.Cmds))}
	for i, c := range e.Cmds {
		raw, err := encodeCommand(c)
		if err != nil {
			return nil, fmt.Errorf("entry %d command %d: %w", e.Seq, i, err)
		}
		j.Cmds[i] = raw
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes an entry; an unknown command type is an error.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var j entryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	cmds := make([]Command, len(j.Cmds))
	for i, raw := range j.Cmds {
		c, err := decodeCommand(raw)
		if err != nil {
			return fmt.Errorf("entry %d command %d: %w", j.Seq, i, err)
		}
		cmds[i] = c
	}
	*e = Entry{Seq: j.Seq, Epoch: j.Epoch, Agent: j.Agent, Cmds: cmds}
	return nil
}

// decodeEntry decodes the object stored at JournalKey(seq).
func decodeEntry(seq uint64, body []byte) (*Entry, error) {
	var e Entry
	if err := json.Unmarshal(body, &e); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", JournalKey(seq), ErrCorrupt, err)
	}
	if e.Seq != seq {
		return nil, fmt.Errorf("%s: %w: entry says seq %d", JournalKey(seq), ErrCorrupt, e.Seq)
	}
	return &e, nil
}

// decodeSnapshot decodes the object stored at SnapshotKey(seq).
func decodeSnapshot(seq uint64, body []byte) (*State, error) {
	var st State
	if err := json.Unmarshal(body, &st); err != nil {
		return nil, fmt.Errorf("%s: %w: %w", SnapshotKey(seq), ErrCorrupt, err)
	}
	if st.Seq != seq {
		return nil, fmt.Errorf("%s: %w: snapshot says seq %d", SnapshotKey(seq), ErrCorrupt, st.Seq)
	}
	return &st, nil
}

// applyEntry returns the state after e. An entry from an older controller
// epoch than one already applied is skipped (reason says why); so is one
// whose commands no longer validate, which every replica decides the same
// way. Both still advance Seq.
func (s *State) applyEntry(e *Entry) (next *State, skipped error) {
	if e.Epoch < s.ControllerEpoch {
		n := *s
		n.Seq = e.Seq
		return &n, fmt.Errorf("stale controller epoch %d < %d", e.Epoch, s.ControllerEpoch)
	}
	next, err := s.Next(e.Cmds...)
	if err != nil {
		n := *s
		next, skipped = &n, err
	}
	next.Seq, next.ControllerEpoch = e.Seq, e.Epoch
	return next, skipped
}

// leaseRecord is the JSON body of meta/controller. RenewedUnixMs is for
// humans: nobody trusts another agent's wall clock.
type leaseRecord struct {
	Agent         int32 `json:"agent"`
	Epoch         int64 `json:"epoch"`
	RenewedUnixMs int64 `json:"renewed_unix_ms"`
	TTLMs         int64 `json:"ttl_ms"`
}

func decodeLease(body []byte) (leaseRecord, error) {
	var l leaseRecord
	if err := json.Unmarshal(body, &l); err != nil {
		return l, fmt.Errorf("%s: %w: %w", ControllerKey, ErrCorrupt, err)
	}
	if l.TTLMs < 0 || l.Epoch < 0 {
		return l, fmt.Errorf("%s: %w: negative ttl or epoch", ControllerKey, ErrCorrupt)
	}
	return l, nil
}
