package main

import (
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	recommender_config "k8s.io/autoscaler/vertical-pod-autoscaler/pkg/recommender/config"
)

func writeGz(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "trace.csv.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	gz := gzip.NewWriter(f)
	if _, err := gz.Write([]byte(text)); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

func TestGenTD26Conversion(t *testing.T) {
	var b strings.Builder
	b.WriteString("value,timestamp_anon,container_ip\n")
	long := "0123456789abcdef0123456789abcde2" // even
	short := "ffffffffffffffffffffffffffffff01"
	// 61 samples every 57 s, out of order in the file; the first one slightly negative.
	for i := 60; i >= 0; i-- {
		v := fmt.Sprintf("%.3f", 0.25+0.005*float64(i))
		if i == 0 {
			v = "-0.00001"
		}
		fmt.Fprintf(&b, " %s ,%d.0,%s\n", v, 1000+57*i, long)
	}
	for i := 0; i < 10; i++ {
		fmt.Fprintf(&b, "0.5,%d.0,%s\n", 1000+57*i, short)
	}
	path := writeGz(t, b.String())
	g := DefaultGenTD26()
	read, err := g.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(read.Series) != 1 || read.TooShort != 1 || read.Rows != 71 {
		t.Fatalf("series %d, too short %d, rows %d", len(read.Series), read.TooShort, read.Rows)
	}
	rows := g.Rows(read.Series[0])
	// span 60×57 s = 3420 s; duration 3480 s; 58 ticks, the first pod up from tick 0.
	if len(rows) != 58 {
		t.Fatalf("%d rows, want 58", len(rows))
	}
	first := rows[0]
	if first.Container != "0123456789ab" || first.Pod != "0123456789ab-1" || first.At != g.Epoch || first.Memory != 0 {
		t.Errorf("first row %+v (the clamped -0.00001 at the epoch)", first)
	}
	// At 60 s the last sample at or before is the one at 57 s (i = 1): 0.255 × 16 GiB, truncated.
	if v := 0.255; rows[1].Memory != int64(v*g.MemoryBytes) || rows[1].CPU != 0.5 {
		t.Errorf("row at 60 s: memory %d cpu %v, want %d and 0.5", rows[1].Memory, rows[1].CPU, int64(v*g.MemoryBytes))
	}
	// At 120 s: the sample at 114 s (i = 2).
	if v := 0.26; rows[2].Memory != int64(v*g.MemoryBytes) {
		t.Errorf("row at 120 s: memory %d, want %d", rows[2].Memory, int64(v*g.MemoryBytes))
	}
	g.Containers = "odd"
	if read, _ := g.Read(path); len(read.Series) != 0 || read.OtherHalf != 1 {
		t.Errorf("odd half kept %d series, %d of the other half", len(read.Series), read.OtherHalf)
	}
	for _, bad := range []string{
		"value,timestamp_anon,container_ip\n1.5,0,a\n",
		"value,timestamp_anon,container_ip\n0.5,-1,a\n",
		"value,timestamp_anon,container_ip\n0.5,0,\n",
		"value,timestamp_anon\n0.5,0\n",
	} {
		if _, err := DefaultGenTD26().Read(writeGz(t, bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// The bundled trace: the simulator reports 91 series (17 too short), and the
// real recommender accepts every sample of the conversion.
func TestBundledTrace(t *testing.T) {
	path := "../../scenarios/traces/alibaba-gentd26/pod_memory_util_anon.part-a.csv.gz"
	if _, err := os.Stat(path); err != nil {
		t.Skip("bundled trace not found")
	}
	g := DefaultGenTD26()
	read, err := g.Read(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(read.Series) != 91 || read.TooShort != 17 {
		t.Fatalf("%d series, %d too short; the simulator replays 91, 17 left out", len(read.Series), read.TooShort)
	}
	var rows []Row
	series := read.Series
	if testing.Short() {
		series = series[:5]
	}
	for _, s := range series {
		rows = append(rows, g.Rows(s)...)
	}
	r := NewReplayer(nil)
	recs := 0
	err = r.Replay(sortedRows(rows), Instants(sortedRows(rows), time.Time{}, time.Hour, nil), func(Recommendation) error { recs++; return nil })
	if err != nil {
		t.Fatal(err)
	}
	if r.Discarded != 0 || r.Fed != len(rows) || recs == 0 {
		t.Errorf("fed %d of %d rows, %d discarded, %d recommendations", r.Fed, len(rows), r.Discarded, recs)
	}
}

func sortedRows(rows []Row) []Row {
	var b strings.Builder
	b.WriteString(strings.Join(InputHeader, ",") + "\n")
	for _, r := range rows {
		b.WriteString(strings.Join(r.Record(), ",") + "\n")
	}
	out, err := ReadRows(strings.NewReader(b.String()), "rows")
	if err != nil {
		panic(err)
	}
	return out
}

// The simulator's report as `heatscaler simulate --json` writes it since the
// pod level runs in its one engine (runs[].pod_workloads[].totals), on three
// short GenTD26 series. Regenerate with
//
//	heatscaler simulate --trace alibaba-gentd26:tools/vpa-replay/testdata/gentd26-three.csv.gz \
//	    --policy heatscaler,ca-defaults --json > tools/vpa-replay/testdata/simulate-gentd26-three.json
const simFixture = "testdata/simulate-gentd26-three.json"

func TestSimTotalsReadsTheSimulatorsReport(t *testing.T) {
	sim, err := SimTotals(simFixture)
	if err != nil {
		t.Fatal(err)
	}
	if len(sim) != 3 {
		t.Fatalf("%d workloads, want the 3 of the VPA peer's run: %v", len(sim), sim)
	}
	w, ok := sim["00800b6d2cab"]
	if !ok {
		t.Fatalf("no workload 00800b6d2cab: %v", sim)
	}
	if w.Workload != "00800b6d2cab" || w.PodDays <= 0 || w.Measured <= 0 || w.MemoryRequest <= w.MemoryUsage || w.MemoryUsage <= 0 {
		t.Fatalf("totals not read: %+v", w)
	}
	// The VPA peer's run, not heatscaler's: the fixture's ca-defaults totals.
	data, err := os.ReadFile(simFixture)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Runs []struct {
			Policy       string `json:"policy"`
			PodWorkloads []struct {
				Workload string `json:"workload"`
				Totals   struct {
					MemoryRequest float64 `json:"memory_request"`
				} `json:"totals"`
			} `json:"pod_workloads"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	for _, run := range doc.Runs {
		for _, pw := range run.PodWorkloads {
			if pw.Workload == "00800b6d2cab" && run.Policy == "ca-defaults" && pw.Totals.MemoryRequest != w.MemoryRequest {
				t.Fatalf("memory_request %g, the ca-defaults run has %g", w.MemoryRequest, pw.Totals.MemoryRequest)
			}
		}
	}

	// The same three series converted here: the same workloads on both sides.
	g := DefaultGenTD26()
	read, err := g.Read("testdata/gentd26-three.csv.gz")
	if err != nil {
		t.Fatal(err)
	}
	var mine []Totals
	for _, s := range read.Series {
		_, tot := g.ClosedLoop(s, nil)
		mine = append(mine, tot)
	}
	missing, _ := CheckTotals(mine, sim)
	if len(missing) != 0 {
		t.Fatalf("workloads differ: %v", missing)
	}
	if p := Pool(mine); p.PodDays <= 0 || p.OverProvisioning() <= 0 {
		t.Fatalf("pooled: %s", p)
	}
}

func TestSimTotalsNamesWhatIsMissing(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	// The report's shape before the one engine: refused, not read as empty.
	old := write("old.json", `{"pod-level": {"rows": [{"workload": "w", "policy": "vpa-defaults*", "totals": {"ooms": 1}}]}}`)
	if _, err := SimTotals(old); err == nil || !strings.Contains(err.Error(), "no run of policy ca-defaults") {
		t.Fatalf("old shape: %v", err)
	}
	heatscalerOnly := write("h.json", `{"runs": [{"policy": "heatscaler", "pod_workloads": [{"workload": "w", "totals": {}}]}]}`)
	if _, err := SimTotals(heatscalerOnly); err == nil || !strings.Contains(err.Error(), "runs: [heatscaler]") {
		t.Fatalf("no peer run: %v", err)
	}
	empty := write("e.json", `{"runs": [{"policy": "ca-defaults", "pod_workloads": []}]}`)
	if _, err := SimTotals(empty); err == nil || !strings.Contains(err.Error(), "no pod_workloads") {
		t.Fatalf("no VPA workload: %v", err)
	}
}

func TestFrontierKnobsSetVPAsFlagsAndKeepTheWindow(t *testing.T) {
	cfg := recommender_config.DefaultRecommenderConfig()
	FrontierKnobs{Percentile: 0.8, Margin: 0.05, Interval: time.Hour, HalfLife: 4 * time.Hour}.Apply(cfg)
	if cfg.TargetMemoryPercentile != 0.8 || cfg.TargetCPUPercentile != 0.8 || cfg.SafetyMarginFraction != 0.05 ||
		cfg.MemoryAggregationInterval != time.Hour || cfg.MemoryAggregationIntervalCount != 8*24 ||
		cfg.MemoryHistogramDecayHalfLife != 4*time.Hour {
		t.Fatalf("%+v", cfg)
	}
	// On the three short series: the default point is marked, and a 0 % margin
	// point is never more over-provisioned than the 15 % one at the same percentile.
	g := DefaultGenTD26()
	read, err := g.Read("testdata/gentd26-three.csv.gz")
	if err != nil {
		t.Fatal(err)
	}
	points := g.Frontier(read.Series, []FrontierKnobs{
		{0.9, 0.15, 24 * time.Hour, 24 * time.Hour},
		{0.9, 0, 24 * time.Hour, 24 * time.Hour},
	})
	if !points[0].Default || points[1].Default {
		t.Fatalf("default marks: %+v", points)
	}
	if points[1].Pooled.OverProvisioning() > points[0].Pooled.OverProvisioning() {
		t.Fatalf("margin 0 over-provisions more: %s against %s", points[1].Pooled, points[0].Pooled)
	}
}
