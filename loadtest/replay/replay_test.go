package replay

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var base = time.Date(2022, 8, 22, 3, 0, 0, 0, time.UTC)

const (
	podFront = "frontend-aaa111bbb-f1f1f"
	podCart  = "cartservice-ccc222ddd-c2c2c"
	hexTrace = "0123456789abcdef0123456789abcdef"
)

func ns(t time.Time) string { return fmt.Sprint(t.UnixNano()) }

// writeFile writes rows as CSV; names ending in .gz are gzipped.
func writeFile(t *testing.T, dir, rel string, rows ...string) {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	data := []byte(strings.Join(rows, "\n") + "\n")
	if strings.HasSuffix(rel, ".gz") {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write(data)
		zw.Close()
		data = b.Bytes()
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

func metricRows(pod string, from time.Time, n int) []string {
	rows := []string{"Time,TimeStamp,PodName,CpuUsage(m),MemoryUsage(Mi),PodSuccessRate(%)"}
	for i := range n {
		ts := from.Add(time.Duration(i)*time.Minute + 19*time.Second)
		rows = append(rows, fmt.Sprintf("%s +0000 UTC m=+%d.5,%d,%s,%d,%d,100", ts.Format("2006-01-02 15:04:05.000000000"), i*60, ts.Unix(), pod, i, 2*i))
	}
	return rows
}

// synthDataset builds a tiny dataset in the Nezha layout: one labelled
// fault at 03:30:10 (cartservice), trace minutes 03:10 and 03:30, logs of
// 03:30, per-pod and front_service metrics 03:00-03:59, a dependency file,
// and a baseline (construct_data) of 02:00-02:19.
func synthDataset(t *testing.T) string {
	dir := t.TempDir()
	writeFile(t, dir, "rca_data/2022-08-22-fault_list.json", fmt.Sprintf(
		`{"03": [{"inject_time": "2022-08-22 03:30:10", "inject_timestamp": "%d", "inject_pod": %q, "inject_type": "cpu_contention"}]}`,
		base.Add(30*time.Minute+10*time.Second).Unix(), podCart))
	t30 := base.Add(30*time.Minute + 20*time.Second)
	at := func(ms int) string { return ns(t30.Add(time.Duration(ms) * time.Millisecond)) }
	writeFile(t, dir, "rca_data/trace/03_30_trace.csv.gz",
		"TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration",
		hexTrace+",1111111111111111,root,"+podFront+",hipstershop.Frontend/Recv.,"+at(0)+","+at(50)+",50000",
		hexTrace+",2222222222222222,1111111111111111,"+podFront+",hipstershop.CartService/GetCart,"+at(1)+","+at(40)+",39000",
		hexTrace+",3333333333333333,2222222222222222,"+podCart+",hipstershop.CartService/GetCart,"+at(2)+","+at(30)+",28000",
		"trace-A,span-A1,root,"+podFront+",hipstershop.Frontend/Recv.,"+at(100)+","+at(120)+",20000",
		"trace-A,span-A2,span-A1,"+podCart+",hipstershop.CartService/AddItem,"+at(101)+","+at(110)+",9000")
	writeFile(t, dir, "rca_data/trace/03_10_trace.csv",
		"TraceID,SpanID,ParentID,PodName,OperationName,StartTimeUnixNano,EndTimeUnixNano,Duration",
		"fedcba98765432100123456789abcdef,4444444444444444,root,"+podFront+",hipstershop.Frontend/Recv.,"+
			ns(base.Add(10*time.Minute+5*time.Second))+","+ns(base.Add(10*time.Minute+6*time.Second))+",1000000")
	writeFile(t, dir, "rca_data/log/03_30_log.csv",
		"Timestamp,TimeUnixNano,Node,PodName,Container,TraceID,SpanID,Log",
		`2022-08-22T03:30:20.101Z,`+at(101)+`,10.0.0.2,`+podCart+`,server,trace-A,span-A2,"{""log"":""{\""severity\"":\""error\"",\""message\"":\""boom\""}\n"",""stream"":""stdout""}"`,
		`2022-08-22T03:30:20.000Z,`+at(0)+`,10.0.0.1,`+podFront+`,server,`+hexTrace+`,1111111111111111,"{""log"":""{\""level\"":\""info\"",\""msg\"":\""ok\""}\n""}"`,
		`2022-08-22T03:30:20.200Z,`+at(200)+`,10.0.0.1,`+podFront+`,server,,,plain text line`)
	writeFile(t, dir, "rca_data/metric/"+podCart+"_metric.csv.gz", metricRows(podCart, base, 60)...)
	front := []string{"Time,TimeStamp,ServiceName,SuccessRate(%),LatencyP50(s)"}
	for i := range 60 {
		ts := base.Add(time.Duration(i)*time.Minute + 19*time.Second)
		front = append(front, fmt.Sprintf("%s +0000 UTC m=+1.0,%d,Frontend,100,0.%d", ts.Format("2006-01-02 15:04:05"), ts.Unix(), i+1))
	}
	writeFile(t, dir, "rca_data/metric/front_service.csv", front...)
	writeFile(t, dir, "rca_data/metric/dependency.csv", "Source,Target,Weight", "frontend,cartservice,1")
	writeFile(t, dir, "construct_data/metric/dependency.csv", "Source,Target,Weight", "frontend,cartservice,1")
	writeFile(t, dir, "construct_data/metric/"+podFront+"_metric.csv", metricRows(podFront, base.Add(-time.Hour), 20)...)
	return dir
}

func testConfig(dir string) Config {
	cfg := DefaultConfig()
	cfg.Dir = dir
	cfg.StatePath = filepath.Join(dir, "state.json") // dataset dirs are read-only in real use; fine for a test
	return cfg
}

func sha(src string, n int) string {
	s := sha256.Sum256([]byte(src))
	return hex.EncodeToString(s[:n])
}

func TestReplayAll(t *testing.T) {
	dir := synthDataset(t)
	fake := startFake(t, func(f *fakeOTLP) { f.throttleFirst = true })
	s := fake.sender(t)
	st, err := Run(context.Background(), testConfig(dir), s)
	if err != nil {
		t.Fatal(err)
	}
	if st.Spans != 6 || st.LogRecords != 3 || st.DataPoints != 360 || st.SkippedFiles != 1 || st.BadRows != 0 {
		t.Fatalf("stats %+v", st)
	}
	if s.Retries != 3 {
		t.Errorf("retries %d, want 3 (one throttled request per signal)", s.Retries)
	}
	for _, a := range fake.auth {
		if a != "Bearer k1" {
			t.Fatalf("authorization %q", a)
		}
	}

	spans := map[string]recSpan{}
	for _, sp := range fake.spans() {
		spans[sp.spanID] = sp
	}
	if len(spans) != 6 {
		t.Fatalf("%d distinct spans, want 6", len(spans))
	}
	mappedA1, mappedA2 := sha("span-A1", 8), sha("span-A2", 8)
	mappedTrace := sha("trace-A", 16)
	for _, tc := range []struct {
		id, parent, trace, service, pod, name string
	}{
		{"1111111111111111", "", hexTrace, "frontend", podFront, "hipstershop.Frontend/Recv."},
		{"2222222222222222", "1111111111111111", hexTrace, "frontend", podFront, "hipstershop.CartService/GetCart"},
		{"3333333333333333", "2222222222222222", hexTrace, "cartservice", podCart, "hipstershop.CartService/GetCart"},
		{mappedA1, "", mappedTrace, "frontend", podFront, "hipstershop.Frontend/Recv."},
		{mappedA2, mappedA1, mappedTrace, "cartservice", podCart, "hipstershop.CartService/AddItem"},
	} {
		sp, ok := spans[tc.id]
		if !ok {
			t.Errorf("span %s missing", tc.id)
			continue
		}
		if sp.pID != tc.parent || sp.traceID != tc.trace || sp.service != tc.service || sp.pod != tc.pod || sp.name != tc.name {
			t.Errorf("span %s = %+v, want %+v", tc.id, sp, tc)
		}
	}
	if a := spans[mappedA2].attrs; a[AttrSourceTraceID] != "trace-A" || a[AttrSourceSpanID] != "span-A2" {
		t.Errorf("mapped span attrs %v", a)
	}
	if a := spans["1111111111111111"].attrs; len(a) != 0 {
		t.Errorf("hex span has attrs %v", a)
	}

	logs := fake.logRecords()
	if len(logs) != 3 {
		t.Fatalf("%d logs", len(logs))
	}
	byBody := map[string]recLog{}
	for _, l := range logs {
		switch {
		case strings.Contains(l.body, "boom"):
			byBody["boom"] = l
		case strings.Contains(l.body, "ok"):
			byBody["ok"] = l
		default:
			byBody["plain"] = l
		}
	}
	if l := byBody["boom"]; l.traceID != mappedTrace || l.spanID != mappedA2 || l.severity != "Error" ||
		l.service != "cartservice" || l.node != "10.0.0.2" || l.container != "server" || l.pod != podCart {
		t.Errorf("boom log %+v (span trace %s)", l, spans[mappedA2].traceID)
	}
	if l := byBody["ok"]; l.traceID != hexTrace || l.spanID != "1111111111111111" || l.severity != "Info" {
		t.Errorf("ok log %+v", l)
	}
	if l := byBody["plain"]; l.traceID != "" || l.spanID != "" || l.severity != "Unspecified" || l.body != "plain text line" {
		t.Errorf("plain log %+v", l)
	}

	count := map[string]int{}
	for _, p := range fake.points() {
		count[p.metric+"|"+p.service+"|"+p.unit]++
		if p.metric == "nezha.cpu_usage" && p.pod == podCart && p.ts == base.Add(7*time.Minute+19*time.Second).UnixNano() && p.value != 7 {
			t.Errorf("cpu at 03:07 = %v, want 7", p.value)
		}
		if strings.HasPrefix(p.metric, "nezha.front_service.") && p.file != "front_service" {
			t.Errorf("front_service point without nezha.file: %+v", p)
		}
	}
	want := map[string]int{
		"nezha.cpu_usage|cartservice|m": 60, "nezha.memory_usage|cartservice|Mi": 60, "nezha.pod_success_rate|cartservice|%": 60,
		"nezha.cpu_usage|frontend|m": 20, "nezha.memory_usage|frontend|Mi": 20, "nezha.pod_success_rate|frontend|%": 20,
		"nezha.front_service.success_rate|frontend|%": 60, "nezha.front_service.latency_p50|frontend|s": 60,
	}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("gauges\n got %v\nwant %v", count, want)
	}
}

func TestReplayOnlyWindows(t *testing.T) {
	dir := synthDataset(t)
	fake := startFake(t, nil)
	cfg := testConfig(dir)
	cfg.OnlyWindows = true
	st, err := Run(context.Background(), cfg, fake.sender(t))
	if err != nil {
		t.Fatal(err)
	}
	wantWindows := []Window{
		{base.Add(-time.Hour).UnixNano(), base.Add(-50 * time.Minute).UnixNano()}, // baseline 02:00-02:10
		{base.Add(25 * time.Minute).UnixNano(), base.Add(36 * time.Minute).UnixNano()},
	}
	if fmt.Sprint(st.Windows) != fmt.Sprint(wantWindows) {
		t.Errorf("windows %v, want %v", st.Windows, wantWindows)
	}
	// 03_30 traces kept whole, 03_10 dropped; cart 11 rows x 3, front_service 11 x 2, baseline 10 x 3.
	if st.Spans != 5 || st.LogRecords != 3 || st.DataPoints != 33+22+30 {
		t.Fatalf("stats %+v", st)
	}
	for _, sp := range fake.spans() {
		if sp.spanID == "4444444444444444" {
			t.Error("span outside the windows was sent")
		}
	}
	for _, p := range fake.points() {
		if !windowFilter(wantWindows).keep(p.ts) {
			t.Errorf("point outside the windows: %+v", p)
		}
	}
}

func TestReplayResume(t *testing.T) {
	dir := synthDataset(t)
	cfg := testConfig(dir)
	cfg.BatchSize = 2
	// First run: the server refuses the third trace request (03_10 takes one,
	// 03_30 one batch of 2 spans, then fails on the next batch).
	first := startFake(t, func(f *fakeOTLP) { f.failTracesAfter = 2 })
	if _, err := Run(context.Background(), cfg, first.sender(t)); err == nil {
		t.Fatal("first run: want an error")
	}
	if n := len(first.spans()); n != 3 {
		t.Fatalf("first run sent %d spans, want 3", n)
	}
	st, err := LoadState(cfg.StatePath)
	if err != nil {
		t.Fatal(err)
	}
	if fs := st.Files["rca_data/trace/03_30_trace.csv.gz"]; fs.Done || fs.Rows != 2 {
		t.Fatalf("state of the failed file %+v", fs)
	}

	wrong := cfg
	wrong.Resume, wrong.OnlyWindows = true, true
	if _, err := Run(context.Background(), wrong, first.sender(t)); err == nil || !strings.Contains(err.Error(), "state file") {
		t.Fatalf("resume with other options: err %v", err)
	}

	second := startFake(t, nil)
	cfg.Resume = true
	stats, err := Run(context.Background(), cfg, second.sender(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(second.points()) != 0 {
		t.Errorf("resume resent %d metric points of finished files", len(second.points()))
	}
	if stats.Spans != 3 || stats.LogRecords != 3 || stats.ResumedFiles != 5 {
		t.Errorf("resume stats %+v", stats)
	}
	ids := map[string]int{}
	for _, sp := range append(first.spans(), second.spans()...) {
		ids[sp.spanID]++
	}
	if len(ids) != 6 {
		t.Errorf("spans over both runs: %v", ids)
	}
	for id, n := range ids {
		if n != 1 {
			t.Errorf("span %s sent %d times", id, n)
		}
	}
}
