package agent

// A replica whose log starts at the flushed end without the batches
// before it (a follower restarted there, a new replica, an agent whose WAL
// was lost) has no idempotent-producer state for what it never held. Each
// partition's entry in a segment footer carries that state as of the end
// of its range, so the replica loads it from the newest segment that ends
// where its log starts: a retry of a batch that is only in the bucket is
// then still answered as a duplicate.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/tlog-io/tlog/agent/partition"
	"github.com/tlog-io/tlog/agent/tiering"
	"github.com/tlog-io/tlog/agent/topic"
)

// maybeRestoreProducers starts loading producer state for p if it lacks
// it (once at a time per partition). It keeps at it until the state is
// there: where the log starts without it can move meanwhile (a flush or
// the log start passing it drops the batches it would replay, so the
// state must come from a later footer), and it then loads from there.
func (a *Agent) maybeRestoreProducers(t *topic.Topic, idx int32, p *partition.Partition) {
	if _, missing := p.ProducersMissing(); !missing {
		return
	}
	if _, busy := a.restoring.LoadOrStore(p.Key(), true); busy {
		return
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		defer a.restoring.Delete(p.Key())
		// Until it is loaded the partition refuses idempotent batches, so
		// keep trying (the bucket may be down).
		backoff := 100 * time.Millisecond
		for {
			at, missing := p.ProducersMissing()
			if !missing || a.ctx.Err() != nil || t.Parts[idx] != p {
				return
			}
			err := a.restoreProducers(t, idx, p, at)
			if err == nil {
				backoff = 100 * time.Millisecond
				continue // loaded, or the missing point moved: look again
			}
			lvl := slog.LevelWarn
			if errors.Is(err, errMetadataBehind) {
				lvl = slog.LevelDebug // the commit is on its way
			}
			a.log.Log(a.ctx, lvl, "load producer state from the bucket", "topic", t.Name, "partition", idx, "at", at, "err", err, "retry_in", backoff)
			select {
			case <-a.ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}()
}

// errMetadataBehind: this agent has not applied the commit a replica's log
// start depends on yet.
var errMetadataBehind = errors.New("metadata behind")

// restoreProducers reads the footer of the newest segments below at
// (walking back past any that carry none: a range with no idempotent
// producers, or one compacted before compaction kept snapshots) and adopts
// the first producer snapshot found.
func (a *Agent) restoreProducers(t *topic.Topic, idx int32, p *partition.Partition, at int64) error {
	mp, ok := a.meta.State().Partition(t.ID, idx)
	if !ok {
		return fmt.Errorf("%w: partition not in metadata", errMetadataBehind)
	}
	if mp.FlushedEnd < at && mp.LogStart < at {
		// This agent's metadata has not seen the commit that put at in
		// the bucket: the newest footer it knows would leave out the
		// producers' batches in between (or there would be none, and
		// every sequence would pass), so wait for it.
		a.meta.Poke()
		return fmt.Errorf("%w: flushed end %d, log starts without producer state at %d", errMetadataBehind, mp.FlushedEnd, at)
	}
	ctx, cancel := context.WithTimeout(a.ctx, 30*time.Second)
	defer cancel()
	tried := 0
	for i := len(mp.Segments) - 1; i >= 0 && tried < 4; i-- {
		ref := mp.Segments[i]
		if ref.LastOffset >= at {
			continue
		}
		tried++
		snap, err := tiering.ProducerSnapshotOf(ctx, a.cfg.Bucket, t.ID, idx, ref)
		if err != nil {
			return err
		}
		if len(snap) == 0 {
			continue
		}
		if err := p.AdoptProducers(snap, at); err != nil {
			return err
		}
		a.log.Debug("producer state loaded from a segment footer", "topic", t.Name, "partition", idx, "object", ref.Object)
		return nil
	}
	// Nothing to load (no segment, or only compacted ones): the producers
	// start fresh, as after Kafka's producer-state expiry.
	return p.AdoptProducers(nil, at)
}
