package api

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// Bounds of the metrics parameters.
const (
	maxMetricNameBytes  = 1024
	maxLabelFilters     = 32
	maxLabelBytes       = 1024 // per key and per value
	minMetricStep       = time.Second
	labelParamPrefix    = "label."
	defaultExemplarsMax = chstore.DefaultExemplarLimit
)

var metricTypeNames = map[uint8]string{
	chstore.MetricTypeGauge:                "gauge",
	chstore.MetricTypeSum:                  "sum",
	chstore.MetricTypeHistogram:            "histogram",
	chstore.MetricTypeExponentialHistogram: "exponentialHistogram",
	chstore.MetricTypeSummary:              "summary",
}

func metricTypeName(t uint8) string {
	if n, ok := metricTypeNames[t]; ok {
		return n
	}
	return "unspecified"
}

var temporalityNames = [...]string{"unspecified", "delta", "cumulative"}

func temporalityName(t uint8) string {
	if int(t) < len(temporalityNames) {
		return temporalityNames[t]
	}
	return "unspecified"
}

// jfloat is a float64 that JSON-encodes NaN and infinities as the strings
// "NaN", "+Inf", "-Inf" (JSON numbers cannot hold them).
type jfloat float64

func (f jfloat) MarshalJSON() ([]byte, error) {
	v := float64(f)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return json.Marshal(strconv.FormatFloat(v, 'g', -1, 64))
	}
	return json.Marshal(v)
}

func jfloats(fs []float64) []jfloat {
	out := make([]jfloat, len(fs))
	for i, f := range fs {
		out[i] = jfloat(f)
	}
	return out
}

// jfloatPtr is nil (JSON null) for an absent value.
func jfloatPtr(f *float64) *jfloat {
	if f == nil {
		return nil
	}
	v := jfloat(*f)
	return &v
}

func orEmptyCounts(c []uint64) []uint64 {
	if c == nil {
		return []uint64{}
	}
	return c
}

// numberValue is the JSON value of a gauge or sum point (or exemplar):
// an int64 for int values, a number for doubles, null when empty.
func numberValue(typ uint8, f float64, n int64) any {
	switch typ {
	case otlpconv.ValueInt:
		return n
	case otlpconv.ValueDouble:
		return jfloat(f)
	}
	return nil
}

// ---- JSON answers ----

type metricNameJSON struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Unit        string `json:"unit"`
	Description string `json:"description"`
}

type metricSeriesJSON struct {
	SeriesID               string           `json:"seriesId"`
	Name                   string           `json:"name"`
	Type                   string           `json:"type"`
	Unit                   string           `json:"unit"`
	Description            string           `json:"description"`
	Scope                  scopeJSON        `json:"scope"`
	AggregationTemporality string           `json:"aggregationTemporality"`
	IsMonotonic            bool             `json:"isMonotonic"`
	Labels                 map[string]any   `json:"labels"`
	Resource               map[string]any   `json:"resource"`
	Points                 []map[string]any `json:"points"`
}

type exemplarJSON struct {
	TimeUnixNano       uint64          `json:"timeUnixNano,string"`
	Value              any             `json:"value"`
	TraceID            string          `json:"traceId"`
	SpanID             string          `json:"spanId"`
	FilteredAttributes json.RawMessage `json:"filteredAttributes"`
}

type metricExemplarJSON struct {
	exemplarJSON
	SeriesID string         `json:"seriesId"`
	Labels   map[string]any `json:"labels"`
	Resource map[string]any `json:"resource"`
}

type quantileValueJSON struct {
	Quantile jfloat `json:"quantile"`
	Value    jfloat `json:"value"`
}

type expBucketsJSON struct {
	Offset       int32    `json:"offset"`
	BucketCounts []uint64 `json:"bucketCounts"`
}

type quantileJSON struct {
	Q     float64 `json:"q"`
	Value *jfloat `json:"value"` // null: no observations
}

func seriesIDString(id uint64) string { return fmt.Sprintf("%016x", id) }

func toExemplarJSON(e *chstore.Exemplar) exemplarJSON {
	return exemplarJSON{
		TimeUnixNano:       e.TimeNs,
		Value:              numberValue(e.ValueType, e.Value, e.ValueInt),
		TraceID:            e.TraceID,
		SpanID:             e.SpanID,
		FilteredAttributes: objectOrEmpty(e.FilteredAttributes),
	}
}

