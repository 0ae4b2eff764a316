package metadata

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// AgentInfo describes a registered agent.
type AgentInfo struct {
	ID         int32     `json:"id"`
	Addr       string    `json:"addr"`                 // Kafka listener, host:port
	PeerAddr   string    `json:"peer_addr,omitempty"`  // replication, host:port
	AdminAddr  string    `json:"admin_addr,omitempty"` // admin/metrics, host:port
	Zone       string    `json:"zone,omitempty"`
	Registered time.Time `json:"registered"`
	// Incarnation changes every time the agent process starts, so the
	// controller can tell a restart from a reconnect.
	Incarnation int64 `json:"incarnation,omitempty"`
	// Fenced: the controller has stopped hearing from the agent. It leads
	// nothing, and is left out of ISRs and of the brokers clients see.
	Fenced bool `json:"fenced,omitempty"`
	// FencedAt is when it was fenced (zero: not fenced, or fenced by a
	// controller that did not say when).
	FencedAt time.Time `json:"fenced_at,omitzero"`
	// Draining: an operator asked for everything to move off the agent.
	Draining bool `json:"draining,omitempty"`
	// Listeners maps each named Kafka listener to its advertised
	// address (absent: Addr serves every name).
	Listeners map[string]string `json:"listeners,omitempty"`
}

// AddrFor is the agent's advertised address on the named listener, or
// Addr if it has none by that name.
func (a AgentInfo) AddrFor(listener string) string {
	if addr, ok := a.Listeners[listener]; ok {
		return addr
	}
	return a.Addr
}

// EncodeListeners renders listeners as "NAME=HOST:PORT,..." in name order
// (the heartbeat's form); ParseListeners is its inverse.
func EncodeListeners(listeners map[string]string) string {
	names := slices.Sorted(maps.Keys(listeners))
	parts := make([]string, len(names))
	for i, n := range names {
		parts[i] = n + "=" + listeners[n]
	}
	return strings.Join(parts, ",")
}

// ParseListeners is the inverse of EncodeListeners (nil for "").
func ParseListeners(s string) map[string]string {
	if s == "" {
		return nil
	}
	out := map[string]string{}
	for _, part := range strings.Split(s, ",") {
		if name, addr, ok := strings.Cut(part, "="); ok && name != "" {
			out[name] = addr
		}
	}
	return out
}

// Topic is one topic and its partitions.
type Topic struct {
	ID         uuid.UUID         `json:"id"`
	Name       string            `json:"name"`
	Configs    map[string]string `json:"configs"`
	Partitions []Partition       `json:"partitions"`
	Created    time.Time         `json:"created"`
}

// Partition is one partition's replication state and segment manifest.
type Partition struct {
	Index       int32   `json:"index"`
	Leader      int32   `json:"leader"` // -1: no leader
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	// ISRVersion counts leader and ISR changes; an ISR change must name the
	// version it was decided against, so a leader acting on a stale view
	// cannot undo the controller's change.
	ISRVersion int32 `json:"isr_version,omitempty"`
	// LeaderIncarnation is the leader's registered incarnation when it was
	// given this epoch (0 in metadata written before it was kept). A
	// leader that has restarted since must not lead at this epoch: its
	// previous process may have streamed batches to followers that never
	// reached its own WAL, so the same epoch could assign an offset twice.
	LeaderIncarnation int64 `json:"leader_incarnation,omitempty"`
	// Target is the replica set a reassignment is moving to (empty when
	// none is in progress); until it completes, Replicas holds both.
	Target     []int32      `json:"target,omitempty"`
	LogStart   int64        `json:"log_start"`
	FlushedEnd int64        `json:"flushed_end"`
	Segments   []SegmentRef `json:"segments"`
	// CleanedEnd is where the key compactor's last pass over the
	// partition ended (cleanup.policy=compact): the flushed ranges from
	// it on are dirty.
	CleanedEnd int64 `json:"cleaned_end,omitempty"`
}

// DirtyBytes is how many of the partition's flushed bytes a key
// compaction pass has not covered yet, of how many in all.
func (p Partition) DirtyBytes() (dirty, total int64) {
	for _, s := range p.Segments {
		total += s.Length
		if s.FirstOffset >= p.CleanedEnd {
			dirty += s.Length
		}
	}
	return dirty, total
}

