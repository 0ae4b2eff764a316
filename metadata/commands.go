package metadata

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/google/uuid"
)

// Command is one change to the State. The set is closed (the unexported
// method) because every reader must be able to decode every journaled
// command. Commands are plain values; in the journal each is a JSON object
// with a "type" field naming it.
type Command interface {
	// CommandType is the command's "type" in the journal.
	CommandType() string
	apply(tx *txn) error
}

// stamper is implemented by commands that record the time they were
// proposed; the controller fills the time in so replay is deterministic.
type stamper interface {
	stamp(now time.Time) Command
}

// RegisterAgent adds an agent or replaces its registration.
type RegisterAgent struct {
	Agent AgentInfo `json:"agent"`
}

// UnregisterAgent removes an agent.
type UnregisterAgent struct {
	ID int32 `json:"id"`
}

// PartitionSpec is the placement of one new partition.
type PartitionSpec struct {
	Replicas []int32 `json:"replicas"`
	Leader   int32   `json:"leader"`
}

// CreateTopic creates a topic. Created is filled in by Propose when zero.
type CreateTopic struct {
	ID         uuid.UUID         `json:"id"`
	Name       string            `json:"name"`
	Partitions []PartitionSpec   `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
	Created    time.Time         `json:"created"`
}

// DeleteTopic deletes a topic.
type DeleteTopic struct {
	ID uuid.UUID `json:"id"`
}

// CreatePartitions adds partitions to a topic.
type CreatePartitions struct {
	TopicID uuid.UUID       `json:"topic_id"`
	New     []PartitionSpec `json:"new"`
}

// AlterTopicConfigs sets and deletes topic config keys.
type AlterTopicConfigs struct {
	TopicID uuid.UUID         `json:"topic_id"`
	Set     map[string]string `json:"set,omitempty"`
	Delete  []string          `json:"delete,omitempty"`
}

// SetLogStart moves a partition's log start forward (DeleteRecords,
// retention). Segment refs wholly below the new start are dropped.
type SetLogStart struct {
	TopicID   uuid.UUID `json:"topic_id"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
}

// SetLeader installs a new leader (-1: none) with a higher leader epoch.
// With Replicas set it also replaces the replica set and ends a
// reassignment (the new set must contain the leader and the ISR).
type SetLeader struct {
	TopicID     uuid.UUID `json:"topic_id"`
	Partition   int32     `json:"partition"`
	Leader      int32     `json:"leader"`
	LeaderEpoch int32     `json:"leader_epoch"`
	ISR         []int32   `json:"isr"`
	Replicas    []int32   `json:"replicas,omitempty"`
}

// SetISR changes the in-sync replicas within the current leader epoch.
// ISRVersion must be the partition's current one (the change was decided
// against the latest ISR).
type SetISR struct {
	TopicID     uuid.UUID `json:"topic_id"`
	Partition   int32     `json:"partition"`
	LeaderEpoch int32     `json:"leader_epoch"`
	ISRVersion  int32     `json:"isr_version"`
	ISR         []int32   `json:"isr"`
}

// SetAgentFenced fences an agent the controller stopped hearing from, or
// lifts the fence when it is heard again.
type SetAgentFenced struct {
	ID     int32 `json:"id"`
	Fenced bool  `json:"fenced"`
	// At is when the controller fenced the agent (its clock), kept as
	// AgentInfo.FencedAt: replicas move off an agent fenced for long.
	At time.Time `json:"at,omitzero"`
}

// SetAgentDraining marks an agent to be emptied of replicas (or no longer).
type SetAgentDraining struct {
	ID       int32 `json:"id"`
	Draining bool  `json:"draining"`
}

// Reassign starts moving a partition to the Target replicas: agents in the
// target that are not replicas yet join as followers (outside the ISR)
// and copy the unflushed tail; SetLeader with Replicas ends the move. A
// target holding the same agents only reorders the replicas (the first is
// the preferred leader) and completes at once.
type Reassign struct {
	TopicID   uuid.UUID `json:"topic_id"`
	Partition int32     `json:"partition"`
	Target    []int32   `json:"target"`
}

// CommitSegment appends a flushed range to a partition's manifest.
// LeaderEpoch is the epoch of the leader asking for the commit; it fences
// zombie leaders.
type CommitSegment struct {
	TopicID     uuid.UUID  `json:"topic_id"`
	Partition   int32      `json:"partition"`
	LeaderEpoch int32      `json:"leader_epoch"`
	Ref         SegmentRef `json:"ref"`
}

// CommitSegments commits the ranges of one object, all or nothing.
type CommitSegments struct {
	Commits []CommitSegment `json:"commits"`
}

// ReplaceSegments swaps consecutive ranges of one partition's manifest for
// one range holding the same offsets (compaction). Old lists the objects of
// the ranges being replaced, in order; the swap is refused unless the
// manifest still holds exactly those ranges covering the new one's offsets,
// so a compaction that raced with retention or another compaction loses.
type ReplaceSegments struct {
	TopicID   uuid.UUID  `json:"topic_id"`
	Partition int32      `json:"partition"`
	Old       []string   `json:"old"`
	New       SegmentRef `json:"new"`
}

// AllocateProducerIDs hands the agent the block
// [NextProducerID, NextProducerID+Count), recorded in ProducerBlocks.
type AllocateProducerIDs struct {
	Agent int32 `json:"agent"`
	Count int64 `json:"count"`
	// Key, if the state has no ProducerIDKey yet, becomes it (the
	// proposer draws it at random; later ones are ignored).
	Key []byte `json:"key,omitempty"`
}

