package partition_test

import (
	"sync"
	"testing"
	"time"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/tier/batch"
)

// More concurrent appends than the WAL queue holds, with nobody waiting for
// completion (acks=0): every append must complete. Before WAL slots were
// reserved outside the partition lock, the writer's callback and a blocked
// queue send deadlocked here.
func TestAppendFloodBeyondWALQueue(t *testing.T) {
	f := newFixture(t, partition.Config{Topic: "flood"})
	const writers, each = 8, 20000 // 160,000 appends, WAL queue 4,096
	var wg sync.WaitGroup
	var done sync.WaitGroup
	done.Add(writers * each)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				b := mkBatch(bopts{pid: -1, epoch: -1, seq: -1, ts: 1}, 1)
				h, err := batch.ParseHeader(b)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := f.p.Append(b, h, -1, func(error) { done.Done() }); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); done.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(2 * time.Minute):
		t.Fatal("appends did not complete: deadlock between the WAL queue and the partition lock")
	}
	if o := f.p.Offsets(); o.HW != writers*each {
		t.Fatalf("HW %d after %d one-record appends", o.HW, writers*each)
	}
}