// SegmentRef locates one partition's contiguous range of record batches
// inside a segment object.
type SegmentRef struct {
	Object       string `json:"object"`
	Offset       int64  `json:"offset"` // byte position in the object
	Length       int64  `json:"length"` // bytes
	FirstOffset  int64  `json:"first_offset"`
	LastOffset   int64  `json:"last_offset"`
	MinTimestamp int64  `json:"min_timestamp"`
	MaxTimestamp int64  `json:"max_timestamp"`
	LeaderEpoch  int32  `json:"leader_epoch"`
	// CRC is the CRC-32C of the range's bytes, so a reader can verify a
	// ranged GET without the object's footer.
	CRC uint32 `json:"crc,omitempty"`
}

// ProducerBlock is a range [First, First+Count) of producer IDs.
type ProducerBlock struct {
	First int64 `json:"first"`
	Count int64 `json:"count"`
}

// State is the metadata state machine. States published by a Store are
// immutable and share unchanged parts with their predecessors; call Clone
// before mutating one by hand.
type State struct {
	Seq             uint64                  `json:"seq"`              // last applied journal entry
	ControllerEpoch int64                   `json:"controller_epoch"` // highest epoch applied
	Agents          map[int32]AgentInfo     `json:"agents"`
	Topics          map[uuid.UUID]*Topic    `json:"topics"`
	NextProducerID  int64                   `json:"next_producer_id"`
	ProducerBlocks  map[int32]ProducerBlock `json:"producer_blocks"` // latest block per agent
	// ProducerIDKey binds idempotent producer ids to the principal that
	// obtained them (a MAC in the id's low bits; agent/kafka).
	ProducerIDKey []byte `json:"producer_id_key,omitempty"`
	// Users maps a SCRAM user to its credentials by mechanism (users.go).
	Users map[string]map[string]ScramCredential `json:"users,omitempty"`
	// ACLs are the access control entries, sorted (acls.go); replaced,
	// never changed in place.
	ACLs []ACL `json:"acls,omitempty"`
	// Quotas are the client quotas, sorted by entity (quotas.go);
	// replaced, never changed in place.
	Quotas []ClientQuota `json:"quotas,omitempty"`
	// BrokerConfigs are the dynamic broker configs by resource name (an
	// agent id, or ClusterDefault), each replaced whole (brokerconfigs.go).
	BrokerConfigs map[string]map[string]string `json:"broker_configs,omitempty"`
	names         map[string]uuid.UUID         // name index over Topics
}

// NewState returns an empty state.
func NewState() *State {
	s := &State{}
	s.normalize()
	return s
}

// normalize replaces nil maps so that equal states encode to equal JSON.
func (s *State) normalize() {
	if s.Agents == nil {
		s.Agents = map[int32]AgentInfo{}
	}
	if s.Topics == nil {
		s.Topics = map[uuid.UUID]*Topic{}
	}
	if s.ProducerBlocks == nil {
		s.ProducerBlocks = map[int32]ProducerBlock{}
	}
	if s.names == nil {
		s.names = make(map[string]uuid.UUID, len(s.Topics))
		for id, t := range s.Topics {
			if t != nil {
				s.names[t.Name] = id
			}
		}
	}
}

// Topic returns the topic with the given ID.
func (s *State) Topic(id uuid.UUID) (*Topic, bool) {
	t, ok := s.Topics[id]
	return t, ok && t != nil
}

// TopicByName returns the topic with the given name.
func (s *State) TopicByName(name string) (*Topic, bool) {
	if s.names == nil {
		// A State built by hand or by plain json.Unmarshal into a field.
		for _, t := range s.Topics {
			if t != nil && t.Name == name {
				return t, true
			}
		}
		return nil, false
	}
	id, ok := s.names[name]
	if !ok {
		return nil, false
	}
	return s.Topic(id)
}

// Partition returns partition idx of the topic. The result is shared with
// the state: do not mutate it.
func (s *State) Partition(topicID uuid.UUID, idx int32) (*Partition, bool) {
	t, ok := s.Topic(topicID)
	if !ok || idx < 0 || int(idx) >= len(t.Partitions) {
		return nil, false
	}
	return &t.Partitions[idx], true
}

