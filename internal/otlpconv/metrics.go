package otlpconv

import (
	"encoding/binary"
	"sort"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// Value types of metric_points.value_type and exemplar_value_types.
const (
	ValueEmpty  uint8 = 0 // no value recorded
	ValueDouble uint8 = 1 // the value column holds it
	ValueInt    uint8 = 2 // value_int holds it (value holds it as a double too)
)

// MetricBatch holds metric data points column by column, in the order of
// MetricColumns. Every data point of every kind is one row; the columns of
// the other kinds hold their zero values.
type MetricBatch struct {
	TenantID               []string
	Date                   []time.Time
	Timestamp              []time.Time
	RetentionClass         []string
	MetricName             []string
	MetricType             []uint8 // pmetric.MetricType
	Description            []string
	Unit                   []string
	SeriesID               []uint64
	StartNs                []uint64
	TimeNs                 []uint64
	Flags                  []uint32
	ServiceName            []string
	ScopeName              []string
	ScopeVersion           []string
	PodUID                 []string
	PodName                []string
	Namespace              []string
	NodeName               []string
	ContainerID            []string
	ContainerName          []string
	AttrKeys               [][]string
	AttrValues             [][]string
	AttrTypes              [][]uint8
	ResourceKeys           [][]string
	ResourceValues         [][]string
	ResourceTypes          [][]uint8
	IsMonotonic            []uint8
	AggregationTemporality []uint8
	ValueType              []uint8
	Value                  []float64
	ValueInt               []int64
	Count                  []uint64
	Sum                    []*float64
	Min                    []*float64
	Max                    []*float64
	BucketCounts           [][]uint64
	ExplicitBounds         [][]float64
	Scale                  []int32
	ZeroCount              []uint64
	ZeroThreshold          []float64
	PositiveOffset         []int32
	PositiveBucketCounts   [][]uint64
	NegativeOffset         []int32
	NegativeBucketCounts   [][]uint64
	Quantiles              [][]float64
	QuantileValues         [][]float64
	ExemplarTimes          [][]uint64
	ExemplarValueTypes     [][]uint8
	ExemplarValues         [][]float64
	ExemplarIntValues      [][]int64
	ExemplarTraceIDs       [][]string // 16 raw bytes, or "" when absent
	ExemplarSpanIDs        [][]string // 8 raw bytes, or "" when absent
	ExemplarAttrs          [][]string // JSON object, or "" when none
}

// MetricColumns are the metric_points columns, in the order Columns returns
// them.
var MetricColumns = []string{
	"tenant_id", "date", "timestamp", "retention_class", "metric_name", "metric_type", "description", "unit",
	"series_id", "start_time_unix_nano", "time_unix_nano", "flags", "service_name", "scope_name", "scope_version",
	"k8s_pod_uid", "k8s_pod_name", "k8s_namespace_name", "k8s_node_name", "container_id", "k8s_container_name",
	"attr_keys", "attr_values", "attr_types", "resource_keys", "resource_values", "resource_types",
	"is_monotonic", "aggregation_temporality", "value_type", "value", "value_int",
	"count", "sum", "min", "max", "bucket_counts", "explicit_bounds",
	"scale", "zero_count", "zero_threshold", "positive_offset", "positive_bucket_counts",
	"negative_offset", "negative_bucket_counts", "quantiles", "quantile_values",
	"exemplar_times", "exemplar_value_types", "exemplar_values", "exemplar_int_values",
	"exemplar_trace_ids", "exemplar_span_ids", "exemplar_attrs",
}

// Columns returns the column slices in MetricColumns order.
func (b *MetricBatch) Columns() []any {
	return []any{
		b.TenantID, b.Date, b.Timestamp, b.RetentionClass, b.MetricName, b.MetricType, b.Description, b.Unit,
		b.SeriesID, b.StartNs, b.TimeNs, b.Flags, b.ServiceName, b.ScopeName, b.ScopeVersion,
		b.PodUID, b.PodName, b.Namespace, b.NodeName, b.ContainerID, b.ContainerName,
		b.AttrKeys, b.AttrValues, b.AttrTypes, b.ResourceKeys, b.ResourceValues, b.ResourceTypes,
		b.IsMonotonic, b.AggregationTemporality, b.ValueType, b.Value, b.ValueInt,
		b.Count, b.Sum, b.Min, b.Max, b.BucketCounts, b.ExplicitBounds,
		b.Scale, b.ZeroCount, b.ZeroThreshold, b.PositiveOffset, b.PositiveBucketCounts,
		b.NegativeOffset, b.NegativeBucketCounts, b.Quantiles, b.QuantileValues,
		b.ExemplarTimes, b.ExemplarValueTypes, b.ExemplarValues, b.ExemplarIntValues,
		b.ExemplarTraceIDs, b.ExemplarSpanIDs, b.ExemplarAttrs,
	}
}

// Len is the number of rows.
func (b *MetricBatch) Len() int { return len(b.TenantID) }

// Reset empties the batch.
func (b *MetricBatch) Reset() { *b = MetricBatch{} }

// metricInfo is what every point of one metric shares.
type metricInfo struct {
	tenant       string
	ri           *resourceInfo
	scope        pcommon.InstrumentationScope
	name         string
	typ          pmetric.MetricType
	desc, unit   string
	monotonic    uint8
	temporality  uint8
	seriesPrefix uint64 // series hash over everything but the point attributes
}

// AppendMetrics flattens every data point of md into the batch for tenantID.
func (b *MetricBatch) AppendMetrics(tenantID string, md pmetric.Metrics) {
	rms := md.ResourceMetrics()
	for r := 0; r < rms.Len(); r++ {
		rm := rms.At(r)
		ri := newResourceInfo(rm.Resource())
		resHash := seriesHashAttrs(seriesFNVOffset, rm.Resource().Attributes())
		sms := rm.ScopeMetrics()
		for s := 0; s < sms.Len(); s++ {
			sm := sms.At(s)
			ms := sm.Metrics()
			for i := 0; i < ms.Len(); i++ {
				b.appendMetric(tenantID, &ri, resHash, sm.Scope(), ms.At(i))
			}
		}
	}
}

func (b *MetricBatch) appendMetric(tenantID string, ri *resourceInfo, resHash uint64, scope pcommon.InstrumentationScope, m pmetric.Metric) {
	mi := metricInfo{
		tenant: tenantID, ri: ri, scope: scope,
		name: m.Name(), typ: m.Type(), desc: m.Description(), unit: m.Unit(),
	}
	switch m.Type() {
	case pmetric.MetricTypeSum:
		if m.Sum().IsMonotonic() {
			mi.monotonic = 1
		}
		mi.temporality = uint8(m.Sum().AggregationTemporality())
	case pmetric.MetricTypeHistogram:
		mi.temporality = uint8(m.Histogram().AggregationTemporality())
	case pmetric.MetricTypeExponentialHistogram:
		mi.temporality = uint8(m.ExponentialHistogram().AggregationTemporality())
	}
	h := seriesHashString(seriesFNVOffset, tenantID)
	h = seriesHashString(h, mi.name)
	h = seriesHashUint(h, uint64(mi.typ))
	h = seriesHashString(h, mi.unit)
	h = seriesHashUint(h, uint64(mi.temporality)<<8|uint64(mi.monotonic))
	h = seriesHashString(h, scope.Name())
	h = seriesHashString(h, scope.Version())
	mi.seriesPrefix = seriesHashUint(h, resHash)

	switch m.Type() {
	case pmetric.MetricTypeGauge:
		dps := m.Gauge().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			b.appendNumber(&mi, dps.At(i))
		}
	case pmetric.MetricTypeSum:
		dps := m.Sum().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			b.appendNumber(&mi, dps.At(i))
		}
	case pmetric.MetricTypeHistogram:
		dps := m.Histogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			b.appendHistogram(&mi, dps.At(i))
		}
	case pmetric.MetricTypeExponentialHistogram:
		dps := m.ExponentialHistogram().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			b.appendExpHistogram(&mi, dps.At(i))
		}
	case pmetric.MetricTypeSummary:
		dps := m.Summary().DataPoints()
		for i := 0; i < dps.Len(); i++ {
			b.appendSummary(&mi, dps.At(i))
		}
	}
}

