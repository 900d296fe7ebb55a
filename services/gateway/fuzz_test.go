package gateway

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// fuzzWindow accepts record times from 2020 to 2030, so fuzzed times
// land on both sides.
var fuzzWindow = window{
	lo: uint64(time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()), loTime: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
	hi: uint64(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()), hiTime: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC),
	age: 24 * time.Hour, future: time.Hour,
}

// checkDecoded exercises everything the gateway does with a decoded
// request before publishing it; none of it may panic.
func checkDecoded(t *testing.T, req ptraceotlp.ExportRequest) {
	before := tracesSignal.records(req)
	var rj rejects
	tracesSignal.filter(req, fuzzWindow, &rj)
	rejected := rj.n
	if got := tracesSignal.records(req); got != before-rejected {
		t.Fatalf("filter rejected %d of %d records but %d remain", rejected, before, got)
	}
	_ = tracesSignal.protoSize(req)
	// What was accepted must survive a round trip through the bus encoding.
	b, err := req.MarshalProto()
	if err != nil {
		t.Fatalf("re-marshal: %v", err)
	}
	again, _, err := decode(&tracesSignal, b, encProto)
	if err != nil {
		t.Fatalf("re-decode of accepted request: %v", err)
	}
	if got, want := again.Traces().SpanCount(), req.Traces().SpanCount(); got != want {
		t.Fatalf("round trip: %d spans, want %d", got, want)
	}
}

func FuzzDecodeTracesProto(f *testing.F) {
	f.Add([]byte{})
	f.Add(protoBody(f, sampleTraces(2)))
	f.Add(protoSpan([]byte{1, 2, 3}, sampleSpanID[:]))
	f.Add(protoSpan(sampleTraceID[:], nil))
	f.Add([]byte("\x0a\x05hello"))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, reason, err := decode(&tracesSignal, body, encProto)
		if err != nil {
			if reason == "" {
				t.Fatalf("error without reason: %v", err)
			}
			return
		}
		checkDecoded(t, req)
	})
}

func FuzzDecodeTracesJSON(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add(jsonBody(f, sampleTraces(2)))
	f.Add(upperHexJSON(f))
	f.Add(jsonSpan("0102", "0102030405060708"))
	f.Add([]byte(`{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","kind":"bogus","attributes":[{"key":"a","value":{"doubleValue":"NaN"}}]}]}]}]}`))
	f.Add([]byte(`{} trailing`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, reason, err := decode(&tracesSignal, body, encJSON)
		if err != nil {
			if reason == "" {
				t.Fatalf("error without reason: %v", err)
			}
			return
		}
		checkDecoded(t, req)
	})
}
