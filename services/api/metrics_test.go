package api_test

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// exemplarArgs is what MetricExemplars was asked.
type exemplarArgs struct {
	name       string
	start, end time.Time
	limit      int
}

func (f *fakeStore) MetricNames(ctx context.Context, tenantID string, start, end time.Time) ([]chstore.MetricName, error) {
	if err := f.enter(ctx, tenantID); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.start, f.end = start, end
	return f.metricNames, nil
}

func (f *fakeStore) MetricSeries(ctx context.Context, q chstore.SeriesQuery) ([]chstore.MetricSeries, error) {
	if err := f.enter(ctx, q.TenantID); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seriesQuery = q
	return f.series, nil
}

func (f *fakeStore) MetricExemplars(ctx context.Context, tenantID, name string, start, end time.Time, limit int) ([]chstore.MetricExemplar, error) {
	if err := f.enter(ctx, tenantID); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.exemplarQuery = exemplarArgs{name: name, start: start, end: end, limit: limit}
	return f.exemplars, nil
}

func fp(v float64) *float64 { return &v }

// sampleSeries has one series of every type, with a point each.
func sampleSeries() []chstore.MetricSeries {
	ex := []chstore.Exemplar{{TimeNs: 5, ValueType: otlpconv.ValueInt, ValueInt: 7,
		TraceID: "5b8efff798038103d269b633813fc60c", SpanID: "eee19b7ec3c1b174", FilteredAttributes: json.RawMessage(`{"u":"1"}`)}}
	return []chstore.MetricSeries{
		{SeriesID: 1, Name: "g", Type: chstore.MetricTypeGauge, Labels: map[string]any{"host": "a"}, Resource: map[string]any{"service.name": "s"},
			Points: []chstore.MetricPoint{{TimeNs: 10, ValueType: otlpconv.ValueDouble, Value: math.NaN()}}},
		{SeriesID: math.MaxUint64, Name: "c", Type: chstore.MetricTypeSum, IsMonotonic: true, AggregationTemporality: 2,
			Points: []chstore.MetricPoint{{StartNs: 1, TimeNs: 10, ValueType: otlpconv.ValueInt, ValueInt: 1<<60 + 1, Exemplars: ex}}},
		{SeriesID: 3, Name: "h", Type: chstore.MetricTypeHistogram, AggregationTemporality: 1, Unit: "ms",
			Points: []chstore.MetricPoint{{TimeNs: 10, Count: 3, Sum: fp(6), BucketCounts: []uint64{1, 2}, ExplicitBounds: []float64{1},
				Quantile: &chstore.QuantileEstimate{Q: 0.99, Value: fp(1.5)}}}},
		{SeriesID: 4, Name: "e", Type: chstore.MetricTypeExponentialHistogram,
			Points: []chstore.MetricPoint{{TimeNs: 10, Count: 1, Max: fp(math.Inf(1)), Scale: -2, ZeroCount: 1,
				Positive: chstore.ExpBuckets{Offset: -1}, Quantile: &chstore.QuantileEstimate{Q: 0.5}}}},
		{SeriesID: 5, Name: "s", Type: chstore.MetricTypeSummary,
			Points: []chstore.MetricPoint{{TimeNs: 10, Count: 2, Sum: fp(3), QuantileValues: []chstore.QuantileValue{{Quantile: 0.5, Value: 1}}}}},
	}
}

func TestMetricNamesHandler(t *testing.T) {
	h := newHarness(t, &fakeStore{metricNames: []chstore.MetricName{
		{Name: "a", Type: chstore.MetricTypeHistogram, Unit: "ms", Description: "d"},
		{Name: "b", Type: 9},
	}})
	rec := h.get(t, "/api/v1/metrics/names?start=2024-05-01T00:00:00Z&end=2024-05-02T00:00:00Z")
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	want := `{"items":[{"name":"a","type":"histogram","unit":"ms","description":"d"},{"name":"b","type":"unspecified","unit":"","description":""}],"nextCursor":""}`
	if got := strings.TrimSpace(rec.Body.String()); got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
	if !h.store.start.Equal(time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("start %v", h.store.start)
	}
	if rec := h.get(t, "/api/v1/metrics/names?start=bad"); rec.Code != 400 || !strings.HasPrefix(decodeError(t, rec).Error.Message, "start:") {
		t.Errorf("bad start: %d %s", rec.Code, rec.Body)
	}
}

