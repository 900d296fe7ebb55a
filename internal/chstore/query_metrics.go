package chstore

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// Metric types as metric_points.metric_type stores them (pmetric.MetricType).
const (
	MetricTypeGauge                uint8 = 1
	MetricTypeSum                  uint8 = 2
	MetricTypeHistogram            uint8 = 3
	MetricTypeExponentialHistogram uint8 = 4
	MetricTypeSummary              uint8 = 5
)

const (
	// DefaultMaxSeriesPoints bounds the points of one MetricSeries read
	// when SeriesQuery.MaxPoints is not positive.
	DefaultMaxSeriesPoints = 100_000
	// DefaultExemplarLimit is used when the exemplar limit is not positive.
	DefaultExemplarLimit = 100
)

// MetricName is one metric seen in a time range.
type MetricName struct {
	Name        string
	Type        uint8 // MetricType*
	Unit        string
	Description string
}

// SeriesQuery selects the points of one metric for MetricSeries.
type SeriesQuery struct {
	TenantID string
	Name     string    // metric name, required
	Start    time.Time // points with time in [Start, End]
	End      time.Time
	// Labels keeps only points with, for every entry, a point attribute or
	// a resource attribute of that key whose value (as text: ints in
	// decimal, bools true/false) equals it.
	Labels map[string]string
	// Step, if positive, keeps the last point of each series in each step
	// (steps are aligned to multiples of Step since the epoch).
	Step time.Duration
	// Quantile, if in (0, 1], is estimated for every histogram point and
	// looked up in every summary point.
	Quantile float64
	// MaxPoints bounds the points read; more is an apperr KindInvalid.
	// <= 0 means DefaultMaxSeriesPoints.
	MaxPoints int
}

// MetricSeries is one time series: the points of one series_id.
type MetricSeries struct {
	SeriesID               uint64
	Name                   string
	Type                   uint8
	Description            string
	Unit                   string
	ScopeName              string
	ScopeVersion           string
	IsMonotonic            bool
	AggregationTemporality uint8 // 0 unspecified, 1 delta, 2 cumulative
	Labels                 map[string]any
	Resource               map[string]any
	Points                 []MetricPoint // by time
}

// MetricPoint is one data point. Which fields are meaningful depends on
// the series type.
type MetricPoint struct {
	StartNs uint64
	TimeNs  uint64
	Flags   uint32

	// Gauge and sum: ValueType otlpconv.ValueDouble (Value) or
	// otlpconv.ValueInt (ValueInt), or otlpconv.ValueEmpty.
	ValueType uint8
	Value     float64
	ValueInt  int64

	// Histograms and summaries.
	Count uint64
	Sum   *float64
	Min   *float64
	Max   *float64

	// Explicit bucket histogram.
	BucketCounts   []uint64
	ExplicitBounds []float64

	// Exponential histogram.
	Scale         int32
	ZeroCount     uint64
	ZeroThreshold float64
	Positive      ExpBuckets
	Negative      ExpBuckets

	// Summary.
	QuantileValues []QuantileValue

	// Quantile is the estimate asked for by SeriesQuery.Quantile (nil when
	// not asked, or for gauges and sums); its Value is nil when the point
	// has no data to estimate from.
	Quantile *QuantileEstimate

	Exemplars []Exemplar
}

// ExpBuckets are the positive or negative buckets of an exponential
// histogram.
type ExpBuckets struct {
	Offset       int32
	BucketCounts []uint64
}

// QuantileValue is one quantile a summary reported.
type QuantileValue struct {
	Quantile float64
	Value    float64
}

// QuantileEstimate is a quantile computed at read time.
type QuantileEstimate struct {
	Q     float64
	Value *float64
}

// Exemplar is one exemplar of a data point.
type Exemplar struct {
	TimeNs             uint64
	ValueType          uint8 // otlpconv.ValueDouble or otlpconv.ValueInt
	Value              float64
	ValueInt           int64
	TraceID            string          // lower-case hex, "" when absent
	SpanID             string          // lower-case hex, "" when absent
	FilteredAttributes json.RawMessage // a JSON object, or nil
}

