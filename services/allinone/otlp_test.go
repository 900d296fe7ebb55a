package allinone

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// newTraceID returns a random trace id.
func newTraceID() pcommon.TraceID {
	var id pcommon.TraceID
	_, _ = rand.Read(id[:])
	return id
}

// makeTrace builds one trace of n spans: a root and n-1 children.
func makeTrace(id pcommon.TraceID, n int, service string) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	for k, v := range k8sResource {
		rs.Resource().Attributes().PutStr(k, v)
	}
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	now := time.Now()
	var root pcommon.SpanID
	for i := 0; i < n; i++ {
		sp := spans.AppendEmpty()
		sp.SetTraceID(id)
		var sid pcommon.SpanID
		_, _ = rand.Read(sid[:])
		sp.SetSpanID(sid)
		if i == 0 {
			root = sid
			sp.SetName("root")
		} else {
			sp.SetParentSpanID(root)
			sp.SetName("child")
		}
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(i) * time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(i+5) * time.Millisecond)))
		sp.Attributes().PutInt("i", int64(i))
	}
	return td
}

// post sends a body to the gateway's /v1/traces.
func (a *testApp) post(t *testing.T, body []byte, contentType, encoding string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+a.Gateway.HTTPAddr()+"/v1/traces", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/traces: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// sendTrace POSTs td as protobuf and returns the status.
func (a *testApp) sendTrace(t *testing.T, td ptrace.Traces) (int, http.Header, string) {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return a.post(t, b, "application/x-protobuf", "")
}

func hexID(id pcommon.TraceID) string { return hex.EncodeToString(id[:]) }

// postPath POSTs an OTLP/JSON body to a gateway path with key.
func (a *testApp) postPath(t *testing.T, key, path string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+a.Gateway.HTTPAddr()+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
