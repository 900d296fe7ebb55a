package api_test

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/rca"
	"github.com/aftertrace/aftertrace/internal/testenv"
	"github.com/aftertrace/aftertrace/services/api"
)

// Issue #15 case 7 (heavy reads): every test runs the API against the real
// ClickHouse and Postgres of testenv.

// readsAPI is an API server running for one test.
type readsAPI struct {
	addr   string
	reg    *prometheus.Registry
	client *http.Client
}

// startReadsAPI runs an API with cfg and deps on a free loopback port until
// the test ends.
func startReadsAPI(t *testing.T, cfg api.Config, deps api.Deps) *readsAPI {
	t.Helper()
	cfg.Addr = "127.0.0.1:0"
	reg := prometheus.NewRegistry()
	deps.Registry = reg
	svc, err := api.New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	tr := &http.Transport{}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return &readsAPI{addr: svc.Addr(), reg: reg, client: &http.Client{Transport: tr, Timeout: 30 * time.Second}}
}

type answer struct {
	code   int
	header http.Header
	body   []byte
}

func (a answer) errorCode() string {
	var b errorBody
	_ = json.Unmarshal(a.body, &b)
	return b.Error.Code
}

func (r *readsAPI) do(t *testing.T, method, path, key, body string) answer {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+r.addr+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return answer{code: resp.StatusCode, header: resp.Header, body: b}
}

// stalledRequest has sent its headers but holds back its body, so the
// server is inside the handler (past the expensive-read limiter) until
// finish sends it.
type stalledRequest struct {
	conn net.Conn
	body string
}

func stallRequest(t *testing.T, addr, method, path, key, body string) *stalledRequest {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	_, err = fmt.Fprintf(c, "%s %s HTTP/1.1\r\nHost: %s\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n",
		method, path, addr, key, len(body))
	if err != nil {
		t.Fatal(err)
	}
	return &stalledRequest{conn: c, body: body}
}

