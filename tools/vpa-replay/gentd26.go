package main

// The GenTD26 converter: the samples `heatscaler simulate --trace
// alibaba-gentd26:FILE` feeds the recommender of its `vpa-defaults` peer,
// computed the same way, as replay input. Each step names the Rust it
// mirrors (at the commit this tool was written against):
//
//   - reading: crates/sim/src/trace/alibaba_gentd26.rs `read` — columns by name,
//     fields trimmed, a row with an empty container_ip, a value outside
//     [-0.001, 1.001] or a negative timestamp is an error (no
//     --skip-bad-rows here); values clamped to [0, 1]; containers kept in
//     order of first appearance, `-containers even|odd` by the id's last hex
//     digit; series with fewer than MIN_SAMPLES (60) samples left out; each
//     series stably sorted by time and shifted to start at 0.
//   - bytes: `pod_level` — fraction × CONTAINER_MEMORY (16Gi, as f64), the
//     request and the limit of the only container; workload name = the
//     first 12 characters of the id; one replica; CPU constant 0.5 core;
//     no noise; duration = the series' span + 60 s.
//   - sampling: crates/sim/src/podlevel/run.rs `simulate` — ticks every
//     metrics_interval (60 s) from run::epoch() (2024-01-01T00:00:00Z),
//     floor(duration / 60 s) of them; the first pod is created running at
//     the epoch (`cluster.create(.., epoch, Duration::ZERO)`: no start delay),
//     so the first sample is at tick 0; usage at tick t is the last trace
//     sample at or before t
//     (usage.rs `Track::at`, Signal::Series); memory `as i64` (truncated);
//     memory above the limit would be an OOM kill — never here, since a
//     fraction ≤ 1 of the limit cannot exceed it — so without the peer's own
//     evictions (which change the limit) the samples are exactly these.

import (
	"bufio"
	"compress/gzip"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	recommender_config "k8s.io/autoscaler/vertical-pod-autoscaler/pkg/recommender/config"
)

// GenTD26 conversion parameters, defaults as in the simulator.
type GenTD26 struct {
	Containers   string        // all, even, odd
	MemoryBytes  float64       // CONTAINER_MEMORY
	MinSamples   int           // MIN_SAMPLES
	Epoch        time.Time     // run::epoch()
	Interval     time.Duration // PodLevelSpec.metrics_interval
	Restart      time.Duration // PodLevelSpec.restart: a replacement's or an OOM-killed container's start delay
	CPU          float64       // Signal::Constant(0.5)
	WorkloadName int           // characters of the id kept as the workload name
	// Flags changes the recommender's default flags in the closed loop (nil: VPA's defaults).
	Flags func(*recommender_config.RecommenderConfig)
}

func DefaultGenTD26() GenTD26 {
	return GenTD26{
		Containers:   "all",
		MemoryBytes:  16 * (1 << 30),
		MinSamples:   60,
		Epoch:        time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		Interval:     60 * time.Second,
		Restart:      30 * time.Second,
		CPU:          0.5,
		WorkloadName: 12,
	}
}

// Series is one container's utilisation: seconds since its first sample, fraction.
type Series struct {
	ID      string
	Samples [][2]float64
}

// GenTD26Read is what reading the trace found.
type GenTD26Read struct {
	Series    []Series
	TooShort  int
	OtherHalf int
	Rows      int
}

func keeps(which, id string) bool {
	if which == "all" {
		return true
	}
	if id == "" {
		return false
	}
	d, err := strconv.ParseUint(id[len(id)-1:], 16, 8)
	if err != nil {
		return false
	}
	return (which == "even") == (d%2 == 0)
}

