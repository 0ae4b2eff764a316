package agent

// Retention and garbage collection run on the controller. Retention drops
// whole segment ranges from the front of each partition (retention.ms by
// the range's max timestamp, retention.bytes by the flushed bytes kept) by
// journaling a new log start; data still in the WAL is never dropped.
// Garbage collection deletes segment objects that no partition references
// any more, including uploads whose commit never happened, once they are
// older than a grace period (an upload is committed within moments, so the
// grace only has to outlast that).

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/tlog-io/tlog/metadata"
)

// controllerLoop runs fn every interval, and whenever kick (may be nil)
// fires, while this agent is the controller.
func (a *Agent) controllerLoop(interval time.Duration, kick <-chan struct{}, name string, fn func(context.Context) error) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-a.ctx.Done():
			return
		case <-t.C:
		case <-kick:
		}
		if !a.meta.IsController() {
			continue
		}
		if err := fn(a.ctx); err != nil && a.ctx.Err() == nil {
			a.log.Warn(name, "err", err)
		}
	}
}

func (a *Agent) retentionLoop() {
	a.controllerLoop(a.cfg.RetentionInterval, nil, "retention", func(ctx context.Context) error {
		if err := a.enforceRetention(ctx); err != nil {
			return err
		}
		return a.collectGarbage(ctx)
	})
}

func configInt(cfgs map[string]string, name string, def int64) int64 {
	if v, ok := cfgs[name]; ok {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil {
			return n
		}
	}
	return def
}

// enforceRetention journals new log starts for partitions whose oldest
// flushed ranges fall outside retention.
func (a *Agent) enforceRetention(ctx context.Context) error {
	st := a.meta.State()
	now := time.Now().UnixMilli()
	var cmds []metadata.Command
	for _, mt := range st.Topics {
		retMs := configInt(mt.Configs, "retention.ms", 7*24*3600*1000)
		retBytes := configInt(mt.Configs, "retention.bytes", -1)
		for i, mp := range mt.Partitions {
			segs := mp.Segments
			drop := 0
			if retMs >= 0 {
				for drop < len(segs) && segs[drop].MaxTimestamp < now-retMs {
					drop++
				}
			}
			if retBytes >= 0 {
				var kept int64
				for _, s := range segs[drop:] {
					kept += s.Length
				}
				for drop < len(segs) && kept > retBytes {
					kept -= segs[drop].Length
					drop++
				}
			}
			if drop == 0 {
				continue
			}
			start := segs[drop-1].LastOffset + 1
			if start <= mp.LogStart {
				continue
			}
			cmds = append(cmds, metadata.SetLogStart{TopicID: mt.ID, Partition: int32(i), Offset: start})
		}
	}
	for len(cmds) > 0 {
		n := min(len(cmds), 500)
		if _, err := a.propose(ctx, cmds[:n]...); err != nil {
			return fmt.Errorf("journal new log starts: %w", err)
		}
		a.stats.retained.Add(int64(n))
		cmds = cmds[n:]
	}
	return nil
}

// collectGarbage deletes data/ objects that no partition references and
// that are older than the grace period.
func (a *Agent) collectGarbage(ctx context.Context) error {
	objs, err := a.cfg.Bucket.List(ctx, "data/")
	if err != nil {
		return fmt.Errorf("list data/: %w", err)
	}
	// Read the state after listing: an object committed in between is then
	// seen as referenced.
	st := a.meta.State()
	referenced := map[string]bool{}
	for _, mt := range st.Topics {
		for _, mp := range mt.Partitions {
			for _, s := range mp.Segments {
				referenced[s.Object] = true
			}
		}
	}
	for _, o := range objs {
		if referenced[o.Key] || time.Since(o.Modified) < a.cfg.OrphanGrace {
			continue
		}
		if err := a.cfg.Bucket.Delete(ctx, o.Key); err != nil {
			return fmt.Errorf("delete %s: %w", o.Key, err)
		}
		a.stats.deletedObjects.Add(1)
		a.log.Debug("deleted unreferenced object", "object", o.Key, "bytes", o.Size)
	}
	return nil
}