// SetCleanedEnd records where a key compaction pass over a partition
// ended; at most the flushed end, and never back (a pass that raced with
// a log start move is simply behind).
type SetCleanedEnd struct {
	TopicID   uuid.UUID `json:"topic_id"`
	Partition int32     `json:"partition"`
	Offset    int64     `json:"offset"`
}

func (SetCleanedEnd) CommandType() string { return "set_cleaned_end" }

func (RegisterAgent) CommandType() string       { return "register_agent" }
func (UnregisterAgent) CommandType() string     { return "unregister_agent" }
func (CreateTopic) CommandType() string         { return "create_topic" }
func (DeleteTopic) CommandType() string         { return "delete_topic" }
func (CreatePartitions) CommandType() string    { return "create_partitions" }
func (AlterTopicConfigs) CommandType() string   { return "alter_topic_configs" }
func (SetLogStart) CommandType() string         { return "set_log_start" }
func (SetLeader) CommandType() string           { return "set_leader" }
func (SetISR) CommandType() string              { return "set_isr" }
func (SetAgentFenced) CommandType() string      { return "set_agent_fenced" }
func (SetAgentDraining) CommandType() string    { return "set_agent_draining" }
func (Reassign) CommandType() string            { return "reassign" }
func (CommitSegment) CommandType() string       { return "commit_segment" }
func (CommitSegments) CommandType() string      { return "commit_segments" }
func (AllocateProducerIDs) CommandType() string { return "allocate_producer_ids" }
func (ReplaceSegments) CommandType() string     { return "replace_segments" }

var commandDecoders = map[string]func([]byte) (Command, error){
	"register_agent":          decodeAs[RegisterAgent],
	"unregister_agent":        decodeAs[UnregisterAgent],
	"create_topic":            decodeAs[CreateTopic],
	"delete_topic":            decodeAs[DeleteTopic],
	"create_partitions":       decodeAs[CreatePartitions],
	"alter_topic_configs":     decodeAs[AlterTopicConfigs],
	"set_log_start":           decodeAs[SetLogStart],
	"set_leader":              decodeAs[SetLeader],
	"set_isr":                 decodeAs[SetISR],
	"set_agent_fenced":        decodeAs[SetAgentFenced],
	"set_agent_draining":      decodeAs[SetAgentDraining],
	"reassign":                decodeAs[Reassign],
	"commit_segment":          decodeAs[CommitSegment],
	"commit_segments":         decodeAs[CommitSegments],
	"allocate_producer_ids":   decodeAs[AllocateProducerIDs],
	"replace_segments":        decodeAs[ReplaceSegments],
	"set_scram_credential":    decodeAs[SetScramCredential],
	"delete_scram_credential": decodeAs[DeleteScramCredential],
	"create_acls":             decodeAs[CreateACLs],
	"alter_client_quotas":     decodeAs[AlterClientQuotas],
	"set_broker_configs":      decodeAs[SetBrokerConfigs],
	"set_cleaned_end":         decodeAs[SetCleanedEnd],
	"delete_acls":             decodeAs[DeleteACLs],
}

func decodeAs[T Command](raw []byte) (Command, error) {
	var c T
	if err := json.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	return c, nil
}

func isNil(c Command) bool {
	if c == nil {
		return true
	}
	v := reflect.ValueOf(c)
	return v.Kind() == reflect.Pointer && v.IsNil()
}

// encodeCommand renders c as its JSON object with a leading "type" field.
func encodeCommand(c Command) (json.RawMessage, error) {
	if isNil(c) {
		return nil, fmt.Errorf("%w: nil command", ErrInvalidCommand)
	}
	typ := c.CommandType()
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", typ, err)
	}
	if len(body) < 2 || body[0] != '{' {
		return nil, fmt.Errorf("encode %s: not a JSON object", typ)
	}
	tj, _ := json.Marshal(typ)
	var b bytes.Buffer
	b.WriteString(`{"type":`)
	b.Write(tj)
	if len(body) > 2 {
		b.WriteByte(',')
	}
	b.Write(body[1:])
	return b.Bytes(), nil
}

// decodeCommand is the inverse of encodeCommand.
func decodeCommand(raw []byte) (Command, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, err
	}
	dec, ok := commandDecoders[head.Type]
	if !ok {
		return nil, fmt.Errorf("unknown command type %q", head.Type)
	}
	c, err := dec(raw)
	if err != nil {
		return nil, fmt.Errorf("decode %s: %w", head.Type, err)
	}
	return c, nil
}

// EncodeCommands renders commands as the journal does (a JSON array of
// objects tagged with their type), for sending them to the controller.
func EncodeCommands(cmds []Command) ([]byte, error) {
	raws := make([]json.RawMessage, len(cmds))
	for i, c := range cmds {
		raw, err := encodeCommand(c)
		if err != nil {
			return nil, fmt.Errorf("command %d: %w", i, err)
		}
		raws[i] = raw
	}
	return json.Marshal(raws)
}

// DecodeCommands is the inverse of EncodeCommands.
func DecodeCommands(b []byte) ([]Command, error) {
	var raws []json.RawMessage
	if err := json.Unmarshal(b, &raws); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCommand, err)
	}
	cmds := make([]Command, len(raws))
	for i, raw := range raws {
		c, err := decodeCommand(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: command %d: %w", ErrInvalidCommand, i, err)
		}
		cmds[i] = c
	}
	return cmds, nil
}
