package gateway

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
)

// checkDecodedLogs exercises everything the gateway does with a decoded
// logs request before publishing it; none of it may panic.
func checkDecodedLogs(t *testing.T, req plogotlp.ExportRequest) {
	before := logsSignal.records(req)
	var rj rejects
	logsSignal.filter(req, fuzzWindow, &rj)
	if got := logsSignal.records(req); got != before-rj.n {
		t.Fatalf("logs filter rejected %d of %d records but %d remain", rj.n, before, got)
	}
	before -= rj.n
	_ = logsSignal.protoSize(req)
	b, err := req.MarshalProto()
	if err != nil {
		t.Fatalf("re-marshal: %v", err)
	}
	again, _, err := decode(&logsSignal, b, encProto)
	if err != nil {
		t.Fatalf("re-decode of accepted request: %v", err)
	}
	if got, want := again.Logs().LogRecordCount(), before; got != want {
		t.Fatalf("round trip: %d records, want %d", got, want)
	}
}

func FuzzDecodeLogsProto(f *testing.F) {
	f.Add([]byte{})
	f.Add(logsProto(f, sampleLogs(2)))
	f.Add([]byte("\x0a\x05hello"))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, reason, err := decode(&logsSignal, body, encProto)
		if err != nil {
			if reason == "" {
				t.Fatalf("error without reason: %v", err)
			}
			return
		}
		checkDecodedLogs(t, req)
	})
}

func FuzzDecodeLogsJSON(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add(logsJSON(f, sampleLogs(2)))
	f.Add([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"traceId":"0102","body":{"kvlistValue":{"values":[{"key":"a","value":{"doubleValue":"NaN"}}]}}}]}]}]}`))
	f.Add([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":"bogus","timeUnixNano":"-1"}]}]}]}`))
	f.Add([]byte(`{} trailing`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, reason, err := decode(&logsSignal, body, encJSON)
		if err != nil {
			if reason == "" {
				t.Fatalf("error without reason: %v", err)
			}
			return
		}
		checkDecodedLogs(t, req)
	})
}
