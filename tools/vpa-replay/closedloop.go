package main

// The closed loop of the simulator's vpa-defaults peer on a GenTD26 series,
// with VPA's own recommender in the loop: after the peer's first eviction the
// simulator's samples depend on its recommendations (a replacement pod starts
// with the target as request and limit, and usage above the limit is an OOM
// kill), so the converter alone (gentd26.go) no longer says what the
// simulator feeds. This replays the peer's updater, admission and simulated
// kubelet as heatscaler 2188271 ran them — crates/sim/src/podlevel/run.rs
// `simulate` (Side::VpaDefaults), baseline.rs `evictions` and `admitted`,
// cluster.rs (create, oom_kill, up, down_within), metrics/oom.rs
// `OomTracker::observe`, report.rs `Meter`; podlevel is gone since the pod
// level runs in the simulator's one engine (docs/peers.md) — around the real
// recommender, and emits
//
//   - the rows the simulator would feed (usage, and OOM kills with the pod's
//     memory request), one pod name per replacement like the simulator's;
//   - VPA's recommendation at every tick (what the peer's updater would have
//     acted on had its recommender been VPA's);
//   - the run's totals in the terms of `heatscaler simulate --json` (the
//     `pod_workloads[].totals` of its run of policy ca-defaults, SimPolicy:
//     ooms, evictions, measured, down, memory_request, memory_usage,
//     memory_under), so `-check-sim` can hold them against a real simulator
//     run: equal totals mean the simulator took the same
//     decisions at the same ticks, i.e. its recommender gave the same
//     numbers as VPA's wherever they mattered, and the rows are exactly the
//     samples the simulator fed.

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// Peer updater constants (baseline.rs, VPA's updater flag defaults).
const (
	lifetimeThreshold  = 12 * time.Hour
	podUpdateThreshold = 0.1
	evictAfterOOM      = 10 * time.Minute
	oomObserveMaxAge   = 24 * time.Hour // the recommender's memory aggregation interval
)

// Totals are report.rs `Totals` of one workload under the peer.
type Totals struct {
	Workload      string  `json:"workload"`
	Measured      float64 `json:"measured"`
	MemoryRequest float64 `json:"memory_request"`
	MemoryUsage   float64 `json:"memory_usage"`
	MemoryUnder   float64 `json:"memory_under"`
	PodDays       float64 `json:"pod_days"`
	OOMs          int64   `json:"ooms"`
	Evictions     int64   `json:"evictions"`
	Down          float64 `json:"down"`
	Total         float64 `json:"total"`
}

type simPod struct {
	name           string
	created        time.Time
	request, limit int64 // memory bytes
	downSince      time.Time
	downUntil      time.Time // zero: never down
	started        time.Time
	lastOOM        time.Time // zero: none
	lastOOMAfter   time.Duration
	hasOOMAfter    bool
}

func (p *simPod) up(now time.Time) bool {
	return p.downUntil.IsZero() || !now.Before(p.downUntil)
}

func (p *simPod) downWithin(from, to time.Time) time.Duration {
	if p.downUntil.IsZero() && p.downSince.IsZero() {
		return 0
	}
	until, since := p.downUntil, p.downSince
	if to.Before(until) {
		until = to
	}
	if from.After(since) {
		since = from
	}
	if d := until.Sub(since); d > 0 {
		return d
	}
	return 0
}

