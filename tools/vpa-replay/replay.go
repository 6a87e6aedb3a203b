package main

import (
	"bufio"
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

	autoscaling "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	vpa_types "k8s.io/autoscaler/vertical-pod-autoscaler/pkg/apis/autoscaling.k8s.io/v1"
	recommender_config "k8s.io/autoscaler/vertical-pod-autoscaler/pkg/recommender/config"
	"k8s.io/autoscaler/vertical-pod-autoscaler/pkg/recommender/logic"
	"k8s.io/autoscaler/vertical-pod-autoscaler/pkg/recommender/model"
	"k8s.io/autoscaler/vertical-pod-autoscaler/pkg/recommender/routines"
)

// Every replayed container is the only container ("app") of its pods, in
// this namespace, and has one VPA object selecting its pods by label.
const (
	namespace     = "default"
	containerName = "app"
)

// Row is one line of the replay input.
type Row struct {
	Line      int
	Container string // the workload container: one VPA object, one aggregate
	Pod       string // the container instance; empty = the container's name
	At        time.Time
	Kind      string // "usage" or "oom"
	CPU       float64
	HasCPU    bool
	Memory    int64 // usage: working set; oom: the memory request at the kill
	HasMemory bool
	// The container's CPU request (optional): given to the model
	// (AddOrUpdateContainer) as the feeder does; VPA v1.7+ does not weight
	// samples by it (AggregateContainerState.addCPUSample uses minSampleWeight).
	CPURequest    float64
	HasCPURequest bool
}

// ReadRows reads the replay input (README.md: container, pod, timestamp,
// kind, cpu_cores, memory_bytes) and returns its rows sorted by timestamp,
// rows with equal timestamps in file order.
func ReadRows(r io.Reader, name string) ([]Row, error) {
	cr := csv.NewReader(bufio.NewReaderSize(r, 1<<16))
	cr.FieldsPerRecord = -1
	cr.Comment = '#'
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return nil, fmt.Errorf("%s: no header line: %v", name, err)
	}
	col := map[string]int{}
	for i, h := range header {
		col[strings.TrimSpace(h)] = i
	}
	for _, c := range []string{"container", "timestamp", "kind"} {
		if _, ok := col[c]; !ok {
			return nil, fmt.Errorf("%s:1: the header has no %q column (need container,timestamp,kind and cpu_cores and/or memory_bytes; pod optional)", name, c)
		}
	}
	field := func(rec []string, c string) string {
		i, ok := col[c]
		if !ok || i >= len(rec) {
			return ""
		}
		return strings.TrimSpace(rec[i])
	}
	var rows []Row
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %v", name, err)
		}
		line, _ := cr.FieldPos(0)
		bad := func(format string, a ...any) error {
			return fmt.Errorf("%s:%d: %s", name, line, fmt.Sprintf(format, a...))
		}
		row := Row{Line: line, Container: field(rec, "container"), Pod: field(rec, "pod"), Kind: field(rec, "kind")}
		if row.Container == "" {
			return nil, bad("empty container")
		}
		if row.Pod == "" {
			row.Pod = row.Container
		}
		if row.At, err = ParseTimestamp(field(rec, "timestamp")); err != nil {
			return nil, bad("timestamp: %v", err)
		}
		if text := field(rec, "cpu_cores"); text != "" {
			v, err := strconv.ParseFloat(text, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, bad("cpu_cores: %q is not a number", text)
			}
			row.CPU, row.HasCPU = v, true
		}
		if text := field(rec, "cpu_request_cores"); text != "" {
			v, err := strconv.ParseFloat(text, 64)
			if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
				return nil, bad("cpu_request_cores: %q is not a number ≥ 0", text)
			}
			row.CPURequest, row.HasCPURequest = v, true
		}
		if text := field(rec, "memory_bytes"); text != "" {
			v, err := parseBytes(text)
			if err != nil {
				return nil, bad("memory_bytes: %v", err)
			}
			row.Memory, row.HasMemory = v, true
		}
		switch row.Kind {
		case "usage":
			if !row.HasCPU && !row.HasMemory {
				return nil, bad("a usage row needs cpu_cores or memory_bytes")
			}
		case "oom":
			if !row.HasMemory {
				return nil, bad("an oom row needs memory_bytes: the container's memory request when it was killed")
			}
		default:
			return nil, bad("kind: %q is not usage or oom", row.Kind)
		}
		rows = append(rows, row)
	}
	sort.SliceStable(rows, func(i, j int) bool { return rows[i].At.Before(rows[j].At) })
	return rows, nil
}

