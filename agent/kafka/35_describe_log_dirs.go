package kafka

// DescribeLogDirs: v0-4
//
// An agent has two "log dirs" per partition it holds: "wal", its
// write-ahead log (size: the partition's bytes in it; offset lag: how far
// the local log end is behind the high watermark, 0 on a leader), and, for
// partitions it leads, "bucket" (size: the bytes of the partition's
// committed segment ranges; offset lag: records below the high watermark
// not flushed yet, so flushedEnd = HW - lag). tlog cluster status reads
// both. For compacted topics (cleanup.policy=compact) a leader also
// reports "compaction": size is the flushed bytes no key-compaction pass
// has covered yet (the dirty bytes; "bucket"'s size is the total, so
// their ratio is the dirty ratio), offset lag the records from the
// cleaned end to the flushed end (the cleaner's lag). tlog topic describe
// reads it. A null topic list describes every partition.
// With an authorizer: DESCRIBE on the cluster (CLUSTER_AUTHORIZATION_FAILED
// from v3, an empty answer before).
//
// Version notes:
// * v0: as v1
// * v1: ThrottleMillis semantics
// * v2: flexible versions
// * v3: top-level ErrorCode
// * v4: TotalBytes, UsableBytes (-1: unknown; a bucket has no fixed size)

import (
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent/topic"
	"github.com/tlog-io/tlog/metadata"
)

func init() { register(35, 0, 4, handleDescribeLogDirs) }

func handleDescribeLogDirs(s *Server, r *request) (reply, error) {
	req := r.kreq.(*kmsg.DescribeLogDirsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeLogDirsResponse)
	if !r.allowedCluster(metadata.OpDescribe) {
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return now(resp), nil
	}
	walDir := kmsg.NewDescribeLogDirsResponseDir()
	walDir.Dir = "wal"
	bucketDir := kmsg.NewDescribeLogDirsResponseDir()
	bucketDir.Dir = "bucket"
	compactionDir := kmsg.NewDescribeLogDirsResponseDir()
	compactionDir.Dir = "compaction"

	wanted := func(string, int32) bool { return true }
	if req.Topics != nil {
		want := map[string][]int32{}
		for _, rt := range req.Topics {
			want[rt.Topic] = append(want[rt.Topic], rt.Partitions...)
		}
		wanted = func(t string, p int32) bool { return slices.Contains(want[t], p) }
	}
	topics := s.b.Topics()
	slices.SortFunc(topics, func(x, y *topic.Topic) int {
		switch {
		case x.Name < y.Name:
			return -1
		case x.Name > y.Name:
			return 1
		}
		return 0
	})
	for _, t := range topics {
		wt := kmsg.NewDescribeLogDirsResponseDirTopic()
		wt.Topic = t.Name
		bt, ct := wt, wt
		for i, p := range t.Parts {
			mp := &t.Meta.Partitions[i]
			if !wanted(t.Name, int32(i)) || !slices.Contains(mp.Replicas, s.cfg.ID) {
				continue
			}
			o := p.Offsets()
			wp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
			wp.Partition = int32(i)
			wp.Size = p.WALBytes()
			wp.OffsetLag = max(0, o.HW-o.LEO)
			wt.Partitions = append(wt.Partitions, wp)
			if p.IsLeader() {
				bp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
				bp.Partition = int32(i)
				for _, s := range mp.Segments {
					bp.Size += s.Length
				}
				bp.OffsetLag = max(0, o.HW-max(o.FlushedEnd, mp.FlushedEnd))
				bt.Partitions = append(bt.Partitions, bp)
				if t.Compacted() {
					cp := kmsg.NewDescribeLogDirsResponseDirTopicPartition()
					cp.Partition = int32(i)
					cp.Size, _ = mp.DirtyBytes()
					cp.OffsetLag = max(0, mp.FlushedEnd-max(mp.CleanedEnd, mp.LogStart))
					ct.Partitions = append(ct.Partitions, cp)
				}
			}
		}
		if len(wt.Partitions) > 0 {
			walDir.Topics = append(walDir.Topics, wt)
		}
		if len(bt.Partitions) > 0 {
			bucketDir.Topics = append(bucketDir.Topics, bt)
		}
		if len(ct.Partitions) > 0 {
			compactionDir.Topics = append(compactionDir.Topics, ct)
		}
	}
	resp.Dirs = append(resp.Dirs, walDir, bucketDir)
	if len(compactionDir.Topics) > 0 {
		resp.Dirs = append(resp.Dirs, compactionDir)
	}
	return now(resp), nil
}
