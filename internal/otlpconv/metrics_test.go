package otlpconv

import (
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

var metricTime = time.Date(2026, 5, 1, 23, 59, 59, 123, time.UTC)

// sampleMetrics is one resource with one metric of each of the five kinds,
// one point each (two for the gauge), with exemplars where OTLP has them.
func sampleMetrics() pmetric.Metrics {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	res := rm.Resource().Attributes()
	res.PutStr(AttrServiceName, "checkout")
	res.PutStr(AttrPodName, "checkout-abc")
	res.PutStr(AttrContainerID, "docker://ABC")
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("lib")
	sm.Scope().SetVersion("1.0")
	ts := pcommon.NewTimestampFromTime(metricTime)
	start := pcommon.NewTimestampFromTime(metricTime.Add(-time.Minute))

	g := sm.Metrics().AppendEmpty()
	g.SetName("cpu")
	g.SetUnit("1")
	g.SetDescription("CPU use")
	gdps := g.SetEmptyGauge().DataPoints()
	for i, host := range []string{"a", "b"} {
		p := gdps.AppendEmpty()
		p.SetTimestamp(ts)
		p.SetDoubleValue(0.5 + float64(i))
		p.Attributes().PutStr("host", host)
	}

	s := sm.Metrics().AppendEmpty()
	s.SetName("requests")
	sum := s.SetEmptySum()
	sum.SetIsMonotonic(true)
	sum.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	sp := sum.DataPoints().AppendEmpty()
	sp.SetStartTimestamp(start)
	sp.SetTimestamp(ts)
	sp.SetIntValue(1<<60 + 1) // not exact as a float64
	sp.SetFlags(pmetric.DefaultDataPointFlags.WithNoRecordedValue(true))
	ex := sp.Exemplars().AppendEmpty()
	ex.SetTimestamp(ts)
	ex.SetIntValue(7)
	ex.SetTraceID(pcommon.TraceID{1, 2, 3})
	ex.SetSpanID(pcommon.SpanID{4, 5})
	ex.FilteredAttributes().PutStr("user", "u1")

	h := sm.Metrics().AppendEmpty()
	h.SetName("latency")
	h.SetUnit("ms")
	hist := h.SetEmptyHistogram()
	hist.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
	hp := hist.DataPoints().AppendEmpty()
	hp.SetStartTimestamp(start)
	hp.SetTimestamp(ts)
	hp.SetCount(10)
	hp.SetSum(123.5)
	hp.SetMin(1)
	hp.SetMax(90)
	hp.BucketCounts().FromRaw([]uint64{2, 5, 3})
	hp.ExplicitBounds().FromRaw([]float64{10, 50})
	hx := hp.Exemplars().AppendEmpty()
	hx.SetTimestamp(ts)
	hx.SetDoubleValue(42.5)
	hx.SetTraceID(pcommon.TraceID{9})

	e := sm.Metrics().AppendEmpty()
	e.SetName("size")
	eh := e.SetEmptyExponentialHistogram()
	eh.SetAggregationTemporality(pmetric.AggregationTemporalityDelta)
	ep := eh.DataPoints().AppendEmpty()
	ep.SetTimestamp(ts)
	ep.SetCount(9)
	ep.SetScale(2)
	ep.SetZeroCount(1)
	ep.SetZeroThreshold(0.001)
	ep.Positive().SetOffset(-3)
	ep.Positive().BucketCounts().FromRaw([]uint64{1, 2, 3})
	ep.Negative().SetOffset(4)
	ep.Negative().BucketCounts().FromRaw([]uint64{2})
	ep.SetMax(8) // no sum, no min
	ep.Exemplars().AppendEmpty().SetDoubleValue(3)

	q := sm.Metrics().AppendEmpty()
	q.SetName("rpc")
	qp := q.SetEmptySummary().DataPoints().AppendEmpty()
	qp.SetTimestamp(ts)
	qp.SetCount(4)
	qp.SetSum(20)
	for _, v := range [][2]float64{{0.5, 4}, {0.99, 9}} {
		qv := qp.QuantileValues().AppendEmpty()
		qv.SetQuantile(v[0])
		qv.SetValue(v[1])
	}
	return md
}

func TestAppendMetrics(t *testing.T) {
	var b MetricBatch
	b.AppendMetrics("tenant-a", sampleMetrics())
	const rows = 6
	if b.Len() != rows {
		t.Fatalf("len %d, want %d", b.Len(), rows)
	}
	if len(b.Columns()) != len(MetricColumns) {
		t.Fatalf("%d columns, %d names", len(b.Columns()), len(MetricColumns))
	}
	for i, col := range b.Columns() {
		if n := reflect.ValueOf(col).Len(); n != rows {
			t.Errorf("column %s has %d rows", MetricColumns[i], n)
		}
	}
	wantTypes := []uint8{1, 1, 2, 3, 4, 5}
	if !reflect.DeepEqual(b.MetricType, wantTypes) {
		t.Errorf("types %v, want %v", b.MetricType, wantTypes)
	}
	for i := range rows {
		if b.TenantID[i] != "tenant-a" || b.ServiceName[i] != "checkout" || b.PodName[i] != "checkout-abc" ||
			b.ContainerID[i] != "abc" || b.ScopeName[i] != "lib" || b.ScopeVersion[i] != "1.0" ||
			b.TimeNs[i] != uint64(metricTime.UnixNano()) || !b.Date[i].Equal(metricTime) {
			t.Errorf("row %d common columns wrong", i)
		}
		if len(b.ResourceKeys[i]) != 3 {
			t.Errorf("row %d resource keys %v", i, b.ResourceKeys[i])
		}
	}

	// gauge
	if b.MetricName[0] != "cpu" || b.Unit[0] != "1" || b.Description[0] != "CPU use" ||
		b.ValueType[0] != ValueDouble || b.Value[0] != 0.5 || b.Value[1] != 1.5 ||
		b.AttrKeys[0][0] != "host" || b.AttrValues[1][0] != "b" {
		t.Errorf("gauge row wrong: %+v", b)
	}
	if b.SeriesID[0] == b.SeriesID[1] {
		t.Error("gauge points with different attributes share a series")
	}
	// sum
	if b.IsMonotonic[2] != 1 || b.AggregationTemporality[2] != uint8(pmetric.AggregationTemporalityDelta) ||
		b.ValueType[2] != ValueInt || b.ValueInt[2] != 1<<60+1 || b.Flags[2] != 1 ||
		b.StartNs[2] != uint64(metricTime.Add(-time.Minute).UnixNano()) {
		t.Errorf("sum row wrong")
	}
	if got := b.ExemplarTraceIDs[2]; len(got) != 1 || got[0] != string([]byte{1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}) {
		t.Errorf("sum exemplar trace ids %q", got)
	}
	if b.ExemplarSpanIDs[2][0] != string([]byte{4, 5, 0, 0, 0, 0, 0, 0}) || b.ExemplarValueTypes[2][0] != ValueInt ||
		b.ExemplarIntValues[2][0] != 7 || b.ExemplarValues[2][0] != 7 || b.ExemplarAttrs[2][0] != `{"user":"u1"}` ||
		b.ExemplarTimes[2][0] != uint64(metricTime.UnixNano()) {
		t.Errorf("sum exemplar wrong")
	}
	// histogram
	if b.Count[3] != 10 || *b.Sum[3] != 123.5 || *b.Min[3] != 1 || *b.Max[3] != 90 ||
		!reflect.DeepEqual(b.BucketCounts[3], []uint64{2, 5, 3}) || !reflect.DeepEqual(b.ExplicitBounds[3], []float64{10, 50}) ||
		b.AggregationTemporality[3] != uint8(pmetric.AggregationTemporalityCumulative) || b.IsMonotonic[3] != 0 {
		t.Errorf("histogram row wrong")
	}
	if b.ExemplarValues[3][0] != 42.5 || b.ExemplarValueTypes[3][0] != ValueDouble || b.ExemplarSpanIDs[3][0] != "" || b.ExemplarAttrs[3][0] != "" {
		t.Errorf("histogram exemplar wrong")
	}
	// exponential histogram
	if b.Count[4] != 9 || b.Sum[4] != nil || b.Min[4] != nil || *b.Max[4] != 8 || b.Scale[4] != 2 ||
		b.ZeroCount[4] != 1 || b.ZeroThreshold[4] != 0.001 || b.PositiveOffset[4] != -3 ||
		!reflect.DeepEqual(b.PositiveBucketCounts[4], []uint64{1, 2, 3}) || b.NegativeOffset[4] != 4 ||
		!reflect.DeepEqual(b.NegativeBucketCounts[4], []uint64{2}) {
		t.Errorf("exponential histogram row wrong")
	}
	if b.ExemplarTraceIDs[4][0] != "" || b.ExemplarValues[4][0] != 3 {
		t.Errorf("exponential histogram exemplar wrong")
	}
	// summary
	if b.Count[5] != 4 || *b.Sum[5] != 20 || !reflect.DeepEqual(b.Quantiles[5], []float64{0.5, 0.99}) ||
		!reflect.DeepEqual(b.QuantileValues[5], []float64{4, 9}) || len(b.ExemplarTimes[5]) != 0 {
		t.Errorf("summary row wrong")
	}
	// Kind-specific columns of other kinds keep their defaults.
	if b.ValueType[3] != ValueEmpty || len(b.BucketCounts[0]) != 0 || b.Sum[0] != nil || len(b.Quantiles[3]) != 0 {
		t.Errorf("defaults of unused columns wrong")
	}
	b.Reset()
	if b.Len() != 0 {
		t.Error("reset kept rows")
	}
}

// The series id is stable across encodings of the same data, ignores the
// order of attributes, and separates tenants, names, types, scopes and
// resources.
func TestSeriesID(t *testing.T) {
	id := func(tenant string, mutate func(pmetric.Metrics)) uint64 {
		md := pmetric.NewMetrics()
		rm := md.ResourceMetrics().AppendEmpty()
		rm.Resource().Attributes().PutStr("service.name", "svc")
		rm.Resource().Attributes().PutStr("host", "h")
		sm := rm.ScopeMetrics().AppendEmpty()
		sm.Scope().SetName("lib")
		m := sm.Metrics().AppendEmpty()
		m.SetName("m")
		p := m.SetEmptyGauge().DataPoints().AppendEmpty()
		p.Attributes().PutStr("a", "1")
		p.Attributes().PutInt("b", 2)
		p.SetTimestamp(1)
		if mutate != nil {
			mutate(md)
		}
		var b MetricBatch
		b.AppendMetrics(tenant, md)
		return b.SeriesID[0]
	}
	point := func(md pmetric.Metrics) pmetric.NumberDataPoint {
		return md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).Gauge().DataPoints().At(0)
	}
	base := id("t", nil)
	same := map[string]func(pmetric.Metrics){
		"other time":  func(md pmetric.Metrics) { point(md).SetTimestamp(99) },
		"other value": func(md pmetric.Metrics) { point(md).SetDoubleValue(3) },
		"attribute order": func(md pmetric.Metrics) {
			a := point(md).Attributes()
			a.Clear()
			a.PutInt("b", 2)
			a.PutStr("a", "1")
		},
		"description": func(md pmetric.Metrics) {
			md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).SetDescription("d")
		},
	}
	for name, mut := range same {
		if got := id("t", mut); got != base {
			t.Errorf("%s changed the series id", name)
		}
	}
	differ := map[string]func(pmetric.Metrics){
		"attribute value": func(md pmetric.Metrics) { point(md).Attributes().PutStr("a", "2") },
		"attribute type":  func(md pmetric.Metrics) { point(md).Attributes().PutStr("b", "2") },
		"resource": func(md pmetric.Metrics) {
			md.ResourceMetrics().At(0).Resource().Attributes().PutStr("host", "h2")
		},
		"scope": func(md pmetric.Metrics) { md.ResourceMetrics().At(0).ScopeMetrics().At(0).Scope().SetVersion("2") },
		"name": func(md pmetric.Metrics) {
			md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).SetName("m2")
		},
		"unit": func(md pmetric.Metrics) { md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0).SetUnit("s") },
		"type": func(md pmetric.Metrics) {
			m := md.ResourceMetrics().At(0).ScopeMetrics().At(0).Metrics().At(0)
			m.SetEmptySum().DataPoints().AppendEmpty().Attributes().FromRaw(map[string]any{"a": "1", "b": 2})
		},
	}
	seen := map[uint64]string{base: "base"}
	for name, mut := range differ {
		got := id("t", mut)
		if prev, dup := seen[got]; dup {
			t.Errorf("%s: series id equals that of %s", name, prev)
		}
		seen[got] = name
	}
	if id("u", nil) == base {
		t.Error("tenant not part of the series id")
	}
}

func TestAppendMetricsEmpty(t *testing.T) {
	var b MetricBatch
	md := pmetric.NewMetrics()
	md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetName("no-data")
	b.AppendMetrics("t", md)
	if b.Len() != 0 {
		t.Fatalf("a metric without data type gave %d rows", b.Len())
	}
}
