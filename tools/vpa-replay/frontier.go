package main

// The real VPA recommender's frontier on GenTD26: the closed loop of
// closedloop.go (VPA's updater and admission, as the simulator's VPA peer
// models them, each series alone on its own clock) with VPA's recommender
// run under other values of its own flags — --target-memory-percentile,
// --recommendation-margin-fraction, --memory-aggregation-interval (the
// window, interval × count, kept at 8 days) and
// --memory-histogram-decay-half-life — pooled over the series:
// memory over-provisioning against OOM kills per pod-day, as
// `heatscaler simulate --frontier` reports heatscaler's (docs/recommender.md).

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	recommender_config "k8s.io/autoscaler/vertical-pod-autoscaler/pkg/recommender/config"
)

// FrontierKnobs are the flags a point sets.
type FrontierKnobs struct {
	Percentile float64
	Margin     float64
	Interval   time.Duration
	HalfLife   time.Duration
}

// Apply sets the knobs on the recommender's configuration, as its flags would.
func (k FrontierKnobs) Apply(cfg *recommender_config.RecommenderConfig) {
	window := cfg.MemoryAggregationInterval * time.Duration(cfg.MemoryAggregationIntervalCount)
	cfg.TargetMemoryPercentile = k.Percentile
	cfg.TargetCPUPercentile = k.Percentile
	cfg.SafetyMarginFraction = k.Margin
	cfg.MemoryAggregationInterval = k.Interval
	cfg.MemoryAggregationIntervalCount = max(int64(window/k.Interval), 1)
	cfg.MemoryHistogramDecayHalfLife = k.HalfLife
}

func (k FrontierKnobs) String() string {
	return fmt.Sprintf("p%.2f m%.2f %s/%s", k.Percentile, k.Margin, short(k.Interval), short(k.HalfLife))
}

func short(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	return strings.TrimSuffix(s, "0m")
}

// FrontierPoint is one point's pooled totals.
type FrontierPoint struct {
	Knobs    FrontierKnobs
	Pooled   Pooled
	Default  bool
	Frontier bool
}

func (p FrontierPoint) dominates(q FrontierPoint) bool {
	a, b := p.Pooled.OverProvisioning(), q.Pooled.OverProvisioning()
	x, y := p.Pooled.PerPodDay(p.Pooled.OOMs), q.Pooled.PerPodDay(q.Pooled.OOMs)
	return a <= b && x <= y && (a < b || x < y)
}

// Frontier runs every knob combination over the series and marks the undominated points.
func (g GenTD26) Frontier(series []Series, knobs []FrontierKnobs) []FrontierPoint {
	def := recommender_config.DefaultRecommenderConfig()
	defaults := FrontierKnobs{def.TargetMemoryPercentile, def.SafetyMarginFraction, def.MemoryAggregationInterval, def.MemoryHistogramDecayHalfLife}
	points := make([]FrontierPoint, 0, len(knobs))
	for _, k := range knobs {
		run := g
		run.Flags = k.Apply
		var totals []Totals
		for _, s := range series {
			_, t := run.ClosedLoop(s, nil)
			totals = append(totals, t)
		}
		points = append(points, FrontierPoint{Knobs: k, Pooled: Pool(totals), Default: k == defaults})
	}
	for i := range points {
		points[i].Frontier = true
		for j := range points {
			if points[j].dominates(points[i]) {
				points[i].Frontier = false
				break
			}
		}
	}
	return points
}

// WriteFrontier prints the points sorted by over-provisioning (the same
// columns as `heatscaler simulate --frontier`).
func WriteFrontier(w io.Writer, points []FrontierPoint, all bool) {
	sorted := append([]FrontierPoint(nil), points...)
	sort.SliceStable(sorted, func(i, j int) bool {
		a, b := sorted[i].Pooled, sorted[j].Pooled
		if a.OverProvisioning() != b.OverProvisioning() {
			return a.OverProvisioning() < b.OverProvisioning()
		}
		return a.PerPodDay(a.OOMs) < b.PerPodDay(b.OOMs)
	})
	fmt.Fprintf(w, "%-11s %-24s %9s %9s %9s %9s  %s\n", "recommender", "knobs", "mem over", "OOM/pd", "evict/pd", "pod-days", "mark")
	for _, p := range sorted {
		if !all && !p.Frontier && !p.Default {
			continue
		}
		mark := ""
		switch {
		case p.Default && p.Frontier:
			mark = "default, frontier"
		case p.Default:
			mark = "default"
		case p.Frontier:
			mark = "frontier"
		}
		fmt.Fprintf(w, "%-11s %-24s %8.1f%% %9.3f %9.3f %9.1f  %s\n", "vpa-v1.8.1", p.Knobs, 100*p.Pooled.OverProvisioning(),
			p.Pooled.PerPodDay(p.Pooled.OOMs), p.Pooled.PerPodDay(p.Pooled.Evictions), p.Pooled.PodDays, mark)
	}
}

func floats(text string) ([]float64, error) {
	var out []float64
	for _, f := range strings.Split(text, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a number", f)
		}
		out = append(out, v)
	}
	return out, nil
}

func frontierMain(args []string) error {
	g := DefaultGenTD26()
	fs := flag.NewFlagSet("frontier", flag.ContinueOnError)
	fs.StringVar(&g.Containers, "containers", g.Containers, "all, even or odd (the last hex digit of the id), as simulate --containers")
	percentiles := fs.String("target-memory-percentile", "0.8,0.9,0.95", "comma-separated values of VPA's --target-memory-percentile (and --target-cpu-percentile)")
	margins := fs.String("recommendation-margin-fraction", "0,0.05,0.1,0.15,0.25", "comma-separated values of VPA's --recommendation-margin-fraction")
	histories := fs.String("history", "24h/24h,1h/4h", "comma-separated INTERVAL/HALF-LIFE pairs: VPA's --memory-aggregation-interval (the window kept at 8 days) and --memory-histogram-decay-half-life")
	all := fs.Bool("all", false, "print every point, not only the frontier and the default")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: vpa-replay frontier [flags] pod_memory_util_anon.csv[.gz]")
		fs.PrintDefaults()
	}
	if err := parseTraceArgs(fs, args, &g); err != nil {
		return err
	}
	ps, err := floats(*percentiles)
	if err != nil {
		return fmt.Errorf("-target-memory-percentile: %v", err)
	}
	ms, err := floats(*margins)
	if err != nil {
		return fmt.Errorf("-recommendation-margin-fraction: %v", err)
	}
	var knobs []FrontierKnobs
	for _, h := range strings.Split(*histories, ",") {
		parts := strings.Split(strings.TrimSpace(h), "/")
		if len(parts) != 2 {
			return fmt.Errorf("-history: %q is not INTERVAL/HALF-LIFE", h)
		}
		interval, err1 := time.ParseDuration(parts[0])
		halfLife, err2 := time.ParseDuration(parts[1])
		if err1 != nil || err2 != nil || interval <= 0 || halfLife <= 0 {
			return fmt.Errorf("-history: %q: durations such as 24h/24h expected", h)
		}
		for _, p := range ps {
			for _, m := range ms {
				knobs = append(knobs, FrontierKnobs{p, m, interval, halfLife})
			}
		}
	}
	read, err := g.Read(fs.Arg(0))
	if err != nil {
		return err
	}
	WriteFrontier(os.Stdout, g.Frontier(read.Series, knobs), *all)
	fmt.Fprintf(os.Stderr, "%s: %d series, %d points\n", fs.Arg(0), len(read.Series), len(knobs))
	return nil
}
