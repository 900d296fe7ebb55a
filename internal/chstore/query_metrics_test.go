package chstore_test

import (
	"encoding/hex"
	"math"
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// metricBase is a little before midnight UTC, so points straddle days.
var metricBase = time.Date(2024, 3, 10, 23, 59, 50, 0, time.UTC)

var (
	exTraceID = pcommon.TraceID{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c}
	exSpanID  = pcommon.SpanID{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74}
)

// testMetrics builds points of every kind: gauge "temp" for hosts a and b
// at metricBase+0s,+10s,+20s (crossing midnight), a cumulative monotonic
// int sum, a histogram, an exponential histogram, a summary.
func testMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	rm.Resource().Attributes().PutStr("service.name", "svc")
	rm.Resource().Attributes().PutStr("k8s.namespace.name", "shop")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("lib")
	sm.Scope().SetVersion("2.0")
	ts := func(d time.Duration) pcommon.Timestamp { return pcommon.NewTimestampFromTime(metricBase.Add(d)) }

	g := sm.Metrics().AppendEmpty()
	g.SetName("temp")
	g.SetUnit("Cel")
	g.SetDescription("temperature")
	gd := g.SetEmptyGauge().DataPoints()
	for i := range 3 {
		for _, host := range []string{"a", "b"} {
			p := gd.AppendEmpty()
			p.SetTimestamp(ts(time.Duration(i) * 10 * time.Second))
			p.SetDoubleValue(float64(i) + map[string]float64{"a": 0.5, "b": 100}[host])
			p.Attributes().PutStr("host", host)
			p.Attributes().PutStr("quote", `it's "x" \ ?`)
		}
	}

	s := sm.Metrics().AppendEmpty()
	s.SetName("requests")
	sum := s.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	sp := sum.DataPoints().AppendEmpty()
	sp.SetStartTimestamp(ts(-time.Hour))
	sp.SetTimestamp(ts(0))
	sp.SetIntValue(1<<60 + 1)
	sp.Attributes().PutInt("code", 200)
	ex := sp.Exemplars().AppendEmpty()
	ex.SetTimestamp(ts(-time.Second))
	ex.SetIntValue(3)
	ex.SetTraceID(exTraceID)
	ex.SetSpanID(exSpanID)
	ex.FilteredAttributes().PutStr("user", "u1")

	h := sm.Metrics().AppendEmpty()
	h.SetName("latency")
	h.SetUnit("ms")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	hp := hist.DataPoints().AppendEmpty()
	hp.SetTimestamp(ts(0))
	hp.SetCount(100)
	hp.SetSum(2500)
	hp.BucketCounts().FromRaw([]uint64{50, 40, 10})
	hp.ExplicitBounds().FromRaw([]float64{10, 100})
	hx := hp.Exemplars().AppendEmpty()
	hx.SetTimestamp(ts(0))
	hx.SetDoubleValue(99.5)
	hx.SetTraceID(exTraceID)

	e := sm.Metrics().AppendEmpty()
	e.SetName("size")
	eh := e.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	ep := eh.DataPoints().AppendEmpty()
	ep.SetTimestamp(ts(0))
	ep.SetCount(4)
	ep.SetSum(11)
	ep.SetMin(0)
	ep.SetMax(7)
	ep.SetScale(0)
	ep.SetZeroCount(1)
	ep.SetZeroThreshold(1e-9)
	ep.Positive().SetOffset(1)
	ep.Positive().BucketCounts().FromRaw([]uint64{1, 2})
	ep.Negative().SetOffset(-2)
	ep.Negative().BucketCounts().FromRaw([]uint64{})

	q := sm.Metrics().AppendEmpty()
	q.SetName("rpc")
	qp := q.SetEmptySummary().DataPoints().AppendEmpty()
	qp.SetTimestamp(ts(0))
	qp.SetCount(3)
	qp.SetSum(6)
	for _, v := range [][2]float64{{0.5, 2}, {0.99, 3.5}} {
		qv := qp.QuantileValues().AppendEmpty()
		qv.SetQuantile(v[0])
		qv.SetValue(v[1])
	}
	return md
}

