package gateway

import (
	"context"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/limits"
)

// tracesWithBadSpan is n spans of which the one at index bad has an
// all-zero span id.
func tracesWithBadSpan(n, bad int) ptrace.Traces {
	td := sampleTraces(n)
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(bad).SetSpanID([8]byte{})
	return td
}

func (g *testGateway) rejectedRecords(reason string) float64 {
	return counterValue(g.svc.metrics.rejectedRecords.WithLabelValues("traces", reason))
}

// One invalid span among valid ones: the valid spans are published and the
// answer is success with partial_success, on every transport and encoding.
func TestPartialSuccess(t *testing.T) {
	g := startGateway(t, nil)
	cc := dialGRPC(t, g)
	const wantField = "resourceSpans[0].scopeSpans[0].spans[1].spanId"

	check := func(t *testing.T, resp ptraceotlp.ExportResponse) {
		t.Helper()
		ps := resp.PartialSuccess()
		if ps.RejectedSpans() != 1 || !strings.Contains(ps.ErrorMessage(), wantField) {
			t.Errorf("partial_success = {%d, %q}, want 1 rejected naming %s", ps.RejectedSpans(), ps.ErrorMessage(), wantField)
		}
		calls := g.pub.take()
		if len(calls) != 1 || calls[0].td.SpanCount() != 2 {
			t.Fatalf("published %d calls, want 1 of 2 spans", len(calls))
		}
		for i := range 2 {
			if calls[0].td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(i).SpanID().IsEmpty() {
				t.Error("the invalid span was published")
			}
		}
	}
	for _, tc := range []struct {
		name string
		send func(t *testing.T) ptraceotlp.ExportResponse
	}{
		{"http protobuf", func(t *testing.T) ptraceotlp.ExportResponse {
			r := postHTTP(t, g, httpRequest{contentType: "application/x-protobuf", body: protoBody(t, tracesWithBadSpan(3, 1))})
			if r.status != 200 {
				t.Fatalf("status %d: %q", r.status, r.body)
			}
			resp := ptraceotlp.NewExportResponse()
			if err := resp.UnmarshalProto(r.body); err != nil {
				t.Fatal(err)
			}
			return resp
		}},
		{"http JSON", func(t *testing.T) ptraceotlp.ExportResponse {
			r := postHTTP(t, g, httpRequest{contentType: "application/json", body: jsonBody(t, tracesWithBadSpan(3, 1))})
			if r.status != 200 {
				t.Fatalf("status %d: %q", r.status, r.body)
			}
			if !strings.Contains(string(r.body), `"partialSuccess"`) || !strings.Contains(string(r.body), `"rejectedSpans":"1"`) {
				t.Errorf("JSON response %s lacks partialSuccess", r.body)
			}
			resp := ptraceotlp.NewExportResponse()
			if err := resp.UnmarshalJSON(r.body); err != nil {
				t.Fatal(err)
			}
			return resp
		}},
		{"grpc", func(t *testing.T) ptraceotlp.ExportResponse {
			resp, err := exportGRPC(cc, testKey, tracesWithBadSpan(3, 1))
			if err != nil {
				t.Fatal(err)
			}
			return resp
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g.pub.take()
			before := g.rejectedRecords(reasonInvalidID)
			check(t, tc.send(t))
			if got := g.rejectedRecords(reasonInvalidID) - before; got != 1 {
				t.Errorf("rejected_records_total += %v, want 1", got)
			}
		})
	}

	// A span with a bad link is rejected as a whole, and so counted.
	td := sampleTraces(2)
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Links().AppendEmpty().SetTraceID(sampleTraceID)
	resp, err := exportGRPC(cc, testKey, td)
	if err != nil {
		t.Fatal(err)
	}
	if ps := resp.PartialSuccess(); ps.RejectedSpans() != 1 || !strings.Contains(ps.ErrorMessage(), "spans[0].links[0].spanId") {
		t.Errorf("bad link: partial_success = {%d, %q}", ps.RejectedSpans(), ps.ErrorMessage())
	}
}

