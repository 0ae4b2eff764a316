package agent_test

import (
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/tlog-io/tlog/agent"
)

// The oldest versions of the APIs tlog serves that Kafka 3.9 still serves,
// for the tools that send them: ApiVersions advertises them from 0, and an
// OffsetCommit v0/v1 is read back by OffsetFetch v0, OffsetForLeaderEpoch
// v0/v1 and DescribeLogDirs v0 answer as their newer versions do.
func TestOldRequestVersions(t *testing.T) {
	a := startAgent(t)
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "old", 1, nil)
	for range 3 {
		mustProduce(c, "old", 0, mkBatch(plainBatch(), "a", "b", "c"))
	}

	av := do[*kmsg.ApiVersionsResponse](c, 3, kmsg.NewPtrApiVersionsRequest())
	mins := map[int16]int16{}
	for _, k := range av.ApiKeys {
		mins[k.ApiKey] = k.MinVersion
	}
	for _, key := range []int16{2, 8, 9, 23, 35} { // ListOffsets, OffsetCommit, OffsetFetch, OffsetForLeaderEpoch, DescribeLogDirs
		if min, ok := mins[key]; !ok || min != 0 {
			t.Errorf("ApiVersions: key %d from v%d (advertised %v); want v0", key, min, ok)
		}
	}

	commit := func(v int16, group string, offset int64) int16 {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.Group, req.Generation = group, -1
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic = "old"
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset = 0, offset
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		return do[*kmsg.OffsetCommitResponse](c, v, req).Topics[0].Partitions[0].ErrorCode
	}
	fetch := func(v int16, group string) (int64, int16) {
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group = group
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = "old", []int32{0}
		req.Topics = append(req.Topics, rt)
		p := do[*kmsg.OffsetFetchResponse](c, v, req).Topics[0].Partitions[0]
		return p.Offset, p.ErrorCode
	}
	for _, tc := range []struct {
		v      int16
		offset int64
	}{{0, 5}, {1, 7}} {
		// Clients find the coordinator first (which creates the offsets
		// topic), and it may still be loading at first.
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorKey = "old-group"
		do[*kmsg.FindCoordinatorResponse](c, 0, fc)
		code := commit(tc.v, "old-group", tc.offset)
		for deadline := time.Now().Add(10 * time.Second); (code == kerr.CoordinatorNotAvailable.Code || code == kerr.CoordinatorLoadInProgress.Code) && time.Now().Before(deadline); {
			time.Sleep(50 * time.Millisecond)
			code = commit(tc.v, "old-group", tc.offset)
		}
		if code != 0 {
			t.Fatalf("OffsetCommit v%d: error %d", tc.v, code)
		}
		for _, fv := range []int16{0, 1, 5} {
			if off, code := fetch(fv, "old-group"); code != 0 || off != tc.offset {
				t.Fatalf("OffsetFetch v%d after a v%d commit of %d: offset %d, error %d", fv, tc.v, tc.offset, off, code)
			}
		}
	}

	for _, v := range []int16{0, 1, 2} {
		req := kmsg.NewPtrOffsetForLeaderEpochRequest()
		req.ReplicaID = -1
		rt := kmsg.NewOffsetForLeaderEpochRequestTopic()
		rt.Topic = "old"
		rp := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		rp.Partition, rp.LeaderEpoch = 0, 0
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		p := do[*kmsg.OffsetForLeaderEpochResponse](c, v, req).Topics[0].Partitions[0]
		wantEpoch := int32(0)
		if v == 0 {
			wantEpoch = -1 // not in v0's response: the decoder's default
		}
		if p.ErrorCode != 0 || p.EndOffset != 9 || p.LeaderEpoch != wantEpoch {
			t.Fatalf("OffsetForLeaderEpoch v%d: end %d, epoch %d, error %d; want end 9, epoch %d", v, p.EndOffset, p.LeaderEpoch, p.ErrorCode, wantEpoch)
		}
	}

	req := kmsg.NewPtrDescribeLogDirsRequest()
	dt := kmsg.NewDescribeLogDirsRequestTopic()
	dt.Topic, dt.Partitions = "old", []int32{0}
	req.Topics = append(req.Topics, dt)
	dirs := do[*kmsg.DescribeLogDirsResponse](c, 0, req)
	found := false
	for _, d := range dirs.Dirs {
		for _, dt := range d.Topics {
			found = found || dt.Topic == "old"
		}
	}
	if len(dirs.Dirs) == 0 || !found {
		t.Fatalf("DescribeLogDirs v0: %+v", dirs.Dirs)
	}
}

// ListOffsets -5 (v9+, KIP-1005) is the last offset in the bucket: -1
// while everything is in the WAL, then the last flushed offset; below v9
// it is not a timestamp the broker knows.
func TestListOffsetsLatestTiered(t *testing.T) {
	a := startAgent(t, func(c *agent.Config) {
		c.FlushInterval = time.Hour
		c.FlushBytes = 4096 // a larger produce asks for a flush
	})
	c := dialRaw(t, a.Addr())
	createTopic(t, c, "tiered", 1, nil)
	mustProduce(c, "tiered", 0, mkBatch(plainBatch(), "a", "b", "c"))
	if p := listOffsetV(c, 9, "tiered", 0, -5); p.ErrorCode != 0 || p.Offset != -1 || p.Timestamp != -1 || p.LeaderEpoch != -1 {
		t.Fatalf("nothing flushed: offset %d timestamp %d epoch %d code %d, want -1 -1 -1", p.Offset, p.Timestamp, p.LeaderEpoch, p.ErrorCode)
	}
	if p := listOffsetV(c, 8, "tiered", 0, -5); p.ErrorCode != kerr.UnsupportedVersion.Code {
		t.Fatalf("-5 at v8: code %d, want UNSUPPORTED_VERSION", p.ErrorCode)
	}
	mustProduce(c, "tiered", 0, mkBatch(plainBatch(), strings.Repeat("x", 8192), "e"))
	waitFlushed(t, a, "tiered", 1)
	if p := listOffsetV(c, 10, "tiered", 0, -5); p.ErrorCode != 0 || p.Offset != 4 {
		t.Fatalf("all flushed: offset %d code %d, want 4", p.Offset, p.ErrorCode)
	}
}
