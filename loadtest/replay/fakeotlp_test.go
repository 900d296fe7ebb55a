package replay

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

// fakeOTLP is a real gRPC server on 127.0.0.1:0 recording every export.
type fakeOTLP struct {
	ptraceotlp.UnimplementedGRPCServer
	addr string

	mu      sync.Mutex
	traces  []ptrace.Traces
	logs    []plog.Logs
	metrics []pmetric.Metrics
	auth    []string
	// failTracesAfter > 0: trace requests after that many answer INVALID_ARGUMENT.
	failTracesAfter int
	// throttleFirst: the first request of every signal answers RESOURCE_EXHAUSTED with RetryInfo.
	throttleFirst bool
	throttled     map[string]bool
}

func startFake(t *testing.T, configure func(*fakeOTLP)) *fakeOTLP {
	t.Helper()
	f := &fakeOTLP{throttled: map[string]bool{}}
	if configure != nil {
		configure(f)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	ptraceotlp.RegisterGRPCServer(srv, f)
	plogotlp.RegisterGRPCServer(srv, &fakeLogs{f: f})
	pmetricotlp.RegisterGRPCServer(srv, &fakeMetrics{f: f})
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	f.addr = lis.Addr().String()
	return f
}

func (f *fakeOTLP) sender(t *testing.T) *Sender {
	t.Helper()
	s, err := NewSender(SenderConfig{GRPCEndpoint: f.addr, Key: "k1", MaxRetries: 3, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func (f *fakeOTLP) gate(ctx context.Context, signal string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		f.auth = append(f.auth, md.Get("authorization")...)
	}
	if f.throttleFirst && !f.throttled[signal] {
		f.throttled[signal] = true
		st, _ := status.New(codes.ResourceExhausted, "slow down").WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(10 * time.Millisecond)})
		return st.Err()
	}
	if signal == "traces" && f.failTracesAfter > 0 && len(f.traces) >= f.failTracesAfter {
		return status.Error(codes.InvalidArgument, "refused")
	}
	return nil
}

func (f *fakeOTLP) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	if err := f.gate(ctx, "traces"); err != nil {
		return ptraceotlp.NewExportResponse(), err
	}
	td := ptrace.NewTraces()
	req.Traces().CopyTo(td)
	f.mu.Lock()
	f.traces = append(f.traces, td)
	f.mu.Unlock()
	return ptraceotlp.NewExportResponse(), nil
}

type fakeLogs struct {
	plogotlp.UnimplementedGRPCServer
	f *fakeOTLP
}

func (l *fakeLogs) Export(ctx context.Context, req plogotlp.ExportRequest) (plogotlp.ExportResponse, error) {
	if err := l.f.gate(ctx, "logs"); err != nil {
		return plogotlp.NewExportResponse(), err
	}
	ld := plog.NewLogs()
	req.Logs().CopyTo(ld)
	l.f.mu.Lock()
	l.f.logs = append(l.f.logs, ld)
	l.f.mu.Unlock()
	return plogotlp.NewExportResponse(), nil
}

type fakeMetrics struct {
	pmetricotlp.UnimplementedGRPCServer
	f *fakeOTLP
}

func (m *fakeMetrics) Export(ctx context.Context, req pmetricotlp.ExportRequest) (pmetricotlp.ExportResponse, error) {
	if err := m.f.gate(ctx, "metrics"); err != nil {
		return pmetricotlp.NewExportResponse(), err
	}
	md := pmetric.NewMetrics()
	req.Metrics().CopyTo(md)
	m.f.mu.Lock()
	m.f.metrics = append(m.f.metrics, md)
	m.f.mu.Unlock()
	return pmetricotlp.NewExportResponse(), nil
}

// recSpan is a received span with its resource.
type recSpan struct {
	service, pod, name   string
	traceID, spanID, pID string
	attrs                map[string]any
	start                uint64
}

func (f *fakeOTLP) spans() []recSpan {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []recSpan
	for _, td := range f.traces {
		for _, rs := range td.ResourceSpans().All() {
			res := rs.Resource().Attributes()
			svc, _ := res.Get("service.name")
			pod, _ := res.Get("k8s.pod.name")
			for _, ss := range rs.ScopeSpans().All() {
				for _, sp := range ss.Spans().All() {
					out = append(out, recSpan{service: svc.Str(), pod: pod.Str(), name: sp.Name(),
						traceID: sp.TraceID().String(), spanID: sp.SpanID().String(), pID: sp.ParentSpanID().String(),
						attrs: sp.Attributes().AsRaw(), start: uint64(sp.StartTimestamp())})
				}
			}
		}
	}
	return out
}

type recLog struct {
	pod, node, container, service string
	traceID, spanID, severity     string
	body                          string
}

func (f *fakeOTLP) logRecords() []recLog {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []recLog
	for _, ld := range f.logs {
		for _, rl := range ld.ResourceLogs().All() {
			res := rl.Resource().Attributes().AsRaw()
			str := func(k string) string { s, _ := res[k].(string); return s }
			for _, sl := range rl.ScopeLogs().All() {
				for _, lr := range sl.LogRecords().All() {
					out = append(out, recLog{pod: str("k8s.pod.name"), node: str("k8s.node.name"), container: str("k8s.container.name"),
						service: str("service.name"), traceID: lr.TraceID().String(), spanID: lr.SpanID().String(),
						severity: lr.SeverityNumber().String(), body: lr.Body().Str()})
				}
			}
		}
	}
	return out
}

type recPoint struct {
	metric, unit, service, pod, file string
	ts                               int64
	value                            float64
}

func (f *fakeOTLP) points() []recPoint {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []recPoint
	for _, md := range f.metrics {
		for _, rm := range md.ResourceMetrics().All() {
			res := rm.Resource().Attributes().AsRaw()
			str := func(k string) string { s, _ := res[k].(string); return s }
			for _, sm := range rm.ScopeMetrics().All() {
				for _, m := range sm.Metrics().All() {
					for _, dp := range m.Gauge().DataPoints().All() {
						out = append(out, recPoint{metric: m.Name(), unit: m.Unit(), service: str("service.name"),
							pod: str("k8s.pod.name"), file: str("nezha.file"), ts: int64(dp.Timestamp()), value: dp.DoubleValue()})
					}
				}
			}
		}
	}
	return out
}
