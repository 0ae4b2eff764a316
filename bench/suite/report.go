package main

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

type results struct {
	Started  time.Time       `json:"started"`
	Took     time.Duration   `json:"took"`
	Commit   string          `json:"commit"`
	Machine  string          `json:"machine"`
	StealPct float64         `json:"steal_pct"`
	Options  options         `json:"-"`
	Runs     []measurement   `json:"runs"`
	Cold     coldResult      `json:"cold"`
	Retained retainedResult  `json:"retained"`
	Scale    scaleResult     `json:"scale"`
	Journal  []journalResult `json:"journal"`
}

// targetNames are the targets in the order they ran.
func (r *results) targetNames() []string {
	var names []string
	for _, m := range r.Runs {
		if !slices.Contains(names, m.Target) {
			names = append(names, m.Target)
		}
	}
	return names
}

func (r *results) of(target string) []measurement {
	var out []measurement
	for _, m := range r.Runs {
		if m.Target == target {
			out = append(out, m)
		}
	}
	return out
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := 0.0
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

func median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Sorted(slices.Values(xs))
	return s[len(s)/2]
}

func field(ms []measurement, f func(measurement) float64) []float64 {
	out := make([]float64, len(ms))
	for i, m := range ms {
		out[i] = f(m)
	}
	return out
}

func list(xs []float64, format string) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf(format, x)
	}
	return strings.Join(parts, ", ")
}

func peakRSS(m measurement) float64  { return slices.Max(append([]float64{0}, m.PeakRSS...)) }
func peakAnon(m measurement) float64 { return slices.Max(append([]float64{0}, m.PeakAnon...)) }

const (
	sectionBegin = "<!-- bench suite: begin (written by `task bench`; do not edit by hand) -->"
	sectionEnd   = "<!-- bench suite: end -->"
)

