package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func newGen(t *testing.T, cfg ModelConfig, seed uint64) *Generator {
	t.Helper()
	m, err := NewModel(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return NewGenerator(m, seed)
}

func marshal(t *testing.T, td ptrace.Traces) []byte {
	t.Helper()
	b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDeterministic(t *testing.T) {
	cfg := DefaultModelConfig()
	gen := func(seed uint64) [][]byte {
		g := newGen(t, cfg, seed)
		g.SetLogsPerTrace(2)
		g.SetFaults(g.Model().PlanFaults(2, t0, time.Minute))
		var out [][]byte
		for i := range 5 {
			b := g.NextBatch(t0.Add(time.Duration(i)*time.Second), 200)
			out = append(out, marshal(t, b.Traces))
			lb, _ := (&plog.ProtoMarshaler{}).MarshalLogs(b.Logs)
			out = append(out, lb)
		}
		return out
	}
	a, b, c := gen(7), gen(7), gen(8)
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			t.Fatalf("request %d differs between two runs with the same seed", i)
		}
	}
	if bytes.Equal(a[0], c[0]) {
		t.Fatal("different seeds generated the same request")
	}
}

func TestModel(t *testing.T) {
	tests := []struct {
		name     string
		services int
	}{{"fewer", 3}, {"shop", 8}, {"more", 12}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultModelConfig()
			cfg.Services = tt.services
			m1, err := NewModel(cfg)
			if err != nil {
				t.Fatal(err)
			}
			m2, _ := NewModel(cfg)
			if len(m1.Services) != tt.services {
				t.Fatalf("%d services, want %d", len(m1.Services), tt.services)
			}
			for i, s := range m1.Services {
				if len(s.Pods) != cfg.PodsPerService {
					t.Fatalf("%s: %d pods", s.Name, len(s.Pods))
				}
				for j, p := range s.Pods {
					if p.UID != m2.Services[i].Pods[j].UID || p.ContainerID != m2.Services[i].Pods[j].ContainerID {
						t.Fatalf("pod %s differs between two models of the same seed", p.Name)
					}
					if len(p.ContainerID) != 64 {
						t.Fatalf("container id %q is not 64 hex", p.ContainerID)
					}
				}
			}
		})
	}
	bad := DefaultModelConfig()
	bad.Services, bad.FanOut = 0, 0
	if _, err := NewModel(bad); err == nil {
		t.Fatal("invalid config accepted")
	}
}

func TestTraceShape(t *testing.T) {
	g := newGen(t, DefaultModelConfig(), 1)
	g.SetLogsPerTrace(1)
	b := g.NextBatch(t0, 2000)
	if b.Spans < 2000 || b.Spans != b.Traces.SpanCount() {
		t.Fatalf("spans = %d (count %d), want >= 2000", b.Spans, b.Traces.SpanCount())
	}
	traces := map[pcommon.TraceID]bool{}
	for _, r := range b.Refs {
		traces[r.TraceID] = true
	}
	business, roots, withK8s := 0, 0, 0
	rss := b.Traces.ResourceSpans()
	for i := range rss.Len() {
		rs := rss.At(i)
		if _, ok := rs.Resource().Attributes().Get("k8s.pod.uid"); ok {
			withK8s++
		}
		spans := rs.ScopeSpans().At(0).Spans()
		for j := range spans.Len() {
			sp := spans.At(j)
			if !traces[sp.TraceID()] {
				t.Fatal("span of an unknown trace")
			}
			if sp.ParentSpanID().IsEmpty() {
				roots++
			}
			if _, ok := sp.Attributes().Get("business.transaction"); ok {
				business++
				for _, k := range []string{"order.id", "user.id"} {
					if _, ok := sp.Attributes().Get(k); !ok {
						t.Fatalf("business span without %s", k)
					}
				}
			}
			if n := sp.Attributes().Len(); n < 8 {
				t.Fatalf("span %q has only %d attributes", sp.Name(), n)
			}
			if sp.EndTimestamp() < sp.StartTimestamp() {
				t.Fatal("span ends before it starts")
			}
		}
	}
	if roots != len(b.Refs) {
		t.Fatalf("%d root spans for %d traces", roots, len(b.Refs))
	}
	if business == 0 || withK8s != rss.Len() {
		t.Fatalf("business=%d, resources with k8s=%d of %d", business, withK8s, rss.Len())
	}
	if b.LogRecords != len(b.Refs) || b.Logs.LogRecordCount() != b.LogRecords {
		t.Fatalf("log records = %d/%d, want one per trace (%d)", b.LogRecords, b.Logs.LogRecordCount(), len(b.Refs))
	}
	lr := b.Logs.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
	if !traces[lr.TraceID()] || lr.SpanID().IsEmpty() {
		t.Fatal("log record does not carry a generated trace id and span id")
	}
}

