package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// takeMetrics returns and forgets the metrics published so far.
func (p *fakePublisher) takeMetrics() []pmetric.Metrics {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.metrics
	p.metrics = nil
	return m
}

// sampleMetrics returns a gauge with n points and a sum with one point
// carrying an exemplar of sampleTraceID.
func sampleMetrics(n int) pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "checkout")
	sm := rm.ScopeMetrics().AppendEmpty()
	g := sm.Metrics().AppendEmpty()
	g.SetName("queue.depth")
	gdps := g.SetEmptyGauge().DataPoints()
	for i := range n {
		p := gdps.AppendEmpty()
		p.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + i))
		p.SetIntValue(int64(i))
	}
	s := sm.Metrics().AppendEmpty()
	s.SetName("orders")
	sum := s.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	p := sum.DataPoints().AppendEmpty()
	p.SetTimestamp(1_700_000_000_000_000_000)
	p.SetDoubleValue(3)
	ex := p.Exemplars().AppendEmpty()
	ex.SetTraceID(sampleTraceID)
	ex.SetSpanID(sampleSpanID)
	ex.SetDoubleValue(1)
	return md
}

func metricsProto(t testing.TB, md pmetric.Metrics) []byte {
	t.Helper()
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func metricsJSON(t testing.TB, md pmetric.Metrics) []byte {
	t.Helper()
	b, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func countPoints(calls []pmetric.Metrics) int {
	n := 0
	for _, md := range calls {
		n += md.DataPointCount()
	}
	return n
}

func TestHTTPMetricsExport(t *testing.T) {
	g := startGateway(t, nil)
	const ctProto, ctJSON = "application/x-protobuf", "application/json"
	nameless := sampleMetrics(2)
	nameless.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).SetName("")

	tests := []struct {
		name       string
		req        httpRequest
		wantStatus int
		wantPoints int
		check      func(t *testing.T, resp httpResponse, calls []pmetric.Metrics)
	}{
		{name: "protobuf", req: httpRequest{contentType: ctProto, body: metricsProto(t, sampleMetrics(3))}, wantStatus: 200, wantPoints: 4,
			check: func(t *testing.T, resp httpResponse, calls []pmetric.Metrics) {
				r := pmetricotlp.NewExportResponse()
				if err := r.UnmarshalProto(resp.body); err != nil {
					t.Errorf("response is not an ExportMetricsServiceResponse: %v", err)
				}
				if r.PartialSuccess().RejectedDataPoints() != 0 {
					t.Errorf("partial success %v", r.PartialSuccess().RejectedDataPoints())
				}
				ex := calls[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(1).Sum().DataPoints().At(0).Exemplars().At(0)
				if ex.TraceID() != sampleTraceID || ex.SpanID() != sampleSpanID {
					t.Errorf("exemplar ids %v %v", ex.TraceID(), ex.SpanID())
				}
			}},
		{name: "JSON", req: httpRequest{contentType: ctJSON, body: metricsJSON(t, sampleMetrics(2))}, wantStatus: 200, wantPoints: 3,
			check: func(t *testing.T, resp httpResponse, _ []pmetric.Metrics) {
				if ct := resp.header.Get("Content-Type"); ct != ctJSON {
					t.Errorf("Content-Type = %q", ct)
				}
				if err := pmetricotlp.NewExportResponse().UnmarshalJSON(resp.body); err != nil {
					t.Errorf("response is not JSON ExportMetricsServiceResponse: %v: %q", err, resp.body)
				}
			}},
		{name: "gzip protobuf", req: httpRequest{contentType: ctProto, contentEncoding: "gzip", body: gzipped(t, metricsProto(t, sampleMetrics(1)))}, wantStatus: 200, wantPoints: 2},
		{name: "upper-case exemplar ids", req: httpRequest{contentType: ctJSON, body: []byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","gauge":{"dataPoints":[{"asInt":"1","exemplars":[{"asDouble":1,"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174"}]}]}}]}]}]}`)}, wantStatus: 200, wantPoints: 1,
			check: func(t *testing.T, _ httpResponse, calls []pmetric.Metrics) {
				ex := calls[0].ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0).Exemplars().At(0)
				if ex.TraceID() != sampleTraceID || ex.SpanID() != sampleSpanID {
					t.Errorf("ids %v %v", ex.TraceID(), ex.SpanID())
				}
			}},
		{name: "nameless metric rejected, rest accepted", req: httpRequest{contentType: ctProto, body: metricsProto(t, nameless)}, wantStatus: 200, wantPoints: 1,
			check: func(t *testing.T, resp httpResponse, _ []pmetric.Metrics) {
				r := pmetricotlp.NewExportResponse()
				if err := r.UnmarshalProto(resp.body); err != nil {
					t.Fatal(err)
				}
				if ps := r.PartialSuccess(); ps.RejectedDataPoints() != 2 || !strings.Contains(ps.ErrorMessage(), "metrics[0].name") {
					t.Errorf("partial success %d %q", ps.RejectedDataPoints(), ps.ErrorMessage())
				}
			}},
		{name: "empty", req: httpRequest{contentType: ctJSON, body: []byte(`{}`)}, wantStatus: 200},
		{name: "garbage protobuf", req: httpRequest{contentType: ctProto, body: []byte("not protobuf \xff\xff\xff")}, wantStatus: 400},
		{name: "garbage JSON", req: httpRequest{contentType: ctJSON, body: []byte(`{"resourceMetrics":[`)}, wantStatus: 400},
		{name: "short exemplar trace id", req: httpRequest{contentType: ctJSON, body: []byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","gauge":{"dataPoints":[{"asInt":"1","exemplars":[{"traceId":"0102"}]}]}}]}]}]}`)}, wantStatus: 400},
		{name: "no key", req: httpRequest{contentType: ctJSON, key: "-", body: metricsJSON(t, sampleMetrics(1))}, wantStatus: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.path = "/v1/metrics"
			resp := postHTTP(t, g, tc.req)
			calls := g.pub.takeMetrics()
			if resp.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.status, tc.wantStatus, resp.body)
			}
			if got := countPoints(calls); got != tc.wantPoints {
				t.Fatalf("%d points published, want %d", got, tc.wantPoints)
			}
			if tc.check != nil {
				tc.check(t, resp, calls)
			}
		})
	}
	if got := counterValue(g.svc.metrics.records.WithLabelValues("metrics")); got != 11 {
		t.Errorf("records_total{metrics} = %v, want 11", got)
	}
	if resp := postHTTP(t, g, httpRequest{method: http.MethodGet, path: "/v1/metrics"}); resp.status != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/metrics = %d", resp.status)
	}
}

func TestGRPCMetricsExport(t *testing.T) {
	g := startGateway(t, nil)
	cc := dialGRPC(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+testKey)

	if _, err := pmetricotlp.NewGRPCClient(cc).Export(authed, pmetricotlp.NewExportRequestFromMetrics(sampleMetrics(5))); err != nil {
		t.Fatalf("export: %v", err)
	}
	if got := countPoints(g.pub.takeMetrics()); got != 6 {
		t.Fatalf("%d points published, want 6", got)
	}
	if _, err := pmetricotlp.NewGRPCClient(cc).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(sampleMetrics(1))); status.Code(err) != codes.Unauthenticated {
		t.Errorf("without key: %v, want Unauthenticated", err)
	}
	var out []byte
	err := cc.Invoke(authed, metricsSignal.grpcMethod, []byte("not protobuf \xff\xff\xff"), &out, grpc.ForceCodec(bytesCodec{}))
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("garbage: %v, want InvalidArgument", err)
	}
	if got := countPoints(g.pub.takeMetrics()); got != 0 {
		t.Errorf("%d points published after rejects", got)
	}
}
