package group

// Groups persist as records in their __consumer_offsets partition, in
// Kafka's own formats (kmsg's OffsetCommitKey/Value and
// GroupMetadataKey/Value), so a consumer of the internal topic reads what
// it would read from Kafka. A nil value is a tombstone.
//
// Consumer-protocol (KIP-848) groups use two record kinds of tlog's own,
// under key versions Kafka does not use, since kmsg has no encoding of
// Kafka's (versions 3-8): a group record (key version 1000: the group id;
// value: its epochs and assignor) and one per member (key version 1001:
// group and member id; value: subscription, epochs, state and the
// assigned, revoking and target partitions). Keys are Kafka-style
// (int16 version, then strings); values are versioned JSON.

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/twmb/franz-go/pkg/kbin"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	consumerGroupKeyVersion  = 1000
	consumerMemberKeyVersion = 1001
)

func consumerGroupKey(group string) []byte {
	b := kbin.AppendInt16(nil, consumerGroupKeyVersion)
	return kbin.AppendString(b, group)
}

func consumerMemberKey(group, member string) []byte {
	b := kbin.AppendInt16(nil, consumerMemberKeyVersion)
	b = kbin.AppendString(b, group)
	return kbin.AppendString(b, member)
}

type consumerGroupRecord struct {
	V               int    `json:"v"`
	Epoch           int32  `json:"epoch"`
	AssignmentEpoch int32  `json:"assignment_epoch"`
	Assignor        string `json:"assignor,omitempty"`
	Fingerprint     uint64 `json:"fingerprint,omitempty"` // of the topics the target was computed from
}

type topicPartitionsRecord struct {
	Topic      string  `json:"topic"` // topic id, hex
	Partitions []int32 `json:"partitions"`
}

type consumerMemberRecord struct {
	V                  int                     `json:"v"`
	ClientID           string                  `json:"client_id,omitempty"`
	ClientHost         string                  `json:"client_host,omitempty"`
	InstanceID         *string                 `json:"instance_id,omitempty"`
	RackID             *string                 `json:"rack_id,omitempty"`
	Topics             []string                `json:"topics,omitempty"`
	Regex              string                  `json:"regex,omitempty"`
	Assignor           string                  `json:"assignor,omitempty"`
	RebalanceTimeoutMs int64                   `json:"rebalance_timeout_ms,omitempty"`
	Epoch              int32                   `json:"epoch"`
	PrevEpoch          int32                   `json:"prev_epoch"`
	State              memberState             `json:"state"`
	Left               bool                    `json:"left,omitempty"`
	Assigned           []topicPartitionsRecord `json:"assigned,omitempty"`
	Revoking           []topicPartitionsRecord `json:"revoking,omitempty"`
	Target             []topicPartitionsRecord `json:"target,omitempty"`
}

func consumerGroupValue(cg *consumerGroup) []byte {
	b, _ := json.Marshal(consumerGroupRecord{Epoch: cg.epoch, AssignmentEpoch: cg.assignmentEpoch, Assignor: cg.assignor, Fingerprint: cg.fingerprint})
	return b
}

func assignmentRecord(a assignment) []topicPartitionsRecord {
	var out []topicPartitionsRecord
	for _, id := range sortedTopicIDs(a) {
		out = append(out, topicPartitionsRecord{Topic: hex.EncodeToString(id[:]), Partitions: a[id]})
	}
	return out
}

func assignmentFromRecord(rs []topicPartitionsRecord) (assignment, error) {
	a := assignment{}
	for _, r := range rs {
		var id [16]byte
		if n, err := hex.Decode(id[:], []byte(r.Topic)); err != nil || n != 16 || len(r.Topic) != 32 {
			return nil, fmt.Errorf("topic id %q", r.Topic)
		}
		for _, p := range r.Partitions {
			if p < 0 {
				return nil, fmt.Errorf("partition %d", p)
			}
			a.add(tpid{id, p})
		}
	}
	return a, nil
}

func consumerMemberValue(m *cmember) []byte {
	b, _ := json.Marshal(consumerMemberRecord{
		ClientID: m.clientID, ClientHost: m.clientHost, InstanceID: m.instanceID, RackID: m.rackID,
		Topics: m.topics, Regex: m.regex, Assignor: m.assignor, RebalanceTimeoutMs: m.rebalanceTimeout.Milliseconds(),
		Epoch: m.epoch, PrevEpoch: m.prevEpoch, State: m.state, Left: m.left,
		Assigned: assignmentRecord(m.assigned), Revoking: assignmentRecord(m.revoking), Target: assignmentRecord(m.target),
	})
	return b
}