func TestFaultsRaiseErrorsAndLatency(t *testing.T) {
	cfg := DefaultModelConfig()
	cfg.PodsPerService = 1
	g := newGen(t, cfg, 3)
	m := g.Model()
	p := m.Service("catalog").Pods[0]
	g.SetFaults([]Fault{m.fault(p, t0.Add(time.Minute), t0.Add(2*time.Minute), 10, 1)})
	before, n1 := countServerErrors(g.NextBatch(t0, 3000).Traces, p.Name)
	during, n2 := countServerErrors(g.NextBatch(t0.Add(90*time.Second), 3000).Traces, p.Name)
	if n1 == 0 || n2 == 0 {
		t.Fatalf("pod served no spans (%d, %d)", n1, n2)
	}
	if during != n2 || before*2 > n1 {
		t.Fatalf("errors before=%d/%d during=%d/%d; want few before, all during", before, n1, during, n2)
	}
	path := filepath.Join(t.TempDir(), "gt.json")
	if err := WriteGroundTruth(path, GroundTruth{Seed: 3, Faults: m.PlanFaults(2, t0, time.Minute)}); err != nil {
		t.Fatal(err)
	}
	var gt GroundTruth
	raw, _ := os.ReadFile(path)
	if err := json.Unmarshal(raw, &gt); err != nil || len(gt.Faults) != 2 || gt.Faults[0].ContainerID == "" {
		t.Fatalf("ground truth %s: %v", raw, err)
	}
}

func countServerErrors(td ptrace.Traces, pod string) (errs, spans int) {
	for i := range td.ResourceSpans().Len() {
		rs := td.ResourceSpans().At(i)
		if v, _ := rs.Resource().Attributes().Get("k8s.pod.name"); v.Str() != pod {
			continue
		}
		ss := rs.ScopeSpans().At(0).Spans()
		for j := range ss.Len() {
			if ss.At(j).Kind() == ptrace.SpanKindServer {
				spans++
				if ss.At(j).Status().Code() == ptrace.StatusCodeError {
					errs++
				}
			}
		}
	}
	return errs, spans
}

func TestMetricsExemplarsPointAtSpans(t *testing.T) {
	g := newGen(t, DefaultModelConfig(), 5)
	g.EnableMetrics()
	b := g.NextBatch(t0, 500)
	ids := map[pcommon.SpanID]bool{}
	for i := range b.Traces.ResourceSpans().Len() {
		ss := b.Traces.ResourceSpans().At(i).ScopeSpans().At(0).Spans()
		for j := range ss.Len() {
			ids[ss.At(j).SpanID()] = true
		}
	}
	md, points := g.Metrics(t0, t0.Add(time.Second))
	if points == 0 || md.DataPointCount() != points {
		t.Fatalf("points = %d, DataPointCount = %d", points, md.DataPointCount())
	}
	exemplars, kinds := 0, map[pmetric.MetricType]bool{}
	for i := range md.ResourceMetrics().Len() {
		ms := md.ResourceMetrics().At(i).ScopeMetrics().At(0).Metrics()
		for j := range ms.Len() {
			kinds[ms.At(j).Type()] = true
			if ms.At(j).Type() != pmetric.MetricTypeHistogram {
				continue
			}
			exs := ms.At(j).Histogram().DataPoints().At(0).Exemplars()
			for k := range exs.Len() {
				exemplars++
				if !ids[exs.At(k).SpanID()] {
					t.Fatal("exemplar points at a span that was not generated")
				}
			}
		}
	}
	if exemplars == 0 || !kinds[pmetric.MetricTypeGauge] || !kinds[pmetric.MetricTypeSum] {
		t.Fatalf("exemplars=%d kinds=%v", exemplars, kinds)
	}
}