// MetricExemplar is an exemplar with the series it belongs to.
type MetricExemplar struct {
	Exemplar
	SeriesID uint64
	Labels   map[string]any
	Resource map[string]any
}

const listMetricNamesSQL = `SELECT metric_name, metric_type, unit, description
FROM metric_names
WHERE tenant_id = ? AND date BETWEEN toDate(?) AND toDate(?)
GROUP BY metric_name, metric_type, unit, description
ORDER BY metric_name, metric_type, unit, description`

// MetricNames returns the metrics of the tenant with points on the days
// (UTC) from start to end, sorted by name. A name sent with two types (or
// units, or descriptions) appears once for each.
func (s *Store) MetricNames(ctx context.Context, tenantID string, start, end time.Time) ([]MetricName, error) {
	ctx, cancel := s.readCtx(ctx)
	defer cancel()
	rows, err := s.conn.Query(ctx, listMetricNamesSQL, tenantID, dateString(start), dateString(end))
	if err != nil {
		return nil, readErr(ctx, "list metric names", err)
	}
	defer rows.Close()
	out := []MetricName{}
	for rows.Next() {
		var m MetricName
		if err := rows.Scan(&m.Name, &m.Type, &m.Unit, &m.Description); err != nil {
			return nil, readErr(ctx, "list metric names: scan", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "list metric names: read", err)
	}
	return out, nil
}

// pointWhere is the selection shared by the series and exemplar reads;
// args are its bound values in order.
func pointWhere(tenantID, name string, start, end time.Time, labels map[string]string) (string, []any) {
	var sb strings.Builder
	sb.WriteString(`tenant_id = ? AND metric_name = ?
  AND date BETWEEN toDate(?) AND toDate(?)
  AND timestamp BETWEEN toDateTime(?) AND toDateTime(?)
  AND time_unix_nano BETWEEN ? AND ?`)
	args := []any{tenantID, name, dateString(start), dateString(end),
		unixSeconds(start), unixSeconds(end.Add(time.Second)), unixNanos(start), unixNanos(end)}
	keys := make([]string, 0, len(labels))
	for k := range labels {
		keys = append(keys, k)
	}
	slices.Sort(keys) // a stable statement text
	for _, k := range keys {
		sb.WriteString(`
  AND (arrayExists((k, v) -> k = ? AND v = ?, attr_keys, attr_values)
       OR arrayExists((k, v) -> k = ? AND v = ?, resource_keys, resource_values))`)
		args = append(args, k, labels[k], k, labels[k])
	}
	return sb.String(), args
}

const seriesColumns = `series_id, metric_type, description, unit, scope_name, scope_version,
    attr_keys, attr_values, attr_types, resource_keys, resource_values, resource_types,
    is_monotonic, aggregation_temporality, start_time_unix_nano, time_unix_nano, flags,
    value_type, value, value_int, count, sum, min, max, bucket_counts, explicit_bounds,
    scale, zero_count, zero_threshold, positive_offset, positive_bucket_counts,
    negative_offset, negative_bucket_counts, quantiles, quantile_values,
    exemplar_times, exemplar_value_types, exemplar_values, exemplar_int_values,
    arrayMap(x -> lower(hex(x)), exemplar_trace_ids), arrayMap(x -> lower(hex(x)), exemplar_span_ids),
    exemplar_attrs`

// MetricSeries returns the points of metric q.Name in [q.Start, q.End],
// grouped by series (ordered by series id) and by time within a series.
// Re-delivered copies of a point are read once. With q.Step, only the
// last point of each series in each step is kept.
func (s *Store) MetricSeries(ctx context.Context, q SeriesQuery) ([]MetricSeries, error) {
	ctx, cancel := s.readCtx(ctx)
	defer cancel()
	if q.End.Before(q.Start) {
		return []MetricSeries{}, nil
	}
	maxPoints := q.MaxPoints
	if maxPoints <= 0 {
		maxPoints = DefaultMaxSeriesPoints
	}
	where, args := pointWhere(q.TenantID, q.Name, q.Start, q.End, q.Labels)
	query := "SELECT " + seriesColumns + "\nFROM metric_points\nWHERE " + where
	if step := uint64(q.Step); step > 0 {
		query += "\nORDER BY series_id, time_unix_nano DESC\nLIMIT 1 BY series_id, intDiv(time_unix_nano, ?)"
		args = append(args, step)
	} else {
		query += "\nORDER BY series_id, time_unix_nano\nLIMIT 1 BY series_id, time_unix_nano"
	}
	query += "\nLIMIT ?"
	args = append(args, maxPoints+1)

	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, readErr(ctx, "metric series", err)
	}
	defer rows.Close()
	out := []MetricSeries{}
	n := 0
	for rows.Next() {
		var (
			ser                      MetricSeries
			p                        MetricPoint
			attrK, attrV, resK, resV []string
			attrT, resT              []uint8
			mono                     uint8
			quantiles, qvalues       []float64
			ex                       exemplarColumns
		)
		if err := rows.Scan(
			&ser.SeriesID, &ser.Type, &ser.Description, &ser.Unit, &ser.ScopeName, &ser.ScopeVersion,
			&attrK, &attrV, &attrT, &resK, &resV, &resT,
			&mono, &ser.AggregationTemporality, &p.StartNs, &p.TimeNs, &p.Flags,
			&p.ValueType, &p.Value, &p.ValueInt, &p.Count, &p.Sum, &p.Min, &p.Max, &p.BucketCounts, &p.ExplicitBounds,
			&p.Scale, &p.ZeroCount, &p.ZeroThreshold, &p.Positive.Offset, &p.Positive.BucketCounts,
			&p.Negative.Offset, &p.Negative.BucketCounts, &quantiles, &qvalues,
			&ex.times, &ex.types, &ex.values, &ex.ints, &ex.traceIDs, &ex.spanIDs, &ex.attrs,
		); err != nil {
			return nil, readErr(ctx, "metric series: scan", err)
		}
		if n++; n > maxPoints {
			return nil, apperr.Invalid("step", "more than %d points match; narrow the window or the labels, or set a larger step", maxPoints)
		}
		for i := range min(len(quantiles), len(qvalues)) {
			p.QuantileValues = append(p.QuantileValues, QuantileValue{Quantile: quantiles[i], Value: qvalues[i]})
		}
		p.Exemplars = ex.decode()
		if q.Quantile > 0 {
			p.Quantile = estimateQuantile(q.Quantile, ser.Type, &p)
		}
		if len(out) == 0 || out[len(out)-1].SeriesID != ser.SeriesID {
			ser.Name = q.Name
			ser.IsMonotonic = mono != 0
			ser.Labels = otlpconv.DecodeAttrs(attrK, attrV, attrT)
			ser.Resource = otlpconv.DecodeAttrs(resK, resV, resT)
			out = append(out, ser)
		}
		last := &out[len(out)-1]
		last.Points = append(last.Points, p)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "metric series: read", err)
	}
	if q.Step > 0 { // read newest first per series
		for i := range out {
			slices.Reverse(out[i].Points)
		}
	}
	return out, nil
}