// Clone returns a deep copy.
func (s *State) Clone() *State {
	n := &State{
		Seq:             s.Seq,
		ControllerEpoch: s.ControllerEpoch,
		Agents:          maps.Clone(s.Agents),
		Topics:          make(map[uuid.UUID]*Topic, len(s.Topics)),
		NextProducerID:  s.NextProducerID,
		ProducerBlocks:  maps.Clone(s.ProducerBlocks),
		ProducerIDKey:   s.ProducerIDKey,     // replaced, never mutated
		Users:           maps.Clone(s.Users), // credentials are replaced, never mutated
		ACLs:            slices.Clone(s.ACLs),
		Quotas:          slices.Clone(s.Quotas),
	}
	for id, t := range s.Topics {
		if t != nil {
			n.Topics[id] = t.Clone()
		}
	}
	n.normalize()
	return n
}

// Clone returns a deep copy.
func (t *Topic) Clone() *Topic {
	c := *t
	c.Configs = maps.Clone(t.Configs)
	c.Partitions = make([]Partition, len(t.Partitions))
	for i, p := range t.Partitions {
		c.Partitions[i] = p.Clone()
	}
	if t.Partitions == nil {
		c.Partitions = nil
	}
	return &c
}

// Clone returns a deep copy.
func (p Partition) Clone() Partition {
	p.Replicas = slices.Clone(p.Replicas)
	p.ISR = slices.Clone(p.ISR)
	p.Target = slices.Clone(p.Target)
	p.Segments = slices.Clone(p.Segments)
	return p
}

// UnmarshalJSON decodes a state and checks its internal consistency, so a
// damaged snapshot is reported instead of breaking later lookups.
func (s *State) UnmarshalJSON(b []byte) error {
	type plain State // drops the methods, so no recursion
	var p plain
	if err := json.Unmarshal(b, &p); err != nil {
		return err
	}
	st := State(p)
	st.names = nil
	st.normalize()
	if err := st.check(); err != nil {
		return err
	}
	*s = st
	return nil
}

// check verifies invariants the commands maintain.
func (s *State) check() error {
	for id, a := range s.Agents {
		if a.ID != id {
			return fmt.Errorf("agent key %d holds agent %d", id, a.ID)
		}
	}
	names := make(map[string]uuid.UUID, len(s.Topics))
	for id, t := range s.Topics {
		if t == nil {
			return fmt.Errorf("topic %s is null", id)
		}
		if t.ID != id {
			return fmt.Errorf("topic key %s holds topic %s", id, t.ID)
		}
		if other, dup := names[t.Name]; dup {
			return fmt.Errorf("topics %s and %s share the name %q", id, other, t.Name)
		}
		names[t.Name] = id
		for i, p := range t.Partitions {
			if int(p.Index) != i {
				return fmt.Errorf("topic %q: partition at position %d has index %d", t.Name, i, p.Index)
			}
		}
	}
	for id, b := range s.ProducerBlocks {
		if b.Count < 0 || b.First < 0 {
			return fmt.Errorf("producer block of agent %d is negative", id)
		}
	}
	return nil
}

// AgentIDs returns the IDs of the registered agents in ascending order.
func (s *State) AgentIDs() []int32 {
	ids := make([]int32, 0, len(s.Agents))
	for id := range s.Agents {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// ConfigInt returns the topic's integer config name, or def when it is
// unset or not an integer (configs are validated when set).
func (t *Topic) ConfigInt(name string, def int64) int64 {
	if v, ok := t.Configs[name]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	return def
}

// CleanupPolicyHas says whether the topic's cleanup.policy (default
// delete) includes policy ("compact" or "delete").
func (t *Topic) CleanupPolicyHas(policy string) bool {
	v, ok := t.Configs["cleanup.policy"]
	if !ok {
		return policy == "delete"
	}
	for _, p := range strings.Split(v, ",") {
		if strings.TrimSpace(p) == policy {
			return true
		}
	}
	return false
}

// AgentLive reports agent id registered and not fenced.
func (s *State) AgentLive(id int32) bool {
	ag, ok := s.Agents[id]
	return ok && !ag.Fenced
}

// unchangingCommand is a command that leaves the state as it is (an
// agent's draining flag set to what it is), for writing an entry that
// changes nothing; false if no agent is registered.
func (s *State) unchangingCommand() (Command, bool) {
	ids := s.AgentIDs()
	if len(ids) == 0 {
		return nil, false
	}
	return SetAgentDraining{ID: ids[0], Draining: s.Agents[ids[0]].Draining}, true
}