// appendCommon appends the columns every kind fills and zero values for
// the kind-specific ones; the caller then overwrites the last element of
// the columns of its kind.
func (b *MetricBatch) appendCommon(mi *metricInfo, start, ts pcommon.Timestamp, flags pmetric.DataPointFlags, attrs pcommon.Map, ex pmetric.ExemplarSlice) {
	t := time.Unix(0, int64(ts)).UTC()
	ri := mi.ri
	b.TenantID = append(b.TenantID, mi.tenant)
	b.Date = append(b.Date, t)
	b.Timestamp = append(b.Timestamp, t)
	b.RetentionClass = append(b.RetentionClass, DefaultRetentionClass)
	b.MetricName = append(b.MetricName, mi.name)
	b.MetricType = append(b.MetricType, uint8(mi.typ))
	b.Description = append(b.Description, mi.desc)
	b.Unit = append(b.Unit, mi.unit)
	b.SeriesID = append(b.SeriesID, seriesHashAttrs(mi.seriesPrefix, attrs))
	b.StartNs = append(b.StartNs, uint64(start))
	b.TimeNs = append(b.TimeNs, uint64(ts))
	b.Flags = append(b.Flags, uint32(flags))
	b.ServiceName = append(b.ServiceName, ri.service)
	b.ScopeName = append(b.ScopeName, mi.scope.Name())
	b.ScopeVersion = append(b.ScopeVersion, mi.scope.Version())
	b.PodUID = append(b.PodUID, ri.podUID)
	b.PodName = append(b.PodName, ri.podName)
	b.Namespace = append(b.Namespace, ri.namespace)
	b.NodeName = append(b.NodeName, ri.node)
	b.ContainerID = append(b.ContainerID, ri.containerID)
	b.ContainerName = append(b.ContainerName, ri.containerName)
	k, v, ty := AppendAttrs([]string{}, []string{}, []uint8{}, attrs)
	b.AttrKeys = append(b.AttrKeys, k)
	b.AttrValues = append(b.AttrValues, v)
	b.AttrTypes = append(b.AttrTypes, ty)
	b.ResourceKeys = append(b.ResourceKeys, noNil(ri.keys))
	b.ResourceValues = append(b.ResourceValues, noNil(ri.values))
	b.ResourceTypes = append(b.ResourceTypes, noNil(ri.types))
	b.IsMonotonic = append(b.IsMonotonic, mi.monotonic)
	b.AggregationTemporality = append(b.AggregationTemporality, mi.temporality)
	b.ValueType = append(b.ValueType, ValueEmpty)
	b.Value = append(b.Value, 0)
	b.ValueInt = append(b.ValueInt, 0)
	b.Count = append(b.Count, 0)
	b.Sum = append(b.Sum, nil)
	b.Min = append(b.Min, nil)
	b.Max = append(b.Max, nil)
	b.BucketCounts = append(b.BucketCounts, []uint64{})
	b.ExplicitBounds = append(b.ExplicitBounds, []float64{})
	b.Scale = append(b.Scale, 0)
	b.ZeroCount = append(b.ZeroCount, 0)
	b.ZeroThreshold = append(b.ZeroThreshold, 0)
	b.PositiveOffset = append(b.PositiveOffset, 0)
	b.PositiveBucketCounts = append(b.PositiveBucketCounts, []uint64{})
	b.NegativeOffset = append(b.NegativeOffset, 0)
	b.NegativeBucketCounts = append(b.NegativeBucketCounts, []uint64{})
	b.Quantiles = append(b.Quantiles, []float64{})
	b.QuantileValues = append(b.QuantileValues, []float64{})
	b.appendExemplars(ex)
}

