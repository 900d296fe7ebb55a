package replay

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

func TestServiceFromPod(t *testing.T) {
	for _, tc := range []struct{ pod, want string }{
		{"frontend-579b9bff58-t2dbm", "frontend"},
		{"redis-cart-5b8c9f9c7d-x7k2q", "redis-cart"},
		{"ts-basic-service-5dc8d4f9fd-46997", "ts-basic-service"}, // an all-digit pod suffix is not an ordinal
		{"redis-cart-0", "redis-cart"},
		{"single", "single"},
		{"two-parts", "two-parts"},
		{"", ""},
	} {
		if got := ServiceFromPod(tc.pod); got != tc.want {
			t.Errorf("ServiceFromPod(%q) = %q, want %q", tc.pod, got, tc.want)
		}
	}
}

func TestMetricName(t *testing.T) {
	for _, tc := range []struct{ col, name, unit string }{
		{"CpuUsage(m)", "cpu_usage", "m"},
		{"CpuUsageRate(%)", "cpu_usage_rate", "%"},
		{"PodClientLatencyP90(s)", "pod_client_latency_p90", "s"},
		{"SyscallRead", "syscall_read", ""},
		{"NodeCPUUsage", "node_cpu_usage", ""},
		{"frontend_cartservice", "frontend_cartservice", ""},
		{" weird--name ", "weird_name", ""},
	} {
		name, unit := MetricName(tc.col)
		if name != tc.name || unit != tc.unit {
			t.Errorf("MetricName(%q) = %q, %q; want %q, %q", tc.col, name, unit, tc.name, tc.unit)
		}
	}
}

func TestSeverity(t *testing.T) {
	for _, tc := range []struct {
		line string
		want plog.SeverityNumber
	}{
		{`{"log":"{\"severity\": \"INFO\", \"message\": \"x\"}\n","stream":"stdout"}`, plog.SeverityNumberInfo},
		{`{"log":"{\"level\":\"warning\"}\n"}`, plog.SeverityNumberWarn},
		{`{"level":"error","msg":"x"}`, plog.SeverityNumberError},
		{`{"log":"not json\n","stream":"stderr"}`, plog.SeverityNumberUnspecified},
		{`plain`, plog.SeverityNumberUnspecified},
		{`{"severity":"bogus"}`, plog.SeverityNumberUnspecified},
	} {
		if _, got := Severity(tc.line); got != tc.want {
			t.Errorf("Severity(%s) = %v, want %v", tc.line, got, tc.want)
		}
	}
}

func TestIDs(t *testing.T) {
	id, mapped := TraceID("0087F677C0A2CF3F80A551987167911B")
	if mapped || id.String() != "0087f677c0a2cf3f80a551987167911b" {
		t.Errorf("hex trace id: %s %v", id, mapped)
	}
	a, m1 := SpanID("span-1")
	b, m2 := SpanID("span-1")
	if !m1 || !m2 || a != b || a.IsEmpty() {
		t.Errorf("mapped span ids %s %s", a, b)
	}
	if id, mapped := SpanID(""); mapped || !id.IsEmpty() {
		t.Error("empty span id")
	}
}

func TestBaselineWindow(t *testing.T) {
	m := func(min int) int64 { return base.Add(time.Duration(min) * time.Minute).UnixNano() }
	faults := []Window{{m(5), m(16)}, {m(20), m(31)}}
	for _, tc := range []struct {
		from int64
		want Window
	}{
		{m(-30), Window{m(-30), m(-20)}},
		{m(0), Window{m(31), m(41)}}, // 0-10 hits the first window, 16-26 the second
		{m(40) + 5, Window{m(40), m(50)}},
	} {
		if got := BaselineWindow(tc.from, 10, faults); got != tc.want {
			t.Errorf("BaselineWindow(%d) = %v, want %v", tc.from, got, tc.want)
		}
	}
}

func TestHTTPSenderRetriesOn429(t *testing.T) {
	var calls atomic.Int32
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/traces" || r.Header.Get("Authorization") != "Bearer k2" {
			http.Error(w, "bad", http.StatusBadRequest)
			return
		}
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "0")
			http.Error(w, "slow down", http.StatusTooManyRequests)
			return
		}
		body, _ := io.ReadAll(r.Body)
		req := ptraceotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		got.Store(int64(req.Traces().SpanCount()))
		resp := ptraceotlp.NewExportResponse()
		resp.PartialSuccess().SetRejectedSpans(1)
		out, _ := resp.MarshalProto()
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(out)
	}))
	defer srv.Close()
	s, err := NewSender(SenderConfig{HTTPURL: srv.URL + "/", Key: "k2", MaxRetries: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("x")
	rejected, err := s.Traces(context.Background(), td)
	if err != nil || rejected != 1 || s.Retries != 1 || got.Load() != 1 {
		t.Fatalf("rejected %d err %v retries %d received %d", rejected, err, s.Retries, got.Load())
	}
}
