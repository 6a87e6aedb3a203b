package main

// compare: two recommendation series in the output format of `replay`
// (the real VPA's, and the peer's), joined on container and instant.

import (
	"encoding/csv"
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
)

// Quantities compared, in report order.
var Quantities = []string{"memory_target", "memory_lower", "memory_upper", "cpu_target_m", "cpu_lower_m", "cpu_upper_m"}

// Point is one recommendation of a series.
type Point struct {
	Container string
	At        time.Time
	Values    map[string]int64 // quantity → amount; absent when empty
	Extra     map[string]string
}

type pointKey struct {
	container string
	at        int64
}

// ReadSeries reads a recommendations CSV (the output of `replay`; only
// container, timestamp and the quantity columns are required).
func ReadSeries(path string) ([]Point, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cr := csv.NewReader(f)
	cr.FieldsPerRecord = -1
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: no header: %v", path, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	for _, c := range []string{"container", "timestamp"} {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("%s:1: no %q column", path, c)
		}
	}
	var out []Point
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		line, _ := cr.FieldPos(0)
		get := func(c string) string {
			i, ok := col[c]
			if !ok || i >= len(rec) {
				return ""
			}
			return strings.TrimSpace(rec[i])
		}
		at, err := ParseTimestamp(get("timestamp"))
		if err != nil {
			return nil, fmt.Errorf("%s:%d: timestamp: %v", path, line, err)
		}
		p := Point{Container: get("container"), At: at, Values: map[string]int64{}, Extra: map[string]string{}}
		for _, q := range Quantities {
			if text := get(q); text != "" {
				v, err := strconv.ParseInt(text, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("%s:%d: %s: %q is not a whole number", path, line, q, text)
				}
				p.Values[q] = v
			}
		}
		for _, c := range []string{"cpu_samples", "confidence_days", "memory_max_seen"} {
			p.Extra[c] = get(c)
		}
		out = append(out, p)
	}
	return out, nil
}

// RelDiff is (peer − vpa) / vpa; 0 when both are 0, ±Inf when only vpa is 0.
func RelDiff(vpa, peer int64) float64 {
	if vpa == peer {
		return 0
	}
	if vpa == 0 {
		return math.Copysign(math.Inf(1), float64(peer))
	}
	return (float64(peer) - float64(vpa)) / float64(vpa)
}

// quantile of sorted values, nearest rank.
func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// Diff is one compared quantity at one instant.
type Diff struct {
	Container string
	At        time.Time
	Quantity  string
	VPA, Peer int64
	Rel       float64
	Extra     map[string]string
}

// Summary of |relative difference| for one quantity.
type Summary struct {
	Quantity            string
	N, Within           int
	Median, P90, Max    float64
	MedianSigned        float64
	Above, Below, Equal int
}

// Compare joins the two series and summarises each quantity; only instants
// present in both are compared. keepPeer, when not nil, restricts the
// comparison to the instants it accepts.
func Compare(vpa, peer []Point, tolerance float64, keep func(Point) bool) ([]Summary, []Diff, int, int) {
	index := map[pointKey]Point{}
	for _, p := range peer {
		index[pointKey{p.Container, p.At.UnixNano()}] = p
	}
	var diffs []Diff
	joined, missing := 0, 0
	for _, v := range vpa {
		p, ok := index[pointKey{v.Container, v.At.UnixNano()}]
		if !ok {
			missing++
			continue
		}
		if keep != nil && !keep(p) {
			continue
		}
		joined++
		for _, q := range Quantities {
			a, okA := v.Values[q]
			b, okB := p.Values[q]
			if !okA || !okB {
				continue
			}
			diffs = append(diffs, Diff{Container: v.Container, At: v.At, Quantity: q, VPA: a, Peer: b, Rel: RelDiff(a, b), Extra: v.Extra})
		}
	}
	var out []Summary
	for _, q := range Quantities {
		var abs, signed []float64
		s := Summary{Quantity: q}
		for _, d := range diffs {
			if d.Quantity != q {
				continue
			}
			s.N++
			abs = append(abs, math.Abs(d.Rel))
			signed = append(signed, d.Rel)
			if math.Abs(d.Rel) <= tolerance {
				s.Within++
			}
			switch {
			case d.Rel > 0:
				s.Above++
			case d.Rel < 0:
				s.Below++
			default:
				s.Equal++
			}
		}
		if s.N == 0 {
			continue
		}
		sort.Float64s(abs)
		sort.Float64s(signed)
		s.Median, s.P90, s.Max = quantile(abs, 0.5), quantile(abs, 0.9), abs[len(abs)-1]
		s.MedianSigned = quantile(signed, 0.5)
		out = append(out, s)
	}
	return out, diffs, joined, missing
}

// FirstEviction is when the simulator's vpa-defaults updater
// (crates/sim/src/peers/vpa_defaults.rs `evictions`, one replica with minReplicas 1,
// no OOM kill) first evicts a pod created at `created` with memory request
// `request`, judged on the peer's own recommendations: the request outside
// [lower, upper], or after 12 h of pod life at least 10 % off the target.
// Until then the simulator feeds its recommender exactly the converter's
// samples; after it, the pod is replaced and the samples differ.
func FirstEviction(series []Point, request int64, created time.Time) map[string]time.Time {
	out := map[string]time.Time{}
	sorted := append([]Point(nil), series...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].At.Before(sorted[j].At) })
	for _, p := range sorted {
		if _, done := out[p.Container]; done {
			continue
		}
		target, ok := p.Values["memory_target"]
		if !ok || target == 0 {
			continue
		}
		lower, upper := p.Values["memory_lower"], p.Values["memory_upper"]
		outside := (lower > 0 && request < lower) || (upper > 0 && request > upper)
		diff := math.Abs(float64(request-target)) / float64(max(request, 1))
		if outside || (p.At.Sub(created) >= 12*time.Hour && diff >= 0.1) {
			out[p.Container] = p.At
		}
	}
	return out
}