// finish sends the body and returns the answer's status.
func (s *stalledRequest) finish(t *testing.T) int {
	t.Helper()
	_ = s.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(s.conn, s.body); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(s.conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// waitUntil polls cond until it holds or the deadline passes.
func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gaugeOf reads one labelled gauge of reg.
func gaugeOf(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				if hasLabelValue(m, label) {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	return 0
}

func openReadsStore(t *testing.T, env *testenv.Env, mod func(*chstore.Config)) *chstore.Store {
	t.Helper()
	cfg := chstore.DefaultConfig()
	cfg.Addr, cfg.Database, cfg.MaxOpenConns, cfg.QueryTimeout = env.ClickHouseAddr, env.ClickHouseDB, 8, 20*time.Second
	if mod != nil {
		mod(&cfg)
	}
	s, err := chstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// (a) A tenant holding its N expensive reads gets 429 with Retry-After for
// one more (of any expensive class), while another tenant's expensive read
// at the same time is answered, and so are the first tenant's cheap reads.
func TestExpensiveReadsPerTenant(t *testing.T) {
	env := testenv.Get(t)
	store := openReadsStore(t, env, nil)
	cfg := api.DefaultConfig()
	cfg.Reads.TenantExpensiveReads = 2
	srv := startReadsAPI(t, cfg, api.Deps{
		Store: store,
		Auth:  authn.NewStatic(map[string]authn.Tenant{"ka": {ID: "ta"}, "kb": {ID: "tb"}}),
		RCA:   rca.New(rca.StoreSource{Store: store}, rca.DefaultConfig()),
	})
	const rcaBody = `{"start":"2024-06-01T12:00:00Z","end":"2024-06-01T12:10:00Z"}`
	search := "/api/v1/traces?start=" + url.QueryEscape("2024-06-01T11:00:00Z") + "&end=" + url.QueryEscape("2024-06-01T13:00:00Z")

	held := []*stalledRequest{
		stallRequest(t, srv.addr, "POST", "/api/v1/rca", "ka", rcaBody),
		stallRequest(t, srv.addr, "POST", "/api/v1/rca", "ka", rcaBody),
	}
	waitUntil(t, 20*time.Second, "tenant a holds 2 rca slots", func() bool {
		return gaugeOf(t, srv.reg, "aftertrace_api_expensive_reads_in_flight", api.ClassRCA) == 2
	})

	cases := []struct {
		name, method, path, key, body string
		want                          int
	}{
		{"a: one more search", "GET", search, "ka", "", http.StatusTooManyRequests},
		{"a: one more rca", "POST", "/api/v1/rca", "ka", rcaBody, http.StatusTooManyRequests},
		{"a: a cheap read", "GET", "/api/v1/services", "ka", "", http.StatusOK},
		{"b: rca meanwhile", "POST", "/api/v1/rca", "kb", rcaBody, http.StatusOK},
		{"b: search meanwhile", "GET", search, "kb", "", http.StatusOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := srv.do(t, tc.method, tc.path, tc.key, tc.body)
			if got.code != tc.want {
				t.Fatalf("status %d %s, want %d", got.code, got.body, tc.want)
			}
			if tc.want != http.StatusTooManyRequests {
				return
			}
			if ra := got.header.Get("Retry-After"); ra != "2" {
				t.Errorf("Retry-After %q, want 2", ra)
			}
			if code := got.errorCode(); code != "rate_limited" {
				t.Errorf("error code %q in %s, want rate_limited", code, got.body)
			}
		})
	}
	for class, want := range map[string]float64{api.ClassSearch: 1, api.ClassRCA: 1} {
		if v := counterOf(t, srv.reg, "aftertrace_api_expensive_reads_rejected_total", class); v != want {
			t.Errorf("aftertrace_api_expensive_reads_rejected_total{class=%s} = %v, want %v", class, v, want)
		}
	}
	if v := counterOf(t, srv.reg, "aftertrace_api_rejected_total", "rate_limited"); v != 2 {
		t.Errorf("aftertrace_api_rejected_total{reason=rate_limited} = %v, want 2", v)
	}

	// The held reads complete, and their slots are free again.
	for i, h := range held {
		if code := h.finish(t); code != http.StatusOK {
			t.Errorf("held read %d: status %d", i, code)
		}
	}
	waitUntil(t, 20*time.Second, "slots released", func() bool {
		return gaugeOf(t, srv.reg, "aftertrace_api_expensive_reads_in_flight", api.ClassRCA) == 0
	})
	if got := srv.do(t, "GET", search, "ka", ""); got.code != http.StatusOK {
		t.Errorf("after release: status %d %s", got.code, got.body)
	}
}

// manySpans is one trace of n spans of one service, starting a millisecond
// apart.
func manySpans(id [16]byte, n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "big")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range n {
		sp := ss.AppendEmpty()
		sp.SetTraceID(id)
		sp.SetSpanID([8]byte{0, 0, 0, 0, 0, 0, 0, byte(i + 1)})
		if i > 0 {
			sp.SetParentSpanID([8]byte{0, 0, 0, 0, 0, 0, 0, 1})
		}
		sp.SetName(fmt.Sprint("op", i))
		sp.SetStartTimestamp(ts(time.Duration(i) * time.Millisecond))
		sp.SetEndTimestamp(ts(time.Duration(i)*time.Millisecond + time.Second))
	}
	return td
}

// (b) GET /traces/{id} answers at most MaxTraceSpans spans (the first by
// start time) and says so with truncated.
func TestTraceSpanCap(t *testing.T) {
	env := testenv.Get(t)
	store := openReadsStore(t, env, nil)
	const maxSpans = 5
	cases := []struct {
		name      string
		id        [16]byte
		spans     int
		truncated bool
	}{
		{"under the cap", [16]byte{0xe1}, 3, false},
		{"at the cap", [16]byte{0xe2}, maxSpans, false},
		{"over the cap", [16]byte{0xe3}, 12, true},
	}
	for _, tc := range cases {
		insertTraces(t, store, "t1", manySpans(tc.id, tc.spans))
	}
	insertTraces(t, store, "t1", manySpans([16]byte{0xe3}, 12)) // re-delivered copies do not count twice
	cfg := api.DefaultConfig()
	cfg.Reads.MaxTraceSpans = maxSpans
	srv := startReadsAPI(t, cfg, api.Deps{Store: store, Auth: authn.NewStatic(map[string]authn.Tenant{"k1": {ID: "t1"}})})

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := srv.do(t, "GET", "/api/v1/traces/"+hex.EncodeToString(tc.id[:]), "k1", "")
			if got.code != http.StatusOK {
				t.Fatalf("status %d %s", got.code, got.body)
			}
			var tr struct {
				Spans []struct {
					SpanID string `json:"spanId"`
				} `json:"spans"`
				Truncated *bool `json:"truncated"`
			}
			if err := json.Unmarshal(got.body, &tr); err != nil {
				t.Fatal(err)
			}
			if want := min(tc.spans, maxSpans); len(tr.Spans) != want {
				t.Errorf("%d spans, want %d", len(tr.Spans), want)
			}
			if tr.Truncated == nil || *tr.Truncated != tc.truncated {
				t.Errorf("truncated = %v, want %v", tr.Truncated, tc.truncated)
			}
			for i, sp := range tr.Spans { // the first spans by start time
				if want := fmt.Sprintf("00000000000000%02x", i+1); sp.SpanID != want {
					t.Errorf("span %d = %s, want %s", i, sp.SpanID, want)
				}
			}
		})
	}
}

