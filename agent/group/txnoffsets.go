package group

// Transactional offset commits (TxnOffsetCommit): a producer's offsets are
// written to the partition as a transactional batch carrying its producer
// id and epoch, and held pending, invisible to OffsetFetch, until the
// transaction's marker reaches this partition: COMMIT makes them the
// group's offsets, ABORT drops them. Replay does the same from the log:
// records of transactional batches are pending until their producer's
// marker. While any are pending, OffsetFetch with require_stable answers
// UNSTABLE_OFFSET_COMMIT for the partitions they touch. The key compactor
// keeps the partition's open transactions whole, drops aborted ones'
// records, and keeps the marker of any transaction records remain of (a
// replay never finds a transaction's records without its marker).

import (
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/tier/batch"
)

// txnOffsets are one producer's pending offsets, by group.
type txnOffsets map[string]map[TP]Offset

func (t txnOffsets) put(group string, tp TP, o Offset) {
	if t[group] == nil {
		t[group] = map[TP]Offset{}
	}
	t[group][tp] = o
}

// TxnCommit handles a TxnOffsetCommit; done gets the response once the
// offsets are written (pending until the transaction ends).
func (c *Coordinator) TxnCommit(req *kmsg.TxnOffsetCommitRequest, done func(*kmsg.TxnOffsetCommitResponse)) {
	now := c.cfg.Now()
	resp := req.ResponseKind().(*kmsg.TxnOffsetCommitResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewTxnOffsetCommitResponseTopic()
		st.Topic = rt.Topic
		for _, rp := range rt.Partitions {
			sp := kmsg.NewTxnOffsetCommitResponseTopicPartition()
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
	if c.cfg.WriteTxn == nil {
		all(kerr.UnsupportedVersion.Code)
		done(resp)
		return
	}
	g := c.groups[req.Group]
	// v3+ names the member: a zombie member of an older generation is
	// fenced as OffsetCommit fences it (KIP-447).
	if req.Version >= 3 && req.Generation >= 0 && g != nil {
		var code int16
		switch {
		case g.cons != nil:
			code = checkConsumerMember(g.cons, req.MemberID, req.Generation)
		case g.state == CompletingRebalance:
			code = kerr.RebalanceInProgress.Code
		default:
			_, code = memberCheck(g, req.MemberID, req.InstanceID, req.Generation)
		}
		if code != 0 {
			all(code)
			done(resp)
			return
		}
	}
	var recs []batch.KV
	pending := txnOffsets{}
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
			if req.Version < 2 {
				o.LeaderEpoch = -1
			}
			tp := TP{Topic: rt.Topic, Partition: rp.Partition}
			recs = append(recs, batch.KV{Key: offsetKey(req.Group, tp.Topic, tp.Partition), Value: offsetValue(o)})
			pending.put(req.Group, tp, o)
		}
	}
	if len(recs) == 0 {
		done(resp)
		return
	}
	pid, epoch := req.ProducerID, req.ProducerEpoch
	c.cfg.WriteTxn(pid, epoch, recs, func(err error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		if err != nil {
			all(writeErrCode(err))
			done(resp)
			return
		}
		for group, tps := range pending {
			for tp, o := range tps {
				c.pendingFor(pid).put(group, tp, o)
			}
		}
		done(resp)
	})
}

func (c *Coordinator) pendingFor(pid int64) txnOffsets {
	if c.pending == nil {
		c.pending = map[int64]txnOffsets{}
	}
	if c.pending[pid] == nil {
		c.pending[pid] = txnOffsets{}
	}
	return c.pending[pid]
}

// ApplyTxn replays one record of producer pid's transactional batch: it is
// pending until the producer's marker.
func (c *Coordinator) ApplyTxn(pid int64, key, value []byte) error {
	var k kmsg.OffsetCommitKey
	if err := k.ReadFrom(key); err != nil || k.Version > 1 {
		return fmt.Errorf("group: transactional record is not an offset commit: %v", err)
	}
	var v kmsg.OffsetCommitValue
	if err := v.ReadFrom(value); err != nil {
		return fmt.Errorf("group: transactional offset value: %w", err)
	}
	o := Offset{Offset: v.Offset, LeaderEpoch: v.LeaderEpoch, Metadata: v.Metadata, CommitTime: time.UnixMilli(v.CommitTimestamp)}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.pendingFor(pid).put(k.Group, TP{Topic: k.Topic, Partition: k.Partition}, o)
	return nil
}

type txnMarker struct {
	pid    int64
	commit bool
}

// CompleteTxn applies producer pid's marker read by the replay: its
// pending offsets become the groups' (commit) or are dropped.
func (c *Coordinator) CompleteTxn(pid int64, commit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.completeTxnLocked(pid, commit)
}

// MarkerWritten applies producer pid's marker just committed on the
// partition; during the replay it waits until the replay is done (the
// transaction's offsets may not be replayed yet; the marker itself lies
// past what the replay reads).
func (c *Coordinator) MarkerWritten(pid int64, commit bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ready {
		c.markers = append(c.markers, txnMarker{pid, commit})
		return
	}
	c.completeTxnLocked(pid, commit)
}

func (c *Coordinator) completeTxnLocked(pid int64, commit bool) {
	pend := c.pending[pid]
	delete(c.pending, pid)
	if !commit {
		return
	}
	now := c.cfg.Now()
	for group, tps := range pend {
		g := c.groups[group]
		if g == nil {
			g = c.groupLocked(group, now)
		}
		for tp, o := range tps {
			g.offsets[tp] = o
		}
	}
}

// Unstable reports whether a transaction has offsets pending for any of
// group's partitions in topics (nil: any of the group's).
func (c *Coordinator) Unstable(group string, topics map[string][]int32) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, byGroup := range c.pending {
		tps := byGroup[group]
		if len(tps) == 0 {
			continue
		}
		if topics == nil {
			return true
		}
		for t, ps := range topics {
			for _, p := range ps {
				if _, ok := tps[TP{Topic: t, Partition: p}]; ok {
					return true
				}
			}
		}
	}
	return false
}
