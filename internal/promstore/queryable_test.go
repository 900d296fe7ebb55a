package promstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/chunkenc"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

func TestPromName(t *testing.T) {
	for in, want := range map[string]string{
		"http.server.duration": "http_server_duration",
		"up":                   "up",
		"ns:rule_total":        "ns:rule_total",
		"9lives":               "_9lives",
		"k8s.pod-name":         "k8s_pod_name",
	} {
		if got := PromName(in); got != want {
			t.Errorf("PromName(%q) = %q, want %q", in, got, want)
		}
	}
}

type fakeSource struct {
	names  []chstore.MetricName
	series map[string][]chstore.MetricSeries
	tenant string
}

func (f *fakeSource) MetricNames(_ context.Context, tenantID string, _, _ time.Time) ([]chstore.MetricName, error) {
	f.tenant = tenantID
	return f.names, nil
}

func (f *fakeSource) MetricSeries(_ context.Context, q chstore.SeriesQuery) ([]chstore.MetricSeries, error) {
	return f.series[q.Name], nil
}

func pt(ms int64, v float64) chstore.MetricPoint {
	return chstore.MetricPoint{TimeNs: uint64(ms) * 1e6, ValueType: otlpconv.ValueDouble, Value: v}
}

func TestSelect(t *testing.T) {
	src := &fakeSource{
		names: []chstore.MetricName{{Name: "http.requests", Type: chstore.MetricTypeSum}, {Name: "latency", Type: chstore.MetricTypeHistogram}},
		series: map[string][]chstore.MetricSeries{"http.requests": {
			// Two stored series with one Prometheus label set (they differ
			// in a resource attribute that is not a label): merged by time.
			{Name: "http.requests", Type: chstore.MetricTypeSum, Labels: map[string]any{"http.code": "200"},
				Resource: map[string]any{"service.name": "cart", "service.namespace": "shop", "host": "a"}, Points: []chstore.MetricPoint{pt(1000, 1), pt(3000, 3)}},
			{Name: "http.requests", Type: chstore.MetricTypeSum, Labels: map[string]any{"http.code": "200"},
				Resource: map[string]any{"service.name": "cart", "service.namespace": "shop", "host": "b"}, Points: []chstore.MetricPoint{pt(2000, 2), pt(3000, 3)}},
			{Name: "http.requests", Type: chstore.MetricTypeSum, Labels: map[string]any{"http.code": "500"},
				Resource: map[string]any{"service.name": "cart"}, Points: []chstore.MetricPoint{pt(1000, 9), {TimeNs: 2e9, Flags: 1}}},
		}},
	}
	q, _ := Queryable{Src: src, TenantID: "t1"}.Querier(0, 10_000)
	set := q.Select(context.Background(), true, nil,
		labels.MustNewMatcher(labels.MatchEqual, "__name__", "http_requests"),
		labels.MustNewMatcher(labels.MatchRegexp, "http_code", "2.."))
	var got []string
	for set.Next() {
		s := set.At()
		it := s.Iterator(nil)
		n := 0
		for it.Next() == chunkenc.ValFloat {
			n++
		}
		got = append(got, s.Labels().String())
		if n != 3 {
			t.Errorf("%s: %d samples, want 3 (merged, one per time)", s.Labels(), n)
		}
	}
	if set.Err() != nil || len(got) != 1 || got[0] != `{__name__="http_requests", http_code="200", job="shop/cart"}` || src.tenant != "t1" {
		t.Fatalf("series %v, err %v, tenant %q", got, set.Err(), src.tenant)
	}
	if err := q.Select(context.Background(), false, nil, labels.MustNewMatcher(labels.MatchEqual, "job", "x")).Err(); !errors.Is(err, ErrNoMetricName) {
		t.Errorf("selector without a name: %v", err)
	}
	vals, _, err := q.LabelValues(context.Background(), "__name__", nil)
	if err != nil || len(vals) != 1 || vals[0] != "http_requests" {
		t.Errorf("metric names %v %v (histograms are not float series)", vals, err)
	}
}
