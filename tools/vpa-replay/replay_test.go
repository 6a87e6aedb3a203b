package main

import (
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// VPA's memory histogram (aggregations_config.go): first bucket 1e7 bytes,
// each 5 % wider. The end of the bucket holding v is what a percentile reports.
func memoryBucketEnd(v float64) int64 {
	const first, ratio = 1e7, 1.05
	i := math.Floor(math.Log(v*(ratio-1)/first+1) / math.Log(ratio))
	return int64(first * (math.Pow(ratio, i+1) - 1) / (ratio - 1))
}

func withMargin(a int64) int64 { return a + int64(float64(a)*0.15) }

func replayText(t *testing.T, input string, every time.Duration) []Recommendation {
	t.Helper()
	rows, err := ReadRows(strings.NewReader(input), "test.csv")
	if err != nil {
		t.Fatal(err)
	}
	r := NewReplayer(nil)
	var out []Recommendation
	if err := r.Replay(rows, Instants(rows, time.Time{}, every, nil), func(rec Recommendation) error {
		out = append(out, rec)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if r.Discarded != 0 || r.OOMsRefused != 0 {
		t.Fatalf("discarded %d, OOMs refused %d: %v", r.Discarded, r.OOMsRefused, r.Problems)
	}
	return out
}

func cpuMilli(l corev1.ResourceList) int64 { q := l[corev1.ResourceCPU]; return q.MilliValue() }

// minutes of usage rows for one container, one a minute from 00:01.
func usageRows(b *strings.Builder, container string, from, to int, cpu string, mem int64) {
	for m := from; m <= to; m++ {
		b.WriteString(container + ",," + time.Date(2024, 1, 1, 0, m, 0, 0, time.UTC).Format(time.RFC3339) + ",usage," + cpu + "," +
			itoa(mem) + "\n")
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func TestDefaultsTargetAndBounds(t *testing.T) {
	var b strings.Builder
	b.WriteString("container,pod,timestamp,kind,cpu_cores,memory_bytes\n")
	const gib = 1 << 30
	usageRows(&b, "w", 1, 120, "0.5", gib)
	recs := replayText(t, b.String(), time.Hour)
	last := recs[len(recs)-1]
	if last.At != time.Date(2024, 1, 1, 2, 0, 0, 0, time.UTC) || last.Samples != 120 {
		t.Fatalf("last recommendation at %v with %d samples", last.At, last.Samples)
	}
	// One memory peak: every percentile is the end of its bucket; target = that + 15 %.
	if got, want := memory(last.Target), withMargin(memoryBucketEnd(gib)); got != want {
		t.Errorf("memory target %d, want %d", got, want)
	}
	// Confidence after 119 minutes: min(119 min / 24 h, 120 / 1440).
	c := math.Min(119.0/1440, 120.0/1440)
	if got, want := memory(last.Upper), int64(float64(withMargin(memoryBucketEnd(gib)))*(1+1/c)); got != want {
		t.Errorf("memory upper bound %d, want %d", got, want)
	}
	if got, want := memory(last.Lower), int64(float64(withMargin(memoryBucketEnd(gib)))*math.Pow(1+0.001/c, -2)); got != want {
		t.Errorf("memory lower bound %d, want %d", got, want)
	}
	if got := cpuMilli(last.Target); got != 587 { // end of the bucket of 0.5 core, + 15 %
		t.Errorf("cpu target %dm, want 587m", got)
	}
	// The first instant is the first sample: no history, so no upper limit.
	if got := memory(recs[0].Upper); got != 1e14 {
		t.Errorf("upper bound with no history %d, want MaxResourceAmount", got)
	}
}

func TestMinimumAndOOMBump(t *testing.T) {
	var b strings.Builder
	b.WriteString("container,pod,timestamp,kind,cpu_cores,memory_bytes\n")
	usageRows(&b, "small", 1, 60, "0.001", 1e6)
	const gib = 1 << 30
	usageRows(&b, "oom", 1, 60, "0.5", gib)
	// Killed with a 2 GiB request: VPA feeds max(2Gi + 100Mi, 2Gi × 1.2) as this interval's peak.
	b.WriteString("oom,,2024-01-01T00:30:30Z,oom,,2147483648\n")
	recs := replayText(t, b.String(), time.Hour)
	got := map[string]Recommendation{}
	for _, r := range recs {
		got[r.Container] = r
	}
	if m := memory(got["small"].Target); m != 250*1024*1024 {
		t.Errorf("small container's memory target %d, want the 250Mi pod minimum", m)
	}
	if c := cpuMilli(got["small"].Target); c != 25 {
		t.Errorf("small container's cpu target %dm, want the 25m pod minimum", c)
	}
	used := float64(2 * gib)
	want := withMargin(memoryBucketEnd(float64(int64(used * 1.2))))
	if m := memory(got["oom"].Target); m != want {
		t.Errorf("memory target after an OOM kill %d, want %d", m, want)
	}
}

func TestPeaksPerPodAndInterval(t *testing.T) {
	// Three pods of one container in sequence (evictions): each adds its own
	// peak, stamped at the end of its own aggregation interval, so later
	// peaks weigh a little more (decay). Two low peaks and a high one: the
	// 50th percentile sits on the low ones, the 90th on the high one.
	var b strings.Builder
	b.WriteString("container,pod,timestamp,kind,cpu_cores,memory_bytes\n")
	for m := 1; m <= 120; m++ {
		pod, mem := "p1", "1000000000"
		if m > 40 {
			pod = "p2"
		}
		if m > 80 {
			pod, mem = "p3", "3000000000"
		}
		b.WriteString("w," + pod + "," + time.Date(2024, 1, 1, 0, m, 0, 0, time.UTC).Format(time.RFC3339) + ",usage,0.5," + mem + "\n")
	}
	recs := replayText(t, b.String(), time.Hour)
	last := recs[len(recs)-1]
	if got, want := memory(last.Target), withMargin(memoryBucketEnd(3e9)); got != want {
		t.Errorf("target %d, want %d", got, want)
	}
	c := 119.0 / 1440
	if got, want := memory(last.Lower), int64(float64(withMargin(memoryBucketEnd(1e9)))*math.Pow(1+0.001/c, -2)); got != want {
		t.Errorf("lower bound %d, want %d (the low peaks)", got, want)
	}
}

func TestRowsAreSortedAndValidated(t *testing.T) {
	rows, err := ReadRows(strings.NewReader("container,timestamp,kind,memory_bytes\n"+
		"a,1704067320,usage,5\n"+ // epoch seconds
		"a,2024-01-01T00:01:00Z,usage,4\n"+
		"a,2024-01-01T00:01:00Z,oom,7\n"), "t.csv")
	if err != nil {
		t.Fatal(err)
	}
	if rows[0].Memory != 4 || rows[1].Kind != "oom" || rows[2].Memory != 5 {
		t.Errorf("not in time order, equal times in file order: %+v", rows)
	}
	for _, bad := range []string{
		"container,timestamp,kind,memory_bytes\na,yesterday,usage,1\n",
		"container,timestamp,kind,memory_bytes\na,0,sample,1\n",
		"container,timestamp,kind,cpu_cores\na,0,oom,1\n",
		"container,kind,memory_bytes\na,usage,1\n",
	} {
		if _, err := ReadRows(strings.NewReader(bad), "bad.csv"); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestCompare(t *testing.T) {
	at := time.Date(2024, 1, 1, 1, 0, 0, 0, time.UTC)
	vpa := []Point{{Container: "a", At: at, Values: map[string]int64{"memory_target": 100, "memory_upper": 200}}}
	peer := []Point{{Container: "a", At: at, Values: map[string]int64{"memory_target": 104, "memory_upper": 150}}}
	s, diffs, joined, missing := Compare(vpa, peer, 0.05, nil)
	if joined != 1 || missing != 0 || len(diffs) != 2 || len(s) != 2 {
		t.Fatalf("joined %d missing %d diffs %d summaries %d", joined, missing, len(diffs), len(s))
	}
	if s[0].Quantity != "memory_target" || s[0].Within != 1 || math.Abs(s[0].Max-0.04) > 1e-12 {
		t.Errorf("target summary %+v", s[0])
	}
	if s[1].Within != 0 || math.Abs(s[1].Max-0.25) > 1e-12 {
		t.Errorf("upper summary %+v", s[1])
	}
	created := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	series := []Point{
		{Container: "a", At: created.Add(time.Hour), Values: map[string]int64{"memory_target": 50, "memory_lower": 40, "memory_upper": 200}},
		{Container: "a", At: created.Add(2 * time.Hour), Values: map[string]int64{"memory_target": 50, "memory_lower": 40, "memory_upper": 90}},
		{Container: "b", At: created.Add(11 * time.Hour), Values: map[string]int64{"memory_target": 80, "memory_lower": 40, "memory_upper": 200}},
		{Container: "b", At: created.Add(12 * time.Hour), Values: map[string]int64{"memory_target": 80, "memory_lower": 40, "memory_upper": 200}},
	}
	first := FirstEviction(series, 100, created)
	if first["a"] != created.Add(2*time.Hour) || first["b"] != created.Add(12*time.Hour) {
		t.Errorf("first evictions %v", first)
	}
}

// What VPA v1.8.1 does on testdata/divergences.csv, where heatscaler's
// recommender differs (docs/peers.md): a VPA upgrade that changes either
// behaviour fails here.
func TestVPABehavioursHeatscalerDiffersFrom(t *testing.T) {
	f, err := os.Open("testdata/divergences.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := ReadRows(f, "divergences.csv")
	if err != nil {
		t.Fatal(err)
	}
	r := NewReplayer(nil)
	last := map[string]Recommendation{}
	if err := r.Replay(rows, Instants(rows, time.Time{}, 6*time.Hour, nil), func(rec Recommendation) error {
		last[rec.Container] = rec
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Every CPU sample weighs minSampleWeight whatever the request: the
	// 1-core samples of the 0.1-core pod hold half the weight, so the 90th
	// percentile is 1 core (heatscaler, weighting by request: 0.2 core, 247m).
	if got := cpuMilli(last["cpu-weight"].Target); got != 1168 {
		t.Errorf("cpu-weight: cpu target %dm, want 1168m", got)
	}
	// An interval whose first memory sample is 0 keeps a 0-byte peak
	// (ContainerState.addMemorySample replaces only a non-zero peak): the
	// target is the 250Mi pod minimum although usage is 2 GB.
	if got := memory(last["zero-first"].Target); got != 250*1024*1024 {
		t.Errorf("zero-first: memory target %d, want 262144000", got)
	}
	// A container with an OOM kill and no CPU sample gets a recommendation
	// (the bump: 1.2 GiB's bucket + 15 %); heatscaler's needs a CPU sample.
	used := float64(1 << 30)
	if got, want := memory(last["oom-only"].Target), withMargin(memoryBucketEnd(float64(int64(used*1.2)))); got != want {
		t.Errorf("oom-only: memory target %d, want %d", got, want)
	}
}