// applyConsumerLocked replays a consumer-group or member record.
func (c *Coordinator) applyConsumerLocked(version int16, key, value []byte, now time.Time) error {
	r := kbin.Reader{Src: key[2:]}
	group := r.String()
	memberID := ""
	if version == consumerMemberKeyVersion {
		memberID = r.String()
	}
	if err := r.Complete(); err != nil {
		return fmt.Errorf("group: consumer group key: %w", err)
	}
	g := c.groups[group]
	if value == nil {
		if g == nil || g.cons == nil {
			return nil
		}
		if version == consumerGroupKeyVersion {
			g.cons = nil
			g.protocolType = ""
			g.setState(Empty, now)
			if len(g.offsets) == 0 && len(g.members) == 0 {
				delete(c.groups, group)
			}
			return nil
		}
		if m := g.cons.members[memberID]; m != nil {
			g.cons.release(m, m.assigned)
			g.cons.release(m, m.revoking)
			delete(g.cons.members, memberID)
			if m.instanceID != nil && g.cons.static[*m.instanceID] == memberID {
				delete(g.cons.static, *m.instanceID)
			}
		}
		g.setState(g.cons.stateOf(), now)
		return nil
	}
	g = c.groupLocked(group, now)
	if g.cons == nil {
		g.cons = newConsumerGroup()
		g.protocolType, g.protocol, g.leader, g.generation = "consumer", "", "", 0
		g.members, g.static = map[string]*member{}, map[string]string{} // classic members
	}
	cg := g.cons
	if version == consumerGroupKeyVersion {
		var v consumerGroupRecord
		if err := json.Unmarshal(value, &v); err != nil {
			return fmt.Errorf("group: consumer group value: %w", err)
		}
		cg.epoch, cg.assignmentEpoch, cg.assignor, cg.fingerprint = v.Epoch, v.AssignmentEpoch, v.Assignor, v.Fingerprint
		g.setState(cg.stateOf(), now)
		return nil
	}
	var v consumerMemberRecord
	if err := json.Unmarshal(value, &v); err != nil {
		return fmt.Errorf("group: consumer memberID value: %w", err)
	}
	if v.State < memberStable || v.State > memberUnreleased {
		return fmt.Errorf("group: consumer memberID state %d", v.State)
	}
	m := &cmember{id: memberID, clientID: v.ClientID, clientHost: v.ClientHost, instanceID: v.InstanceID, rackID: v.RackID,
		topics: v.Topics, regex: v.Regex, assignor: v.Assignor, rebalanceTimeout: time.Duration(v.RebalanceTimeoutMs) * time.Millisecond,
		epoch: v.Epoch, prevEpoch: v.PrevEpoch, state: v.State, left: v.Left,
		// Members get a whole session to find the new coordinator.
		deadline: now.Add(c.cfg.ConsumerSessionTimeout)}
	if m.state == memberUnrevoked {
		m.revokeBy = now.Add(max(m.rebalanceTimeout, time.Second))
	}
	var err error
	if m.regex != "" {
		if m.re, err = regexp.Compile("^(?:" + m.regex + ")$"); err != nil {
			return fmt.Errorf("group: consumer memberID regex: %w", err)
		}
	}
	var errs []error
	m.assigned, err = assignmentFromRecord(v.Assigned)
	errs = append(errs, err)
	m.revoking, err = assignmentFromRecord(v.Revoking)
	errs = append(errs, err)
	m.target, err = assignmentFromRecord(v.Target)
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("group: consumer memberID value: %w", err)
	}
	if old := cg.members[memberID]; old != nil {
		cg.release(old, old.assigned)
		cg.release(old, old.revoking)
	}
	cg.members[memberID] = m
	cg.claim(m, m.assigned)
	cg.claim(m, m.revoking)
	if m.instanceID != nil {
		cg.static[*m.instanceID] = memberID
	}
	g.setState(cg.stateOf(), now)
	return nil
}

func offsetKey(group, topic string, partition int32) []byte {
	k := kmsg.NewOffsetCommitKey()
	k.Version = 1
	k.Group, k.Topic, k.Partition = group, topic, partition
	return k.AppendTo(nil)
}

func offsetValue(o Offset) []byte {
	v := kmsg.NewOffsetCommitValue()
	v.Version = 3
	v.Offset = o.Offset
	v.LeaderEpoch = o.LeaderEpoch
	v.Metadata = o.Metadata
	v.CommitTimestamp = o.CommitTime.UnixMilli()
	return v.AppendTo(nil)
}

