package group

// Groups persist as records in their __consumer_offsets partition, in
// Kafka's own formats (kmsg's OffsetCommitKey/Value and
// GroupMetadataKey/Value), so a consumer of the internal topic reads what
// it would read from Kafka. A nil value is a tombstone.

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/batch"
)

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
			delete(c.groups, k.Group)
			return nil
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

// Snapshot renders the whole state as records, to rewrite the partition
// compactly: everything a later load needs, without the history.
func (c *Coordinator) Snapshot() []batch.KV {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []batch.KV
	for _, id := range sortedKeys(c.groups) {
		g := c.groups[id]
		if g.protocolType != "" || len(g.members) > 0 || g.generation > 0 {
			out = append(out, batch.KV{Key: groupKey(id), Value: groupValue(g)})
		}
		for tp, o := range g.offsets {
			out = append(out, batch.KV{Key: offsetKey(id, tp.Topic, tp.Partition), Value: offsetValue(o)})
		}
	}
	return out
}