// ParseTimestamp reads RFC 3339 or a number of seconds since the Unix epoch.
func ParseTimestamp(text string) (time.Time, error) {
	if v, err := strconv.ParseFloat(text, 64); err == nil {
		if math.IsNaN(v) || math.IsInf(v, 0) || math.Abs(v) > 1e11 {
			return time.Time{}, fmt.Errorf("%q is out of range", text)
		}
		sec := math.Floor(v)
		return time.Unix(int64(sec), int64(math.Round((v-sec)*1e9))).UTC(), nil
	}
	t, err := time.Parse(time.RFC3339Nano, text)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 nor seconds since the epoch", text)
	}
	return t.UTC(), nil
}

// parseBytes reads a whole number of bytes; a fraction is truncated.
func parseBytes(text string) (int64, error) {
	if v, err := strconv.ParseInt(text, 10, 64); err == nil {
		return v, nil
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil || math.IsNaN(v) || math.Abs(v) >= 9.2e18 {
		return 0, fmt.Errorf("%q is not a number of bytes", text)
	}
	return int64(v), nil
}

// Replayer holds the real recommender's cluster state model and estimators.
type Replayer struct {
	Config      *recommender_config.RecommenderConfig
	cluster     model.ClusterState
	recommender logic.PodResourceRecommender
	format      logic.RecommendationFormat
	post        []routines.RecommendationPostProcessor
	controlled  []corev1.ResourceName
	containers  map[string]*tracked
	order       []string
	// What the model refused, for the summary.
	Discarded   int
	OOMsRefused int
	Problems    []string
	Fed         int
}

type tracked struct {
	object     *vpa_types.VerticalPodAutoscaler
	id         model.VpaID
	label      string
	pods       map[string]bool
	cpuRequest map[string]float64
	maxMemory  int64
}

// NewReplayer sets up the recommender as its main does
// (routines.NewRecommenderController): the aggregation config from the
// default flags, the primary recommender of logic.CreatePodResourceRecommender,
// the recommendation format and the capping post-processor.
// controlled lists the resources the VPA objects control (nil: VPA's default, cpu and memory).
func NewReplayer(controlled []corev1.ResourceName) *Replayer {
	return NewReplayerWith(controlled, nil)
}

// NewReplayerWith is NewReplayer with the default flags changed by flags
// (nil: none), as the recommender's command line would change them.
func NewReplayerWith(controlled []corev1.ResourceName, flags func(*recommender_config.RecommenderConfig)) *Replayer {
	cfg := recommender_config.DefaultRecommenderConfig()
	if flags != nil {
		flags(cfg)
	}
	model.InitializeAggregationsConfig(model.NewAggregationsConfig(
		cfg.MemoryAggregationInterval,
		cfg.MemoryAggregationIntervalCount,
		cfg.MemoryHistogramDecayHalfLife,
		cfg.CpuHistogramDecayHalfLife,
		cfg.OOMBumpUpRatio,
		cfg.OOMMinBumpUp,
	))
	r := &Replayer{
		Config:  cfg,
		cluster: model.NewClusterState(time.Hour),
		recommender: logic.CreatePodResourceRecommender(logic.RecommendationConfig{
			SafetyMarginFraction:       cfg.SafetyMarginFraction,
			PodMinCPUMillicores:        cfg.PodMinCPUMillicores,
			PodMinMemoryMb:             cfg.PodMinMemoryMb,
			TargetCPUPercentile:        cfg.TargetCPUPercentile,
			LowerBoundCPUPercentile:    cfg.LowerBoundCPUPercentile,
			UpperBoundCPUPercentile:    cfg.UpperBoundCPUPercentile,
			ConfidenceIntervalCPU:      cfg.ConfidenceIntervalCPU,
			TargetMemoryPercentile:     cfg.TargetMemoryPercentile,
			LowerBoundMemoryPercentile: cfg.LowerBoundMemoryPercentile,
			UpperBoundMemoryPercentile: cfg.UpperBoundMemoryPercentile,
			ConfidenceIntervalMemory:   cfg.ConfidenceIntervalMemory,
		}),
		format: logic.RecommendationFormat{
			HumanizeMemory:     cfg.HumanizeMemory,
			RoundCPUMillicores: cfg.RoundCPUMillicores,
			RoundMemoryBytes:   cfg.RoundMemoryBytes,
		},
		// Default flags: no CPU-integer post-processor, capping with no global maximum.
		post:       []routines.RecommendationPostProcessor{routines.NewCappingRecommendationProcessor(corev1.ResourceList{})},
		containers: map[string]*tracked{},
	}
	r.controlled = controlled
	return r
}

// Register adds the VPA object of a workload container (before or after its samples).
func (r *Replayer) Register(container string) *tracked {
	if t, ok := r.containers[container]; ok {
		return t
	}
	label := fmt.Sprintf("c%d", len(r.order))
	mode := vpa_types.UpdateModeRecreate
	obj := &vpa_types.VerticalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling.k8s.io/v1", Kind: "VerticalPodAutoscaler"},
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: label},
		Spec: vpa_types.VerticalPodAutoscalerSpec{
			TargetRef:    &autoscaling.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: label},
			UpdatePolicy: &vpa_types.PodUpdatePolicy{UpdateMode: &mode},
		},
	}
	if r.controlled != nil {
		resources := append([]corev1.ResourceName(nil), r.controlled...)
		obj.Spec.ResourcePolicy = &vpa_types.PodResourcePolicy{ContainerPolicies: []vpa_types.ContainerResourcePolicy{{
			ContainerName:       vpa_types.DefaultContainerResourcePolicy,
			ControlledResources: &resources,
		}}}
	}
	if err := r.cluster.AddOrUpdateVpa(obj, labels.SelectorFromSet(labels.Set{"app": label})); err != nil {
		panic(fmt.Sprintf("AddOrUpdateVpa: %v", err)) // only fails when deleting a stale object
	}
	t := &tracked{object: obj, id: model.VpaID{Namespace: namespace, VpaName: label}, label: label, pods: map[string]bool{}, cpuRequest: map[string]float64{}}
	r.containers[container] = t
	r.order = append(r.order, container)
	return t
}