func groupKey(group string) []byte {
	k := kmsg.NewGroupMetadataKey()
	k.Version = 2
	k.Group = group
	return k.AppendTo(nil)
}

func groupValue(g *Group) []byte {
	v := kmsg.NewGroupMetadataValue()
	v.Version = 3
	v.ProtocolType = g.protocolType
	v.Generation = g.generation
	if g.protocol != "" {
		p := g.protocol
		v.Protocol = &p
	}
	if g.leader != "" {
		l := g.leader
		v.Leader = &l
	}
	v.CurrentStateTimestamp = g.since.UnixMilli()
	for _, id := range g.memberOrder() {
		m := g.members[id]
		mv := kmsg.NewGroupMetadataValueMember()
		mv.MemberID = m.id
		mv.InstanceID = m.instanceID
		mv.ClientID, mv.ClientHost = m.clientID, m.clientHost
		mv.RebalanceTimeoutMillis = int32(m.rebalanceTimeout / time.Millisecond)
		mv.SessionTimeoutMillis = int32(m.sessionTimeout / time.Millisecond)
		mv.Subscription = m.metadataFor(g.protocol)
		mv.Assignment = m.assignment
		v.Members = append(v.Members, mv)
	}
	return v.AppendTo(nil)
}

// Apply replays one record of the partition into the coordinator's state
// (loading after a leader change). Records of other kinds are skipped.
func (c *Coordinator) Apply(key, value []byte, now time.Time) error {
	if len(key) < 2 {
		return fmt.Errorf("group: record key of %d bytes", len(key))
	}
	version := int16(key[0])<<8 | int16(key[1])
	c.mu.Lock()
	defer c.mu.Unlock()
	switch version {
	case consumerGroupKeyVersion, consumerMemberKeyVersion:
		return c.applyConsumerLocked(version, key, value, now)
	case 0, 1:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("group: offset key: %w", err)
		}
		tp := TP{Topic: k.Topic, Partition: k.Partition}
		if value == nil {
			if g := c.groups[k.Group]; g != nil {
				delete(g.offsets, tp)
			}
			return nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(value); err != nil {
			return fmt.Errorf("group: offset value: %w", err)
		}
		g := c.groupLocked(k.Group, now)
		g.offsets[tp] = Offset{Offset: v.Offset, LeaderEpoch: v.LeaderEpoch, Metadata: v.Metadata, CommitTime: time.UnixMilli(v.CommitTimestamp)}
	case 2:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(key); err != nil {
			return fmt.Errorf("group: metadata key: %w", err)
		}
		if value == nil {
			// The classic group is gone; offsets go by their own
			// tombstones, and a consumer-protocol group stays.
			if g := c.groups[k.Group]; g != nil && g.cons == nil {
				delete(c.groups, k.Group)
			}
			return nil
		}
		if g := c.groups[k.Group]; g != nil && g.cons != nil {
			return nil // an older classic record of a group that moved to the consumer protocol
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(value); err != nil {
			return fmt.Errorf("group: metadata value: %w", err)
		}
		g := c.groupLocked(k.Group, now)
		g.protocolType, g.generation = v.ProtocolType, v.Generation
		g.protocol, g.leader = "", ""
		if v.Protocol != nil {
			g.protocol = *v.Protocol
		}
		if v.Leader != nil {
			g.leader = *v.Leader
		}
		g.members = map[string]*member{}
		g.static = map[string]string{}
		g.since = time.UnixMilli(v.CurrentStateTimestamp)
		for i, mv := range v.Members {
			m := &member{
				id: mv.MemberID, instanceID: mv.InstanceID, clientID: mv.ClientID, clientHost: mv.ClientHost,
				protocolType:     v.ProtocolType,
				rebalanceTimeout: time.Duration(mv.RebalanceTimeoutMillis) * time.Millisecond,
				sessionTimeout:   time.Duration(mv.SessionTimeoutMillis) * time.Millisecond,
				assignment:       mv.Assignment,
				order:            uint64(i),
				// The members get a whole session to find the new
				// coordinator and heartbeat to it.
				deadline: now.Add(time.Duration(mv.SessionTimeoutMillis) * time.Millisecond),
			}
			if g.protocol != "" {
				m.protocols = []protocol{{name: g.protocol, metadata: mv.Subscription}}
			}
			g.members[m.id] = m
			if m.instanceID != nil {
				g.static[*m.instanceID] = m.id
			}
		}
		g.state = Empty
		if len(g.members) > 0 {
			g.state = Stable
		}
	}
	return nil
}