// (c) A read over the query timeout is cut off: the server is told
// max_execution_time, the client gives up at the deadline, and the API
// answers 504 timeout at once instead of waiting for the query.
func TestReadTimeoutCutsSlowQuery(t *testing.T) {
	env := testenv.Get(t)
	const timeout = time.Second
	// The store's own deadline is long: the API's request deadline must
	// cut the read (as it does RCA's, which have no store deadline).
	store := openReadsStore(t, env, func(c *chstore.Config) { c.QueryTimeout, c.MaxExecutionTime = 20*time.Second, timeout })
	insertTraces(t, store, "t1", simpleTrace("slow", [16]byte{0xf1}, 0))
	// A slow service_index: the real table behind a view that sleeps a
	// second per row (ClickHouse evaluates it several times per block).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, q := range []string{
		"RENAME TABLE service_index TO service_index_data",
		"CREATE VIEW service_index AS SELECT * FROM service_index_data WHERE sleepEachRow(1) = 0",
	} {
		if err := store.Conn().Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	cfg := api.DefaultConfig()
	cfg.Reads.QueryTimeout = timeout
	srv := startReadsAPI(t, cfg, api.Deps{Store: store, Auth: authn.NewStatic(map[string]authn.Tenant{"k1": {ID: "t1"}})})

	start := time.Now()
	got := srv.do(t, "GET", "/api/v1/services?start="+url.QueryEscape(itStart.Add(-time.Hour).Format(time.RFC3339))+
		"&end="+url.QueryEscape(itStart.Add(time.Hour).Format(time.RFC3339)), "k1", "")
	took := time.Since(start)
	t.Logf("answered %d in %v", got.code, took)
	if got.code != http.StatusGatewayTimeout || got.errorCode() != "timeout" {
		t.Fatalf("status %d %s, want 504 timeout", got.code, got.body)
	}
	var b errorBody
	_ = json.Unmarshal(got.body, &b)
	if !strings.Contains(b.Error.Message, "query timeout") {
		t.Errorf("message %q does not name the query timeout", b.Error.Message)
	}
	if took > 3*timeout {
		t.Errorf("answered after %v; the query was not cut off at the %v timeout", took, timeout)
	}
	if v := counterOf(t, srv.reg, "aftertrace_api_rejected_total", "timeout"); v != 1 {
		t.Errorf("aftertrace_api_rejected_total{reason=timeout} = %v, want 1", v)
	}
}

// countingIncidents is the real Postgres store, counting the queries the
// API sends it.
type countingIncidents struct {
	*pgstore.Store
	calls atomic.Int64
}

func (c *countingIncidents) ListIncidents(ctx context.Context, q pgstore.IncidentQuery) ([]pgstore.Incident, error) {
	c.calls.Add(1)
	return c.Store.ListIncidents(ctx, q)
}

func (c *countingIncidents) GetIncident(ctx context.Context, tenantID, id string) (pgstore.Incident, error) {
	c.calls.Add(1)
	return c.Store.GetIncident(ctx, tenantID, id)
}

func (c *countingIncidents) IncidentEvents(ctx context.Context, tenantID, id string) ([]pgstore.IncidentEvent, error) {
	c.calls.Add(1)
	return c.Store.IncidentEvents(ctx, tenantID, id)
}

func (c *countingIncidents) IncidentHistory(ctx context.Context, id string) ([]pgstore.IncidentChange, error) {
	c.calls.Add(1)
	return c.Store.IncidentHistory(ctx, id)
}

func (c *countingIncidents) SetIncidentStatus(ctx context.Context, tenantID, id, status, actor, note string) (pgstore.Incident, error) {
	c.calls.Add(1)
	return c.Store.SetIncidentStatus(ctx, tenantID, id, status, actor, note)
}

