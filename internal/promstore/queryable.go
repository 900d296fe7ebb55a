// Package promstore lets the PromQL engine read one tenant's metric
// points from ClickHouse: a storage.Queryable over chstore.
package promstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/util/annotations"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// Source is what the queryable reads (chstore.Store).
type Source interface {
	MetricNames(ctx context.Context, tenantID string, start, end time.Time) ([]chstore.MetricName, error)
	MetricSeries(ctx context.Context, q chstore.SeriesQuery) ([]chstore.MetricSeries, error)
}

// ErrNoMetricName is the answer to a selector without a metric name:
// every read is by name, so a selector matching every metric is refused
// rather than scanning the tenant's whole history.
var ErrNoMetricName = errors.New("a selector needs a metric name (__name__ matcher); a selector of every metric is not supported")

// Queryable reads TenantID's gauges and sums as Prometheus float series:
// the metric name and labels under the OpenTelemetry–Prometheus naming
// rules (PromName), job and instance from service.name (with
// service.namespace, "ns/name") and service.instance.id, the point's
// attributes as the other labels. A point flagged "no recorded value"
// is a stale marker. MaxPoints bounds the points one Select reads.
type Queryable struct {
	Src       Source
	TenantID  string
	MaxPoints int
}

// Querier implements storage.Queryable.
func (q Queryable) Querier(mint, maxt int64) (storage.Querier, error) {
	return &querier{q: q, mint: mint, maxt: maxt}, nil
}

type querier struct {
	q          Queryable
	mint, maxt int64
	names      map[string][]string // Prometheus name → stored names, read once per querier
}

func (*querier) Close() error { return nil }

