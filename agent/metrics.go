package agent

// Metrics live on a registry of the agent's own, not the global one, so
// that several agents in one process (tests) each report their own. Most
// series are read at scrape time from counters the agent keeps anyway
// (Stats, the WAL's and the cache's stats); only latencies and per-request
// counts are recorded where they happen. The metric names are listed in
// docs/architecture.md ("Observability").

import (
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// observer holds the agent's registry, the metrics recorded at call sites,
// and the admin listener (admin.go). Its methods accept a nil receiver.
type observer struct {
	reg *prometheus.Registry

	flushSeconds  prometheus.Histogram
	flushFailures prometheus.Counter

	admin adminServer
}

func newObserver() *observer {
	o := &observer{reg: prometheus.NewRegistry()}
	f := promauto.With(o.reg)
	o.flushSeconds = f.NewHistogram(prometheus.HistogramOpts{
		Name: "tlog_flush_duration_seconds",
		Help: "Time to upload one segment object and commit it in the metadata journal.",
		// 1 ms to 16 s.
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 15),
	})
	o.flushFailures = f.NewCounter(prometheus.CounterOpts{
		Name: "tlog_flush_failures_total",
		Help: "Flushes that failed (upload or commit) and will be retried; the data stays in the WAL.",
	})
	o.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return o
}

// flushed records one committed segment's upload+commit time.
func (o *observer) flushed(d time.Duration) {
	if o == nil {
		return
	}
	o.flushSeconds.Observe(d.Seconds())
}

// flushFailed counts a failed flush.
func (o *observer) flushFailed() {
	if o == nil {
		return
	}
	o.flushFailures.Inc()
}

// agentCollector reads the agent's own counters at scrape time. It is
// registered once the WAL is open and replayed (markRecovered), so it never
// sees a half-built agent.
type agentCollector struct{ a *Agent }

func desc(name, help string) *prometheus.Desc { return prometheus.NewDesc(name, help, nil, nil) }

var (
	descWALUnflushed        = desc("tlog_wal_unflushed_bytes", "Bytes held in the WAL that are not yet in the bucket.")
	descWALGroups           = desc("tlog_wal_group_commits_total", "WAL group commits (one Badger write batch each).")
	descWALSyncs            = desc("tlog_wal_fsyncs_total", "WAL fsyncs (--wal-sync=always: one per group commit).")
	descWALBytes            = desc("tlog_wal_written_bytes_total", "Record batch bytes written to the WAL.")
	descWALBatches          = desc("tlog_wal_batches_total", "Record batches written to the WAL.")
	descFlushSegments       = desc("tlog_flush_segments_total", "Segment objects uploaded and committed by the flusher.")
	descFlushBytes          = desc("tlog_flush_bytes_total", "Bytes of the segment objects committed by the flusher.")
	descCompactions         = desc("tlog_compactions_total", "Runs of small ranges merged into one object by the compactor.")
	descKeyCompactions      = desc("tlog_key_compactions_total", "Key-compaction passes over compacted topics' partitions (cleanup.policy=compact).")
	descKeyCompacted        = desc("tlog_key_compacted_bytes_total", "Bytes key compaction removed from the bucket's ranges.")
	descKeyCompactedRecords = desc("tlog_key_compacted_records_total", "Records key compaction removed: superseded values, expired tombstones, aborted records, COMMIT markers.")
	descLogStartMoves       = desc("tlog_retention_log_start_moves_total", "Partition log starts moved forward by retention.")
	descDeletedObjects      = desc("tlog_retention_deleted_objects_total", "Unreferenced bucket objects deleted by garbage collection.")
	descCacheHits           = desc("tlog_cache_hits_total", "Segment range reads served from the range cache.")
	descCacheMisses         = desc("tlog_cache_misses_total", "Segment range reads that needed a ranged GET.")
	descCachePrefetch       = desc("tlog_cache_prefetches_total", "Ranges read ahead: for sequential consumers, and for each partition a fetch names before it is read.")
	descCacheEvictions      = desc("tlog_cache_evictions_total", "Ranges evicted from the range cache.")
	descCacheBytes          = desc("tlog_cache_bytes", "Bytes held in the range cache.")
	descPartitionsLed       = desc("tlog_partitions_led", "Partitions this agent leads.")
	descController          = desc("tlog_controller", "1 while this agent holds the controller lease, else 0.")

	descDirtyRatio = prometheus.NewDesc("tlog_compaction_dirty_ratio",
		"Share of a compacted partition's bucket bytes no key-compaction pass has covered yet (partitions this agent leads).",
		[]string{"topic", "partition"}, nil)
	descCleanerLag = prometheus.NewDesc("tlog_compaction_cleaner_lag_records",
		"Records of a compacted partition flushed after the key compactor's last pass (partitions this agent leads).",
		[]string{"topic", "partition"}, nil)
)

func (c agentCollector) Describe(ch chan<- *prometheus.Desc) {
	prometheus.DescribeByCollect(c, ch)
}

func (c agentCollector) Collect(ch chan<- prometheus.Metric) {
	a := c.a
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	st := a.Stats()
	gauge(descWALUnflushed, st.UnflushedBytes)
	counter(descFlushSegments, st.Flushes)
	counter(descFlushBytes, st.FlushedBytes)
	counter(descCompactions, st.Compactions)
	counter(descKeyCompactions, st.KeyCompactions)
	counter(descKeyCompacted, st.KeyCompactedBytes)
	counter(descKeyCompactedRecords, st.KeyCompactedRecords)
	counter(descLogStartMoves, st.LogStartMoves)
	counter(descDeletedObjects, st.DeletedObjects)

	ws := a.wal.Stats()
	counter(descWALGroups, ws.Groups)
	counter(descWALSyncs, ws.Syncs)
	counter(descWALBytes, ws.Bytes)
	counter(descWALBatches, ws.Batches)

	cs := a.cache.Stats()
	counter(descCacheHits, cs.Hits)
	counter(descCacheMisses, cs.Misses)
	counter(descCachePrefetch, cs.Prefetches)
	counter(descCacheEvictions, cs.Evictions)
	gauge(descCacheBytes, cs.Bytes)

	var led int64
	a.mu.RLock()
	for _, t := range a.topics {
		for i, p := range t.Parts {
			if !p.IsLeader() {
				continue
			}
			led++
			if t.Compacted() && t.Meta != nil && i < len(t.Meta.Partitions) {
				mp := t.Meta.Partitions[i]
				dirty, total := mp.DirtyBytes()
				ratio := 0.0
				if total > 0 {
					ratio = float64(dirty) / float64(total)
				}
				idx := strconv.Itoa(i)
				ch <- prometheus.MustNewConstMetric(descDirtyRatio, prometheus.GaugeValue, ratio, t.Name, idx)
				ch <- prometheus.MustNewConstMetric(descCleanerLag, prometheus.GaugeValue,
					float64(max(0, mp.FlushedEnd-max(mp.CleanedEnd, mp.LogStart))), t.Name, idx)
			}
		}
	}
	a.mu.RUnlock()
	gauge(descPartitionsLed, led)
	var ctl int64
	if a.meta.IsController() {
		ctl = 1
	}
	gauge(descController, ctl)
}