// The OTLP JSON example of the shared fixtures uses upper-case hex ids.
func TestSharedTraceFixture(t *testing.T) {
	body, err := os.ReadFile("../../../shared/fixtures/otlp/trace.json")
	if err != nil {
		t.Fatalf("shared fixture (../shared beside the repo): %v", err)
	}
	g := startGateway(t, nil)
	r := postHTTP(t, g, httpRequest{contentType: "application/json", body: body})
	if r.status != 200 {
		t.Fatalf("status %d: %q", r.status, r.body)
	}
	calls := g.pub.take()
	if len(calls) != 1 || calls[0].td.SpanCount() == 0 {
		t.Fatalf("published %d calls", len(calls))
	}
	if got := calls[0].td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).TraceID().String(); got != "5b8efff798038103d269b633813fc60c" {
		t.Errorf("trace id = %s", got)
	}
}

// retryInfo returns the RetryInfo delay of a gRPC error, or -1.
func retryInfo(err error) time.Duration {
	for _, d := range status.Convert(err).Details() {
		if r, ok := d.(*errdetails.RetryInfo); ok {
			return r.RetryDelay.AsDuration()
		}
	}
	return -1
}

// Over the tenant's rate: 429 with Retry-After on HTTP, RESOURCE_EXHAUSTED
// with RetryInfo on gRPC; counted by transport and by tenant.
func TestTenantRateLimit(t *testing.T) {
	g := startGateway(t, func(c *Config) {
		c.TenantLimit = limits.Limit{RecordsPerSecond: 1, RecordsBurst: 5}
	})
	cc := dialGRPC(t, g)
	// The burst admits 5 spans, then the bucket is empty for seconds.
	if r := postHTTP(t, g, httpRequest{contentType: "application/json", body: jsonBody(t, sampleTraces(5))}); r.status != 200 {
		t.Fatalf("first request: %d %q", r.status, r.body)
	}
	r := postHTTP(t, g, httpRequest{contentType: "application/json", body: jsonBody(t, sampleTraces(3))})
	if r.status != 429 {
		t.Fatalf("over the limit: status %d, want 429", r.status)
	}
	if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("Retry-After = %q", r.header.Get("Retry-After"))
	}
	if msg := decodeJSONError(t, r.body); msg.Code != "rate_limited" || !strings.Contains(msg.Message, "rate limit") {
		t.Errorf("error = %+v", msg)
	}
	_, err := exportGRPC(cc, testKey, sampleTraces(3))
	if status.Code(err) != codes.ResourceExhausted {
		t.Fatalf("gRPC over the limit: %v, want RESOURCE_EXHAUSTED", err)
	}
	if d := retryInfo(err); d <= 0 {
		t.Errorf("RetryInfo delay = %v, want > 0", d)
	}
	if got := g.rejected(transportHTTP, reasonRateLimited); got != 1 {
		t.Errorf("rejected_total{http, rate_limited} = %v", got)
	}
	if got := g.rejected(transportGRPC, reasonRateLimited); got != 1 {
		t.Errorf("rejected_total{grpc, rate_limited} = %v", got)
	}
	if got := counterValue(g.svc.metrics.tenantRejected.WithLabelValues("t1", limits.ReasonRecords)); got != 2 {
		t.Errorf("tenant_rejected_total{t1} = %v, want 2", got)
	}
	if n := len(g.pub.take()); n != 1 {
		t.Errorf("published %d requests, want only the first", n)
	}
}

// staticOverrides is a limits.Source of fixed overrides.
type staticOverrides map[string]limits.Override

func (s staticOverrides) Overrides(context.Context) (map[string]limits.Override, error) {
	return s, nil
}

