package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/testenv"
	"github.com/aftertrace/aftertrace/services/api"
)

// TestMain runs the tests with the testenv servers (started only by tests
// that call testenv.Get); testenv.Main then checks for leaked goroutines
// with goleak.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const (
	testKey    = "key-t1"
	testTenant = "t1"
	validID    = "0123456789abcdef0123456789abcdef"
)

// fakeStore answers from fields and records what it was asked.
type fakeStore struct {
	mu sync.Mutex

	spans   []chstore.Span
	sums    []chstore.TraceSummary
	svcs    []chstore.ServiceSummary
	logs    []chstore.LogRecord
	err     error
	panicky bool
	block   chan struct{} // if set, reads wait for it to close

	tenant     string
	traceID    [16]byte
	query      chstore.TraceQuery
	logQuery   chstore.LogQuery
	start, end time.Time
	calls      int

	// metrics: answers and what was asked (methods in metrics_test.go)
	metricNames   []chstore.MetricName
	series        []chstore.MetricSeries
	exemplars     []chstore.MetricExemplar
	seriesQuery   chstore.SeriesQuery
	exemplarQuery exemplarArgs
}

func (f *fakeStore) enter(ctx context.Context, tenant string) error {
	f.mu.Lock()
	f.tenant = tenant
	f.calls++
	block, panicky, err := f.block, f.panicky, f.err
	f.mu.Unlock()
	if panicky {
		panic("store exploded")
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return err
}

func (f *fakeStore) GetTraceLimited(ctx context.Context, tenantID string, traceID [16]byte, _ int) ([]chstore.Span, bool, error) {
	if err := f.enter(ctx, tenantID); err != nil {
		return nil, false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.traceID = traceID
	if f.spans == nil {
		return nil, false, apperr.New(apperr.KindNotFound, "trace %x not found", traceID)
	}
	return f.spans, false, nil
}

func (f *fakeStore) SearchTraces(ctx context.Context, q chstore.TraceQuery) ([]chstore.TraceSummary, error) {
	if err := f.enter(ctx, q.TenantID); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.query = q
	return f.sums, nil
}

func (f *fakeStore) ListServices(ctx context.Context, tenantID string, start, end time.Time) ([]chstore.ServiceSummary, error) {
	if err := f.enter(ctx, tenantID); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.start, f.end = start, end
	return f.svcs, nil
}

func (f *fakeStore) lastQuery() chstore.TraceQuery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.query
}

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type harness struct {
	svc   *api.Service
	store *fakeStore
	admin *fakeAdmin
	reg   *prometheus.Registry
	logs  *syncBuffer
}

func newHarness(t *testing.T, store *fakeStore) *harness {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	h := &harness{store: store, admin: newFakeAdmin(), reg: prometheus.NewRegistry(), logs: &syncBuffer{}}
	svc, err := api.New(cfg, api.Deps{
		Logger:   slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Store:    store,
		Auth:     authn.NewStatic(map[string]authn.Tenant{testKey: {ID: testTenant}}),
		Registry: h.reg,
		Admin:    h.admin,
		AdminKey: testAdminKey,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	h.svc = svc
	return h
}

// do sends a request to the handler; key "" sends no credential.
func (h *harness) do(t *testing.T, method, target, key string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	rec := httptest.NewRecorder()
	h.svc.Handler().ServeHTTP(rec, req)
	return rec
}

func (h *harness) get(t *testing.T, target string) *httptest.ResponseRecorder {
	t.Helper()
	return h.do(t, http.MethodGet, target, testKey)
}

type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func decodeError(t *testing.T, rec *httptest.ResponseRecorder) errorBody {
	t.Helper()
	var b errorBody
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type = %q", ct)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil || b.Error.Code == "" {
		t.Fatalf("error body %q: %v", rec.Body.String(), err)
	}
	return b
}

func TestTraceIDValidation(t *testing.T) {
	h := newHarness(t, &fakeStore{spans: []chstore.Span{{Name: "s"}}})
	const msg = "traceId: must be 32 hex characters"
	for _, tc := range []struct {
		name, id string
		status   int
	}{
		{"valid", validID, 200},
		{"upper case", strings.ToUpper(validID), 200},
		{"31 chars", validID[:31], 400},
		{"33 chars", validID + "0", 400},
		{"64 chars", validID + validID, 400},
		{"1 char", "a", 400},
		{"non-hex", "0123456789abcdef0123456789abcdeg", 400},
		{"spaces", url.PathEscape(" 123456789abcdef0123456789abcde "), 400},
		{"unicode", url.PathEscape(strings.Repeat("é", 16)), 400},
		{"quotes", url.PathEscape(strings.Repeat("'", 32)), 400},
		{"sql", url.PathEscape("'; DROP TABLE spans; --0123456789"), 400},
		{"0x prefix", "0x" + validID[:30], 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := h.get(t, "/api/v1/traces/"+tc.id)
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status == 400 {
				b := decodeError(t, rec)
				if b.Error.Code != "invalid_argument" || b.Error.Message != msg {
					t.Errorf("error = %+v, want invalid_argument %q", b.Error, msg)
				}
				return
			}
			var resp struct {
				TraceID string `json:"traceId"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil || resp.TraceID != validID {
				t.Errorf("traceId = %q (%v), want lower case %q", resp.TraceID, err, validID)
			}
		})
	}
	if got := fmt.Sprintf("%x", h.store.traceID); got != validID || h.store.tenant != testTenant {
		t.Errorf("store asked for %s of %q", got, h.store.tenant)
	}

	// An unknown trace is a JSON 404.
	h.store.spans = nil
	rec := h.get(t, "/api/v1/traces/"+validID)
	if rec.Code != 404 || decodeError(t, rec).Error.Code != "not_found" {
		t.Errorf("unknown trace: %d %s", rec.Code, rec.Body)
	}
}

func TestSearchParameterValidation(t *testing.T) {
	h := newHarness(t, &fakeStore{})
	future := time.Now().Add(time.Hour).Format(time.RFC3339)
	old := time.Now().Add(-8 * 24 * time.Hour).Format(time.RFC3339)
	for _, tc := range []struct {
		name   string
		query  string
		status int
		field  string // for 400s: the message starts with it
	}{
		{"no params", "", 200, ""},
		{"rfc3339", "start=2024-05-01T12:00:00Z&end=2024-05-01T13:00:00.5Z", 200, ""},
		{"rfc3339 offset", "start=" + url.QueryEscape("2024-05-01T12:00:00+02:00") + "&end=2024-05-01T13:00:00Z", 200, ""},
		{"unix nanos", "start=1714564800000000000&end=1714568400000000000", 200, ""},
		{"start = end", "start=1714564800000000000&end=1714564800000000000", 200, ""},
		{"bad start", "start=yesterday", 400, "start"},
		{"bad end", "end=2024-13-01T00:00:00Z", 400, "end"},
		{"date only", "start=2024-05-01", 400, "start"},
		{"negative", "start=-1", 400, "start"},
		{"float nanos", "start=1.5e18", 400, "start"},
		{"overflow nanos", "start=99999999999999999999", 400, "start"},
		{"before 1970", "start=1969-12-31T23:59:59Z", 400, "start"},
		{"after 2262", "end=2263-01-01T00:00:00Z", 400, "end"},
		{"end before start", "start=1714568400000000000&end=1714564800000000000", 400, "end"},
		{"future start, default end", "start=" + url.QueryEscape(future), 400, "end"},
		{"window too large", "start=" + url.QueryEscape(old), 400, "start"},
		{"limit 0", "limit=0", 400, "limit"},
		{"limit -1", "limit=-1", 400, "limit"},
		{"limit 100000", "limit=100000", 400, "limit"},
		{"limit 1001", "limit=1001", 400, "limit"},
		{"limit abc", "limit=abc", 400, "limit"},
		{"limit 1", "limit=1", 200, ""},
		{"limit 1000", "limit=1000", 200, ""},
		{"bad cursor", "cursor=not-a-cursor", 400, "cursor"},
		{"cursor bad base64", "cursor=%25%25%25", 400, "cursor"},
		{"cursor short", "cursor=AQID", 400, "cursor"},
		{"cursor quotes", "cursor=" + url.QueryEscape(`'"`), 400, "cursor"},
		{"service plain", "service=checkout", 200, ""},
		{"service unicode", "service=" + url.QueryEscape("支付-✓-ü"), 200, ""},
		{"service quotes", "service=" + url.QueryEscape(`a'b"c\`), 200, ""},
		{"service sql", "service=" + url.QueryEscape("'; DROP TABLE spans; --"), 200, ""},
		{"service question mark", "service=" + url.QueryEscape("? ?"), 200, ""},
		{"service invalid utf8", "service=%ff%fe", 400, "service"},
		{"service too long", "service=" + strings.Repeat("x", 1025), 400, "service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := h.get(t, "/api/v1/traces?"+tc.query)
			if rec.Code != tc.status {
				t.Fatalf("status = %d, want %d; body %s", rec.Code, tc.status, rec.Body)
			}
			if tc.status != 400 {
				return
			}
			b := decodeError(t, rec)
			if b.Error.Code != "invalid_argument" || !strings.HasPrefix(b.Error.Message, tc.field+": ") {
				t.Errorf("error = %+v, want invalid_argument naming %q", b.Error, tc.field)
			}
		})
	}
}

func TestServicesParameterValidation(t *testing.T) {
	h := newHarness(t, &fakeStore{svcs: []chstore.ServiceSummary{{Name: "a", SpanCount: 3}}})
	for _, tc := range []struct {
		query  string
		status int
	}{
		{"", 200},
		{"start=2024-05-01T00:00:00Z&end=2024-05-07T00:00:00Z", 200},
		{"start=nope", 400},
		{"end=1714564800000000000&start=1714568400000000000", 400},
		{"start=2024-01-01T00:00:00Z&end=2024-05-01T00:00:00Z", 400},
		{"service=" + url.QueryEscape("'; DROP TABLE x"), 200}, // ignored
	} {
		rec := h.get(t, "/api/v1/services?"+tc.query)
		if rec.Code != tc.status {
			t.Errorf("%q: status %d, want %d; %s", tc.query, rec.Code, tc.status, rec.Body)
		}
	}

	// Defaults: the last 7 days.
	rec := h.get(t, "/api/v1/services")
	if got := h.store.end.Sub(h.store.start); got != 7*24*time.Hour || time.Since(h.store.end) > time.Minute {
		t.Errorf("default window %v ending %v", got, h.store.end)
	}
	var resp map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &resp); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"items": []any{map[string]any{"name": "a", "spanCount": 3.0}}, "nextCursor": ""}
	if !reflect.DeepEqual(resp, want) {
		t.Errorf("services = %v, want %v", resp, want)
	}
	h.store.svcs = []chstore.ServiceSummary{}
	if rec := h.get(t, "/api/v1/services"); strings.TrimSpace(rec.Body.String()) != `{"items":[],"nextCursor":""}` {
		t.Errorf("empty services = %s", rec.Body)
	}
}

func TestSearchDefaultsAndPaging(t *testing.T) {
	sum := func(i int) chstore.TraceSummary {
		return chstore.TraceSummary{TraceID: [16]byte{byte(i)}, StartNs: uint64(1000 - i), DurationNs: 5, SpanCount: 2, ErrorCount: 1,
			RootService: "svc", RootName: "root", Services: []string{"a", "b"}}
	}
	store := &fakeStore{}
	h := newHarness(t, store)

	rec := h.get(t, "/api/v1/traces")
	q := store.lastQuery()
	if rec.Code != 200 || q.TenantID != testTenant || q.Limit != 21 || q.Cursor != nil || q.Service != "" ||
		q.End.Sub(q.Start) != time.Hour || time.Since(q.End) > time.Minute {
		t.Fatalf("defaults: %d, query %+v", rec.Code, q)
	}
	if got := strings.TrimSpace(rec.Body.String()); got != `{"items":[],"nextCursor":""}` {
		t.Errorf("empty search = %s", got)
	}

	h.get(t, "/api/v1/traces?start=2024-05-01T12:00:00Z&end=1714568400000000000&service=svc&limit=5")
	q = store.lastQuery()
	if !q.Start.Equal(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)) || q.End.UnixNano() != 1714568400000000000 || q.Service != "svc" || q.Limit != 6 {
		t.Errorf("explicit query = %+v", q)
	}

	// One more result than the limit: a cursor for the rest.
	store.sums = []chstore.TraceSummary{sum(1), sum(2), sum(3)}
	rec = h.get(t, "/api/v1/traces?limit=2")
	var page struct {
		Items      []map[string]any `json:"items"`
		NextCursor string           `json:"nextCursor"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 2 || page.NextCursor == "" {
		t.Fatalf("page = %+v", page)
	}
	wantItem := map[string]any{
		"traceId": "01000000000000000000000000000000", "rootService": "svc", "rootName": "root",
		"startTimeUnixNano": "999", "durationNs": "5", "spanCount": 2.0, "errorCount": 1.0,
		"services": []any{"a", "b"},
	}
	if !reflect.DeepEqual(page.Items[0], wantItem) {
		t.Errorf("item = %v, want %v", page.Items[0], wantItem)
	}
	for _, c := range page.NextCursor {
		if !strings.ContainsRune("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", c) {
			t.Fatalf("cursor %q is not base64url", page.NextCursor)
		}
	}

	store.sums = []chstore.TraceSummary{sum(3)}
	rec = h.get(t, "/api/v1/traces?limit=2&cursor="+page.NextCursor)
	q = store.lastQuery()
	if q.Cursor == nil || *q.Cursor != (chstore.TraceCursor{StartNs: 998, TraceID: [16]byte{2}}) {
		t.Errorf("cursor passed to store = %+v", q.Cursor)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || len(page.Items) != 1 || page.NextCursor != "" {
		t.Errorf("last page = %+v, %v", page, err)
	}
}

func TestSpanJSON(t *testing.T) {
	root := chstore.Span{
		TraceID: [16]byte{0xab, 1}, SpanID: [8]byte{0xcd, 2}, TraceState: "k=v", Flags: 257,
		Name: "GET /", Service: "web", Kind: 2, StartNs: 1714564800000000001, EndNs: 1714564800000000501,
		StatusCode: 2, StatusMessage: "boom", ScopeName: "lib", ScopeVersion: "1.0",
		Attributes: map[string]any{"s": "x", "i": int64(9007199254740993), "b": true, "d": 0.5,
			"nan": math.NaN(), "inf": math.Inf(1), "arr": json.RawMessage(`[1,"a"]`), "nil": nil},
		Resource:               map[string]any{"service.name": "web"},
		Events:                 []chstore.SpanEvent{{TimeNs: 1714564800000000002, Name: "ev", Attributes: json.RawMessage(`{"k":1}`)}, {Name: "bare"}},
		Links:                  []chstore.SpanLink{{TraceID: strings.Repeat("ab", 16), SpanID: strings.Repeat("cd", 8), TraceState: "a=b"}},
		DroppedAttributesCount: 1, DroppedEventsCount: 2, DroppedLinksCount: 3,
	}
	child := chstore.Span{TraceID: root.TraceID, SpanID: [8]byte{3}, ParentSpanID: root.SpanID, Kind: 9, StatusCode: 1, StartNs: 5, EndNs: 4}
	h := newHarness(t, &fakeStore{spans: []chstore.Span{root, child}})
	rec := h.get(t, "/api/v1/traces/ab010000000000000000000000000000")
	if rec.Code != 200 || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("%d %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	var got map[string]any
	dec := json.NewDecoder(rec.Body)
	dec.UseNumber()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"traceId": "ab010000000000000000000000000000", "truncated": false,
		"spans": []any{
			map[string]any{
				"traceId": "ab010000000000000000000000000000", "spanId": "cd02000000000000", "parentSpanId": "",
				"name": "GET /", "service": "web", "kind": "server",
				"startTimeUnixNano": "1714564800000000001", "endTimeUnixNano": "1714564800000000501", "durationNs": "500",
				"status": map[string]any{"code": "error", "message": "boom"},
				"attributes": map[string]any{"s": "x", "i": json.Number("9007199254740993"), "b": true, "d": json.Number("0.5"),
					"nan": "NaN", "inf": "+Inf", "arr": []any{json.Number("1"), "a"}, "nil": nil},
				"resource": map[string]any{"service.name": "web"},
				"events": []any{
					map[string]any{"timeUnixNano": "1714564800000000002", "name": "ev", "attributes": map[string]any{"k": json.Number("1")}},
					map[string]any{"timeUnixNano": "0", "name": "bare", "attributes": map[string]any{}},
				},
				"links":      []any{map[string]any{"traceId": strings.Repeat("ab", 16), "spanId": strings.Repeat("cd", 8), "traceState": "a=b", "attributes": map[string]any{}}},
				"scope":      map[string]any{"name": "lib", "version": "1.0"},
				"traceState": "k=v", "flags": json.Number("257"),
				"droppedAttributesCount": json.Number("1"), "droppedEventsCount": json.Number("2"), "droppedLinksCount": json.Number("3"),
			},
			map[string]any{
				"traceId": "ab010000000000000000000000000000", "spanId": "0300000000000000", "parentSpanId": "cd02000000000000",
				"name": "", "service": "", "kind": "unspecified",
				"startTimeUnixNano": "5", "endTimeUnixNano": "4", "durationNs": "0",
				"status":     map[string]any{"code": "ok", "message": ""},
				"attributes": map[string]any{}, "resource": map[string]any{}, "events": []any{}, "links": []any{},
				"scope":      map[string]any{"name": "", "version": ""},
				"traceState": "", "flags": json.Number("0"),
				"droppedAttributesCount": json.Number("0"), "droppedEventsCount": json.Number("0"), "droppedLinksCount": json.Number("0"),
			},
		},
	}
	if !reflect.DeepEqual(got, want) {
		g, _ := json.MarshalIndent(got, "", " ")
		w, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("trace JSON =\n%s\nwant\n%s", g, w)
	}
}

// apiRoutes lists the /api/v1 routes of the router with a concrete path.
func apiRoutes(t *testing.T, r chi.Router) map[string]string {
	t.Helper()
	routes := map[string]string{} // pattern -> method
	err := chi.Walk(r, func(method, route string, _ http.Handler, _ ...func(http.Handler) http.Handler) error {
		if strings.HasPrefix(route, "/api/v1/") {
			routes[route] = method
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) < 4 { // traces, trace, services, logs; more signals add more
		t.Fatalf("api routes = %v, want at least 4", routes)
	}
	return routes
}

func concretePath(route string) string {
	if strings.HasPrefix(route, "/api/v1/metrics/series") || strings.HasPrefix(route, "/api/v1/metrics/exemplars") {
		return route + "?name=m" // name is required
	}
	return strings.ReplaceAll(route, "{traceId}", validID)
}

func TestAPIRoutesRequireCredential(t *testing.T) {
	h := newHarness(t, &fakeStore{spans: []chstore.Span{{}}})
	notStore := 0
	for route, method := range apiRoutes(t, h.svc.Router()) {
		for _, auth := range []string{"", "Bearer wrong", "Basic " + testKey, "Bearer", testKey, "Bearer " + testAdminKey} {
			req := httptest.NewRequest(method, concretePath(route), nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			rec := httptest.NewRecorder()
			h.svc.Handler().ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized || decodeError(t, rec).Error.Code != "unauthenticated" {
				t.Errorf("%s %s with %q: %d %s, want 401", method, route, auth, rec.Code, rec.Body)
			}
		}
		rec := h.do(t, method, concretePath(route), testKey)
		if rec.Code == http.StatusServiceUnavailable && decodeError(t, rec).Error.Code == "unavailable" {
			notStore++ // a route of an optional dependency the harness leaves nil
			continue
		}
		if rec.Code != 200 {
			t.Errorf("%s %s with the key: %d %s", method, route, rec.Code, rec.Body)
		}
	}
	// The admin routes: the admin key only; a tenant's key is refused.
	for route, method := range adminRoutes(t, h.svc.Router()) {
		for _, auth := range []string{"", "Bearer wrong", "Basic " + testAdminKey, "Bearer", testAdminKey, "Bearer " + testKey} {
			req := httptest.NewRequest(method, concreteAdminPath(route), nil)
			if auth != "" {
				req.Header.Set("Authorization", auth)
			}
			rec := httptest.NewRecorder()
			h.svc.Handler().ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized || decodeError(t, rec).Error.Code != "unauthenticated" {
				t.Errorf("%s %s with %q: %d %s, want 401", method, route, auth, rec.Code, rec.Body)
			}
		}
		if rec := h.adminDo(t, method, concreteAdminPath(route), adminBody(method, route)); rec.Code >= 300 {
			t.Errorf("%s %s with the admin key: %d %s", method, route, rec.Code, rec.Body)
		}
	}
	if rec := h.do(t, "GET", "/admin/v1/nope", ""); rec.Code != 401 {
		t.Errorf("unknown admin path without key: %d", rec.Code)
	}
	if n := len(apiRoutes(t, h.svc.Router())) - notStore; h.store.calls != n {
		t.Errorf("store calls = %d, want %d (only the authenticated requests)", h.store.calls, n)
	}
	// Unknown /api/v1 paths need the credential too, then 404.
	if rec := h.do(t, "GET", "/api/v1/nope", ""); rec.Code != 401 {
		t.Errorf("unknown api path without key: %d", rec.Code)
	}
	if rec := h.get(t, "/api/v1/nope"); rec.Code != 404 || decodeError(t, rec).Error.Code != "not_found" {
		t.Errorf("unknown api path: %d %s", rec.Code, rec.Body)
	}
	if strings.Contains(h.logs.String(), testKey) {
		t.Errorf("logs contain the API key:\n%s", h.logs)
	}
}

// The API listener answers the health routes without a credential, and
// none of the ops routes: /metrics and /debug/pprof/ are on the process's
// ops listener (services/allinone).
func TestOpsRoutesNeedNoCredential(t *testing.T) {
	h := newHarness(t, &fakeStore{})
	for _, tc := range []struct {
		path   string
		status int
	}{
		{"/healthz", 200},
		{"/readyz", 503}, // Run was not called
		{"/metrics", 404},
		{"/debug/pprof/", 404},
		{"/debug/pprof/goroutine?debug=1", 404},
		{"/debug/pprof/cmdline", 404},
		{"/debug/pprof/profile?seconds=1", 404},
		{"/nope", 404},
	} {
		rec := h.do(t, "GET", tc.path, "")
		if rec.Code != tc.status {
			t.Errorf("%s: %d, want %d", tc.path, rec.Code, tc.status)
		}
	}
}

func TestStoreErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		err     error
		status  int
		code    string
		message string
		logged  string
	}{
		{"internal", fmt.Errorf("get trace: %w", errors.New("code: 60, secret table db.spans missing")), 500, "internal", "internal error", "level=ERROR"},
		{"timeout", fmt.Errorf("get trace: %w", context.DeadlineExceeded), 504, "timeout", "the request timed out", "level=WARN"},
		{"unavailable", apperr.Unavailable(errors.New("dial tcp: refused"), "trace storage is unavailable, retry later", 0), 503, "unavailable", "trace storage is unavailable, retry later", "level=WARN"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, &fakeStore{err: tc.err})
			for _, path := range []string{"/api/v1/traces/" + validID, "/api/v1/traces", "/api/v1/services"} {
				rec := h.get(t, path)
				b := decodeError(t, rec)
				if rec.Code != tc.status || b.Error.Code != tc.code || b.Error.Message != tc.message {
					t.Errorf("%s: %d %+v, want %d %s %q", path, rec.Code, b.Error, tc.status, tc.code, tc.message)
				}
			}
			logs := h.logs.String()
			if !strings.Contains(logs, tc.logged) || !strings.Contains(logs, tc.err.Error()) || !strings.Contains(logs, "tenant="+testTenant) {
				t.Errorf("logs lack the failure:\n%s", logs)
			}
			if strings.Contains(logs, testKey) {
				t.Errorf("logs contain the API key:\n%s", logs)
			}
		})
	}
}

func TestPanicIsJSON500(t *testing.T) {
	h := newHarness(t, &fakeStore{panicky: true})
	rec := h.get(t, "/api/v1/traces/"+validID)
	if b := decodeError(t, rec); rec.Code != 500 || b.Error.Code != "internal" || b.Error.Message != "internal error" {
		t.Errorf("panic: %d %+v", rec.Code, b)
	}
	if !strings.Contains(h.logs.String(), "store exploded") {
		t.Errorf("panic not logged:\n%s", h.logs)
	}
}

func TestMetricsByRoutePattern(t *testing.T) {
	h := newHarness(t, &fakeStore{spans: []chstore.Span{{}}})
	h.get(t, "/api/v1/traces/"+validID)
	h.get(t, "/api/v1/traces/"+strings.ToUpper(validID))
	h.get(t, "/api/v1/traces/bad")
	h.get(t, "/no/such/path/"+validID)
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(h.reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	body := rec.Body.String()
	for _, want := range []string{
		`aftertrace_api_request_duration_seconds_count{code="200",method="GET",route="/api/v1/traces/{traceId}"} 2`,
		`aftertrace_api_request_duration_seconds_count{code="400",method="GET",route="/api/v1/traces/{traceId}"} 1`,
		`aftertrace_api_request_duration_seconds_count{code="404",method="GET",route="unmatched"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(body, validID) {
		t.Error("metrics labels contain a raw path")
	}
	if got := h.get(t, "/healthz").Header().Get("X-Request-Id"); got == "" {
		t.Error("no X-Request-Id on answers")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := api.DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	err := api.Config{}.Validate()
	for _, field := range []string{"Addr", "ShutdownTimeout", "DefaultSearchWindow", "MaxSearchWindow", "DefaultLimit", "MaxLimit"} {
		if err == nil || !strings.Contains(err.Error(), field) {
			t.Errorf("zero config error %v does not name %s", err, field)
		}
	}
	bad := api.DefaultConfig()
	bad.Addr = "nocolon"
	bad.DefaultLimit = 5000
	bad.DefaultSearchWindow = 30 * 24 * time.Hour
	err = bad.Validate()
	for _, part := range []string{"Addr", "DefaultLimit", "DefaultSearchWindow"} {
		if err == nil || !strings.Contains(err.Error(), part) {
			t.Errorf("error %v does not name %s", err, part)
		}
	}

	if _, err := api.New(api.DefaultConfig(), api.Deps{}); err == nil ||
		!strings.Contains(err.Error(), "Store") || !strings.Contains(err.Error(), "Auth") {
		t.Errorf("New without deps: %v", err)
	}
}

func TestNewRejectsDuplicateMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	cfg := api.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	deps := api.Deps{Store: &fakeStore{}, Auth: authn.NewStatic(nil), Registry: reg}
	a, err := api.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if b, err := api.New(cfg, deps); err == nil {
		b.Close()
		t.Error("second Service on one registry: no error")
	}
}

func TestRunServesAndShutsDownGracefully(t *testing.T) {
	store := &fakeStore{spans: []chstore.Span{{Name: "slow"}}}
	h := newHarness(t, store)
	addr := h.svc.Addr()
	if strings.HasSuffix(addr, ":0") {
		t.Fatalf("Addr = %s, want the bound port", addr)
	}
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	get := func(path string) (int, string, error) {
		req, _ := http.NewRequest("GET", "http://"+addr+path, nil)
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- h.svc.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for {
		code, _, err := get("/readyz")
		if err == nil && code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("never ready: %d %v", code, err)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// A request in flight when shutdown starts is answered; readiness is
	// already off while it drains.
	store.mu.Lock()
	store.block = make(chan struct{})
	store.mu.Unlock()
	inflight := make(chan string, 1)
	go func() {
		code, body, err := get("/api/v1/traces/" + validID)
		inflight <- fmt.Sprint(code, " ", strings.Contains(body, `"slow"`), " ", err)
	}()
	for store.callsNow() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	for h.svc.Ready() {
		time.Sleep(5 * time.Millisecond)
	}
	select {
	case err := <-runErr:
		t.Fatalf("Run returned %v while a request was in flight", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(store.block)
	if got := <-inflight; got != "200 true <nil>" {
		t.Errorf("in-flight request: %s", got)
	}
	select {
	case err := <-runErr:
		if err != nil {
			t.Errorf("Run = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return")
	}
	if _, _, err := get("/healthz"); err == nil {
		t.Error("still serving after Run returned")
	}
	if err := h.svc.Run(context.Background()); err == nil {
		t.Error("second Run: no error")
	}
}

func (f *fakeStore) callsNow() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}
