package gateway

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"
)

func remoteWriteBody(t *testing.T, req *prompb.WriteRequest) []byte {
	t.Helper()
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return snappy.Encode(nil, b)
}

func (g *testGateway) postRemoteWrite(t *testing.T, body []byte, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	return g.postIngest(t, RemoteWritePath, body, map[string]string{
		"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy", "X-Prometheus-Remote-Write-Version": "0.1.0",
	}, hdr)
}

func TestRemoteWrite(t *testing.T) {
	g := startGateway(t, func(c *Config) { c.MaxRequestBytes = 64 << 10 })
	now := time.Now().UnixMilli()
	good := &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{
		{Labels: []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "node"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: now}, {Value: 1, Timestamp: now + 15000}}},
	}}
	code, _, body := g.postRemoteWrite(t, remoteWriteBody(t, good), nil)
	if code != http.StatusNoContent {
		t.Fatalf("good request: %d %s", code, body)
	}
	g.pub.mu.Lock()
	n := len(g.pub.metrics)
	points := 0
	if n == 1 {
		points = g.pub.metrics[0].DataPointCount()
	}
	g.pub.mu.Unlock()
	if n != 1 || points != 2 {
		t.Fatalf("published %d requests, %d points; want 1 and 2", n, points)
	}

	huge := &prompb.WriteRequest{}
	for i := range 4000 { // ≈ 100 KiB decoded, compresses well below the limit
		huge.Timeseries = append(huge.Timeseries, prompb.TimeSeries{
			Labels:  []prompb.Label{{Name: "__name__", Value: "a_rather_long_metric_name_to_inflate_the_body"}, {Name: "i", Value: strings.Repeat("x", 3)}},
			Samples: []prompb.Sample{{Value: float64(i), Timestamp: now}},
		})
	}
	tests := []struct {
		name   string
		body   []byte
		hdr    map[string]string
		code   int
		reason string
		msg    string
	}{
		{"no key", remoteWriteBody(t, good), map[string]string{"Authorization": ""}, 401, reasonUnauthenticated, ""},
		{"not snappy", []byte("plain"), map[string]string{"Content-Encoding": "gzip"}, 415, reasonBadEncoding, "snappy"},
		{"broken snappy", []byte{0x05, 0xff, 0xff}, nil, 400, reasonBadEncoding, "invalid snappy body"},
		{"json", remoteWriteBody(t, good), map[string]string{"Content-Type": "application/json"}, 415, reasonBadContentType, "application/x-protobuf"},
		{"remote-write 2.0 message", remoteWriteBody(t, good), map[string]string{"Content-Type": "application/x-protobuf;proto=io.prometheus.write.v2.Request"}, 415, reasonBadContentType, "remote-write 1.0"},
		{"not protobuf", snappy.Encode(nil, []byte{0xff, 0xff, 0xff}), nil, 400, reasonMalformed, "invalid remote-write body"},
		{"no metric name", remoteWriteBody(t, &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: []prompb.Label{{Name: "job", Value: "x"}}, Samples: []prompb.Sample{{Value: 1, Timestamp: now}}}}}), nil, 400, reasonMalformed, "timeseries[0]: no __name__ label"},
		{"too large decoded", remoteWriteBody(t, huge), nil, 413, reasonTooLarge, "after snappy decompression"},
	}
	for _, tc := range tests {
		rejected := func() float64 {
			return counterValue(g.svc.metrics.rejected.WithLabelValues(remoteWriteSignal.name, transportHTTP, tc.reason))
		}
		before := rejected()
		code, _, body := g.postRemoteWrite(t, tc.body, tc.hdr)
		if code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("%s: %d %s, want %d naming %q", tc.name, code, body, tc.code, tc.msg)
		}
		if got := rejected() - before; got != 1 {
			t.Errorf("%s: rejected{reason=%s} moved by %v", tc.name, tc.reason, got)
		}
	}
}