// A per-tenant override from the Source replaces the default.
func TestTenantLimitOverride(t *testing.T) {
	bytesPerSec, bytesBurst := 10.0, int64(100) // a request is larger: it takes the whole burst
	g := startGatewayWith(t, nil, func(d *Deps) {
		d.LimitOverrides = staticOverrides{"t1": {BytesPerSecond: &bytesPerSec, BytesBurst: &bytesBurst}}
	})
	// Run loads the overrides at start; wait until they are in force.
	waitFor(t, func() bool { return g.svc.limits.Limit("t1").BytesPerSecond == 10 }, "override loaded")
	if r := postHTTP(t, g, httpRequest{contentType: "application/json", body: jsonBody(t, sampleTraces(1))}); r.status != 200 {
		t.Fatalf("first request: %d", r.status)
	}
	r := postHTTP(t, g, httpRequest{contentType: "application/json", body: jsonBody(t, sampleTraces(1))})
	if r.status != 429 {
		t.Fatalf("second request: %d, want 429 (bytes limit)", r.status)
	}
	if got := counterValue(g.svc.metrics.tenantRejected.WithLabelValues("t1", limits.ReasonBytes)); got != 1 {
		t.Errorf("tenant_rejected_total{t1, bytes} = %v", got)
	}
}

// When MaxInflightBytes are taken by requests in progress, more are shed at
// once with 503 + Retry-After / UNAVAILABLE + RetryInfo.
func TestInflightBytesShed(t *testing.T) {
	body := protoBody(t, sampleTraces(20))
	g := startGateway(t, func(c *Config) {
		c.MaxRequestBytes = int64(len(body)) + 10
		c.MaxInflightBytes = int64(len(body)) + 10 // room for one request
	})
	cc := dialGRPC(t, g)
	block, entered := make(chan struct{}), make(chan struct{}, 1)
	g.pub.setBlock(block, entered)
	done := make(chan httpResponse, 1)
	go func() { done <- postHTTP(t, g, httpRequest{contentType: "application/x-protobuf", body: body}) }()
	<-entered // the first request holds its bytes while publishing

	r := postHTTP(t, g, httpRequest{contentType: "application/x-protobuf", body: body})
	if r.status != 503 || r.header.Get("Retry-After") == "" {
		t.Errorf("second request: %d Retry-After %q, want 503 with Retry-After", r.status, r.header.Get("Retry-After"))
	}
	_, err := exportGRPC(cc, testKey, sampleTraces(20))
	if status.Code(err) != codes.Unavailable || retryInfo(err) <= 0 {
		t.Errorf("gRPC: %v (RetryInfo %v), want UNAVAILABLE with RetryInfo", err, retryInfo(err))
	}
	if got := g.rejected(transportHTTP, reasonInflightBytes) + g.rejected(transportGRPC, reasonInflightBytes); got != 2 {
		t.Errorf("rejected_total{overloaded} = %v, want 2", got)
	}
	g.pub.setBlock(nil, nil)
	close(block)
	if r := <-done; r.status != 200 {
		t.Errorf("first request: %d", r.status)
	}
	// Released: the next request goes through, and the gauge is back at 0.
	if r := postHTTP(t, g, httpRequest{contentType: "application/x-protobuf", body: body}); r.status != 200 {
		t.Errorf("after release: %d", r.status)
	}
	if v := gaugeValue(g.svc.metrics.inflightBytes); v != 0 {
		t.Errorf("inflight bytes gauge = %v after all requests", v)
	}
}