func (r *Replayer) problem(format string, a ...any) {
	if len(r.Problems) < 10 {
		r.Problems = append(r.Problems, fmt.Sprintf(format, a...))
	}
}

// Feed gives one row to the cluster state model, as the recommender's
// ClusterStateFeeder does: the pod and its container first, then the sample
// (AddSample: CPU, memory with the peak-per-aggregation-interval rule of
// ContainerState) or the OOM kill (RecordOOM).
func (r *Replayer) Feed(row Row) {
	t := r.Register(row.Container)
	podID := model.PodID{Namespace: namespace, PodName: row.Pod}
	id := model.ContainerID{PodID: podID, ContainerName: containerName}
	if !t.pods[row.Pod] {
		t.pods[row.Pod] = true
		r.cluster.AddOrUpdatePod(podID, labels.Set{"app": t.label}, corev1.PodRunning)
	}
	if old, seen := t.cpuRequest[row.Pod]; !seen || (row.HasCPURequest && row.CPURequest != old) {
		request := model.Resources{}
		if row.HasCPURequest {
			request[model.ResourceCPU] = model.CPUAmountFromCores(row.CPURequest)
		}
		t.cpuRequest[row.Pod] = row.CPURequest
		if err := r.cluster.AddOrUpdateContainer(id, request); err != nil {
			panic(fmt.Sprintf("AddOrUpdateContainer: %v", err))
		}
	}
	r.Fed++
	switch row.Kind {
	case "usage":
		add := func(resource model.ResourceName, amount model.ResourceAmount) {
			err := r.cluster.AddSample(&model.ContainerUsageSampleWithKey{
				ContainerUsageSample: model.ContainerUsageSample{MeasureStart: row.At, Usage: amount, Resource: resource},
				Container:            id,
			})
			if err != nil {
				r.Discarded++
				r.problem("line %d (%s %s at %s): %v", row.Line, row.Container, resource, row.At.Format(time.RFC3339), err)
			}
		}
		if row.HasCPU {
			add(model.ResourceCPU, model.CPUAmountFromCores(row.CPU))
		}
		if row.HasMemory {
			add(model.ResourceMemory, model.ResourceAmount(row.Memory))
			t.maxMemory = max(t.maxMemory, row.Memory)
		}
	case "oom":
		if err := r.cluster.RecordOOM(id, row.At, model.ResourceAmount(row.Memory)); err != nil {
			r.OOMsRefused++
			r.problem("line %d (%s OOM at %s): %v", row.Line, row.Container, row.At.Format(time.RFC3339), err)
		}
	}
}

// Recommendation is what the recommender writes to a VPA's status for its
// container, with the inputs of the confidence multiplier.
type Recommendation struct {
	Container  string
	At         time.Time
	Target     corev1.ResourceList
	Lower      corev1.ResourceList
	Upper      corev1.ResourceList
	Samples    int
	Confidence float64 // days, as logic.getConfidence computes it for memory
	MaxMemory  int64   // the largest memory sample fed so far (harness bookkeeping)
}