func compareMain(args []string) error {
	fs := flag.NewFlagSet("compare", flag.ContinueOnError)
	tolerance := fs.Float64("tolerance", 0.05, "relative difference counted as agreement")
	top := fs.Int("top", 15, "list this many of the biggest disagreements")
	diffsOut := fs.String("diffs", "", "write every compared value to this CSV")
	request := fs.Int64("evict-request", 0, "also compare only up to the peer's first eviction of a pod with this memory request (bytes; GenTD26: 17179869184)")
	createdText := fs.String("created", "2024-01-01T00:00:00Z", "with -evict-request: when the pod was created (the simulator's epoch)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: vpa-replay compare [flags] VPA.csv PEER.csv")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 2 {
		fs.Usage()
		return errors.New("two series expected: the real VPA's, then the peer's")
	}
	vpa, err := ReadSeries(fs.Arg(0))
	if err != nil {
		return err
	}
	peer, err := ReadSeries(fs.Arg(1))
	if err != nil {
		return err
	}
	w := os.Stdout
	summaries, diffs, joined, missing := Compare(vpa, peer, *tolerance, nil)
	fmt.Fprintf(w, "compared %d instants (%d of %s missing from %s); relative difference = (peer − vpa) / vpa\n\n",
		joined, missing, fs.Arg(0), fs.Arg(1))
	printSummaries(w, "all instants", summaries, *tolerance)
	if *request > 0 {
		created, err := ParseTimestamp(*createdText)
		if err != nil {
			return fmt.Errorf("-created: %v", err)
		}
		first := FirstEviction(peer, *request, created)
		keep := func(p Point) bool {
			t, ok := first[p.Container]
			return !ok || !p.At.After(t)
		}
		s2, _, joined2, _ := Compare(vpa, peer, *tolerance, keep)
		var ages []float64
		for _, t := range first {
			ages = append(ages, t.Sub(created).Hours())
		}
		sort.Float64s(ages)
		fmt.Fprintf(w, "\nthe peer's first eviction (request %d bytes): %d of the containers, after %.1f h (median; min %.1f h, max %.1f h)\n",
			*request, len(first), quantile(ages, 0.5), quantile(ages, 0), quantile(ages, 1))
		printSummaries(w, fmt.Sprintf("up to the peer's first eviction (%d instants: there the simulator's samples are these)", joined2), s2, *tolerance)
	}
	sort.SliceStable(diffs, func(i, j int) bool { return math.Abs(diffs[i].Rel) > math.Abs(diffs[j].Rel) })
	fmt.Fprintf(w, "\nbiggest disagreements:\n%-14s %-20s %-14s %15s %15s %9s %8s %8s %15s\n",
		"container", "timestamp", "quantity", "vpa", "peer", "rel", "samples", "conf(d)", "max seen")
	shown := map[string]int{}
	if len(diffs) == 0 || diffs[0].Rel == 0 {
		fmt.Fprintln(w, "(none: every compared value is equal)")
	}
	for _, d := range diffs {
		if *top <= 0 || d.Rel == 0 {
			break
		}
		if shown[d.Container+d.Quantity] >= 2 { // at most two lines per container and quantity
			continue
		}
		shown[d.Container+d.Quantity]++
		*top--
		fmt.Fprintf(w, "%-14s %-20s %-14s %15d %15d %+8.2f%% %8s %8s %15s\n", d.Container, d.At.UTC().Format(time.RFC3339), d.Quantity,
			d.VPA, d.Peer, 100*d.Rel, d.Extra["cpu_samples"], d.Extra["confidence_days"], d.Extra["memory_max_seen"])
	}
	if *diffsOut != "" {
		out, closeOut, err := createOutput(*diffsOut)
		if err != nil {
			return err
		}
		cw := csv.NewWriter(out)
		cw.Write([]string{"container", "timestamp", "quantity", "vpa", "peer", "rel", "cpu_samples", "confidence_days", "memory_max_seen"})
		for _, d := range diffs {
			cw.Write([]string{d.Container, d.At.UTC().Format(time.RFC3339), d.Quantity, strconv.FormatInt(d.VPA, 10), strconv.FormatInt(d.Peer, 10),
				strconv.FormatFloat(d.Rel, 'g', 6, 64), d.Extra["cpu_samples"], d.Extra["confidence_days"], d.Extra["memory_max_seen"]})
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return err
		}
		if err := closeOut(); err != nil {
			return err
		}
	}
	return nil
}

func printSummaries(w io.Writer, title string, s []Summary, tolerance float64) {
	fmt.Fprintf(w, "%s:\n%-14s %8s %11s %10s %10s %10s %10s %17s\n", title, "quantity", "n", fmt.Sprintf("≤%.0f%%", 100*tolerance),
		"median|d|", "p90|d|", "max|d|", "median d", "peer >/</= vpa")
	for _, x := range s {
		fmt.Fprintf(w, "%-14s %8d %10.2f%% %9.3f%% %9.3f%% %9.3f%% %+9.3f%% %17s\n", x.Quantity, x.N, 100*float64(x.Within)/float64(x.N),
			100*x.Median, 100*x.P90, 100*x.Max, 100*x.MedianSigned, fmt.Sprintf("%d/%d/%d", x.Above, x.Below, x.Equal))
	}
}