// A noisy tenant sending at 5× its limit gets 429s; a quiet tenant sending
// within its limit at the same time is never refused.
func TestNoisyTenantIsolation(t *testing.T) {
	const (
		limit    = 200 // spans/s per tenant
		perReq   = 10  // spans per request
		duration = 3 * time.Second
	)
	g := startGatewayWith(t, func(c *Config) {
		c.TenantLimit = limits.Limit{RecordsPerSecond: limit, RecordsBurst: limit}
	}, func(d *Deps) {
		d.Auth = authn.NewStatic(map[string]authn.Tenant{"noisy-key": {ID: "noisy"}, "quiet-key": {ID: "quiet"}})
	})
	body := protoBody(t, sampleTraces(perReq))

	// send posts at rate requests/s until the deadline and counts answers.
	send := func(key string, rate int, ok, limited, other *atomic.Int64) {
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		deadline := time.Now().Add(duration)
		for time.Now().Before(deadline) {
			<-tick.C
			r := postHTTP(t, g, httpRequest{contentType: "application/x-protobuf", key: key, body: body})
			switch r.status {
			case 200:
				ok.Add(1)
			case 429:
				limited.Add(1)
			default:
				other.Add(1)
			}
		}
	}
	var noisyOK, noisyLimited, noisyOther, quietOK, quietLimited, quietOther atomic.Int64
	var wg sync.WaitGroup
	// Noisy: 5× its limit, from 4 senders. Quiet: half its limit.
	for range 4 {
		wg.Go(func() { send("noisy-key", 5*limit/perReq/4, &noisyOK, &noisyLimited, &noisyOther) })
	}
	wg.Go(func() { send("quiet-key", limit/perReq/2, &quietOK, &quietLimited, &quietOther) })
	wg.Wait()

	t.Logf("noisy: %d ok, %d limited, %d other; quiet: %d ok, %d limited, %d other",
		noisyOK.Load(), noisyLimited.Load(), noisyOther.Load(), quietOK.Load(), quietLimited.Load(), quietOther.Load())
	if quietLimited.Load() != 0 || quietOther.Load() != 0 || quietOK.Load() == 0 {
		t.Errorf("quiet tenant was refused: %d limited, %d other (%d ok)", quietLimited.Load(), quietOther.Load(), quietOK.Load())
	}
	if noisyLimited.Load() == 0 || noisyOther.Load() != 0 {
		t.Errorf("noisy tenant: %d limited, %d other errors; want 429s only", noisyLimited.Load(), noisyOther.Load())
	}
	// The noisy tenant got about its limit through: burst + rate × time.
	maxAccepted := int64((limit + limit*duration.Seconds()) * 1.2 / perReq)
	if noisyOK.Load() > maxAccepted {
		t.Errorf("noisy tenant got %d requests through, more than ~%d the limit allows", noisyOK.Load(), maxAccepted)
	}
	if got := counterValue(g.svc.metrics.tenantRejected.WithLabelValues("noisy", limits.ReasonRecords)); int64(got) != noisyLimited.Load() {
		t.Errorf("tenant_rejected_total{noisy} = %v, want %d", got, noisyLimited.Load())
	}
	if got := counterValue(g.svc.metrics.tenantRejected.WithLabelValues("quiet", limits.ReasonRecords)); got != 0 {
		t.Errorf("tenant_rejected_total{quiet} = %v", got)
	}
}

// grpcInvokeRaw sends pre-encoded bytes to the traces Export method.
func grpcInvokeRaw(cc *grpc.ClientConn, key string, raw []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	var out []byte
	return cc.Invoke(ctx, tracesSignal.grpcMethod, raw, &out, grpc.ForceCodec(bytesCodec{}))
}

// An empty export is success without touching the bus, on both transports.
func TestEmptyExportAccepted(t *testing.T) {
	g := startGateway(t, nil)
	cc := dialGRPC(t, g)
	if err := grpcInvokeRaw(cc, testKey, nil); err != nil {
		t.Errorf("gRPC empty message: %v", err)
	}
	if r := postHTTP(t, g, httpRequest{contentType: "application/json", body: []byte(`{"resourceSpans":[]}`)}); r.status != 200 {
		t.Errorf("HTTP empty JSON: %d", r.status)
	}
	if n := len(g.pub.take()); n != 0 {
		t.Errorf("empty exports published %d times", n)
	}
}

func gaugeValue(g prometheus.Gauge) float64 {
	var m dto.Metric
	if err := g.Write(&m); err != nil {
		panic(err)
	}
	return m.GetGauge().GetValue()
}