// openMetricStore opens a store with merges of metric_points stopped, and
// inserts testMetrics twice (as a redelivery would) for tenant "t1" and
// once for "t2".
func openMetricStore(t *testing.T) *chstore.Store {
	t.Helper()
	s := openStore(t)
	if err := s.Conn().Exec(ctx(t), "SYSTEM STOP MERGES metric_points"); err != nil {
		t.Fatalf("stop merges: %v", err)
	}
	for _, tenant := range []string{"t1", "t1", "t2"} {
		var b otlpconv.MetricBatch
		b.AppendMetrics(tenant, testMetrics())
		if err := s.InsertMetrics(ctx(t), &b); err != nil {
			t.Fatalf("insert metrics: %v", err)
		}
	}
	if n := countRows(t, s, "SELECT count() FROM metric_points WHERE tenant_id = 't1'"); n != 2*10 {
		t.Fatalf("%d rows for t1, want 20 (duplicates kept)", n)
	}
	return s
}

func window() (time.Time, time.Time) {
	return metricBase.Add(-time.Minute), metricBase.Add(time.Minute)
}

func TestMetricNames(t *testing.T) {
	s := openMetricStore(t)
	start, end := window()
	got, err := s.MetricNames(ctx(t), "t1", start, end)
	if err != nil {
		t.Fatal(err)
	}
	want := []chstore.MetricName{
		{Name: "latency", Type: chstore.MetricTypeHistogram, Unit: "ms"},
		{Name: "requests", Type: chstore.MetricTypeSum},
		{Name: "rpc", Type: chstore.MetricTypeSummary},
		{Name: "size", Type: chstore.MetricTypeExponentialHistogram},
		{Name: "temp", Type: chstore.MetricTypeGauge, Unit: "Cel", Description: "temperature"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("names\n got %+v\nwant %+v", got, want)
	}
	if got, _ := s.MetricNames(ctx(t), "nobody", start, end); len(got) != 0 {
		t.Errorf("other tenant sees %v", got)
	}
	if got, _ := s.MetricNames(ctx(t), "t1", start.AddDate(0, 0, 5), end.AddDate(0, 0, 6)); len(got) != 0 {
		t.Errorf("other days give %v", got)
	}
}

func seriesOf(t *testing.T, s *chstore.Store, q chstore.SeriesQuery) []chstore.MetricSeries {
	t.Helper()
	if q.TenantID == "" {
		q.TenantID = "t1"
	}
	if q.Start.IsZero() {
		q.Start, q.End = window()
	}
	out, err := s.MetricSeries(ctx(t), q)
	if err != nil {
		t.Fatalf("MetricSeries(%+v): %v", q, err)
	}
	return out
}

func TestMetricSeriesGauge(t *testing.T) {
	s := openMetricStore(t)
	got := seriesOf(t, s, chstore.SeriesQuery{Name: "temp"})
	if len(got) != 2 {
		t.Fatalf("%d series, want 2", len(got))
	}
	hosts := map[string][]float64{}
	for _, ser := range got {
		if ser.Type != chstore.MetricTypeGauge || ser.Unit != "Cel" || ser.Description != "temperature" ||
			ser.ScopeName != "lib" || ser.ScopeVersion != "2.0" || ser.Resource["k8s.namespace.name"] != "shop" ||
			ser.Labels["quote"] != `it's "x" \ ?` || ser.Name != "temp" {
			t.Errorf("series %+v", ser)
		}
		host := ser.Labels["host"].(string)
		var prev uint64
		for _, p := range ser.Points {
			if p.ValueType != otlpconv.ValueDouble || p.TimeNs <= prev {
				t.Errorf("host %s point %+v (duplicate or out of order)", host, p)
			}
			prev = p.TimeNs
			hosts[host] = append(hosts[host], p.Value)
		}
	}
	want := map[string][]float64{"a": {0.5, 1.5, 2.5}, "b": {100, 101, 102}}
	if !reflect.DeepEqual(hosts, want) {
		t.Errorf("values %v, want %v", hosts, want)
	}

	// Label filters: point attributes, resource attributes, no match, and
	// values that would break a SQL literal.
	for _, tc := range []struct {
		labels map[string]string
		series int
	}{
		{map[string]string{"host": "a"}, 1},
		{map[string]string{"host": "a", "k8s.namespace.name": "shop"}, 1},
		{map[string]string{"k8s.namespace.name": "shop"}, 2},
		{map[string]string{"quote": `it's "x" \ ?`}, 2},
		{map[string]string{"host": "c"}, 0},
		{map[string]string{"host": "a' OR 1=1 --"}, 0},
		{map[string]string{"k8s.namespace.name": "a"}, 0},
	} {
		if got := seriesOf(t, s, chstore.SeriesQuery{Name: "temp", Labels: tc.labels}); len(got) != tc.series {
			t.Errorf("labels %v: %d series, want %d", tc.labels, len(got), tc.series)
		}
	}

	// Step: the last point of each 20 s step (aligned to the epoch):
	// metricBase is :50, so steps [:40,:00) [:00,:20) hold +0s and +10s,+20s.
	stepped := seriesOf(t, s, chstore.SeriesQuery{Name: "temp", Labels: map[string]string{"host": "a"}, Step: 20 * time.Second})
	if len(stepped) != 1 {
		t.Fatalf("stepped: %d series", len(stepped))
	}
	var vals []float64
	for _, p := range stepped[0].Points {
		vals = append(vals, p.Value)
	}
	if !reflect.DeepEqual(vals, []float64{0.5, 2.5}) {
		t.Errorf("stepped values %v", vals)
	}
	wide := seriesOf(t, s, chstore.SeriesQuery{Name: "temp", Labels: map[string]string{"host": "b"}, Step: time.Hour})
	// 1 h steps: 23:59:50 is alone in its hour, 00:00:10 is the last of the next.
	if len(wide) != 1 || len(wide[0].Points) != 2 || wide[0].Points[0].Value != 100 || wide[0].Points[1].Value != 102 {
		t.Errorf("1h step: %+v, want the points of 23:59:50 and 00:00:10", wide)
	}

	// The window bounds are inclusive, in nanoseconds.
	only := seriesOf(t, s, chstore.SeriesQuery{Name: "temp", Start: metricBase.Add(10 * time.Second), End: metricBase.Add(10 * time.Second)})
	if len(only) != 2 || len(only[0].Points) != 1 || len(only[1].Points) != 1 {
		t.Errorf("exact window: %+v", only)
	}
	// Another tenant's points are invisible.
	if got := seriesOf(t, s, chstore.SeriesQuery{TenantID: "t3", Name: "temp"}); len(got) != 0 {
		t.Errorf("tenant t3 sees %d series", len(got))
	}
	// Too many points is a 400 naming step.
	_, err := s.MetricSeries(ctx(t), chstore.SeriesQuery{TenantID: "t1", Name: "temp", Start: metricBase.Add(-time.Minute), End: metricBase.Add(time.Minute), MaxPoints: 5})
	if apperr.KindOf(err) != apperr.KindInvalid {
		t.Errorf("6 points with MaxPoints 5: err %v, want invalid", err)
	}
}

func TestMetricSeriesKinds(t *testing.T) {
	s := openMetricStore(t)
	one := func(name string, q float64) (chstore.MetricSeries, chstore.MetricPoint) {
		t.Helper()
		got := seriesOf(t, s, chstore.SeriesQuery{Name: name, Quantile: q})
		if len(got) != 1 || len(got[0].Points) != 1 {
			t.Fatalf("%s: %d series %+v, want one with one point", name, len(got), got)
		}
		return got[0], got[0].Points[0]
	}

	ser, p := one("requests", 0)
	if !ser.IsMonotonic || ser.AggregationTemporality != 2 || ser.Labels["code"] != int64(200) ||
		p.ValueType != otlpconv.ValueInt || p.ValueInt != 1<<60+1 ||
		p.StartNs != uint64(metricBase.Add(-time.Hour).UnixNano()) || p.Quantile != nil {
		t.Errorf("sum %+v %+v", ser, p)
	}
	if len(p.Exemplars) != 1 {
		t.Fatalf("sum exemplars %+v", p.Exemplars)
	}
	ex := p.Exemplars[0]
	if ex.TraceID != hex.EncodeToString(exTraceID[:]) || ex.SpanID != hex.EncodeToString(exSpanID[:]) ||
		ex.ValueType != otlpconv.ValueInt || ex.ValueInt != 3 || string(ex.FilteredAttributes) != `{"user":"u1"}` ||
		ex.TimeNs != uint64(metricBase.Add(-time.Second).UnixNano()) {
		t.Errorf("sum exemplar %+v", ex)
	}

	ser, p = one("latency", 0.99)
	if ser.AggregationTemporality != 1 || ser.IsMonotonic || p.Count != 100 || *p.Sum != 2500 || p.Min != nil || p.Max != nil ||
		!reflect.DeepEqual(p.BucketCounts, []uint64{50, 40, 10}) || !reflect.DeepEqual(p.ExplicitBounds, []float64{10, 100}) {
		t.Errorf("histogram %+v %+v", ser, p)
	}
	// rank 99 is in the overflow bucket: Prometheus answers the highest bound.
	if p.Quantile == nil || p.Quantile.Q != 0.99 || p.Quantile.Value == nil || *p.Quantile.Value != 100 {
		t.Errorf("histogram p99 %+v", p.Quantile)
	}
	if len(p.Exemplars) != 1 || p.Exemplars[0].Value != 99.5 || p.Exemplars[0].SpanID != "" {
		t.Errorf("histogram exemplars %+v", p.Exemplars)
	}
	_, p = one("latency", 0.5)
	if p.Quantile == nil || p.Quantile.Value == nil || *p.Quantile.Value != 10 {
		t.Errorf("histogram p50 %+v", p.Quantile)
	}

	_, p = one("size", 0.5)
	if p.Count != 4 || *p.Sum != 11 || *p.Min != 0 || *p.Max != 7 || p.Scale != 0 || p.ZeroCount != 1 ||
		p.ZeroThreshold != 1e-9 || p.Positive.Offset != 1 || !reflect.DeepEqual(p.Positive.BucketCounts, []uint64{1, 2}) ||
		p.Negative.Offset != -2 || len(p.Negative.BucketCounts) != 0 {
		t.Errorf("exponential histogram %+v", p)
	}
	// rank 2 of [zero:1, (2,4]:1, (4,8]:2] ends the (2,4] bucket.
	if p.Quantile == nil || p.Quantile.Value == nil || *p.Quantile.Value != 4 {
		t.Errorf("exponential histogram p50 %+v", p.Quantile)
	}

	_, p = one("rpc", 0.99)
	want := []chstore.QuantileValue{{Quantile: 0.5, Value: 2}, {Quantile: 0.99, Value: 3.5}}
	if p.Count != 3 || *p.Sum != 6 || !reflect.DeepEqual(p.QuantileValues, want) {
		t.Errorf("summary %+v", p)
	}
	if p.Quantile == nil || p.Quantile.Value == nil || *p.Quantile.Value != 3.5 {
		t.Errorf("summary p99 %+v", p.Quantile)
	}
	_, p = one("rpc", 0.9)
	if p.Quantile == nil || p.Quantile.Value != nil {
		t.Errorf("summary p90 (not reported) %+v", p.Quantile)
	}
}

func TestMetricExemplars(t *testing.T) {
	s := openMetricStore(t)
	start, end := window()
	got, err := s.MetricExemplars(ctx(t), "t1", "requests", start, end, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("%d exemplars, want 1 (duplicates dropped): %+v", len(got), got)
	}
	e := got[0]
	if e.TraceID != hex.EncodeToString(exTraceID[:]) || e.SpanID != hex.EncodeToString(exSpanID[:]) ||
		e.ValueInt != 3 || e.Labels["code"] != int64(200) || e.Resource["service.name"] != "svc" ||
		string(e.FilteredAttributes) != `{"user":"u1"}` {
		t.Errorf("exemplar %+v", e)
	}
	if got, _ := s.MetricExemplars(ctx(t), "t1", "temp", start, end, 10); len(got) != 0 {
		t.Errorf("gauge without exemplars gave %+v", got)
	}
	if got, _ := s.MetricExemplars(ctx(t), "t3", "requests", start, end, 10); len(got) != 0 {
		t.Errorf("other tenant gave %+v", got)
	}
}

func f(v float64) *float64 { return &v }

func TestHistogramQuantile(t *testing.T) {
	for _, tc := range []struct {
		name     string
		q        float64
		bounds   []float64
		counts   []uint64
		min, max *float64
		want     float64
		ok       bool
	}{
		{"empty", 0.5, []float64{1}, []uint64{0, 0}, nil, nil, 0, false},
		{"no buckets", 0.5, nil, nil, nil, nil, 0, false},
		{"first bucket from zero", 0.25, []float64{10, 20}, []uint64{10, 10, 0}, nil, nil, 5, true},
		{"middle bucket", 0.75, []float64{10, 20}, []uint64{10, 10, 0}, nil, nil, 15, true},
		{"top of a bucket", 0.5, []float64{10, 20}, []uint64{10, 10, 0}, nil, nil, 10, true},
		{"overflow: highest bound", 0.99, []float64{10, 20}, []uint64{1, 1, 8}, nil, nil, 20, true},
		{"overflow: up to max", 0.9, []float64{10, 20}, []uint64{1, 1, 8}, nil, f(100), 20 + 80*(9-2)/8.0, true},
		{"first bucket from min", 0.5, []float64{10}, []uint64{4, 0}, f(6), nil, 8, true},
		{"negative first bound", 0.1, []float64{-5, 0}, []uint64{3, 3, 0}, nil, nil, -5, true},
		{"clamped to max", 1, []float64{10, 20}, []uint64{0, 4, 0}, nil, f(12), 12, true},
		{"q=1 top of last filled bucket", 1, []float64{10, 20}, []uint64{0, 4, 0}, nil, nil, 20, true},
		{"only overflow with min max", 0.5, nil, []uint64{4}, f(2), f(4), 3, true},
		{"skips empty buckets", 0.5, []float64{1, 2, 3}, []uint64{1, 0, 0, 1}, nil, nil, 1, true},
	} {
		got, ok := chstore.HistogramQuantile(tc.q, tc.bounds, tc.counts, tc.min, tc.max)
		if ok != tc.ok || (ok && math.Abs(got-tc.want) > 1e-9) {
			t.Errorf("%s: got %v %v, want %v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestExpHistogramQuantile(t *testing.T) {
	type h struct {
		scale          int32
		zero           uint64
		zt             float64
		posOff, negOff int32
		pos, neg       []uint64
		minV, maxV     *float64
		q, want        float64
		ok             bool
		name           string
	}
	for _, tc := range []h{
		{name: "empty", q: 0.5},
		{name: "scale 0 second bucket", scale: 0, posOff: 0, pos: []uint64{2, 2}, q: 0.75, want: 3, ok: true},
		{name: "scale 0 first bucket", scale: 0, posOff: 0, pos: []uint64{2, 2}, q: 0.25, want: 1.5, ok: true},
		{name: "scale 1 base sqrt2", scale: 1, posOff: 2, pos: []uint64{1}, q: 1, want: 2 * math.Sqrt2, ok: true},
		{name: "scale -1 base 4", scale: -1, posOff: 1, pos: []uint64{1}, q: 0.5, want: 10, ok: true},
		{name: "zero bucket", zero: 2, zt: 0, pos: []uint64{2}, q: 0.5, want: 0, ok: true},
		{name: "negative", negOff: 0, neg: []uint64{2}, pos: []uint64{2}, q: 0.25, want: -1.5, ok: true},
		{name: "negative lowest first", negOff: 1, neg: []uint64{1, 1}, q: 0.5, want: -4, ok: true},
		{name: "clamped by min", posOff: 0, pos: []uint64{2}, minV: f(1.8), q: 0.25, want: 1.8, ok: true},
	} {
		got, ok := chstore.ExpHistogramQuantile(tc.q, tc.scale, tc.zero, tc.zt, tc.posOff, tc.pos, tc.negOff, tc.neg, tc.minV, tc.maxV)
		if ok != tc.ok || (ok && math.Abs(got-tc.want) > 1e-9) {
			t.Errorf("%s: got %v %v, want %v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}
