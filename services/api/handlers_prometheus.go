package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/promstore"
)

// PrometheusPrefix is where the Prometheus HTTP query API is served.
const PrometheusPrefix = "/prometheus/api/v1"

// Bounds of one PromQL query, like the rest of the API's reads.
const (
	promMaxSamples  = 5_000_000 // samples the engine holds at once
	promMaxPoints   = 2_000_000 // points one selector reads from ClickHouse
	promMaxRange    = 32 * 24 * time.Hour
	promMaxSteps    = 11_000 // points per series of a range query, as Prometheus
	promLookback    = 5 * time.Minute
	promDefaultSpan = time.Hour // of series, labels and label values without start/end
)

// promParser parses the match[] selectors (the engine has its own).
var promParser = parser.NewParser(parser.Options{})

// newPromEngine is the PromQL engine of the API process.
func newPromEngine(timeout time.Duration) *promql.Engine {
	return promql.NewEngine(promql.EngineOpts{
		MaxSamples:           promMaxSamples,
		Timeout:              timeout,
		LookbackDelta:        promLookback,
		EnableAtModifier:     true,
		EnableNegativeOffset: true,
	})
}

// prometheusRoutes serves the Prometheus HTTP API (query, query_range,
// series, labels, label values, metadata) over the tenant's metric points,
// evaluated by Prometheus's own PromQL engine, answered in Prometheus's
// JSON envelope ({"status": "success"|"error", …}) so Grafana and promtool
// read it unchanged.
func (s *Service) prometheusRoutes(r chi.Router) {
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		r.Method(m, "/query", s.promHandler(s.promQuery))
		r.Method(m, "/query_range", s.promHandler(s.promQueryRange))
		r.Method(m, "/series", s.promHandler(s.promSeries))
		r.Method(m, "/labels", s.promHandler(s.promLabels))
	}
	r.Get("/label/{name}/values", s.promHandler(s.promLabelValues))
	r.Get("/metadata", s.promHandler(s.promMetadata))
}

// basicAsBearer takes the password of basic auth as the tenant key, for
// clients that speak only basic auth (promtool, datasource URLs with
// user:key@): the same key, sent another way.
func basicAsBearer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, pw, ok := r.BasicAuth(); ok && pw != "" {
			r = r.Clone(r.Context())
			r.Header.Set("Authorization", "Bearer "+pw)
		}
		next.ServeHTTP(w, r)
	})
}

type promHandlerFunc func(r *http.Request, q promstore.Queryable) (any, error)

// promError is an error in Prometheus's terms.
type promError struct {
	typ  string // bad_data, execution, timeout, canceled, unavailable
	code int
	err  error
}

func (e *promError) Error() string { return e.err.Error() }
func (e *promError) Unwrap() error { return e.err }

func badData(format string, args ...any) error {
	return &promError{typ: "bad_data", code: http.StatusBadRequest, err: fmt.Errorf(format, args...)}
}

func (s *Service) promHandler(h promHandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		tenant, err := tenantOf(r.Context())
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if err := r.ParseForm(); err != nil {
			s.writeProm(w, r, nil, badData("form: %v", err))
			return
		}
		q := promstore.Queryable{Src: s.store, TenantID: tenant.ID, MaxPoints: promMaxPoints}
		data, err := h(r, q)
		s.writeProm(w, r, data, err)
	}
}

// writeProm answers data or err in Prometheus's envelope; a refused
// selector or a store error is classified like every other API error.
func (s *Service) writeProm(w http.ResponseWriter, r *http.Request, data any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err == nil {
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": data})
		return
	}
	pe := &promError{typ: "execution", code: http.StatusUnprocessableEntity, err: err}
	var (
		given   *promError
		timeout promql.ErrQueryTimeout
		cancel  promql.ErrQueryCanceled
		tooMany promql.ErrTooManySamples
		perr    parser.ParseErrors
	)
	switch {
	case errors.As(err, &given):
		pe = given
	case errors.As(err, &perr), errors.Is(err, promstore.ErrNoMetricName):
		pe = &promError{typ: "bad_data", code: http.StatusBadRequest, err: err}
	case errors.As(err, &timeout), errors.Is(err, context.DeadlineExceeded):
		pe = &promError{typ: "timeout", code: http.StatusServiceUnavailable, err: err}
	case errors.As(err, &cancel), errors.Is(err, context.Canceled):
		pe = &promError{typ: "canceled", code: http.StatusServiceUnavailable, err: err}
	case errors.As(err, &tooMany):
		pe = &promError{typ: "execution", code: http.StatusUnprocessableEntity, err: err}
	default:
		switch apperr.KindOf(err) {
		case apperr.KindInvalid:
			pe = &promError{typ: "bad_data", code: http.StatusBadRequest, err: err}
		case apperr.KindUnavailable, apperr.KindTimeout:
			pe = &promError{typ: "unavailable", code: http.StatusServiceUnavailable, err: err}
		}
	}
	if pe.code >= 500 {
		w.Header().Set("Retry-After", "1")
		s.log.Warn("prometheus query failed", "path", r.URL.Path, "err", err)
	}
	w.WriteHeader(pe.code)
	_ = json.NewEncoder(w).Encode(map[string]any{"status": "error", "errorType": pe.typ, "error": pe.Error()})
}