func (b *MetricBatch) appendExemplars(ex pmetric.ExemplarSlice) {
	n := ex.Len()
	times, types := make([]uint64, n), make([]uint8, n)
	vals, ints := make([]float64, n), make([]int64, n)
	tids, sids, attrs := make([]string, n), make([]string, n), make([]string, n)
	for i := 0; i < n; i++ {
		e := ex.At(i)
		times[i] = uint64(e.Timestamp())
		switch e.ValueType() {
		case pmetric.ExemplarValueTypeDouble:
			types[i], vals[i] = ValueDouble, e.DoubleValue()
		case pmetric.ExemplarValueTypeInt:
			types[i], vals[i], ints[i] = ValueInt, float64(e.IntValue()), e.IntValue()
		}
		if tid := e.TraceID(); !tid.IsEmpty() {
			tids[i] = string(tid[:])
		}
		if sid := e.SpanID(); !sid.IsEmpty() {
			sids[i] = string(sid[:])
		}
		attrs[i] = AttrsJSON(e.FilteredAttributes())
	}
	b.ExemplarTimes = append(b.ExemplarTimes, times)
	b.ExemplarValueTypes = append(b.ExemplarValueTypes, types)
	b.ExemplarValues = append(b.ExemplarValues, vals)
	b.ExemplarIntValues = append(b.ExemplarIntValues, ints)
	b.ExemplarTraceIDs = append(b.ExemplarTraceIDs, tids)
	b.ExemplarSpanIDs = append(b.ExemplarSpanIDs, sids)
	b.ExemplarAttrs = append(b.ExemplarAttrs, attrs)
}

func (b *MetricBatch) appendNumber(mi *metricInfo, dp pmetric.NumberDataPoint) {
	b.appendCommon(mi, dp.StartTimestamp(), dp.Timestamp(), dp.Flags(), dp.Attributes(), dp.Exemplars())
	last := len(b.TenantID) - 1
	switch dp.ValueType() {
	case pmetric.NumberDataPointValueTypeDouble:
		b.ValueType[last], b.Value[last] = ValueDouble, dp.DoubleValue()
	case pmetric.NumberDataPointValueTypeInt:
		b.ValueType[last], b.Value[last], b.ValueInt[last] = ValueInt, float64(dp.IntValue()), dp.IntValue()
	}
}

