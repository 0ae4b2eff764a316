package group

// Committed offsets and group administration: OffsetCommit, OffsetFetch,
// DescribeGroups, ListGroups, DeleteGroups, OffsetDelete.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/tier/batch"
)

// Commit handles an OffsetCommit; done gets the response once the offsets
// are committed in the partition (or refused).
func (c *Coordinator) Commit(req *kmsg.OffsetCommitRequest, done func(*kmsg.OffsetCommitResponse)) {
	now := c.cfg.Now()
	resp := req.ResponseKind().(*kmsg.OffsetCommitResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetCommitResponseTopicPartition()
			sp.Partition = rp.Partition
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	all := func(code int16) {
		for i := range resp.Topics {
			for j := range resp.Topics[i].Partitions {
				if resp.Topics[i].Partitions[j].ErrorCode == 0 {
					resp.Topics[i].Partitions[j].ErrorCode = code
				}
			}
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if code := c.unavailableLocked(); code != 0 {
		all(code)
		done(resp)
		return
	}
	if req.Group == "" {
		all(kerr.InvalidGroupID.Code)
		done(resp)
		return
	}
	g := c.groups[req.Group]
	generation := req.Generation
	if req.Version == 0 {
		generation = -1
	}
	var code int16
	switch {
	case g == nil && generation < 0:
		g = c.groupLocked(req.Group, now) // a group used only to store offsets
	case g == nil:
		code = kerr.IllegalGeneration.Code
	case g.state == Dead:
		code = kerr.CoordinatorNotAvailable.Code
	case g.cons != nil:
		// Kafka's rules for consumer-protocol groups: commits from
		// outside the group only while it is empty; members commit
		// at their current epoch, with OffsetCommit v9+.
		switch {
		case generation < 0 && len(g.cons.members) == 0:
		case req.Version < 9 && g.cons.members[req.MemberID] != nil:
			code = kerr.UnsupportedVersion.Code
		default:
			code = checkConsumerMember(g.cons, req.MemberID, generation)
			if m := g.cons.members[req.MemberID]; m != nil && code == 0 {
				m.deadline = now.Add(c.cfg.ConsumerSessionTimeout)
			}
		}
	case generation < 0 && g.state == Empty:
		// Offsets set from outside the group (tools, resets): only while
		// no member could be overwriting them.
	case g.state == CompletingRebalance:
		code = kerr.RebalanceInProgress.Code
	default:
		var m *member
		m, code = memberCheck(g, req.MemberID, req.InstanceID, generation)
		if m != nil && code == 0 {
			m.deadline = now.Add(m.sessionTimeout) // a commit counts as a heartbeat
		}
	}
	if code != 0 {
		all(code)
		done(resp)
		return
	}
	var recs []batch.KV
	type pending struct {
		tp TP
		o  Offset
	}
	var wrote []pending
	for i, rt := range req.Topics {
		for j, rp := range rt.Partitions {
			meta := ""
			if rp.Metadata != nil {
				meta = *rp.Metadata
			}
			if len(meta) > c.cfg.MaxMetadataBytes {
				resp.Topics[i].Partitions[j].ErrorCode = kerr.OffsetMetadataTooLarge.Code
				continue
			}
			o := Offset{Offset: rp.Offset, LeaderEpoch: rp.LeaderEpoch, Metadata: meta, CommitTime: now}
			if req.Version < 6 {
				o.LeaderEpoch = -1
			}
			tp := TP{Topic: rt.Topic, Partition: rp.Partition}
			recs = append(recs, batch.KV{Key: offsetKey(g.id, tp.Topic, tp.Partition), Value: offsetValue(o)})
			wrote = append(wrote, pending{tp, o})
		}
	}
	if len(recs) == 0 {
		done(resp)
		return
	}
	c.writeLocked(recs, func(err error) {
		if err != nil {
			all(writeErrCode(err))
			done(resp)
			return
		}
		for _, w := range wrote {
			g.offsets[w.tp] = w.o
		}
		if c.groups[g.id] != g { // deleted meanwhile; bring it back for its offsets
			c.groups[g.id] = g
		}
		done(resp)
	})
}

// FetchOffsets returns a group's committed offsets for topics (nil: all).
// A partition without a commit gets offset -1.
func (c *Coordinator) FetchOffsets(group string, topics map[string][]int32) (map[TP]Offset, int16) {
	return c.FetchOffsetsAs(group, "", -1, topics)
}

// FetchOffsetsAs is FetchOffsets for a member (OffsetFetch v9+): in a
// consumer-protocol group a member must fetch at its current epoch.
func (c *Coordinator) FetchOffsetsAs(group, memberID string, epoch int32, topics map[string][]int32) (map[TP]Offset, int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if code := c.unavailableLocked(); code != 0 {
		return nil, code
	}
	out := map[TP]Offset{}
	g := c.groups[group]
	if g != nil && g.cons != nil && memberID != "" && epoch >= 0 {
		if code := checkConsumerMember(g.cons, memberID, epoch); code != 0 {
			return nil, code
		}
	}
	if topics == nil {
		if g != nil {
			for tp, o := range g.offsets {
				out[tp] = o
			}
		}
		return out, 0
	}
	for t, ps := range topics {
		for _, p := range ps {
			tp := TP{Topic: t, Partition: p}
			o, ok := Offset{Offset: -1, LeaderEpoch: -1}, false
			if g != nil {
				var got Offset
				if got, ok = g.offsets[tp]; ok {
					o = got
				}
			}
			out[tp] = o
		}
	}
	return out, 0
}

// Describe describes a group (Dead with no members if unknown); names
// maps topic ids to names, for consumer-protocol groups.
func (c *Coordinator) Describe(group string, names map[[16]byte]string) kmsg.DescribeGroupsResponseGroup {
	d := kmsg.NewDescribeGroupsResponseGroup()
	d.Group = group
	d.AuthorizedOperations = -2147483648
	c.mu.Lock()
	defer c.mu.Unlock()
	if code := c.unavailableLocked(); code != 0 {
		d.ErrorCode = code
		return d
	}
	g := c.groups[group]
	if g == nil {
		d.State = Dead.String()
		return d
	}
	d.State, d.ProtocolType, d.Protocol = g.state.String(), g.protocolType, g.protocol
	if g.cons != nil {
		describeConsumerAsClassic(g, names, &d)
		return d
	}
	for _, id := range g.memberOrder() {
		m := g.members[id]
		dm := kmsg.NewDescribeGroupsResponseGroupMember()
		dm.MemberID, dm.InstanceID, dm.ClientID, dm.ClientHost = m.id, m.instanceID, m.clientID, m.clientHost
		dm.ProtocolMetadata = m.metadataFor(g.protocol)
		dm.MemberAssignment = m.assignment
		d.Members = append(d.Members, dm)
	}
	return d
}

// GroupInfo is a ListGroups entry.
type GroupInfo struct {
	ID, ProtocolType string
	Type             string // "classic" or "consumer" (the KIP-848 protocol)
	State            State
}

// List lists the groups here (those with members, offsets or a type).
func (c *Coordinator) List() ([]GroupInfo, int16) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if code := c.unavailableLocked(); code != 0 {
		return nil, code
	}
	var out []GroupInfo
	for _, id := range sortedKeys(c.groups) {
		g := c.groups[id]
		if g.state == Dead || (g.cons == nil && len(g.members) == 0 && len(g.offsets) == 0 && g.protocolType == "") {
			continue
		}
		typ := "classic"
		if g.cons != nil {
			typ = "consumer"
		}
		out = append(out, GroupInfo{ID: id, ProtocolType: g.protocolType, Type: typ, State: g.state})
	}
	return out, 0
}

// Delete deletes an empty group and its offsets; done gets the error code.
func (c *Coordinator) Delete(group string, done func(int16)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if code := c.unavailableLocked(); code != 0 {
		done(code)
		return
	}
	g := c.groups[group]
	switch {
	case g == nil || g.state == Dead:
		done(kerr.GroupIDNotFound.Code)
		return
	case g.state != Empty:
		done(kerr.NonEmptyGroup.Code)
		return
	}
	recs := []batch.KV{{Key: groupKey(group)}}
	if g.cons != nil {
		recs = []batch.KV{{Key: consumerGroupKey(group)}}
	}
	for tp := range g.offsets {
		recs = append(recs, batch.KV{Key: offsetKey(group, tp.Topic, tp.Partition)})
	}
	g.setState(Dead, c.cfg.Now())
	c.writeLocked(recs, func(err error) {
		if err != nil {
			g.setState(Empty, c.cfg.Now())
			done(writeErrCode(err))
			return
		}
		g.cons = nil
		if c.groups[group] == g {
			delete(c.groups, group)
		}
		done(0)
	})
}

// DeleteOffsets deletes committed offsets of partitions the group does
// not consume (all of them if it is empty); done gets the group error and
// one per partition.
func (c *Coordinator) DeleteOffsets(group string, tps []TP, done func(int16, []int16)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if code := c.unavailableLocked(); code != 0 {
		done(code, nil)
		return
	}
	g := c.groups[group]
	if g == nil || g.state == Dead {
		done(kerr.GroupIDNotFound.Code, nil)
		return
	}
	subscribed, known := g.subscribedTopics()
	if g.cons != nil {
		subscribed, known = g.consumerSubscribedTopics(c), true
	}
	codes := make([]int16, len(tps))
	var recs []batch.KV
	var drop []TP
	for i, tp := range tps {
		if g.state != Empty && (!known || subscribed[tp.Topic]) {
			codes[i] = kerr.GroupSubscribedToTopic.Code
			continue
		}
		if _, ok := g.offsets[tp]; ok {
			recs = append(recs, batch.KV{Key: offsetKey(group, tp.Topic, tp.Partition)})
			drop = append(drop, tp)
		}
	}
	if len(recs) == 0 {
		done(0, codes)
		return
	}
	c.writeLocked(recs, func(err error) {
		if err != nil {
			// The whole request failed, at the top level where admin
			// clients look for a coordinator error to retry on.
			done(writeErrCode(err), nil)
			return
		}
		for _, tp := range drop {
			delete(g.offsets, tp)
		}
		done(0, codes)
	})
}

// subscribedTopics reads the topics a consumer group's members subscribe
// to from their ConsumerMemberMetadata. known is false for other protocol
// types, whose topics tlog cannot read: then every topic counts.
func (g *Group) subscribedTopics() (topics map[string]bool, known bool) {
	out := map[string]bool{}
	for _, m := range g.members {
		md := m.metadataFor(g.protocol)
		var cm kmsg.ConsumerMemberMetadata
		if g.protocolType != "consumer" || cm.ReadFrom(md) != nil {
			return nil, false
		}
		for _, t := range cm.Topics {
			out[t] = true
		}
		var ca kmsg.ConsumerMemberAssignment
		if ca.ReadFrom(m.assignment) == nil {
			for _, t := range ca.Topics {
				out[t.Topic] = true
			}
		}
	}
	return out, true
}

// Since reports when the group entered its state (for tests and status).
func (c *Coordinator) Since(group string) (State, time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[group]
	if g == nil {
		return Dead, time.Time{}, false
	}
	return g.state, g.since, true
}