// estimateQuantile computes SeriesQuery.Quantile for one point; nil for
// types without a distribution.
func estimateQuantile(q float64, typ uint8, p *MetricPoint) *QuantileEstimate {
	var (
		v  float64
		ok bool
	)
	switch typ {
	case MetricTypeHistogram:
		v, ok = HistogramQuantile(q, p.ExplicitBounds, p.BucketCounts, p.Min, p.Max)
	case MetricTypeExponentialHistogram:
		v, ok = ExpHistogramQuantile(q, p.Scale, p.ZeroCount, p.ZeroThreshold,
			p.Positive.Offset, p.Positive.BucketCounts, p.Negative.Offset, p.Negative.BucketCounts, p.Min, p.Max)
	case MetricTypeSummary:
		v, ok = SummaryQuantile(q, p.QuantileValues)
	default:
		return nil
	}
	est := &QuantileEstimate{Q: q}
	if ok {
		est.Value = &v
	}
	return est
}

// exemplarColumns are the parallel exemplar arrays of one row.
type exemplarColumns struct {
	times             []uint64
	types             []uint8
	values            []float64
	ints              []int64
	traceIDs, spanIDs []string
	attrs             []string
}

func (e *exemplarColumns) decode() []Exemplar {
	n := min(len(e.times), len(e.types), len(e.values), len(e.ints), len(e.traceIDs), len(e.spanIDs), len(e.attrs))
	if n == 0 {
		return nil
	}
	out := make([]Exemplar, n)
	for i := range n {
		out[i] = Exemplar{
			TimeNs: e.times[i], ValueType: e.types[i], Value: e.values[i], ValueInt: e.ints[i],
			TraceID: e.traceIDs[i], SpanID: e.spanIDs[i], FilteredAttributes: rawJSON(e.attrs[i]),
		}
	}
	return out
}

