package gateway

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

type httpRequest struct {
	method          string // default POST
	path            string // default /v1/traces
	contentType     string
	contentEncoding string
	key             string // default testKey; "-" sends no Authorization
	authHeader      string // overrides key
	body            []byte
	hideLength      bool // send chunked, without Content-Length
}

type httpResponse struct {
	status int
	header http.Header
	body   []byte
}

// postHTTP sends r; failures are reported with t.Errorf so it may run in
// goroutines.
func postHTTP(t testing.TB, g *testGateway, r httpRequest) httpResponse {
	if r.method == "" {
		r.method = http.MethodPost
	}
	if r.path == "" {
		r.path = "/v1/traces"
	}
	var body io.Reader = bytes.NewReader(r.body)
	if r.hideLength {
		body = io.MultiReader(body)
	}
	req, err := http.NewRequest(r.method, g.base+r.path, body)
	if err != nil {
		t.Errorf("NewRequest: %v", err)
		return httpResponse{}
	}
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	if r.contentEncoding != "" {
		req.Header.Set("Content-Encoding", r.contentEncoding)
	}
	switch {
	case r.authHeader != "":
		req.Header.Set("Authorization", r.authHeader)
	case r.key == "":
		req.Header.Set("Authorization", "Bearer "+testKey)
	case r.key != "-":
		req.Header.Set("Authorization", "Bearer "+r.key)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Errorf("%s %s: %v", r.method, r.path, err)
		return httpResponse{}
	}
	defer func() { _ = resp.Body.Close() }()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Errorf("reading response: %v", err)
	}
	return httpResponse{status: resp.StatusCode, header: resp.Header, body: b}
}

func gzipped(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var (
	bombOnce sync.Once
	bomb     []byte
)

// gzipBomb is 1 GiB of zeros in about 1 MB of gzip: 1024 concatenated gzip
// members of 1 MiB each (a multi-member stream, as gzip readers accept).
func gzipBomb(t testing.TB) []byte {
	bombOnce.Do(func() {
		var member bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
		_, _ = zw.Write(make([]byte, 1<<20))
		_ = zw.Close()
		bomb = bytes.Repeat(member.Bytes(), 1024)
	})
	return bomb
}

// protoSpan hand-encodes an export request with one span whose ids are the
// given bytes, to produce what pdata's own types cannot (wrong lengths).
func protoSpan(traceID, spanID []byte) []byte {
	var span []byte
	span = protowire.AppendTag(span, 1, protowire.BytesType)
	span = protowire.AppendBytes(span, traceID)
	span = protowire.AppendTag(span, 2, protowire.BytesType)
	span = protowire.AppendBytes(span, spanID)
	span = protowire.AppendTag(span, 5, protowire.BytesType)
	span = protowire.AppendString(span, "op")
	var scope []byte
	scope = protowire.AppendTag(scope, 2, protowire.BytesType) // ScopeSpans.spans
	scope = protowire.AppendBytes(scope, span)
	var rs []byte
	rs = protowire.AppendTag(rs, 2, protowire.BytesType) // ResourceSpans.scope_spans
	rs = protowire.AppendBytes(rs, scope)
	var req []byte
	req = protowire.AppendTag(req, 1, protowire.BytesType) // ExportTraceServiceRequest.resource_spans
	return protowire.AppendBytes(req, rs)
}

// jsonSpan is a JSON export request with one span with the given ids.
func jsonSpan(traceID, spanID string) []byte {
	return []byte(`{"resourceSpans":[{"resource":{},"scopeSpans":[{"scope":{},"spans":[{"traceId":"` +
		traceID + `","spanId":"` + spanID + `","name":"op","kind":2}]}]}]}`)
}

func decodeJSONError(t *testing.T, b []byte) apperr.BodyError {
	t.Helper()
	var body apperr.Body
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatalf("error body is not apperr JSON: %v: %q", err, b)
	}
	return body.Error
}

func decodeStatus(t *testing.T, b []byte) *spb.Status {
	t.Helper()
	var st spb.Status
	if err := proto.Unmarshal(b, &st); err != nil {
		t.Fatalf("error body is not a google.rpc.Status: %v: %q", err, b)
	}
	return &st
}