// ReadGenTD26 reads the trace as crates/sim/src/trace/alibaba_gentd26.rs `read` does.
func (g GenTD26) Read(path string) (GenTD26Read, error) {
	var out GenTD26Read
	f, err := os.Open(path)
	if err != nil {
		return out, err
	}
	defer f.Close()
	var in io.Reader = bufio.NewReaderSize(f, 1<<16)
	if strings.HasSuffix(path, ".gz") {
		gz, err := gzip.NewReader(in)
		if err != nil {
			return out, fmt.Errorf("%s: %v", path, err)
		}
		defer gz.Close()
		in = gz
	}
	cr := csv.NewReader(in)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return out, fmt.Errorf("%s: no header line: %v", path, err)
	}
	count := len(header)
	col := map[string]int{}
	for i, h := range header {
		h = strings.TrimSpace(h)
		if _, dup := col[h]; dup {
			return out, fmt.Errorf("%s:1: column %q appears twice in the header", path, h)
		}
		col[h] = i
	}
	for _, c := range []string{"value", "timestamp_anon", "container_ip"} {
		if _, ok := col[c]; !ok {
			return out, fmt.Errorf("%s:1: the header has no %q column", path, c)
		}
	}
	var order []string
	raw := map[string][][2]float64{}
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return out, fmt.Errorf("%s: %v", path, err)
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != count {
			return out, fmt.Errorf("%s:%d: %d fields, the header has %d", path, line, len(rec), count)
		}
		id := strings.TrimSpace(rec[col["container_ip"]])
		if id == "" {
			return out, fmt.Errorf("%s:%d: empty container_ip", path, line)
		}
		text := strings.TrimSpace(rec[col["value"]])
		v, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < -1e-3 || v > 1.0+1e-3 {
			return out, fmt.Errorf("%s:%d: value: %q is not a memory utilisation between 0 and 1", path, line, text)
		}
		v = math.Min(math.Max(v, 0), 1)
		text = strings.TrimSpace(rec[col["timestamp_anon"]])
		at, err := strconv.ParseFloat(text, 64)
		if err != nil || math.IsNaN(at) || math.IsInf(at, 0) || at < 0 {
			return out, fmt.Errorf("%s:%d: timestamp_anon: %q is not a number of seconds ≥ 0", path, line, text)
		}
		if _, ok := raw[id]; !ok {
			order = append(order, id)
		}
		raw[id] = append(raw[id], [2]float64{at, v})
		out.Rows++
	}
	for _, id := range order {
		samples := raw[id]
		if !keeps(g.Containers, id) {
			out.OtherHalf++
			continue
		}
		if len(samples) < g.MinSamples {
			out.TooShort++
			continue
		}
		sort.SliceStable(samples, func(i, j int) bool { return samples[i][0] < samples[j][0] })
		first := samples[0][0]
		for i := range samples {
			samples[i][0] -= first
		}
		out.Series = append(out.Series, Series{ID: id, Samples: samples})
	}
	return out, nil
}

// Name is the simulator's workload name of a series.
func (g GenTD26) Name(s Series) string {
	r := []rune(s.ID)
	if len(r) > g.WorkloadName {
		r = r[:g.WorkloadName]
	}
	return string(r)
}

// Rows are the samples the simulator feeds the recommender for one series,
// without the peer's evictions (see the file comment).
func (g GenTD26) Rows(s Series) []Row {
	span := s.Samples[len(s.Samples)-1][0]
	duration := time.Duration(math.Round(span*1e9)) + g.Interval
	ticks := int64(math.Floor(duration.Seconds() / g.Interval.Seconds()))
	name := g.Name(s)
	pod := name + "-1"
	limit := g.MemoryBytes
	var rows []Row
	for tick := int64(0); tick < ticks; tick++ {
		t := time.Duration(tick) * g.Interval
		secs := t.Seconds()
		i := sort.Search(len(s.Samples), func(i int) bool { return s.Samples[i][0] > secs })
		if i > 0 {
			i--
		}
		used := s.Samples[i][1] * g.MemoryBytes
		if used > limit {
			panic("a fraction ≤ 1 cannot exceed the limit") // the simulator would OOM-kill here
		}
		rows = append(rows, Row{
			Container: name, Pod: pod, At: g.Epoch.Add(t), Kind: "usage",
			CPU: g.CPU, HasCPU: true, Memory: int64(used), HasMemory: true,
		})
	}
	return rows
}

// InputHeader is the header of the replay input.
var InputHeader = []string{"container", "pod", "timestamp", "kind", "cpu_cores", "memory_bytes"}

// Record is the replay-input CSV record of a row.
func (r Row) Record() []string {
	cpu, mem := "", ""
	if r.HasCPU {
		cpu = strconv.FormatFloat(r.CPU, 'f', -1, 64)
	}
	if r.HasMemory {
		mem = strconv.FormatInt(r.Memory, 10)
	}
	return []string{r.Container, r.Pod, r.At.UTC().Format(time.RFC3339Nano), r.Kind, cpu, mem}
}

