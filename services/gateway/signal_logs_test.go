package gateway

import (
	"context"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// takeLogs returns and forgets the logs published so far.
func (p *fakePublisher) takeLogs() []plog.Logs {
	p.mu.Lock()
	defer p.mu.Unlock()
	l := p.logs
	p.logs = nil
	return l
}

// sampleLogs returns n records of one resource; the first has a trace.
func sampleLogs(n int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "checkout")
	sl := rl.ScopeLogs().AppendEmpty()
	for i := range n {
		r := sl.LogRecords().AppendEmpty()
		r.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + i))
		r.SetSeverityNumber(plog.SeverityNumberWarn)
		r.Body().SetStr("low stock")
		if i == 0 {
			r.SetTraceID(sampleTraceID)
			r.SetSpanID(sampleSpanID)
		}
	}
	return ld
}

func logsProto(t testing.TB, ld plog.Logs) []byte {
	t.Helper()
	b, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func logsJSON(t testing.TB, ld plog.Logs) []byte {
	t.Helper()
	b, err := plogotlp.NewExportRequestFromLogs(ld).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func countLogs(calls []plog.Logs) int {
	n := 0
	for _, ld := range calls {
		n += ld.LogRecordCount()
	}
	return n
}

func TestHTTPLogsExport(t *testing.T) {
	g := startGateway(t, nil)
	const ctProto, ctJSON = "application/x-protobuf", "application/json"
	noTimes := plog.NewLogs()
	noTimes.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("when?")

	tests := []struct {
		name       string
		req        httpRequest
		wantStatus int
		wantLogs   int
		check      func(t *testing.T, resp httpResponse, calls []plog.Logs)
	}{
		{name: "protobuf", req: httpRequest{contentType: ctProto, body: logsProto(t, sampleLogs(3))}, wantStatus: 200, wantLogs: 3,
			check: func(t *testing.T, resp httpResponse, calls []plog.Logs) {
				if err := plogotlp.NewExportResponse().UnmarshalProto(resp.body); err != nil {
					t.Errorf("response is not an ExportLogsServiceResponse: %v", err)
				}
				r := calls[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
				if r.TraceID() != sampleTraceID || r.SpanID() != sampleSpanID || r.Body().Str() != "low stock" {
					t.Errorf("record %v %v %q", r.TraceID(), r.SpanID(), r.Body().Str())
				}
			}},
		{name: "JSON", req: httpRequest{contentType: ctJSON, body: logsJSON(t, sampleLogs(2))}, wantStatus: 200, wantLogs: 2,
			check: func(t *testing.T, resp httpResponse, _ []plog.Logs) {
				if ct := resp.header.Get("Content-Type"); ct != ctJSON {
					t.Errorf("Content-Type = %q", ct)
				}
				if err := plogotlp.NewExportResponse().UnmarshalJSON(resp.body); err != nil {
					t.Errorf("response is not JSON ExportLogsServiceResponse: %v: %q", err, resp.body)
				}
			}},
		{name: "gzip protobuf", req: httpRequest{contentType: ctProto, contentEncoding: "gzip", body: gzipped(t, logsProto(t, sampleLogs(4)))}, wantStatus: 200, wantLogs: 4},
		{name: "gzip JSON", req: httpRequest{contentType: ctJSON, contentEncoding: "gzip", body: gzipped(t, logsJSON(t, sampleLogs(1)))}, wantStatus: 200, wantLogs: 1},
		{name: "records without ids", req: httpRequest{contentType: ctJSON, body: []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"timeUnixNano":"1","body":{"stringValue":"x"}}]}]}]}`)}, wantStatus: 200, wantLogs: 1},
		{name: "upper-case hex ids", req: httpRequest{contentType: ctJSON, body: []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"EEE19B7EC3C1B174"}]}]}]}`)}, wantStatus: 200, wantLogs: 1,
			check: func(t *testing.T, _ httpResponse, calls []plog.Logs) {
				r := calls[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
				if r.TraceID() != sampleTraceID || r.SpanID() != sampleSpanID {
					t.Errorf("ids %v %v", r.TraceID(), r.SpanID())
				}
			}},
		{name: "observed time stamped when both times are unset", req: httpRequest{contentType: ctProto, body: logsProto(t, noTimes)}, wantStatus: 200, wantLogs: 1,
			check: func(t *testing.T, _ httpResponse, calls []plog.Logs) {
				r := calls[0].ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0)
				if got := r.ObservedTimestamp().AsTime(); time.Since(got) > time.Minute || r.Timestamp() != 0 {
					t.Errorf("observed %v time %v", got, r.Timestamp())
				}
			}},
		{name: "empty", req: httpRequest{contentType: ctJSON, body: []byte(`{}`)}, wantStatus: 200},
		{name: "garbage protobuf", req: httpRequest{contentType: ctProto, body: []byte("not protobuf \xff\xff\xff")}, wantStatus: 400},
		{name: "garbage JSON", req: httpRequest{contentType: ctJSON, body: []byte(`{"resourceLogs":[`)}, wantStatus: 400},
		{name: "short trace id", req: httpRequest{contentType: ctJSON, body: []byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"0102"}]}]}]}`)}, wantStatus: 400},
		{name: "no key", req: httpRequest{contentType: ctJSON, key: "-", body: logsJSON(t, sampleLogs(1))}, wantStatus: 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.path = "/v1/logs"
			resp := postHTTP(t, g, tc.req)
			calls := g.pub.takeLogs()
			if resp.status != tc.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.status, tc.wantStatus, resp.body)
			}
			if got := countLogs(calls); got != tc.wantLogs {
				t.Fatalf("%d records published, want %d", got, tc.wantLogs)
			}
			if tc.check != nil {
				tc.check(t, resp, calls)
			}
		})
	}
	if got := counterValue(g.svc.metrics.records.WithLabelValues("logs")); got != 13 {
		t.Errorf("records_total{logs} = %v, want 13", got)
	}
	if resp := postHTTP(t, g, httpRequest{method: http.MethodGet, path: "/v1/logs"}); resp.status != http.StatusMethodNotAllowed {
		t.Errorf("GET /v1/logs = %d", resp.status)
	}
}

func TestGRPCLogsExport(t *testing.T) {
	g := startGateway(t, nil)
	cc := dialGRPC(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+testKey)

	if _, err := plogotlp.NewGRPCClient(cc).Export(authed, plogotlp.NewExportRequestFromLogs(sampleLogs(5))); err != nil {
		t.Fatalf("export: %v", err)
	}
	if got := countLogs(g.pub.takeLogs()); got != 5 {
		t.Fatalf("%d records published, want 5", got)
	}
	if _, err := plogotlp.NewGRPCClient(cc).Export(ctx, plogotlp.NewExportRequestFromLogs(sampleLogs(1))); status.Code(err) != codes.Unauthenticated {
		t.Errorf("without key: %v, want Unauthenticated", err)
	}
	var out []byte
	err := cc.Invoke(authed, logsSignal.grpcMethod, []byte("not protobuf \xff\xff\xff"), &out, grpc.ForceCodec(bytesCodec{}))
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("garbage: %v, want InvalidArgument", err)
	}
	if got := countLogs(g.pub.takeLogs()); got != 0 {
		t.Errorf("%d records published after rejects", got)
	}
}