func TestHTTPExport(t *testing.T) {
	g := startGateway(t, nil)
	limit := int(testConfig().MaxRequestBytes)

	const (
		ctProto = "application/x-protobuf"
		ctJSON  = "application/json"
	)
	oversize := make([]byte, limit+1)

	tests := []struct {
		name       string
		req        httpRequest
		pubErr     error
		wantStatus int
		wantReason string // rejected_total reason incremented, "" for success
		wantSpans  int    // spans published (0: no publish)
		wantMsg    string // substring of the error message
		check      func(t *testing.T, resp httpResponse, calls []publishCall)
	}{
		{
			name:       "valid protobuf",
			req:        httpRequest{contentType: ctProto, body: protoBody(t, sampleTraces(3))},
			wantStatus: 200, wantSpans: 3,
			check: func(t *testing.T, resp httpResponse, calls []publishCall) {
				if ct := resp.header.Get("Content-Type"); ct != ctProto {
					t.Errorf("Content-Type = %q", ct)
				}
				if err := ptraceotlp.NewExportResponse().UnmarshalProto(resp.body); err != nil {
					t.Errorf("response is not an ExportTraceServiceResponse: %v", err)
				}
				if calls[0].tenant != "t1" {
					t.Errorf("tenant = %q", calls[0].tenant)
				}
			},
		},
		{
			name:       "valid JSON",
			req:        httpRequest{contentType: ctJSON, body: jsonBody(t, sampleTraces(2))},
			wantStatus: 200, wantSpans: 2,
			check: func(t *testing.T, resp httpResponse, _ []publishCall) {
				if ct := resp.header.Get("Content-Type"); ct != ctJSON {
					t.Errorf("Content-Type = %q", ct)
				}
				if err := ptraceotlp.NewExportResponse().UnmarshalJSON(resp.body); err != nil {
					t.Errorf("response is not JSON ExportTraceServiceResponse: %v: %q", err, resp.body)
				}
			},
		},
		{
			name:       "JSON with charset parameter",
			req:        httpRequest{contentType: "application/json; charset=utf-8", body: jsonBody(t, sampleTraces(1))},
			wantStatus: 200, wantSpans: 1,
		},
		{
			name:       "gzip protobuf",
			req:        httpRequest{contentType: ctProto, contentEncoding: "gzip", body: gzipped(t, protoBody(t, sampleTraces(4)))},
			wantStatus: 200, wantSpans: 4,
		},
		{
			name:       "gzip JSON",
			req:        httpRequest{contentType: ctJSON, contentEncoding: "gzip", body: gzipped(t, jsonBody(t, sampleTraces(2)))},
			wantStatus: 200, wantSpans: 2,
		},
		{
			name:       "identity encoding, chunked",
			req:        httpRequest{contentType: ctProto, contentEncoding: "identity", body: protoBody(t, sampleTraces(1)), hideLength: true},
			wantStatus: 200, wantSpans: 1,
		},
		{
			name:       "JSON with upper-case hex ids",
			req:        httpRequest{contentType: ctJSON, body: upperHexJSON(t)},
			wantStatus: 200, wantSpans: 1,
			check: func(t *testing.T, _ httpResponse, calls []publishCall) {
				sp := calls[0].td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
				if sp.TraceID() != sampleTraceID || sp.SpanID() != sampleSpanID {
					t.Errorf("ids = %v %v", sp.TraceID(), sp.SpanID())
				}
			},
		},
		{
			name:       "empty protobuf request",
			req:        httpRequest{contentType: ctProto, body: nil},
			wantStatus: 200,
		},
		{
			name:       "empty JSON request",
			req:        httpRequest{contentType: ctJSON, body: []byte(`{}`)},
			wantStatus: 200,
		},
		{
			name:       "garbage protobuf",
			req:        httpRequest{contentType: ctProto, body: []byte("this is not protobuf \xff\xff\xff")},
			wantStatus: 400, wantReason: reasonMalformed, wantMsg: "invalid OTLP protobuf body",
			check: func(t *testing.T, resp httpResponse, _ []publishCall) {
				if ct := resp.header.Get("Content-Type"); ct != ctProto {
					t.Errorf("error Content-Type = %q, want protobuf Status", ct)
				}
				if st := decodeStatus(t, resp.body); codes.Code(st.Code) != codes.InvalidArgument {
					t.Errorf("Status.code = %v", codes.Code(st.Code))
				}
			},
		},
		{
			name:       "wrong content type",
			req:        httpRequest{contentType: "text/plain", body: []byte("hello")},
			wantStatus: 415, wantReason: reasonBadContentType, wantMsg: "Content-Type",
		},
		{
			name:       "missing content type",
			req:        httpRequest{body: protoBody(t, sampleTraces(1))},
			wantStatus: 415, wantReason: reasonBadContentType, wantMsg: "Content-Type",
		},
		{
			name:       "unsupported content encoding",
			req:        httpRequest{contentType: ctJSON, contentEncoding: "br", body: []byte("{}")},
			wantStatus: 415, wantReason: reasonBadEncoding, wantMsg: "Content-Encoding",
		},
		{
			name:       "invalid JSON",
			req:        httpRequest{contentType: ctJSON, body: []byte(`{"resourceSpans": [`)},
			wantStatus: 400, wantReason: reasonMalformed, wantMsg: "invalid OTLP json body",
		},
		{
			name:       "JSON with trailing garbage",
			req:        httpRequest{contentType: ctJSON, body: []byte(`{} and more`)},
			wantStatus: 400, wantReason: reasonMalformed, wantMsg: "invalid OTLP json body",
		},
		{
			name:       "JSON trace id of wrong length",
			req:        httpRequest{contentType: ctJSON, body: jsonSpan("0102030405", "0102030405060708")},
			wantStatus: 400, wantReason: reasonInvalidID, wantMsg: "trace or span id",
		},
		{
			name:       "JSON span id not hex",
			req:        httpRequest{contentType: ctJSON, body: jsonSpan("5b8efff798038103d269b633813fc60c", "zz02030405060708")},
			wantStatus: 400, wantReason: reasonInvalidID, wantMsg: "trace or span id",
		},
		{
			name:       "protobuf trace id of wrong length",
			req:        httpRequest{contentType: ctProto, body: protoSpan([]byte{1, 2, 3}, sampleSpanID[:])},
			wantStatus: 400, wantReason: reasonInvalidID, wantMsg: "TraceID length",
		},
		{
			name:       "all-zero trace id",
			req:        httpRequest{contentType: ctJSON, body: jsonSpan(strings.Repeat("0", 32), "0102030405060708")},
			wantStatus: 400, wantReason: reasonInvalidID, wantMsg: "resourceSpans[0].scopeSpans[0].spans[0].traceId",
		},
		{
			name:       "missing span id (protobuf)",
			req:        httpRequest{contentType: ctProto, body: protoSpan(sampleTraceID[:], nil)},
			wantStatus: 400, wantReason: reasonInvalidID, wantMsg: "resourceSpans[0].scopeSpans[0].spans[0].spanId",
		},
		{
			name:       "oversized body",
			req:        httpRequest{contentType: ctProto, body: oversize},
			wantStatus: 413, wantReason: reasonTooLarge, wantMsg: "exceeds the limit",
		},
		{
			name:       "oversized chunked body",
			req:        httpRequest{contentType: ctProto, body: oversize, hideLength: true},
			wantStatus: 413, wantReason: reasonTooLarge, wantMsg: "exceeds the limit",
		},
		{
			name:       "gzip bomb",
			req:        httpRequest{contentType: ctProto, contentEncoding: "gzip", body: gzipBomb(t)},
			wantStatus: 413, wantReason: reasonTooLarge, wantMsg: "after gzip decompression",
		},
		{
			name:       "malformed gzip",
			req:        httpRequest{contentType: ctJSON, contentEncoding: "gzip", body: []byte("not gzip at all")},
			wantStatus: 400, wantReason: reasonBadEncoding, wantMsg: "invalid gzip body",
		},
		{
			name:       "truncated gzip",
			req:        httpRequest{contentType: ctProto, contentEncoding: "gzip", body: gzipped(t, protoBody(t, sampleTraces(50)))[:40]},
			wantStatus: 400, wantReason: reasonBadEncoding, wantMsg: "invalid gzip body",
		},
		{
			name:       "missing key",
			req:        httpRequest{contentType: ctJSON, key: "-", body: jsonBody(t, sampleTraces(1))},
			wantStatus: 401, wantReason: reasonUnauthenticated, wantMsg: "API key",
		},
		{
			name:       "invalid key",
			req:        httpRequest{contentType: ctProto, key: "wrong", body: protoBody(t, sampleTraces(1))},
			wantStatus: 401, wantReason: reasonUnauthenticated, wantMsg: "API key",
		},
		{
			name:       "basic auth instead of bearer",
			req:        httpRequest{contentType: ctJSON, authHeader: "Basic azpr", body: jsonBody(t, sampleTraces(1))},
			wantStatus: 401, wantReason: reasonUnauthenticated,
		},
		{
			name:       "publisher unavailable (JSON)",
			req:        httpRequest{contentType: ctJSON, body: jsonBody(t, sampleTraces(1))},
			pubErr:     apperr.Unavailable(errors.New("nats: no servers"), "message bus unavailable", 0),
			wantStatus: 503, wantReason: reasonUnavailable, wantMsg: "message bus unavailable",
			check: func(t *testing.T, resp httpResponse, _ []publishCall) {
				if resp.header.Get("Retry-After") == "" {
					t.Error("503 without Retry-After")
				}
			},
		},
		{
			name:       "publisher unavailable (protobuf)",
			req:        httpRequest{contentType: ctProto, body: protoBody(t, sampleTraces(1))},
			pubErr:     apperr.Unavailable(errors.New("nats: no servers"), "message bus unavailable", 7e9),
			wantStatus: 503, wantReason: reasonUnavailable,
			check: func(t *testing.T, resp httpResponse, _ []publishCall) {
				if ra := resp.header.Get("Retry-After"); ra != "7" {
					t.Errorf("Retry-After = %q, want 7", ra)
				}
				st := decodeStatus(t, resp.body)
				if codes.Code(st.Code) != codes.Unavailable || !strings.Contains(st.Message, "message bus unavailable") {
					t.Errorf("Status = %v %q", codes.Code(st.Code), st.Message)
				}
				var ri errdetails.RetryInfo
				if len(st.Details) != 1 || st.Details[0].UnmarshalTo(&ri) != nil || ri.RetryDelay.AsDuration() != 7e9 {
					t.Errorf("Status details = %v, want RetryInfo of 7s", st.Details)
				}
			},
		},
		{
			name:       "publisher internal failure",
			req:        httpRequest{contentType: ctJSON, body: jsonBody(t, sampleTraces(1))},
			pubErr:     errors.New("secret internal detail"),
			wantStatus: 500, wantReason: reasonPublishFailed,
			check: func(t *testing.T, resp httpResponse, _ []publishCall) {
				if strings.Contains(string(resp.body), "secret") {
					t.Errorf("internal detail leaked: %s", resp.body)
				}
			},
		},
		{
			name:       "GET not allowed",
			req:        httpRequest{method: http.MethodGet, contentType: ctJSON},
			wantStatus: 405, wantReason: reasonMethodNotAllowed, wantMsg: "POST",
			check: func(t *testing.T, resp httpResponse, _ []publishCall) {
				if resp.header.Get("Allow") != http.MethodPost {
					t.Errorf("Allow = %q", resp.header.Get("Allow"))
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g.pub.setErr(tc.pubErr)
			defer g.pub.setErr(nil)
			g.pub.take()
			reasonBefore := g.rejected(transportHTTP, tc.wantReason)
			recordsBefore := g.records()

			resp := postHTTP(t, g, tc.req)
			calls := g.pub.take()

			if resp.status != tc.wantStatus {
				t.Fatalf("status = %d, want %d; body %.300q", resp.status, tc.wantStatus, resp.body)
			}
			if tc.wantStatus == 200 {
				if n := len(calls); (n > 0) != (tc.wantSpans > 0) {
					t.Fatalf("publish calls = %d, want spans %d", n, tc.wantSpans)
				}
				if tc.wantSpans > 0 && calls[0].td.SpanCount() != tc.wantSpans {
					t.Errorf("published %d spans, want %d", calls[0].td.SpanCount(), tc.wantSpans)
				}
				if got := g.records() - recordsBefore; got != float64(tc.wantSpans) {
					t.Errorf("records_total += %v, want %d", got, tc.wantSpans)
				}
			} else {
				if len(calls) != 0 {
					t.Errorf("rejected request was published (%d calls)", len(calls))
				}
				if got := g.records() - recordsBefore; got != 0 {
					t.Errorf("records_total += %v on a rejected request", got)
				}
				if got := g.rejected(transportHTTP, tc.wantReason) - reasonBefore; got != 1 {
					t.Errorf("rejected_total{reason=%q} += %v, want 1", tc.wantReason, got)
				}
				msg := ""
				if resp.header.Get("Content-Type") == ctProto {
					msg = decodeStatus(t, resp.body).Message
				} else {
					msg = decodeJSONError(t, resp.body).Message
				}
				if !strings.Contains(strings.ToLower(msg), strings.ToLower(tc.wantMsg)) {
					t.Errorf("message %q does not contain %q", msg, tc.wantMsg)
				}
			}
			if tc.check != nil {
				tc.check(t, resp, calls)
			}
		})
	}

	// The service survived all of that.
	resp := postHTTP(t, g, httpRequest{contentType: ctProto, body: protoBody(t, sampleTraces(1))})
	if resp.status != 200 || len(g.pub.take()) != 1 {
		t.Fatalf("good request after bad ones = %d", resp.status)
	}

	// Every request was counted once, by its status code.
	wantByCode := map[string]float64{"200": 1}
	for _, tc := range tests {
		wantByCode[strconv.Itoa(tc.wantStatus)]++
	}
	for code, want := range wantByCode {
		if got := g.requests(transportHTTP, code); got != want {
			t.Errorf("requests_total{code=%s} = %v, want %v", code, got, want)
		}
	}
}

// A gzip bomb is refused after reading about MaxRequestBytes, not 1 GiB.
func TestHTTPGzipBombBoundedMemory(t *testing.T) {
	g := startGateway(t, nil)
	b := gzipBomb(t)
	limit := testConfig().MaxRequestBytes
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	resp := postHTTP(t, g, httpRequest{contentType: "application/x-protobuf", contentEncoding: "gzip", body: b})
	runtime.ReadMemStats(&after)
	if resp.status != http.StatusRequestEntityTooLarge {
		t.Fatalf("status = %d", resp.status)
	}
	// Server and client share this process; allow the limit plus the
	// compressed body and transport buffers, far below 1 GiB.
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %.1f MiB refusing a 1 GiB gzip bomb (limit %d MiB)", float64(alloc)/(1<<20), limit>>20)
	if alloc > uint64(3*limit) {
		t.Errorf("allocated %d MiB for a gzip bomb with a %d MiB limit", alloc>>20, limit>>20)
	}
}

func TestReadLimited(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 100_000) // 1 MB
	for _, tc := range []struct {
		name  string
		limit int64
		hint  int64
		ok    bool
	}{
		{"exact hint", int64(len(data)), int64(len(data)), true},
		{"no hint", int64(len(data)), -1, true},
		{"wrong small hint", int64(len(data)), 10, true},
		{"one over", int64(len(data)) - 1, -1, false},
		{"one over with hint", int64(len(data)) - 1, int64(len(data)) - 1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readLimited(iotestHalfReader{bytes.NewReader(data)}, tc.limit, tc.hint)
			if tc.ok {
				if err != nil || !bytes.Equal(got, data) {
					t.Fatalf("got %d bytes, %v", len(got), err)
				}
			} else if !errors.Is(err, errBodyTooLarge) {
				t.Fatalf("err = %v, want errBodyTooLarge", err)
			}
		})
	}
	got, err := readLimited(bytes.NewReader(nil), 10, 0)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty: %q %v", got, err)
	}
}

// iotestHalfReader returns at most half of what is asked, to exercise
// short reads.
type iotestHalfReader struct{ r io.Reader }

func (h iotestHalfReader) Read(p []byte) (int, error) {
	return h.r.Read(p[:(len(p)+1)/2])
}