// toPointJSON renders a point with the fields of its series type only.
func toPointJSON(typ uint8, p *chstore.MetricPoint) map[string]any {
	m := map[string]any{
		"startTimeUnixNano": strconv.FormatUint(p.StartNs, 10),
		"timeUnixNano":      strconv.FormatUint(p.TimeNs, 10),
		"flags":             p.Flags,
	}
	switch typ {
	case chstore.MetricTypeGauge, chstore.MetricTypeSum:
		m["value"] = numberValue(p.ValueType, p.Value, p.ValueInt)
	case chstore.MetricTypeHistogram:
		m["count"], m["sum"], m["min"], m["max"] = p.Count, jfloatPtr(p.Sum), jfloatPtr(p.Min), jfloatPtr(p.Max)
		m["bucketCounts"] = orEmptyCounts(p.BucketCounts)
		m["explicitBounds"] = jfloats(p.ExplicitBounds)
	case chstore.MetricTypeExponentialHistogram:
		m["count"], m["sum"], m["min"], m["max"] = p.Count, jfloatPtr(p.Sum), jfloatPtr(p.Min), jfloatPtr(p.Max)
		m["scale"], m["zeroCount"], m["zeroThreshold"] = p.Scale, p.ZeroCount, jfloat(p.ZeroThreshold)
		m["positive"] = expBucketsJSON{Offset: p.Positive.Offset, BucketCounts: orEmptyCounts(p.Positive.BucketCounts)}
		m["negative"] = expBucketsJSON{Offset: p.Negative.Offset, BucketCounts: orEmptyCounts(p.Negative.BucketCounts)}
	case chstore.MetricTypeSummary:
		m["count"], m["sum"] = p.Count, jfloatPtr(p.Sum)
		qvs := make([]quantileValueJSON, len(p.QuantileValues))
		for i, qv := range p.QuantileValues {
			qvs[i] = quantileValueJSON{Quantile: jfloat(qv.Quantile), Value: jfloat(qv.Value)}
		}
		m["quantileValues"] = qvs
	}
	if p.Quantile != nil {
		var v *jfloat
		if p.Quantile.Value != nil {
			v = jfloatPtr(p.Quantile.Value)
		}
		m["quantile"] = quantileJSON{Q: p.Quantile.Q, Value: v}
	}
	if typ != chstore.MetricTypeSummary {
		ex := make([]exemplarJSON, len(p.Exemplars))
		for i := range p.Exemplars {
			ex[i] = toExemplarJSON(&p.Exemplars[i])
		}
		m["exemplars"] = ex
	}
	return m
}

// ---- handlers ----

func (s *Service) metricNames(r *http.Request, tenantID string) (any, error) {
	start, end, err := s.parseWindow(r, min(defaultServicesWindow, s.cfg.MaxSearchWindow))
	if err != nil {
		return nil, err
	}
	names, err := s.store.MetricNames(r.Context(), tenantID, start, end)
	if err != nil {
		return nil, err
	}
	resp := listResponse[metricNameJSON]{Items: make([]metricNameJSON, len(names))}
	for i, n := range names {
		resp.Items[i] = metricNameJSON{Name: n.Name, Type: metricTypeName(n.Type), Unit: n.Unit, Description: n.Description}
	}
	return resp, nil
}

func (s *Service) metricSeries(r *http.Request, tenantID string) (any, error) {
	q, err := s.parseSeriesQuery(r)
	if err != nil {
		return nil, err
	}
	q.TenantID = tenantID
	series, err := s.store.MetricSeries(r.Context(), q)
	if err != nil {
		return nil, err
	}
	resp := listResponse[metricSeriesJSON]{Items: make([]metricSeriesJSON, len(series))}
	for i := range series {
		ser := &series[i]
		item := metricSeriesJSON{
			SeriesID:               seriesIDString(ser.SeriesID),
			Name:                   ser.Name,
			Type:                   metricTypeName(ser.Type),
			Unit:                   ser.Unit,
			Description:            ser.Description,
			Scope:                  scopeJSON{Name: ser.ScopeName, Version: ser.ScopeVersion},
			AggregationTemporality: temporalityName(ser.AggregationTemporality),
			IsMonotonic:            ser.IsMonotonic,
			Labels:                 jsonAttrs(ser.Labels),
			Resource:               jsonAttrs(ser.Resource),
			Points:                 make([]map[string]any, len(ser.Points)),
		}
		for j := range ser.Points {
			item.Points[j] = toPointJSON(ser.Type, &ser.Points[j])
		}
		resp.Items[i] = item
	}
	return resp, nil
}