// PromName is s with every character outside [a-zA-Z0-9_:] replaced by
// '_' and a leading digit prefixed with '_': an OpenTelemetry metric or
// attribute name as Prometheus spells it (http.server.duration →
// http_server_duration). Prometheus names are unchanged.
func PromName(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 1)
	for i, r := range s {
		ok := r == '_' || r == ':' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9')
		if i == 0 && r >= '0' && r <= '9' {
			b.WriteByte('_')
		}
		if ok {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	return b.String()
}

func (q *querier) window() (time.Time, time.Time) {
	return time.UnixMilli(q.mint), time.UnixMilli(q.maxt)
}

// metricNames maps the Prometheus names of the tenant's gauges and sums in
// the window to their stored names.
func (q *querier) metricNames(ctx context.Context) (map[string][]string, error) {
	if q.names != nil {
		return q.names, nil
	}
	start, end := q.window()
	list, err := q.q.Src.MetricNames(ctx, q.q.TenantID, start, end)
	if err != nil {
		return nil, err
	}
	q.names = map[string][]string{}
	for _, m := range list {
		if m.Type != chstore.MetricTypeGauge && m.Type != chstore.MetricTypeSum {
			continue
		}
		p := PromName(m.Name)
		if !slices.Contains(q.names[p], m.Name) {
			q.names[p] = append(q.names[p], m.Name)
		}
	}
	return q.names, nil
}

// Select implements storage.Querier.
func (q *querier) Select(ctx context.Context, sortSeries bool, hints *storage.SelectHints, matchers ...*labels.Matcher) storage.SeriesSet {
	var nameM *labels.Matcher
	var others []*labels.Matcher
	for _, m := range matchers {
		if m.Name == labels.MetricName {
			nameM = m
		} else {
			others = append(others, m)
		}
	}
	if nameM == nil || nameM.Matches("") {
		return storage.ErrSeriesSet(ErrNoMetricName)
	}
	names, err := q.metricNames(ctx)
	if err != nil {
		return storage.ErrSeriesSet(err)
	}
	start, end := q.window()
	if hints != nil && hints.Start != 0 {
		start, end = time.UnixMilli(hints.Start), time.UnixMilli(hints.End)
	}
	merged := map[uint64]*series{}
	budget := q.q.MaxPoints
	for _, prom := range slices.Sorted(maps.Keys(names)) {
		if !nameM.Matches(prom) {
			continue
		}
		for _, stored := range names[prom] {
			list, err := q.q.Src.MetricSeries(ctx, chstore.SeriesQuery{TenantID: q.q.TenantID, Name: stored, Start: start, End: end, MaxPoints: budget})
			if err != nil {
				return storage.ErrSeriesSet(fmt.Errorf("metric %s: %w", stored, err))
			}
			for i := range list {
				s := &list[i]
				if s.Type != chstore.MetricTypeGauge && s.Type != chstore.MetricTypeSum {
					continue
				}
				ls := seriesLabels(prom, s)
				if !matchAll(others, ls) {
					continue
				}
				h := ls.Hash()
				dst := merged[h]
				if dst == nil {
					dst = &series{labels: ls}
					merged[h] = dst
				}
				dst.add(s.Points)
				if budget > 0 {
					if budget -= len(s.Points); budget <= 0 {
						return storage.ErrSeriesSet(fmt.Errorf("the selector reads more than %d points: narrow it or the time range", q.q.MaxPoints))
					}
				}
			}
		}
	}
	out := make([]storage.Series, 0, len(merged))
	for _, s := range merged {
		out = append(out, s.entry())
	}
	if sortSeries {
		slices.SortFunc(out, func(a, b storage.Series) int { return labels.Compare(a.Labels(), b.Labels()) })
	}
	return &seriesSet{list: out, i: -1}
}

// seriesLabels are a stored series' Prometheus labels.
func seriesLabels(name string, s *chstore.MetricSeries) labels.Labels {
	b := labels.NewScratchBuilder(len(s.Labels) + 3)
	b.Add(labels.MetricName, name)
	if job := resourceString(s.Resource, "service.name"); job != "" {
		if ns := resourceString(s.Resource, "service.namespace"); ns != "" {
			job = ns + "/" + job
		}
		b.Add("job", job)
	}
	if inst := resourceString(s.Resource, "service.instance.id"); inst != "" {
		b.Add("instance", inst)
	}
	for k, v := range s.Labels {
		n := PromName(k)
		if n == labels.MetricName || n == "job" || n == "instance" {
			continue
		}
		if str := fmt.Sprint(v); str != "" {
			b.Add(n, str)
		}
	}
	b.Sort()
	return b.Labels()
}

func resourceString(m map[string]any, k string) string {
	if v, ok := m[k]; ok {
		return fmt.Sprint(v)
	}
	return ""
}

func matchAll(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

// series gathers the points of one label set (several stored series may
// map to it), by time, one per millisecond.
type series struct {
	labels  labels.Labels
	samples []chunks.Sample
}

func (s *series) add(points []chstore.MetricPoint) {
	for _, p := range points {
		v := p.Value
		switch {
		case p.Flags&1 == 1: // no recorded value: the series ended
			v = math.Float64frombits(value.StaleNaN)
		case p.ValueType == otlpconv.ValueInt:
			v = float64(p.ValueInt)
		case p.ValueType != otlpconv.ValueDouble:
			continue
		}
		s.samples = append(s.samples, fsample{t: int64(p.TimeNs / 1e6), f: v})
	}
}

func (s *series) entry() storage.Series {
	slices.SortStableFunc(s.samples, func(a, b chunks.Sample) int { return cmp.Compare(a.T(), b.T()) })
	s.samples = slices.CompactFunc(s.samples, func(a, b chunks.Sample) bool { return a.T() == b.T() })
	return storage.NewListSeries(s.labels, s.samples)
}

// fsample is one float sample.
type fsample struct {
	t int64
	f float64
}

func (s fsample) T() int64                      { return s.t }
func (s fsample) ST() int64                     { return 0 }
func (s fsample) F() float64                    { return s.f }
func (s fsample) H() *histogram.Histogram       { return nil }
func (s fsample) FH() *histogram.FloatHistogram { return nil }
func (s fsample) Type() chunkenc.ValueType      { return chunkenc.ValFloat }
func (s fsample) Copy() chunks.Sample           { return s }

type seriesSet struct {
	list []storage.Series
	i    int
}

func (s *seriesSet) Next() bool                        { s.i++; return s.i < len(s.list) }
func (s *seriesSet) At() storage.Series                { return s.list[s.i] }
func (s *seriesSet) Err() error                        { return nil }
func (s *seriesSet) Warnings() annotations.Annotations { return nil }

// LabelNames implements storage.LabelQuerier: the names of the series the
// matchers select (a metric name matcher is needed, as for Select).
func (q *querier) LabelNames(ctx context.Context, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	seen := map[string]bool{}
	err := q.each(ctx, matchers, func(ls labels.Labels) { ls.Range(func(l labels.Label) { seen[l.Name] = true }) })
	if err != nil {
		return nil, nil, err
	}
	return slices.Sorted(maps.Keys(seen)), nil, nil
}

// LabelValues implements storage.LabelQuerier. Without matchers, the
// values of __name__ are the tenant's metric names.
func (q *querier) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, matchers ...*labels.Matcher) ([]string, annotations.Annotations, error) {
	seen := map[string]bool{}
	if name == labels.MetricName && len(matchers) == 0 {
		names, err := q.metricNames(ctx)
		if err != nil {
			return nil, nil, err
		}
		for n := range names {
			seen[n] = true
		}
	} else if err := q.each(ctx, matchers, func(ls labels.Labels) {
		if v := ls.Get(name); v != "" {
			seen[v] = true
		}
	}); err != nil {
		return nil, nil, err
	}
	return slices.Sorted(maps.Keys(seen)), nil, nil
}

func (q *querier) each(ctx context.Context, matchers []*labels.Matcher, fn func(labels.Labels)) error {
	set := q.Select(ctx, false, nil, matchers...)
	for set.Next() {
		fn(set.At().Labels())
	}
	return set.Err()
}
