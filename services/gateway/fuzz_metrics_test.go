package gateway

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
)

// checkDecodedMetrics exercises everything the gateway does with a decoded
// metrics request before publishing it; none of it may panic, and what is
// accepted must survive the bus encoding.
func checkDecodedMetrics(t *testing.T, req pmetricotlp.ExportRequest) {
	before := metricsSignal.records(req)
	var rj rejects
	metricsSignal.filter(req, fuzzWindow, &rj)
	rejected := rj.n
	if got := metricsSignal.records(req); got != before-rejected {
		t.Fatalf("filter: %d points left of %d, %d rejected", got, before, rejected)
	}
	_ = metricsSignal.protoSize(req)
	b, err := req.MarshalProto()
	if err != nil {
		t.Fatalf("re-marshal: %v", err)
	}
	again, _, err := decode(&metricsSignal, b, encProto)
	if err != nil {
		t.Fatalf("re-decode of accepted request: %v", err)
	}
	if got, want := again.Metrics().DataPointCount(), before-rejected; got != want {
		t.Fatalf("round trip: %d points, want %d", got, want)
	}
}

func FuzzDecodeMetricsProto(f *testing.F) {
	f.Add([]byte{})
	f.Add(metricsProto(f, sampleMetrics(2)))
	f.Add([]byte("\x0a\x05hello"))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, reason, err := decode(&metricsSignal, body, encProto)
		if err != nil {
			if reason == "" {
				t.Fatalf("error without reason: %v", err)
			}
			return
		}
		checkDecodedMetrics(t, req)
	})
}

func FuzzDecodeMetricsJSON(f *testing.F) {
	f.Add([]byte(`{}`))
	f.Add(metricsJSON(f, sampleMetrics(2)))
	f.Add([]byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"h","histogram":{"dataPoints":[{"count":"2","bucketCounts":["1","1"],"explicitBounds":[1],"sum":"NaN"}]}}]}]}]}`))
	f.Add([]byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"e","exponentialHistogram":{"dataPoints":[{"scale":-200,"positive":{"offset":-5,"bucketCounts":["1"]}}]}}]}]}]}`))
	f.Add([]byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"","summary":{"dataPoints":[{"quantileValues":[{"quantile":0.5,"value":1}]}]}}]}]}]}`))
	f.Add([]byte(`{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"m","gauge":{"dataPoints":[{"exemplars":[{"traceId":"0102"}]}]}}]}]}]}`))
	f.Add([]byte(`{} trailing`))
	f.Fuzz(func(t *testing.T, body []byte) {
		req, reason, err := decode(&metricsSignal, body, encJSON)
		if err != nil {
			if reason == "" {
				t.Fatalf("error without reason: %v", err)
			}
			return
		}
		checkDecodedMetrics(t, req)
	})
}