// ClosedLoop runs one series under the peer with VPA's recommender.
func (g GenTD26) ClosedLoop(s Series, rec func(Recommendation)) ([]Row, Totals) {
	span := s.Samples[len(s.Samples)-1][0]
	duration := time.Duration(math.Round(span*1e9)) + g.Interval
	ticks := int64(math.Floor(duration.Seconds() / g.Interval.Seconds()))
	name := g.Name(s)
	template := int64(g.MemoryBytes) // request and limit of the workload's template
	r := NewReplayerWith([]corev1.ResourceName{corev1.ResourceMemory}, g.Flags)
	uid := 0
	create := func(now time.Time, restart time.Duration, request, limit int64) *simPod {
		uid++
		// Created pending, bound at once; the container starts after the restart delay.
		started := now.Add(restart)
		return &simPod{name: fmt.Sprintf("%s-%d", name, uid), created: now, request: request, limit: limit,
			downSince: now, downUntil: started, started: started}
	}
	pod := create(g.Epoch, 0, template, template) // the first pod starts at once (run.rs)
	tot := Totals{Workload: name, PodDays: duration.Seconds() / 86400, Total: duration.Seconds()}
	reported := map[string]time.Time{}
	var rows []Row
	dt := g.Interval.Seconds()
	for tick := int64(0); tick < ticks; tick++ {
		t := time.Duration(tick) * g.Interval
		now := g.Epoch.Add(t)
		tot.Down += pod.downWithin(now.Add(-g.Interval), now).Seconds()

		secs := t.Seconds()
		i := sort.Search(len(s.Samples), func(i int) bool { return s.Samples[i][0] > secs })
		if i > 0 {
			i--
		}
		used := s.Samples[i][1] * g.MemoryBytes
		if pod.up(now) {
			if pod.limit > 0 && used > float64(pod.limit) {
				// cluster.rs oom_kill: restarts with the same resources.
				pod.lastOOMAfter, pod.hasOOMAfter = now.Sub(pod.started), true
				pod.started = now.Add(g.Restart)
				pod.downSince, pod.downUntil = now, pod.started
				pod.lastOOM = now
				tot.OOMs++
			} else {
				tot.Measured += dt
				tot.MemoryRequest += float64(pod.request) * dt
				tot.MemoryUsage += used * dt
				if used > float64(pod.request) {
					tot.MemoryUnder += dt
				}
				row := Row{Container: name, Pod: pod.name, At: now, Kind: "usage", CPU: g.CPU, HasCPU: true, Memory: int64(used), HasMemory: true}
				rows = append(rows, row)
				r.Feed(row)
			}
		}
		// OomTracker::observe: each kill once, if not older than the aggregation interval.
		if !pod.lastOOM.IsZero() {
			if last, ok := reported[pod.name]; (!ok || last.Before(pod.lastOOM)) && now.Sub(pod.lastOOM) <= oomObserveMaxAge {
				row := Row{Container: name, Pod: pod.name, At: pod.lastOOM, Kind: "oom", Memory: pod.request, HasMemory: true}
				rows = append(rows, row)
				r.Feed(row)
			}
			reported = map[string]time.Time{pod.name: pod.lastOOM}
		} else {
			reported = map[string]time.Time{}
		}
		recommendation, ok := r.Recommend(name, now)
		if !ok {
			continue
		}
		if rec != nil {
			rec(recommendation)
		}
		// baseline.rs evictions: one replica, minReplicas 1, memory controlled.
		target := memory(recommendation.Target)
		if !pod.up(now) || target == 0 {
			continue
		}
		lower, upper := memory(recommendation.Lower), memory(recommendation.Upper)
		outside := pod.request == 0 || (lower > 0 && pod.request < lower) || (upper > 0 && pod.request > upper)
		diff := math.Abs(float64(pod.request-target)) / float64(max(pod.request, 1))
		quickOOM := pod.hasOOMAfter && pod.lastOOMAfter < evictAfterOOM
		if !outside && !quickOOM && (now.Sub(pod.created) < lifetimeThreshold || diff < podUpdateThreshold) {
			continue
		}
		if quickOOM && diff == 0 {
			continue
		}
		// Evicted; the admission controller gives the replacement the target,
		// the limit in proportion (the template's limit equals its request).
		tot.Evictions++
		pod = create(now, g.Restart, target, target)
	}
	return rows, tot
}

func memory(l corev1.ResourceList) int64 {
	q, ok := l[corev1.ResourceMemory]
	if !ok {
		return 0
	}
	return q.Value()
}

// SimPolicy is the run of `heatscaler simulate --json` whose VPA objects the
// VPA peer sizes: cluster-autoscaler's and VPA's defaults side by side.
const SimPolicy = "ca-defaults"