// promTime parses a Prometheus time parameter: unix seconds (fractions
// allowed) or RFC 3339; def when absent.
func promTime(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.Form.Get(name)
	if v == "" {
		return def, nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
		sec, frac := math.Modf(f)
		return time.Unix(int64(sec), int64(frac*1e9)).UTC(), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return time.Time{}, badData("invalid parameter %q: %q is neither unix seconds nor RFC 3339", name, v)
}

// promDuration parses a step: seconds (fractions allowed) or a Prometheus
// duration (15s, 1m).
func promDuration(v string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 && !math.IsInf(f, 0) {
		return time.Duration(f * float64(time.Second)), nil
	}
	md, err := model.ParseDuration(v)
	d := time.Duration(md)
	if err != nil || d <= 0 {
		return 0, badData("invalid parameter \"step\": %q is not a positive duration", v)
	}
	return d, nil
}

func (s *Service) promQuery(r *http.Request, q promstore.Queryable) (any, error) {
	ts, err := promTime(r, "time", time.Now())
	if err != nil {
		return nil, err
	}
	qs := r.Form.Get("query")
	if qs == "" {
		return nil, badData("invalid parameter \"query\": empty")
	}
	qry, err := s.prom.NewInstantQuery(r.Context(), q, nil, qs, ts)
	if err != nil {
		return nil, err
	}
	defer qry.Close()
	return promResult(qry.Exec(r.Context()))
}

func (s *Service) promQueryRange(r *http.Request, q promstore.Queryable) (any, error) {
	start, err := promTime(r, "start", time.Time{})
	if err != nil {
		return nil, err
	}
	end, err := promTime(r, "end", time.Time{})
	if err != nil {
		return nil, err
	}
	if start.IsZero() || end.IsZero() {
		return nil, badData("invalid parameters: start and end are required")
	}
	step, err := promDuration(r.Form.Get("step"))
	if err != nil {
		return nil, err
	}
	switch {
	case end.Before(start):
		return nil, badData("invalid parameter \"end\": before start")
	case end.Sub(start) > promMaxRange:
		return nil, badData("the range from start to end is over %v", promMaxRange)
	case end.Sub(start)/step > promMaxSteps:
		return nil, badData("exceeded maximum resolution of %d points per timeseries: widen the step", promMaxSteps)
	}
	qs := r.Form.Get("query")
	if qs == "" {
		return nil, badData("invalid parameter \"query\": empty")
	}
	qry, err := s.prom.NewRangeQuery(r.Context(), q, nil, qs, start, end, step)
	if err != nil {
		return nil, err
	}
	defer qry.Close()
	return promResult(qry.Exec(r.Context()))
}

func promResult(res *promql.Result) (any, error) {
	if res.Err != nil {
		return nil, res.Err
	}
	return map[string]any{"resultType": res.Value.Type(), "result": res.Value}, nil
}

// promSpan is the start and end of series, labels and label values.
func promSpan(r *http.Request) (time.Time, time.Time, error) {
	end, err := promTime(r, "end", time.Now())
	if err != nil {
		return end, end, err
	}
	start, err := promTime(r, "start", end.Add(-promDefaultSpan))
	if err != nil {
		return start, end, err
	}
	if end.Before(start) || end.Sub(start) > promMaxRange {
		return start, end, badData("invalid start/end: end before start or a range over %v", promMaxRange)
	}
	return start, end, nil
}

// promMatchers parses match[] selectors.
func promMatchers(r *http.Request) ([][]*labels.Matcher, error) {
	var out [][]*labels.Matcher
	for _, m := range r.Form["match[]"] {
		ms, err := promParser.ParseMetricSelector(m)
		if err != nil {
			return nil, badData("invalid parameter \"match[]\": %v", err)
		}
		out = append(out, ms)
	}
	return out, nil
}

// promSelection is the querier of the request's start and end and its
// match[] selectors.
func promSelection(r *http.Request, q promstore.Queryable) (storage.Querier, [][]*labels.Matcher, error) {
	start, end, err := promSpan(r)
	if err != nil {
		return nil, nil, err
	}
	sets, err := promMatchers(r)
	if err != nil {
		return nil, nil, err
	}
	qr, err := q.Querier(start.UnixMilli(), end.UnixMilli())
	return qr, sets, err
}

func (s *Service) promSeries(r *http.Request, q promstore.Queryable) (any, error) {
	qr, sets, err := promSelection(r, q)
	if err != nil {
		return nil, err
	}
	if len(sets) == 0 {
		return nil, badData("no match[] parameter provided")
	}
	seen := map[uint64]bool{}
	out := []labels.Labels{}
	for _, ms := range sets {
		set := qr.Select(r.Context(), false, nil, ms...)
		for set.Next() {
			ls := set.At().Labels()
			if h := ls.Hash(); !seen[h] {
				seen[h] = true
				out = append(out, ls)
			}
		}
		if err := set.Err(); err != nil {
			return nil, err
		}
	}
	slices.SortFunc(out, labels.Compare)
	return out, nil
}

func (s *Service) promLabels(r *http.Request, q promstore.Queryable) (any, error) {
	return s.promLabelQuery(r, q, func(ctx context.Context, lq storage.Querier, ms []*labels.Matcher) ([]string, error) {
		names, _, err := lq.LabelNames(ctx, nil, ms...)
		return names, err
	})
}

func (s *Service) promLabelValues(r *http.Request, q promstore.Queryable) (any, error) {
	name := chi.URLParam(r, "name")
	if !model.LabelName(name).IsValid() {
		return nil, badData("invalid label name %q", name)
	}
	return s.promLabelQuery(r, q, func(ctx context.Context, lq storage.Querier, ms []*labels.Matcher) ([]string, error) {
		vals, _, err := lq.LabelValues(ctx, name, nil, ms...)
		return vals, err
	})
}

// promLabelQuery runs fn for each match[] set (or once without matchers,
// which only __name__ values answer: every other label needs a metric
// name) and merges the answers.
func (s *Service) promLabelQuery(r *http.Request, q promstore.Queryable, fn func(context.Context, storage.Querier, []*labels.Matcher) ([]string, error)) (any, error) {
	qr, sets, err := promSelection(r, q)
	if err != nil {
		return nil, err
	}
	if len(sets) == 0 {
		sets = [][]*labels.Matcher{nil}
	}
	seen := map[string]bool{}
	for _, ms := range sets {
		vals, err := fn(r.Context(), qr, ms)
		if errors.Is(err, promstore.ErrNoMetricName) && len(ms) == 0 {
			continue // label names or values of every metric: not answered, see above
		}
		if err != nil {
			return nil, err
		}
		for _, v := range vals {
			seen[v] = true
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}

// promMetadata lists the tenant's metrics of the last day by Prometheus
// name with their type, unit and help.
func (s *Service) promMetadata(r *http.Request, q promstore.Queryable) (any, error) {
	end := time.Now()
	list, err := s.store.MetricNames(r.Context(), q.TenantID, end.Add(-24*time.Hour), end)
	if err != nil {
		return nil, err
	}
	only := r.Form.Get("metric")
	type meta struct {
		Type string `json:"type"`
		Help string `json:"help"`
		Unit string `json:"unit"`
	}
	out := map[string][]meta{}
	for _, m := range list {
		name := promstore.PromName(m.Name)
		if only != "" && name != only {
			continue
		}
		typ := "unknown"
		switch m.Type {
		case chstore.MetricTypeGauge:
			typ = "gauge"
		case chstore.MetricTypeSum:
			typ = "counter"
		case chstore.MetricTypeHistogram, chstore.MetricTypeExponentialHistogram:
			typ = "histogram"
		case chstore.MetricTypeSummary:
			typ = "summary"
		}
		out[name] = append(out[name], meta{Type: typ, Help: m.Description, Unit: m.Unit})
	}
	return out, nil
}