func gentd26Main(args []string) error {
	g := DefaultGenTD26()
	fs := flag.NewFlagSet("gentd26", flag.ContinueOnError)
	fs.StringVar(&g.Containers, "containers", g.Containers, "all, even or odd (the last hex digit of the id), as simulate --containers")
	fs.Float64Var(&g.MemoryBytes, "memory-bytes", g.MemoryBytes, "bytes a fraction of 1 means (alibaba_gentd26::CONTAINER_MEMORY, 16Gi)")
	fs.IntVar(&g.MinSamples, "min-samples", g.MinSamples, "series with fewer samples are left out (alibaba_gentd26::MIN_SAMPLES)")
	out := fs.String("o", "-", "output CSV file")
	only := fs.String("only", "", "comma-separated workload names (12-character id prefixes) to keep")
	closed := fs.Bool("closed-loop", false, "emulate the vpa-defaults peer's updater, admission and OOM kills with VPA's recommender in the loop (closedloop.go)")
	recsOut := fs.String("recs", "", "with -closed-loop: write VPA's recommendation at every tick to this CSV")
	totalsOut := fs.String("totals", "", "with -closed-loop: write the per-workload totals (as simulate --json) to this JSON file")
	checkSim := fs.String("check-sim", "", "with -closed-loop: hold the totals against this `heatscaler simulate --json` output of the same trace")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: vpa-replay gentd26 [flags] pod_memory_util_anon.csv[.gz]")
		fs.PrintDefaults()
	}
	if err := parseTraceArgs(fs, args, &g); err != nil {
		return err
	}
	read, err := g.Read(fs.Arg(0))
	if err != nil {
		return err
	}
	keep := map[string]bool{}
	for _, n := range strings.Split(*only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			keep[n] = true
		}
	}
	w, closeOut, err := createOutput(*out)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(InputHeader); err != nil {
		return err
	}
	if !*closed && (*recsOut != "" || *totalsOut != "" || *checkSim != "") {
		return errors.New("-recs, -totals and -check-sim need -closed-loop")
	}
	var recs *csv.Writer
	closeRecs := func() error { return nil }
	if *recsOut != "" {
		w, c, err := createOutput(*recsOut)
		if err != nil {
			return err
		}
		recs, closeRecs = csv.NewWriter(w), c
		recs.Write(OutputHeader)
	}
	var totals []Totals
	n, samples, ooms := 0, 0, 0
	for _, s := range read.Series {
		if len(keep) > 0 && !keep[g.Name(s)] {
			continue
		}
		n++
		var rows []Row
		if *closed {
			var t Totals
			rows, t = g.ClosedLoop(s, func(r Recommendation) {
				if recs != nil {
					recs.Write(r.Record())
				}
			})
			totals = append(totals, t)
		} else {
			rows = g.Rows(s)
		}
		for _, r := range rows {
			samples++
			if r.Kind == "oom" {
				ooms++
			}
			if err := cw.Write(r.Record()); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	if err := closeOut(); err != nil {
		return err
	}
	if recs != nil {
		recs.Flush()
		if err := recs.Error(); err != nil {
			return err
		}
		if err := closeRecs(); err != nil {
			return err
		}
	}
	if *totalsOut != "" {
		data, _ := json.MarshalIndent(totals, "", " ")
		if err := os.WriteFile(*totalsOut, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	other := ""
	if g.Containers != "all" {
		other = fmt.Sprintf(", %d of the other half", read.OtherHalf)
	}
	fmt.Fprintf(os.Stderr, "%s: %d container series replayed (%d with fewer than %d samples left out%s); %d written, %d rows (%d OOM kills)\n",
		fs.Arg(0), len(read.Series), read.TooShort, g.MinSamples, other, n, samples, ooms)
	if *closed {
		var o, e int64
		var days float64
		for _, t := range totals {
			o, e, days = o+t.OOMs, e+t.Evictions, days+t.PodDays
		}
		fmt.Fprintf(os.Stderr, "closed loop with VPA's recommender: %d OOM kills, %d evictions over %.1f pod-days (%.3f and %.2f per pod-day)\n",
			o, e, days, float64(o)/days, float64(e)/days)
	}
	if *checkSim != "" {
		sim, err := SimTotals(*checkSim)
		if err != nil {
			return err
		}
		missing, differ := CheckTotals(totals, sim)
		for i, b := range append(missing, differ...) {
			if i < 20 {
				fmt.Fprintln(os.Stderr, "  "+b)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("%s replays other workloads than this conversion (%d problems): not the same trace or selection", *checkSim, len(missing))
		}
		mine, theirs := Pool(totals), Pool(valuesOf(sim))
		fmt.Fprintf(os.Stderr, "check: the same %d workloads; %d of them with every total equal to %s's %s run\n",
			len(totals), len(totals)-len(differ), *checkSim, SimPolicy)
		fmt.Fprintf(os.Stderr, "  this loop (VPA's recommender): %s\n  the simulator (one engine):    %s\n", mine, theirs)
	}
	return nil
}

// parseTraceArgs parses a GenTD26 subcommand's flags: one trace file, and
// -containers one of all, even or odd (as simulate --containers).
func parseTraceArgs(fs *flag.FlagSet, args []string, g *GenTD26) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("one trace file expected")
	}
	if g.Containers != "all" && g.Containers != "even" && g.Containers != "odd" {
		return fmt.Errorf("-containers: %q is not all, even or odd", g.Containers)
	}
	return nil
}