// Recommend runs the recommender's processVPAUpdate steps for one VPA object:
// GetContainerNameToAggregateStateMap, GetRecommendedPodResources,
// MapToListOfRecommendedContainerResources, then the post-processors.
func (r *Replayer) Recommend(container string, at time.Time) (Recommendation, bool) {
	t, ok := r.containers[container]
	if !ok {
		return Recommendation{}, false
	}
	vpa, ok := r.cluster.VPAs()[t.id]
	if !ok {
		return Recommendation{}, false
	}
	states := routines.GetContainerNameToAggregateStateMap(vpa)
	resources := r.recommender.GetRecommendedPodResources(states)
	list := logic.MapToListOfRecommendedContainerResources(resources, r.format)
	for _, p := range r.post {
		list = p.Process(t.object, list)
	}
	out := Recommendation{Container: container, At: at, MaxMemory: t.maxMemory}
	for _, c := range list.ContainerRecommendations {
		if c.ContainerName == containerName {
			out.Target, out.Lower, out.Upper = c.Target, c.LowerBound, c.UpperBound
		}
	}
	if s, ok := states[containerName]; ok {
		out.Samples = s.TotalSamplesCount
		interval := r.Config.ConfidenceIntervalMemory
		lifespan := float64(s.LastSampleStart.Sub(s.FirstSampleStart)) / float64(interval)
		out.Confidence = math.Min(lifespan, float64(s.TotalSamplesCount)/interval.Minutes())
	}
	return out, out.Target != nil
}

// OutputHeader is the header of the recommendations CSV (README.md).
var OutputHeader = []string{
	"container", "timestamp", "unix_seconds",
	"cpu_target_m", "cpu_lower_m", "cpu_upper_m",
	"memory_target", "memory_lower", "memory_upper",
	"cpu_samples", "confidence_days", "memory_max_seen",
}

func quantityField(list corev1.ResourceList, name corev1.ResourceName) string {
	q, ok := list[name]
	if !ok {
		return ""
	}
	if name == corev1.ResourceCPU {
		return strconv.FormatInt(q.MilliValue(), 10)
	}
	return strconv.FormatInt(q.Value(), 10)
}

// Record is the CSV record of a recommendation.
func (rec Recommendation) Record() []string {
	return []string{
		rec.Container, rec.At.UTC().Format(time.RFC3339Nano), strconv.FormatFloat(float64(rec.At.UnixNano())/1e9, 'f', -1, 64),
		quantityField(rec.Target, corev1.ResourceCPU), quantityField(rec.Lower, corev1.ResourceCPU), quantityField(rec.Upper, corev1.ResourceCPU),
		quantityField(rec.Target, corev1.ResourceMemory), quantityField(rec.Lower, corev1.ResourceMemory), quantityField(rec.Upper, corev1.ResourceMemory),
		strconv.Itoa(rec.Samples), strconv.FormatFloat(rec.Confidence, 'f', 6, 64), strconv.FormatInt(rec.MaxMemory, 10),
	}
}

// Instant is when recommendations are printed: for every container alive
// then (first row ≤ At ≤ last row), or only for Only.
type Instant struct {
	At   time.Time
	Only string
}