func (b *MetricBatch) appendHistogram(mi *metricInfo, dp pmetric.HistogramDataPoint) {
	b.appendCommon(mi, dp.StartTimestamp(), dp.Timestamp(), dp.Flags(), dp.Attributes(), dp.Exemplars())
	last := len(b.TenantID) - 1
	b.Count[last] = dp.Count()
	if dp.HasSum() {
		b.Sum[last] = f64Ptr(dp.Sum())
	}
	if dp.HasMin() {
		b.Min[last] = f64Ptr(dp.Min())
	}
	if dp.HasMax() {
		b.Max[last] = f64Ptr(dp.Max())
	}
	b.BucketCounts[last] = noNil(dp.BucketCounts().AsRaw())
	b.ExplicitBounds[last] = noNil(dp.ExplicitBounds().AsRaw())
}

func (b *MetricBatch) appendExpHistogram(mi *metricInfo, dp pmetric.ExponentialHistogramDataPoint) {
	b.appendCommon(mi, dp.StartTimestamp(), dp.Timestamp(), dp.Flags(), dp.Attributes(), dp.Exemplars())
	last := len(b.TenantID) - 1
	b.Count[last] = dp.Count()
	if dp.HasSum() {
		b.Sum[last] = f64Ptr(dp.Sum())
	}
	if dp.HasMin() {
		b.Min[last] = f64Ptr(dp.Min())
	}
	if dp.HasMax() {
		b.Max[last] = f64Ptr(dp.Max())
	}
	b.Scale[last] = dp.Scale()
	b.ZeroCount[last] = dp.ZeroCount()
	b.ZeroThreshold[last] = dp.ZeroThreshold()
	b.PositiveOffset[last] = dp.Positive().Offset()
	b.PositiveBucketCounts[last] = noNil(dp.Positive().BucketCounts().AsRaw())
	b.NegativeOffset[last] = dp.Negative().Offset()
	b.NegativeBucketCounts[last] = noNil(dp.Negative().BucketCounts().AsRaw())
}

func (b *MetricBatch) appendSummary(mi *metricInfo, dp pmetric.SummaryDataPoint) {
	b.appendCommon(mi, dp.StartTimestamp(), dp.Timestamp(), dp.Flags(), dp.Attributes(), pmetric.NewExemplarSlice())
	last := len(b.TenantID) - 1
	b.Count[last] = dp.Count()
	b.Sum[last] = f64Ptr(dp.Sum()) // a summary's sum is not optional in OTLP
	qv := dp.QuantileValues()
	qs, vs := make([]float64, qv.Len()), make([]float64, qv.Len())
	for i := 0; i < qv.Len(); i++ {
		qs[i], vs[i] = qv.At(i).Quantile(), qv.At(i).Value()
	}
	b.Quantiles[last] = qs
	b.QuantileValues[last] = vs
}

// ---- series identity ----

// FNV-1a, 64 bit; inlined so a partial hash can be continued per point.
const (
	seriesFNVOffset uint64 = 14695981039346656037
	seriesFNVPrime  uint64 = 1099511628211
)

func seriesHashBytes(h uint64, p []byte) uint64 {
	for _, c := range p {
		h ^= uint64(c)
		h *= seriesFNVPrime
	}
	return h
}

func seriesHashUint(h, v uint64) uint64 {
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], v)
	return seriesHashBytes(h, buf[:])
}

// seriesHashString hashes the length first, so ("ab","c") and ("a","bc") differ.
func seriesHashString(h uint64, s string) uint64 {
	h = seriesHashUint(h, uint64(len(s)))
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= seriesFNVPrime
	}
	return h
}

// seriesHashAttrs continues h over the attributes sorted by key (typed values),
// so the order a sender lists them in does not split a series.
func seriesHashAttrs(h uint64, m pcommon.Map) uint64 {
	type kv struct {
		k, v string
		t    uint8
	}
	kvs := make([]kv, 0, m.Len())
	m.Range(func(k string, v pcommon.Value) bool {
		s, t := EncodeValue(v)
		kvs = append(kvs, kv{k, s, t})
		return true
	})
	sort.Slice(kvs, func(i, j int) bool { return kvs[i].k < kvs[j].k })
	h = seriesHashUint(h, uint64(len(kvs)))
	for _, e := range kvs {
		h = seriesHashString(h, e.k)
		h = seriesHashUint(h, uint64(e.t))
		h = seriesHashString(h, e.v)
	}
	return h
}

func f64Ptr(f float64) *float64 { return &f }

// noNil returns s, or an empty slice for nil (ClickHouse arrays must not
// be nil in a columnar append).
func noNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