func (r *results) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	o := r.Options
	w("%s\n## The suite: tlog against kfake and NATS JetStream\n\n", sectionBegin)
	w("`task bench` (`cd bench/suite && go run . -repo ../..`), %s, commit %s, %s; it took %s. "+
		"CPU stolen by the hypervisor over the run: %.1f%%.\n\n",
		r.Started.Format("2006-01-02 15:04 UTC"), r.Commit, r.Machine, r.Took.Round(time.Second), r.StealPct)
	w("Workload, the same for every target, in %d interleaved rounds: %d records of 1 KiB random bytes produced "+
		"as fast as allowed (franz-go through `tlog bench`, 8 partitions, acks=all, idempotent, linger 5 ms; "+
		"for NATS, async publishes to 8 subjects of a file-storage stream, 10,000 in flight), read back from the "+
		"start (tlog: after 2 s, so from the bucket, the WAL trimmed), then %d records at %d a second with a "+
		"consumer reading (end-to-end latency). tlog runs on one MinIO on the same machine and disk. "+
		"kfake runs in the suite's process (no RSS of its own).\n\n", o.rounds, o.records, o.e2eRecords, o.e2eRate)
	names := r.targetNames()
	base := mean(field(r.of("kfake"), func(m measurement) float64 { return m.Produce }))
	baseRead := mean(field(r.of("kfake"), func(m measurement) float64 { return m.ReadBack }))
	w("| target | produce MiB/s | × kfake | read-back MiB/s | × kfake | e2e p50 / p99 ms | peak RSS MiB (anonymous) | steal %% |\n|---|---|---|---|---|---|---|---|\n")
	for _, n := range names {
		ms := r.of(n)
		prod := field(ms, func(m measurement) float64 { return m.Produce })
		read := field(ms, func(m measurement) float64 { return m.ReadBack })
		rss := "–"
		if len(ms[0].PeakRSS) > 0 {
			rss = list(field(ms, peakRSS), "%.0f") + " (" + list(field(ms, peakAnon), "%.0f") + ")"
			if len(ms[0].PeakRSS) > 1 {
				rss += " (largest agent)"
			}
		}
		w("| %s | %s | %.2f | %s | %.2f | %s / %s | %s | %s |\n", n, list(prod, "%.0f"), mean(prod)/base,
			list(read, "%.0f"), mean(read)/baseRead,
			list(field(ms, func(m measurement) float64 { return m.E2EP50 }), "%.1f"),
			list(field(ms, func(m measurement) float64 { return m.E2EP99 }), "%.1f"),
			rss, list(field(ms, func(m measurement) float64 { return m.StealPct }), "%.1f"))
	}
	c := r.Cold
	w("\nCold replay: %d records (%.2f GiB) produced into 16 partitions of `tlog dev` (%.0f MiB/s), the agent stopped "+
		"once the bucket stopped changing, its WAL deleted, restarted, and everything read from offset 0: %.2f s "+
		"(%.0f MiB/s). GETting the same %d objects (%.2f GiB) whole, 16 at a time, with minio-go: %.2f s "+
		"(%.0f MiB/s).\n\n", c.Records, float64(c.Records)/(1<<20), c.ProduceMiB, c.ReplaySec, c.ReplayMiB,
		c.Objects, float64(c.ObjectBytes)/(1<<30), c.RawSec, c.RawMiB)
	rt := r.Retained
	w("Retained data: two `tlog dev` agents side by side, one with %.2f GiB (%d× a produce run) already in its "+
		"bucket (produced, then left until the compactor had merged it: %.0f s, the last 45 of them with no change), one with none; "+
		"%d records produced into each in turn, %d times, the two taking turns to go first: %s MiB/s with the bucket "+
		"empty, %s MiB/s with it full (the goal compares medians).\n\n", float64(rt.RetainedBytes)/(1<<30), o.fill, rt.CompactedSec,
		o.records, retainedRounds, list(rt.Empty, "%.0f"), list(rt.Full, "%.0f"))
	sc := r.Scale
	w("Memory at scale: `tlog dev` with %d idle Kafka connections open (each past ApiVersions) and %d records "+
		"produced into a topic of %d partitions (%.0f MiB/s): resident %.0f MiB started, %.0f MiB with the "+
		"connections open (%.0f KiB a connection), %.0f MiB at peak during the produce, of it %.0f MiB "+
		"anonymous (the default soft memory limit: %.0f MiB).\n\n", sc.Connections, o.records, sc.Partitions,
		sc.ProduceMiB, sc.RSSIdle, sc.RSSConnected, (sc.RSSConnected-sc.RSSIdle)*1024/float64(max(sc.Connections, 1)),
		sc.PeakRSS, sc.PeakAnon, sc.LimitMiB)
	w("Metadata journal (`BenchmarkJournalCommits`, flush commits of N simulated agents every 250 ms over a " +
		"bucket charging PUT 20 ms, HEAD 10 ms):\n\n| agents | commits/s | journal PUT/s | commit p50 / p99 |\n|---|---|---|---|\n")
	for _, j := range r.Journal {
		w("| %d | %.0f | %.1f | %.0f / %.0f ms |\n", j.Agents, j.CommitsSec, j.PutsSec, j.P50Ms, j.P99Ms)
	}

	// The goals, as ratios of this run.
	dev := r.of("tlog dev, wal-sync never")
	always := r.of("tlog dev, wal-sync always")
	rf3 := r.of("tlog, 3 agents, RF=3")
	prodDev := mean(field(dev, func(m measurement) float64 { return m.Produce }))
	w("\n### Goals\n\n| goal | this run | target | |\n|---|---|---|---|\n")
	goal := func(name, value, target string, met bool) {
		mark := "not met"
		if met {
			mark = "met"
		}
		w("| %s | %s | %s | %s |\n", name, value, target, mark)
	}
	x := prodDev / base
	goal("produce, tlog dev (never) / kfake", fmt.Sprintf("%.2f×", x), "≥ 1.0×", x >= 1)
	x = mean(field(always, func(m measurement) float64 { return m.Produce })) / prodDev
	goal("produce, wal-sync always / never", fmt.Sprintf("%.2f×", x), "≥ 0.8×", x >= 0.8)
	x = mean(field(dev, func(m measurement) float64 { return m.ReadBack })) / baseRead
	goal("read-back of flushed data, tlog dev / kfake", fmt.Sprintf("%.2f×", x), "≥ 0.9×", x >= 0.9)
	x = c.RawSec / c.ReplaySec
	goal("cold replay of 1 GiB / raw GET of the same objects (time)", fmt.Sprintf("%.2f×", x), "≥ 0.7×", x >= 0.7)
	x = mean(field(rf3, func(m measurement) float64 { return m.Produce })) / prodDev
	goal("produce, RF=3 on 3 agents / RF=1 (tlog dev)", fmt.Sprintf("%.2f×", x), "≥ 0.55×", x >= 0.55)
	p99 := slices.Max(field(rf3, func(m measurement) float64 { return m.E2EP99 }))
	goal("e2e p99 at 2,000 rec/s, RF=3", fmt.Sprintf("%.1f ms (worst round)", p99), "≤ 10 ms", p99 <= 10)
	rss := slices.Max(field(dev, peakRSS)) - dev[0].CacheMiB
	goal("peak RSS of tlog dev under produce and read-back, minus the range cache (256 MiB)", fmt.Sprintf("%.0f MiB", rss), "≤ 128 MiB", rss <= 128)
	anon := slices.Max(field(dev, peakAnon)) - dev[0].CacheMiB
	goal("the same, anonymous memory only (without file-backed pages: the binary's, and a Badger WAL's mapped value log)", fmt.Sprintf("%.0f MiB", anon), "≤ 128 MiB", anon <= 128)
	goal(fmt.Sprintf("anonymous memory, %d partitions and %d connections, within the default limit", sc.Partitions, sc.Connections),
		fmt.Sprintf("%.0f MiB", sc.PeakAnon), fmt.Sprintf("≤ %.0f MiB", sc.LimitMiB), sc.PeakAnon <= sc.LimitMiB)
	x = median(rt.Full) / median(rt.Empty)
	goal(fmt.Sprintf("produce with %d× data retained / empty", o.fill), fmt.Sprintf("%.2f×", x), "≥ 0.95× (within 5%)", x >= 0.95)
	worst := 0.0
	for _, j := range r.Journal {
		worst = max(worst, j.PutsSec)
	}
	goal("journal writes a second, 100 and 1,000 agents", fmt.Sprintf("%.1f", worst), "≤ 10", worst <= 10)
	w("\n![throughput](bench/throughput.svg)\n![end-to-end latency](bench/latency.svg)\n![RSS over time](bench/rss.svg)\n%s\n", sectionEnd)
	return b.String()
}