// SimTotals reads the per-workload totals of the VPA peer's run from
// `heatscaler simulate --json`: `runs[]` with `policy` SimPolicy, its
// `pod_workloads[].totals` (crates/sim/src/report.rs `Run`, `PodWorkload`,
// `PodTotals`). A report without that run, or whose run measured no VPA
// workload, is an error naming what is missing.
func SimTotals(path string) (map[string]Totals, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Runs []struct {
			Policy       string `json:"policy"`
			PodWorkloads []struct {
				Workload string `json:"workload"`
				Totals   Totals `json:"totals"`
			} `json:"pod_workloads"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %v", path, err)
	}
	var policies []string
	for _, run := range doc.Runs {
		if run.Policy != SimPolicy {
			policies = append(policies, run.Policy)
			continue
		}
		if len(run.PodWorkloads) == 0 {
			return nil, fmt.Errorf("%s: the %s run has no pod_workloads (no VPA workload was measured)", path, SimPolicy)
		}
		out := map[string]Totals{}
		for _, w := range run.PodWorkloads {
			t := w.Totals
			t.Workload = w.Workload
			out[w.Workload] = t
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s: no run of policy %s in runs[] (runs: %v); run simulate with --policy %s", path, SimPolicy, policies, SimPolicy)
}

// CheckTotals holds the loop's totals against the simulator's, per workload:
// counts equal, sums within a relative 1e-9. It returns the workloads only
// one side has (missing: not the same series) and one line per workload
// whose totals differ. Since the pod level runs in the simulator's one
// engine (the containers on the trace's clock, an autoscaled group,
// cluster-autoscaler's peer beside VPA's), this per-series loop is no longer
// the simulator's, and differences are expected; docs/peers.md.
func CheckTotals(mine []Totals, sim map[string]Totals) (missing, differ []string) {
	close := func(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(math.Abs(a), math.Abs(b)) }
	seen := map[string]bool{}
	for _, m := range mine {
		seen[m.Workload] = true
		s, ok := sim[m.Workload]
		if !ok {
			missing = append(missing, fmt.Sprintf("%s: not in the simulator's report", m.Workload))
			continue
		}
		if m.OOMs != s.OOMs || m.Evictions != s.Evictions || !close(m.Measured, s.Measured) || !close(m.Down, s.Down) ||
			!close(m.MemoryRequest, s.MemoryRequest) || !close(m.MemoryUsage, s.MemoryUsage) || !close(m.MemoryUnder, s.MemoryUnder) ||
			!close(m.Total, s.Total) {
			differ = append(differ, fmt.Sprintf("%s: VPA in the loop: %d OOM kills, %d evictions, request %.6g B·s, down %.0f s; simulator: %d, %d, %.6g B·s, %.0f s",
				m.Workload, m.OOMs, m.Evictions, m.MemoryRequest, m.Down, s.OOMs, s.Evictions, s.MemoryRequest, s.Down))
		}
	}
	var extra []string
	for w := range sim {
		if !seen[w] {
			extra = append(extra, fmt.Sprintf("%s: only in the simulator's report", w))
		}
	}
	sort.Strings(extra)
	return append(missing, extra...), differ
}

// Pooled is the sum of workloads' totals, with the simulator's ratios.
type Pooled struct{ Totals }

// Pool sums totals (docs/traces.md: the ratios of the sums).
func Pool(ts []Totals) Pooled {
	var p Pooled
	for _, t := range ts {
		p.Measured += t.Measured
		p.MemoryRequest += t.MemoryRequest
		p.MemoryUsage += t.MemoryUsage
		p.MemoryUnder += t.MemoryUnder
		p.PodDays += t.PodDays
		p.OOMs += t.OOMs
		p.Evictions += t.Evictions
		p.Down += t.Down
		p.Total += t.Total
	}
	return p
}

// OverProvisioning is (Σ request − Σ usage) / Σ usage over the serving time.
func (p Pooled) OverProvisioning() float64 {
	if p.MemoryUsage == 0 {
		return 0
	}
	return (p.MemoryRequest - p.MemoryUsage) / p.MemoryUsage
}

// PerPodDay is n per pod-day.
func (p Pooled) PerPodDay(n int64) float64 {
	if p.PodDays == 0 {
		return 0
	}
	return float64(n) / p.PodDays
}

func (p Pooled) String() string {
	return fmt.Sprintf("%.1f pod-days, memory over-provisioned %.1f%%, %.3f OOM kills and %.3f evictions per pod-day",
		p.PodDays, 100*p.OverProvisioning(), p.PerPodDay(p.OOMs), p.PerPodDay(p.Evictions))
}

func valuesOf(m map[string]Totals) []Totals {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make([]Totals, 0, len(m))
	for _, n := range names {
		out = append(out, m[n])
	}
	return out
}