// (d) The detail of an incident with many events reads their links in one
// ClickHouse query, not one per event.
func TestIncidentDetailBatchesLinks(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var (
		mu      sync.Mutex
		queries []string
	)
	store := openReadsStore(t, env, func(c *chstore.Config) {
		c.QueryObserver = func(q string, _ []any) { mu.Lock(); queries = append(queries, q); mu.Unlock() }
	})
	pg, err := pgstore.Open(ctx, env.PostgresDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	ten, err := pg.CreateTenant(ctx, "many-events")
	if err != nil {
		t.Fatal(err)
	}

	// 60 events grouped into one incident; each links its own trace and
	// one trace they share.
	const n = 60
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	shared := [16]byte{0x5a}
	var (
		incident string
		links    []chstore.EventLink
	)
	for i := range n {
		eid := events.ID{0xee, byte(i + 1)}
		at := t0.Add(time.Duration(i) * 10 * time.Second)
		id, _, err := pg.RecordIncidentEvent(ctx, pgstore.IncidentInput{TenantID: ten.ID, Opens: i == 0, Title: "crash loop", Window: 10 * time.Minute,
			Event: pgstore.IncidentEvent{EventID: eid.String(), EventTime: at, Type: "oom_killed", Severity: 17, Namespace: "shop", Workload: "cart"}})
		if err != nil || id == "" {
			t.Fatalf("event %d: incident %q, %v", i, id, err)
		}
		incident = id
		for _, tid := range [][16]byte{{0x7a, byte(i + 1)}, shared} {
			links = append(links, chstore.EventLink{TenantID: ten.ID, EventID: eid, EventTimeNs: uint64(at.UnixNano()), TraceID: tid,
				TraceStartNs: uint64(at.UnixNano()), MatchKind: "container", SpanCount: 1, RootService: "cart", LinkedAtNs: uint64(at.UnixNano())})
		}
	}
	if err := store.InsertEventLinks(ctx, links); err != nil {
		t.Fatal(err)
	}
	inc := &countingIncidents{Store: pg}
	srv := startReadsAPI(t, api.DefaultConfig(), api.Deps{
		Store: store, Auth: authn.NewStatic(map[string]authn.Tenant{"k1": {ID: ten.ID}}),
		Incidents: inc, Correlations: store,
	})
	mu.Lock()
	queries = nil
	mu.Unlock()

	got := srv.do(t, "GET", "/api/v1/incidents/"+incident, "k1", "")
	if got.code != http.StatusOK {
		t.Fatalf("status %d %s", got.code, got.body)
	}
	var detail struct {
		Events       []json.RawMessage `json:"events"`
		LinkedTraces []struct {
			TraceID string `json:"traceId"`
		} `json:"linkedTraces"`
		Truncated bool `json:"linkedTracesTruncated"`
	}
	if err := json.Unmarshal(got.body, &detail); err != nil {
		t.Fatal(err)
	}
	if len(detail.Events) != n || len(detail.LinkedTraces) != n+1 || detail.Truncated {
		t.Errorf("%d events, %d linked traces (truncated %v), want %d and %d", len(detail.Events), len(detail.LinkedTraces), detail.Truncated, n, n+1)
	}
	mu.Lock()
	defer mu.Unlock()
	linkQueries := 0
	for _, q := range queries {
		if strings.Contains(q, "event_links") {
			linkQueries++
		}
	}
	if linkQueries != 1 || len(queries) != 1 {
		t.Errorf("%d ClickHouse queries (%d of event_links) for %d events, want 1", len(queries), linkQueries, n)
	}
	if c := inc.calls.Load(); c != 3 {
		t.Errorf("%d Postgres queries, want 3 (incident, events, history)", c)
	}
}

// Every expensive route exists and documents its 429.
func TestOpenAPIExpensiveRoutes(t *testing.T) {
	s := loadSpec(t)
	routes := routerRoutes(t, newHarness(t, &fakeStore{}).svc.Router())
	for route, class := range api.ExpensiveRoutes() {
		method, path, _ := strings.Cut(route, " ")
		method = strings.ToLower(method)
		if !slices.Contains(routes[path], method) {
			t.Errorf("%s (%s) is not routed", route, class)
		}
		if _, ok := s.Paths[path][method].Responses["429"]; !ok {
			t.Errorf("%s (%s) does not document 429", route, class)
		}
	}
}