// writeSection puts md into path between the suite's markers, replacing
// what is there, or before the first second-level heading.
func writeSection(path, md string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	s := string(b)
	if i, j := strings.Index(s, sectionBegin), strings.Index(s, sectionEnd); i >= 0 && j > i {
		s = s[:i] + strings.TrimSuffix(md, "\n") + s[j+len(sectionEnd):]
	} else if i := strings.Index(s, "\n## "); i >= 0 {
		s = s[:i+1] + md + "\n" + s[i+1:]
	} else {
		s += "\n" + md
	}
	return os.WriteFile(path, []byte(s), 0o644)
}

func (r *results) charts(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	names := r.targetNames()
	// Throughput: produce and read-back bars per target (mean of rounds).
	p := plot.New()
	p.Title.Text = "Throughput, 1 KiB records (mean of rounds)"
	p.Y.Label.Text = "MiB/s"
	var prod, read plotter.Values
	for _, n := range names {
		ms := r.of(n)
		prod = append(prod, mean(field(ms, func(m measurement) float64 { return m.Produce })))
		read = append(read, mean(field(ms, func(m measurement) float64 { return m.ReadBack })))
	}
	width := vg.Points(18)
	bp, err := plotter.NewBarChart(prod, width)
	if err != nil {
		return err
	}
	bp.Color, bp.Offset = plotutil.Color(0), -width/2
	br, err := plotter.NewBarChart(read, width)
	if err != nil {
		return err
	}
	br.Color, br.Offset = plotutil.Color(1), width/2
	p.Add(bp, br)
	p.Legend.Add("produce", bp)
	p.Legend.Add("read-back", br)
	p.Legend.Top = true
	short := make([]string, len(names))
	for i, n := range names {
		short[i] = strings.NewReplacer("tlog dev, wal-sync ", "dev ", "NATS JetStream ", "NATS ", "tlog, 3 agents, ", "tlog ").Replace(n)
	}
	p.NominalX(short...)
	p.Y.Min, p.Y.Max = 0, 1.3*max(slices.Max(prod), slices.Max(read)) // room for the legend above the bars
	if err := p.Save(9*vg.Inch, 4*vg.Inch, filepath.Join(dir, "throughput.svg")); err != nil {
		return err
	}

	// End-to-end latency against the quantile, on a nines scale.
	p = plot.New()
	p.Title.Text = fmt.Sprintf("End-to-end latency at %d records/s (first round)", r.Options.e2eRate)
	p.X.Label.Text = "quantile (nines: 1 = p90, 2 = p99, 3 = p99.9)"
	p.Y.Label.Text = "ms"
	p.Y.Scale, p.Y.Tick.Marker = plot.LogScale{}, plot.LogTicks{Prec: -1}
	for i, n := range names {
		ms := r.of(n)
		var pts plotter.XYs
		for _, c := range ms[0].Curve {
			if c[0] < 1 && c[1] > 0 {
				pts = append(pts, plotter.XY{X: -math.Log10(1 - c[0]), Y: c[1]})
			}
		}
		if len(pts) == 0 {
			continue
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		l.Dashes = plotutil.Dashes(i)
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(short[i], l)
	}
	p.Legend.Top, p.Legend.Left = true, true
	if err := p.Save(9*vg.Inch, 4.5*vg.Inch, filepath.Join(dir, "latency.svg")); err != nil {
		return err
	}

	// RSS over the first round of every target with processes of its own.
	p = plot.New()
	p.Title.Text = "Resident memory over the run (first round; clusters summed)"
	p.X.Label.Text = "s"
	p.Y.Label.Text = "MiB"
	for i, n := range names {
		ms := r.of(n)
		if len(ms[0].RSS) == 0 {
			continue
		}
		pts := make(plotter.XYs, len(ms[0].RSS))
		for j, s := range ms[0].RSS {
			pts[j] = plotter.XY{X: s.T, Y: s.MiB}
		}
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = plotutil.Color(i)
		l.Width = vg.Points(1.5)
		p.Add(l)
		p.Legend.Add(short[i], l)
	}
	p.Add(plotter.NewGrid())
	p.Legend.Top = true
	return p.Save(9*vg.Inch, 4*vg.Inch, filepath.Join(dir, "rss.svg"))
}