func TestMetricSeriesHandler(t *testing.T) {
	h := newHarness(t, &fakeStore{series: sampleSeries()})
	rec := h.get(t, "/api/v1/metrics/series?name=g&start=1000&end=2000&label.host=a&label.k8s.pod.name=p%27%3B&step=30s&quantile=0.99")
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	q := h.store.seriesQuery
	want := chstore.SeriesQuery{TenantID: testTenant, Name: "g", Start: time.Unix(0, 1000), End: time.Unix(0, 2000),
		Labels: map[string]string{"host": "a", "k8s.pod.name": "p';"}, Step: 30 * time.Second, Quantile: 0.99}
	if !reflect.DeepEqual(q, want) {
		t.Errorf("query\n got %+v\nwant %+v", q, want)
	}
	var body struct {
		Items []map[string]json.RawMessage `json:"items"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if len(body.Items) != 5 {
		t.Fatalf("%d items", len(body.Items))
	}
	points := func(i int) string {
		var ps []json.RawMessage
		if err := json.Unmarshal(body.Items[i]["points"], &ps); err != nil || len(ps) != 1 {
			t.Fatalf("item %d points %s", i, body.Items[i]["points"])
		}
		return string(ps[0])
	}
	for i, want := range []string{
		`{"exemplars":[],"flags":0,"startTimeUnixNano":"0","timeUnixNano":"10","value":"NaN"}`,
		`{"exemplars":[{"timeUnixNano":"5","value":7,"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","filteredAttributes":{"u":"1"}}],"flags":0,"startTimeUnixNano":"1","timeUnixNano":"10","value":1152921504606846977}`,
		`{"bucketCounts":[1,2],"count":3,"exemplars":[],"explicitBounds":[1],"flags":0,"max":null,"min":null,"quantile":{"q":0.99,"value":1.5},"startTimeUnixNano":"0","sum":6,"timeUnixNano":"10"}`,
		`{"count":1,"exemplars":[],"flags":0,"max":"+Inf","min":null,"negative":{"offset":0,"bucketCounts":[]},"positive":{"offset":-1,"bucketCounts":[]},"quantile":{"q":0.5,"value":null},"scale":-2,"startTimeUnixNano":"0","sum":null,"timeUnixNano":"10","zeroCount":1,"zeroThreshold":0}`,
		`{"count":2,"flags":0,"quantileValues":[{"quantile":0.5,"value":1}],"startTimeUnixNano":"0","sum":3,"timeUnixNano":"10"}`,
	} {
		if got := points(i); got != want {
			t.Errorf("item %d point\n got %s\nwant %s", i, got, want)
		}
	}
	for i, want := range []map[string]string{
		{"seriesId": `"0000000000000001"`, "type": `"gauge"`, "aggregationTemporality": `"unspecified"`, "isMonotonic": "false", "labels": `{"host":"a"}`, "resource": `{"service.name":"s"}`},
		{"seriesId": `"ffffffffffffffff"`, "type": `"sum"`, "aggregationTemporality": `"cumulative"`, "isMonotonic": "true", "labels": `{}`},
		{"type": `"histogram"`, "aggregationTemporality": `"delta"`, "unit": `"ms"`},
		{"type": `"exponentialHistogram"`},
		{"type": `"summary"`, "scope": `{"name":"","version":""}`},
	} {
		for k, v := range want {
			if got := string(body.Items[i][k]); got != v {
				t.Errorf("item %d %s = %s, want %s", i, k, got, v)
			}
		}
	}

	// Integer seconds as step; no quantile, no labels.
	if rec := h.get(t, "/api/v1/metrics/series?name=g&step=60"); rec.Code != 200 || h.store.seriesQuery.Step != time.Minute ||
		h.store.seriesQuery.Quantile != 0 || h.store.seriesQuery.Labels != nil {
		t.Errorf("step=60: %d %+v", rec.Code, h.store.seriesQuery)
	}
}

func TestMetricHandlersValidation(t *testing.T) {
	h := newHarness(t, &fakeStore{})
	for _, tc := range []struct{ path, field string }{
		{"/api/v1/metrics/series", "name"},
		{"/api/v1/metrics/series?name=", "name"},
		{"/api/v1/metrics/series?name=%ff", "name"},
		{"/api/v1/metrics/series?name=" + strings.Repeat("a", 1025), "name"},
		{"/api/v1/metrics/series?name=m&quantile=0", "quantile"},
		{"/api/v1/metrics/series?name=m&quantile=1.5", "quantile"},
		{"/api/v1/metrics/series?name=m&quantile=-0.5", "quantile"},
		{"/api/v1/metrics/series?name=m&quantile=NaN", "quantile"},
		{"/api/v1/metrics/series?name=m&quantile=abc", "quantile"},
		{"/api/v1/metrics/series?name=m&step=500ms", "step"},
		{"/api/v1/metrics/series?name=m&step=0", "step"},
		{"/api/v1/metrics/series?name=m&step=-5s", "step"},
		{"/api/v1/metrics/series?name=m&step=fast", "step"},
		{"/api/v1/metrics/series?name=m&step=99999999999999999", "step"},
		{"/api/v1/metrics/series?name=m&label.=x", "label"},
		{"/api/v1/metrics/series?name=m&label.a=1&label.a=2", "label.a"},
		{"/api/v1/metrics/series?name=m&label.a=%ff", "label.a"},
		{"/api/v1/metrics/series?name=m&start=2024-01-02T00:00:00Z&end=2024-01-01T00:00:00Z", "end"},
		{"/api/v1/metrics/series?name=m&start=0&end=1000000000000000000", "start"},
		{"/api/v1/metrics/exemplars", "name"},
		{"/api/v1/metrics/exemplars?name=m&limit=0", "limit"},
		{"/api/v1/metrics/exemplars?name=m&limit=100000", "limit"},
		{"/api/v1/metrics/exemplars?name=m&end=x", "end"},
	} {
		rec := h.get(t, tc.path)
		if rec.Code != http.StatusBadRequest {
			t.Errorf("%.80s: %d, want 400", tc.path, rec.Code)
			continue
		}
		e := decodeError(t, rec).Error
		if e.Code != "invalid_argument" || !strings.HasPrefix(e.Message, tc.field+":") {
			t.Errorf("%.80s: error %+v, want one naming %s", tc.path, e, tc.field)
		}
	}
	if h.store.calls != 0 {
		t.Errorf("store called %d times for invalid requests", h.store.calls)
	}
	// Too many label filters.
	v := url.Values{"name": {"m"}}
	for i := range 33 {
		v.Set("label.k"+strings.Repeat("x", i), "v")
	}
	if rec := h.get(t, "/api/v1/metrics/series?"+v.Encode()); rec.Code != 400 {
		t.Errorf("33 labels: %d", rec.Code)
	}
}

func TestMetricExemplarsHandler(t *testing.T) {
	h := newHarness(t, &fakeStore{exemplars: []chstore.MetricExemplar{{
		Exemplar: chstore.Exemplar{TimeNs: 9, ValueType: otlpconv.ValueDouble, Value: 2.5, TraceID: "5b8efff798038103d269b633813fc60c"},
		SeriesID: 255, Labels: map[string]any{"code": int64(200)}, Resource: map[string]any{"service.name": "s"},
	}}})
	rec := h.get(t, "/api/v1/metrics/exemplars?name=m&start=1&end=2&limit=7")
	if rec.Code != 200 {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}
	want := `{"items":[{"timeUnixNano":"9","value":2.5,"traceId":"5b8efff798038103d269b633813fc60c","spanId":"","filteredAttributes":{},"seriesId":"00000000000000ff","labels":{"code":200},"resource":{"service.name":"s"}}],"nextCursor":""}`
	if got := strings.TrimSpace(rec.Body.String()); got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
	if got := h.store.exemplarQuery; got != (exemplarArgs{name: "m", start: time.Unix(0, 1), end: time.Unix(0, 2), limit: 7}) {
		t.Errorf("asked %+v", got)
	}
	h.get(t, "/api/v1/metrics/exemplars?name=m")
	if got := h.store.exemplarQuery.limit; got != chstore.DefaultExemplarLimit {
		t.Errorf("default limit %d", got)
	}
}

// TestOpenAPIMetricSchemas checks that the MetricName, MetricSeries and
// MetricExemplar schemas list exactly the keys the handlers write, and the
// MetricPoint schema every key a point of any type may have.
func TestOpenAPIMetricSchemas(t *testing.T) {
	s := loadSpec(t)
	h := newHarness(t, &fakeStore{
		metricNames: []chstore.MetricName{{}},
		series:      sampleSeries(),
		exemplars:   []chstore.MetricExemplar{{}},
	})
	items := func(path string) []map[string]any {
		rec := h.get(t, path)
		var body struct {
			Items []map[string]any `json:"items"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || len(body.Items) == 0 {
			t.Fatalf("%s: %v %s", path, err, rec.Body)
		}
		return body.Items
	}
	check := func(schema string, got []string) {
		t.Helper()
		sc, ok := s.Comps.Schemas[schema]
		if !ok {
			t.Errorf("schema %s missing", schema)
			return
		}
		props := sortedKeys(sc.Properties)
		req := slices.Clone(sc.Required)
		sort.Strings(req)
		if !slices.Equal(props, got) || !slices.Equal(req, got) {
			t.Errorf("schema %s: properties %v, required %v; answer keys %v", schema, props, req, got)
		}
	}
	check("MetricName", sortedKeys(items("/api/v1/metrics/names")[0]))
	check("MetricExemplar", sortedKeys(items("/api/v1/metrics/exemplars?name=m")[0]))
	series := items("/api/v1/metrics/series?name=m")
	check("MetricSeries", sortedKeys(series[0]))

	// Every point key is a MetricPoint property; the always-present ones
	// are required.
	pt := s.Comps.Schemas["MetricPoint"]
	for _, ser := range series {
		for _, p := range ser["points"].([]any) {
			for k := range p.(map[string]any) {
				if _, ok := pt.Properties[k]; !ok {
					t.Errorf("point key %s is not a MetricPoint property", k)
				}
			}
		}
	}
	if req := slices.Sorted(slices.Values(pt.Required)); !slices.Equal(req, []string{"flags", "startTimeUnixNano", "timeUnixNano"}) {
		t.Errorf("MetricPoint required %v", req)
	}
}