// MetricExemplars returns up to limit exemplars (newest first) of the
// points of metric name in [start, end], each with its series' labels and
// resource. Exemplars of re-delivered copies of a point are read once.
func (s *Store) MetricExemplars(ctx context.Context, tenantID, name string, start, end time.Time, limit int) ([]MetricExemplar, error) {
	ctx, cancel := s.readCtx(ctx)
	defer cancel()
	if limit <= 0 {
		limit = DefaultExemplarLimit
	}
	if end.Before(start) {
		return []MetricExemplar{}, nil
	}
	where, args := pointWhere(tenantID, name, start, end, nil)
	query := `SELECT series_id, attr_keys, attr_values, attr_types, resource_keys, resource_values, resource_types,
    ex_time, ex_type, ex_value, ex_int, lower(hex(ex_trace)), lower(hex(ex_span)), ex_attrs
FROM (
    SELECT series_id, time_unix_nano, attr_keys, attr_values, attr_types, resource_keys, resource_values, resource_types,
           exemplar_times, exemplar_value_types, exemplar_values, exemplar_int_values,
           exemplar_trace_ids, exemplar_span_ids, exemplar_attrs
    FROM metric_points
    WHERE ` + where + ` AND notEmpty(exemplar_times)
    ORDER BY series_id, time_unix_nano
    LIMIT 1 BY series_id, time_unix_nano
)
ARRAY JOIN exemplar_times AS ex_time, exemplar_value_types AS ex_type, exemplar_values AS ex_value,
    exemplar_int_values AS ex_int, exemplar_trace_ids AS ex_trace, exemplar_span_ids AS ex_span,
    exemplar_attrs AS ex_attrs
ORDER BY ex_time DESC, series_id
LIMIT ?`
	args = append(args, limit)
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, readErr(ctx, "metric exemplars", err)
	}
	defer rows.Close()
	out := []MetricExemplar{}
	for rows.Next() {
		var (
			e                        MetricExemplar
			attrK, attrV, resK, resV []string
			attrT, resT              []uint8
			attrs                    string
		)
		if err := rows.Scan(&e.SeriesID, &attrK, &attrV, &attrT, &resK, &resV, &resT,
			&e.TimeNs, &e.ValueType, &e.Value, &e.ValueInt, &e.TraceID, &e.SpanID, &attrs); err != nil {
			return nil, readErr(ctx, "metric exemplars: scan", err)
		}
		e.FilteredAttributes = rawJSON(attrs)
		e.Labels = otlpconv.DecodeAttrs(attrK, attrV, attrT)
		e.Resource = otlpconv.DecodeAttrs(resK, resV, resT)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "metric exemplars: read", err)
	}
	return out, nil
}
