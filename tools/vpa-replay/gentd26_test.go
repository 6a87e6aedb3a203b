package main

import (
	"compress/gzip"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
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
