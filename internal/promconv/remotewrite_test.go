package promconv

import (
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

func lbls(kv ...string) []prompb.Label {
	var out []prompb.Label
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

// find returns the metric named name under the resource whose service.name
// is svc.
func find(t *testing.T, md pmetric.Metrics, svc, name string) pmetric.Metric {
	t.Helper()
	for i := range md.ResourceMetrics().Len() {
		rm := md.ResourceMetrics().At(i)
		if v, _ := rm.Resource().Attributes().Get(attrServiceName); v.Str() != svc {
			continue
		}
		ms := rm.ScopeMetrics().At(0).Metrics()
		for j := range ms.Len() {
			if ms.At(j).Name() == name {
				return ms.At(j)
			}
		}
	}
	t.Fatalf("no metric %s of %s", name, svc)
	return pmetric.Metric{}
}

func TestAppendWriteRequest(t *testing.T) {
	req := &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			{Labels: lbls("__name__", "http_requests_total", "job", "shop/cart", "instance", "10.0.0.1:8080", "code", "200", "pod", "cart-0", "empty", ""),
				Samples:   []prompb.Sample{{Value: 10, Timestamp: 1000}, {Value: 12, Timestamp: 2000}},
				Exemplars: []prompb.Exemplar{{Labels: lbls("trace_id", "0102030405060708090a0b0c0d0e0f10", "user", "u1"), Value: 1, Timestamp: 1500}}},
			{Labels: lbls("__name__", "http_requests_total", "job", "shop/cart", "instance", "10.0.0.1:8080", "code", "500"),
				Samples: []prompb.Sample{{Value: 1, Timestamp: 2000}}},
			{Labels: lbls("__name__", "latency_seconds_bucket", "job", "api", "le", "0.5"), Samples: []prompb.Sample{{Value: 3, Timestamp: 1000}}},
			{Labels: lbls("__name__", "latency_seconds_sum", "job", "api"), Samples: []prompb.Sample{{Value: 0.7, Timestamp: 1000}}},
			{Labels: lbls("__name__", "queue_depth", "job", "api"), Samples: []prompb.Sample{{Value: math.Float64frombits(value.StaleNaN), Timestamp: 3000}}},
			{Labels: lbls("__name__", "nothing_sent", "job", "api")},
		},
		Metadata: []prompb.MetricMetadata{
			{MetricFamilyName: "latency_seconds", Type: prompb.MetricMetadata_HISTOGRAM, Unit: "seconds", Help: "Latency."},
			{MetricFamilyName: "queue_depth", Type: prompb.MetricMetadata_GAUGE},
		},
	}
	md := pmetric.NewMetrics()
	if err := AppendWriteRequest(req, md); err != nil {
		t.Fatal(err)
	}
	if md.ResourceMetrics().Len() != 2 || md.DataPointCount() != 6 {
		t.Fatalf("%d resources, %d points; want 2 and 6", md.ResourceMetrics().Len(), md.DataPointCount())
	}
	// One metric for both series of a name; job "ns/name" and instance on the resource.
	reqs := find(t, md, "cart", "http_requests_total")
	if reqs.Type() != pmetric.MetricTypeSum || !reqs.Sum().IsMonotonic() || reqs.Sum().DataPoints().Len() != 3 {
		t.Fatalf("http_requests_total: %v with %d points, want a monotonic sum of 3", reqs.Type(), reqs.Sum().DataPoints().Len())
	}
	res := md.ResourceMetrics().At(0).Resource().Attributes()
	if ns, _ := res.Get(attrServiceNamespace); ns.Str() != "shop" {
		t.Errorf("service.namespace %q", ns.Str())
	}
	if inst, _ := res.Get(attrServiceInstanceID); inst.Str() != "10.0.0.1:8080" {
		t.Errorf("service.instance.id %q", inst.Str())
	}
	p := reqs.Sum().DataPoints().At(1)
	if p.DoubleValue() != 12 || p.Timestamp() != 2000*1e6 {
		t.Errorf("point %v at %v", p.DoubleValue(), p.Timestamp())
	}
	if code, _ := p.Attributes().Get("code"); code.Str() != "200" || p.Attributes().Len() != 2 {
		t.Errorf("attributes %v, want code and pod only", p.Attributes().AsRaw())
	}
	ex := p.Exemplars()
	if ex.Len() != 1 || ex.At(0).TraceID().String() != "0102030405060708090a0b0c0d0e0f10" || ex.At(0).FilteredAttributes().Len() != 1 {
		t.Errorf("exemplars: %d", ex.Len())
	}
	// Histogram family members are counters with the family's unit.
	b := find(t, md, "api", "latency_seconds_bucket")
	if b.Type() != pmetric.MetricTypeSum || b.Unit() != "seconds" || b.Description() != "Latency." {
		t.Errorf("bucket: %v unit %q", b.Type(), b.Unit())
	}
	if s := find(t, md, "api", "latency_seconds_sum"); s.Type() != pmetric.MetricTypeSum {
		t.Errorf("sum series: %v", s.Type())
	}
	// A gauge's stale marker: no recorded value.
	q := find(t, md, "api", "queue_depth")
	if q.Type() != pmetric.MetricTypeGauge || !q.Gauge().DataPoints().At(0).Flags().NoRecordedValue() {
		t.Errorf("queue_depth: %v, stale marker not flagged", q.Type())
	}
}

func TestAppendWriteRequestRefuses(t *testing.T) {
	for name, ts := range map[string]prompb.TimeSeries{
		"no name":          {Labels: lbls("job", "x"), Samples: []prompb.Sample{{Value: 1}}},
		"native histogram": {Labels: lbls("__name__", "h"), Histograms: []prompb.Histogram{{}}},
	} {
		err := AppendWriteRequest(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{ts}}, pmetric.NewMetrics())
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// FuzzRemoteWrite: any body decodes or fails cleanly, and what decodes
// converts or fails cleanly.
func FuzzRemoteWrite(f *testing.F) {
	ok, _ := (&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "a", "job", "j"), Samples: []prompb.Sample{{Value: 1, Timestamp: 1}}}}}).Marshal()
	f.Add(ok)
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := DecodeWriteRequest(body)
		if err != nil {
			return
		}
		_ = AppendWriteRequest(req, pmetric.NewMetrics())
	})
}