// fakeSender counts what it receives; reject makes it refuse everything.
type fakeSender struct {
	mu     sync.Mutex
	spans  int
	logs   int
	points int
	reject bool
}

func (f *fakeSender) SendTraces(_ context.Context, td ptrace.Traces) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.spans += td.SpanCount()
	if f.reject {
		return int64(td.SpanCount()), nil
	}
	return 0, nil
}

func (f *fakeSender) SendLogs(_ context.Context, ld plog.Logs) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logs += ld.LogRecordCount()
	return 0, nil
}

func (f *fakeSender) SendMetrics(_ context.Context, md pmetric.Metrics) (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.points += md.DataPointCount()
	return 0, nil
}

func (f *fakeSender) Close() error { return nil }

func TestRunRateControl(t *testing.T) {
	tests := []struct {
		name   string
		reject bool
	}{{"accepted", false}, {"rejected", true}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := &fakeSender{reject: tt.reject}
			cfg := DefaultRunConfig()
			cfg.Rate, cfg.Duration, cfg.Connections, cfg.BatchSpans = 20000, 300*time.Millisecond, 2, 500
			cfg.LogsPerTrace, cfg.Metrics, cfg.MetricsInterval = 1, true, 100*time.Millisecond
			cfg.NewSender = func() (Sender, error) { return fs, nil }
			acks := 0
			var mu sync.Mutex
			cfg.OnAck = func(refs []TraceRef, _ time.Time) { mu.Lock(); acks += len(refs); mu.Unlock() }
			st, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			// Bounded: never more than the schedule allows (plus one request
			// of whole traces), and something was sent.
			limit := int64(cfg.Rate*cfg.Duration.Seconds()) + int64(cfg.BatchSpans) + 200
			if st.SentSpans == 0 || st.SentSpans > limit {
				t.Fatalf("sent %d spans, want 1..%d", st.SentSpans, limit)
			}
			if int64(fs.spans) != st.SentSpans || st.InFlight != 0 {
				t.Fatalf("sender got %d spans, stats say %d (in flight %d)", fs.spans, st.SentSpans, st.InFlight)
			}
			if tt.reject {
				if st.AckedSpans != 0 || st.RejSpans != st.SentSpans || acks != 0 {
					t.Fatalf("acked=%d rejected=%d acks=%d", st.AckedSpans, st.RejSpans, acks)
				}
			} else if st.AckedSpans != st.SentSpans || acks == 0 {
				t.Fatalf("acked=%d of %d, acks=%d", st.AckedSpans, st.SentSpans, acks)
			}
			if fs.logs == 0 || st.SentLogs != int64(fs.logs) {
				t.Fatalf("logs sent=%d received=%d", st.SentLogs, fs.logs)
			}
		})
	}
}

func TestRunStopsOnCancel(t *testing.T) {
	cfg := DefaultRunConfig()
	cfg.Rate, cfg.Duration = 1000, time.Hour
	cfg.NewSender = func() (Sender, error) { return &fakeSender{}, nil }
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	st, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if st.SentSpans > int64(cfg.Rate*10) {
		t.Fatalf("sent %d spans after a 200ms run", st.SentSpans)
	}
}

func TestRunConfigValidate(t *testing.T) {
	cfg := DefaultRunConfig()
	cfg.Transport, cfg.Rate, cfg.Connections = "smoke", 0, 0
	err := cfg.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, want := range []string{"transport", "rate", "connections"} {
		if !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}