// Instants are the report times: start + k·every (k ≥ 0) up to the last
// row, or start + each of at; plus each container's last row.
func Instants(rows []Row, start time.Time, every time.Duration, at []time.Duration) []Instant {
	if len(rows) == 0 {
		return nil
	}
	if start.IsZero() {
		start = rows[0].At
	}
	end := rows[len(rows)-1].At
	var out []Instant
	if len(at) > 0 {
		for _, d := range at {
			out = append(out, Instant{At: start.Add(d)})
		}
	} else if every > 0 {
		for t := start; !t.After(end); t = t.Add(every) {
			out = append(out, Instant{At: t})
		}
	}
	last := map[string]time.Time{}
	var names []string
	for _, r := range rows {
		if _, ok := last[r.Container]; !ok {
			names = append(names, r.Container)
		}
		last[r.Container] = r.At
	}
	grid := map[time.Time]bool{}
	for _, i := range out {
		grid[i.At] = true
	}
	for _, n := range names {
		if !grid[last[n]] {
			out = append(out, Instant{At: last[n], Only: n})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// Replay feeds rows in time order and calls emit at each instant, after every
// row at or before it.
func (r *Replayer) Replay(rows []Row, instants []Instant, emit func(Recommendation) error) error {
	first, last := map[string]time.Time{}, map[string]time.Time{}
	for _, row := range rows {
		r.Register(row.Container)
		if _, ok := first[row.Container]; !ok {
			first[row.Container] = row.At
		}
		last[row.Container] = row.At
	}
	i := 0
	for _, inst := range instants {
		for i < len(rows) && !rows[i].At.After(inst.At) {
			r.Feed(rows[i])
			i++
		}
		names := r.order
		if inst.Only != "" {
			names = []string{inst.Only}
		}
		for _, n := range names {
			if first[n].After(inst.At) || last[n].Before(inst.At) {
				continue
			}
			if rec, ok := r.Recommend(n, inst.At); ok {
				if err := emit(rec); err != nil {
					return err
				}
			}
		}
	}
	for ; i < len(rows); i++ {
		r.Feed(rows[i])
	}
	return nil
}

func parseControlled(text string) ([]corev1.ResourceName, error) {
	if text == "" || text == "default" {
		return nil, nil
	}
	var out []corev1.ResourceName
	for _, s := range strings.Split(text, ",") {
		switch s = strings.TrimSpace(s); s {
		case "cpu", "memory":
			out = append(out, corev1.ResourceName(s))
		default:
			return nil, fmt.Errorf("-controlled: %q is not cpu or memory", s)
		}
	}
	return out, nil
}

func parseOffsets(text string) ([]time.Duration, error) {
	if text == "" {
		return nil, nil
	}
	var out []time.Duration
	for _, s := range strings.Split(text, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("-at: %v", err)
		}
		out = append(out, d)
	}
	return out, nil
}

func replayMain(args []string) error {
	fs := flag.NewFlagSet("replay", flag.ContinueOnError)
	every := fs.Duration("every", time.Hour, "print recommendations at -start and every this long after it (and at each container's last row)")
	atText := fs.String("at", "", "comma-separated offsets after -start (e.g. 1h,6h,23h) instead of -every")
	startText := fs.String("start", "", "origin of the report instants (RFC 3339 or epoch seconds; default: the earliest row)")
	controlledText := fs.String("controlled", "", "resources the VPA objects control, e.g. memory (default: VPA's default, cpu,memory)")
	out := fs.String("o", "-", "output CSV file")
	quiet := fs.Bool("q", false, "no summary on stderr")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: vpa-replay replay [flags] INPUT.csv|-")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errors.New("one input file expected")
	}
	at, err := parseOffsets(*atText)
	if err != nil {
		return err
	}
	controlled, err := parseControlled(*controlledText)
	if err != nil {
		return err
	}
	var start time.Time
	if *startText != "" {
		if start, err = ParseTimestamp(*startText); err != nil {
			return fmt.Errorf("-start: %v", err)
		}
	}
	name := fs.Arg(0)
	in := io.Reader(os.Stdin)
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in = f
	}
	began := time.Now()
	rows, err := ReadRows(in, name)
	if err != nil {
		return err
	}
	w, closeOut, err := createOutput(*out)
	if err != nil {
		return err
	}
	cw := csv.NewWriter(w)
	if err := cw.Write(OutputHeader); err != nil {
		return err
	}
	r := NewReplayer(controlled)
	reports := 0
	err = r.Replay(rows, Instants(rows, start, *every, at), func(rec Recommendation) error {
		reports++
		return cw.Write(rec.Record())
	})
	if err != nil {
		return err
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	if err := closeOut(); err != nil {
		return err
	}
	if !*quiet {
		fmt.Fprintf(os.Stderr, "vpa-replay: VPA %s recommender; %d rows, %d containers, %d recommendations printed, %d samples discarded, %d OOM kills refused (%.1fs)\n",
			vpaVersion(), len(rows), len(r.order), reports, r.Discarded, r.OOMsRefused, time.Since(began).Seconds())
		for _, p := range r.Problems {
			fmt.Fprintf(os.Stderr, "  %s\n", p)
		}
	}
	return nil
}

// createOutput opens path for writing ("-": stdout); the returned function
// closes it, reporting write errors.
func createOutput(path string) (io.Writer, func() error, error) {
	if path == "-" || path == "" {
		bw := bufio.NewWriterSize(os.Stdout, 1<<16)
		return bw, bw.Flush, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, nil, err
	}
	bw := bufio.NewWriterSize(f, 1<<16)
	return bw, func() error {
		if err := bw.Flush(); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}, nil
}