func (s *Service) metricExemplars(r *http.Request, tenantID string) (any, error) {
	name, err := parseMetricName(r.URL.Query())
	if err != nil {
		return nil, err
	}
	start, end, err := s.parseWindow(r, s.cfg.DefaultSearchWindow)
	if err != nil {
		return nil, err
	}
	limit := min(defaultExemplarsMax, s.cfg.MaxLimit)
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > s.cfg.MaxLimit {
			return nil, apperr.Invalid("limit", "must be an integer from 1 to %d", s.cfg.MaxLimit)
		}
		limit = n
	}
	exs, err := s.store.MetricExemplars(r.Context(), tenantID, name, start, end, limit)
	if err != nil {
		return nil, err
	}
	resp := listResponse[metricExemplarJSON]{Items: make([]metricExemplarJSON, len(exs))}
	for i := range exs {
		e := &exs[i]
		resp.Items[i] = metricExemplarJSON{
			exemplarJSON: toExemplarJSON(&e.Exemplar),
			SeriesID:     seriesIDString(e.SeriesID),
			Labels:       jsonAttrs(e.Labels),
			Resource:     jsonAttrs(e.Resource),
		}
	}
	return resp, nil
}

// ---- input ----

func parseMetricName(v url.Values) (string, error) {
	name := v.Get("name")
	switch {
	case name == "":
		return "", apperr.Invalid("name", "required: the metric name")
	case !utf8.ValidString(name):
		return "", apperr.Invalid("name", "must be valid UTF-8")
	case len(name) > maxMetricNameBytes:
		return "", apperr.Invalid("name", "must be at most %d bytes", maxMetricNameBytes)
	}
	return name, nil
}

// parseSeriesQuery reads name, the window, label.<key>=<value> filters,
// step and quantile.
func (s *Service) parseSeriesQuery(r *http.Request) (chstore.SeriesQuery, error) {
	var q chstore.SeriesQuery
	v := r.URL.Query()
	name, err := parseMetricName(v)
	if err != nil {
		return q, err
	}
	q.Name = name
	if q.Start, q.End, err = s.parseWindow(r, s.cfg.DefaultSearchWindow); err != nil {
		return q, err
	}
	for param, vals := range v {
		key, ok := strings.CutPrefix(param, labelParamPrefix)
		if !ok {
			continue
		}
		field := labelParamPrefix + key
		switch {
		case key == "":
			return q, apperr.Invalid("label", "label keys must not be empty: use label.<key>=<value>")
		case len(vals) != 1:
			return q, apperr.Invalid(field, "must be given once")
		case !utf8.ValidString(key) || !utf8.ValidString(vals[0]):
			return q, apperr.Invalid(field, "must be valid UTF-8")
		case len(key) > maxLabelBytes || len(vals[0]) > maxLabelBytes:
			return q, apperr.Invalid(field, "key and value must be at most %d bytes each", maxLabelBytes)
		}
		if q.Labels == nil {
			q.Labels = map[string]string{}
		}
		q.Labels[key] = vals[0]
		if len(q.Labels) > maxLabelFilters {
			return q, apperr.Invalid("label", "at most %d label filters", maxLabelFilters)
		}
	}
	if st := v.Get("step"); st != "" {
		d, err := parseStep(st)
		if err != nil {
			return q, err
		}
		q.Step = d
	}
	if qs := v.Get("quantile"); qs != "" {
		f, err := strconv.ParseFloat(qs, 64)
		if err != nil || !(f > 0 && f <= 1) {
			return q, apperr.Invalid("quantile", "must be a number in (0, 1], e.g. 0.99")
		}
		q.Quantile = f
	}
	return q, nil
}

// parseStep accepts a Go duration ("30s", "5m") or integer seconds, at
// least one second.
func parseStep(s string) (time.Duration, error) {
	var d time.Duration
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > int64(math.MaxInt64/time.Second) {
			return 0, apperr.Invalid("step", "too large")
		}
		d = time.Duration(n) * time.Second
	} else if d, err = time.ParseDuration(s); err != nil {
		return 0, apperr.Invalid("step", "must be a duration such as 30s or 5m, or integer seconds")
	}
	if d < minMetricStep {
		return 0, apperr.Invalid("step", "must be at least 1s")
	}
	return d, nil
}
