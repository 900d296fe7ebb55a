package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"gopkg.in/yaml.v3"

	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/rca"
	"github.com/aftertrace/aftertrace/internal/testenv"
	"github.com/aftertrace/aftertrace/services/api"
)

// injectionProbes are hostile strings for every string input: SQL quoting
// and comment syntax, escapes, NUL and control bytes, invalid UTF-8,
// non-ASCII text, LIKE and format wildcards, and a long value.
var injectionProbes = []string{
	`'`, `"`, "`", `\`, `\'`, `\\'`, `''`, `'; DROP TABLE spans; --`,
	`" OR 1=1 --`, `') OR ('1'='1`, `x' UNION SELECT name FROM system.tables --`,
	`/* comment */`, "--", `%`, `_`, `*`, `?`, `$1`, `{0}`, `%s%n`,
	"\x00", "a\x00b", "\n\r\t", "\xff\xfe\xfd", "ü✓日本語", "\u202e\u200b", "😀",
	"unhex('41')", "0x7f", "-1", "99999999999999999999999999",
	strings.Repeat("A'", 700),
}

// apiSpecParams reads api/openapi.yaml: for each /api/ path with a GET,
// the names of its query and path parameters ($refs resolved).
func apiSpecParams(t *testing.T) map[string][]specParam {
	t.Helper()
	b, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]struct {
			Parameters []specParam `yaml:"parameters"`
		} `yaml:"paths"`
		Components struct {
			Parameters map[string]specParam `yaml:"parameters"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	out := map[string][]specParam{}
	for path, ops := range doc.Paths {
		op, ok := ops["get"]
		if !ok || !strings.HasPrefix(path, "/api/") {
			continue
		}
		var params []specParam
		for _, p := range op.Parameters {
			if p.Ref != "" {
				name := p.Ref[strings.LastIndex(p.Ref, "/")+1:]
				rp, ok := doc.Components.Parameters[name]
				if !ok {
					t.Fatalf("%s: unresolved parameter %s", path, p.Ref)
				}
				p = rp
			}
			params = append(params, p)
		}
		out[path] = params
	}
	return out
}

var specPathParam = regexp.MustCompile(`\{([A-Za-z0-9_]+)\}`)

// recordedQuery is one read as the chstore QueryObserver saw it.
type recordedQuery struct {
	sql  string
	args []any
}

type queryLog struct {
	mu sync.Mutex
	qs []recordedQuery
}

func (l *queryLog) observe(sql string, args []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.qs = append(l.qs, recordedQuery{sql: sql, args: append([]any(nil), args...)})
}

func (l *queryLog) take() []recordedQuery {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.qs
	l.qs = nil
	return q
}

// Every string input of every API route, sent hostile values, answers 200
// or 4xx (never 5xx) against real ClickHouse, the data survives, and no
// user string ever reaches the SQL text: only the bound arguments.
func TestInjectionProbes(t *testing.T) {
	env := testenv.Get(t)
	var qlog queryLog
	cfg := chstore.DefaultConfig()
	cfg.Addr, cfg.Database, cfg.MaxOpenConns, cfg.QueryTimeout = env.ClickHouseAddr, env.ClickHouseDB, 4, 20*time.Second
	cfg.QueryObserver = qlog.observe
	store, err := chstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	pg, err := pgstore.Open(context.Background(), env.PostgresDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()
	insertTraces(t, store, "t1", checkoutTrace())
	insertTraces(t, store, "t1", simpleTrace("search", traceB, time.Minute))

	svcCfg := api.DefaultConfig()
	svcCfg.Addr = "127.0.0.1:0"
	svc, err := api.New(svcCfg, api.Deps{
		Store:  store,
		Events: store,

		Correlations:         store,
		BusinessTransactions: pg,
		Incidents:            pg,
		IncidentRules:        pg,
		Retention:            pg,
		Auth:                 authn.NewStatic(map[string]authn.Tenant{"k1": {ID: "t1"}}),
		RCA:                  rca.New(rca.StoreSource{Store: store}, rca.DefaultConfig()),
		IncidentRootCauses:   pg,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Close() }()

	window := map[string]string{
		"start": itStart.Add(-time.Minute).Format(time.RFC3339),
		"end":   itStart.Add(time.Hour).Format(time.RFC3339),
	}
	routes := apiSpecParams(t)
	if len(routes) == 0 {
		t.Fatal("no /api/ routes in the spec")
	}
	names := make([]string, 0, len(routes))
	for p := range routes {
		names = append(names, p)
	}
	sort.Strings(names)

	requests, boundSomewhere := 0, false
	for _, path := range names {
		params := routes[path]
		// The generic label filter (label.<k>=<v>) is probed on every route
		// too, in its key and its value; routes without it ignore it.
		params = append(params, specParam{Name: "label.{key}", In: "query"})
		for _, p := range params {
			for _, probe := range injectionProbes {
				target := buildProbeURL(path, params, p, probe, window)
				req := httptest.NewRequest(http.MethodGet, "/", nil)
				req.URL, err = url.Parse(target)
				if err != nil {
					t.Fatalf("%s: %v", target, err)
				}
				req.RequestURI = target
				req.Header.Set("Authorization", "Bearer k1")
				rec := httptest.NewRecorder()
				svc.Handler().ServeHTTP(rec, req)
				requests++
				if rec.Code >= 500 || (rec.Code != 200 && rec.Code/100 != 4) {
					t.Errorf("%s %s=%q: %d %s", path, p.Name, probe, rec.Code, rec.Body)
				}
				for _, q := range qlog.take() {
					if leaked(q.sql, probe) {
						t.Errorf("%s %s=%q: the probe is in the SQL text:\n%s", path, p.Name, probe, q.sql)
					}
					for _, a := range q.args {
						if s, ok := a.(string); ok && s == probe && len(probe) > 2 {
							boundSomewhere = true
						}
					}
				}
			}
		}
	}
	t.Logf("%d probe requests on %d routes", requests, len(names))
	if !boundSomewhere {
		t.Error("no probe reached ClickHouse as a bound argument: the observer or the probes are broken")
	}
	if n := queryUint(t, store, "SELECT count() FROM spans"); n != 3 {
		t.Errorf("spans rows = %d after the probes, want 3", n)
	}
}

// leaked reports a probe that appears in SQL text. Probes that are common
// SQL fragments on their own (a quote, "--", "?", "_", a digit) are
// checked only where they could not occur legitimately.
func leaked(sql, probe string) bool {
	if len(probe) < 4 || strings.Trim(probe, "-?*_%'\"`\\0123456789x") == "" {
		return false
	}
	return strings.Contains(sql, probe)
}

// buildProbeURL is path with probe in parameter target and valid values
// (or none) elsewhere.
func buildProbeURL(path string, params []specParam, target specParam, probe string, window map[string]string) string {
	p := specPathParam.ReplaceAllStringFunc(path, func(m string) string {
		name := m[1 : len(m)-1]
		if target.In == "path" && target.Name == name {
			return url.PathEscape(probe)
		}
		return validID
	})
	q := url.Values{}
	for _, sp := range params {
		if sp.In != "query" {
			continue
		}
		if v, ok := window[sp.Name]; ok {
			q.Set(sp.Name, v)
		}
	}
	if target.In == "query" {
		name := target.Name
		if strings.Contains(name, "{") { // a pattern parameter: probe the key and the value
			name = specPathParam.ReplaceAllString(name, "k"+probe)
		}
		q.Set(name, probe)
	}
	if enc := q.Encode(); enc != "" {
		p += "?" + enc
	}
	return p
}

// A read over MaxRowsToRead is refused with 413 and a clear message, and
// counted.
func TestQueryRowLimit(t *testing.T) {
	env := testenv.Get(t)
	cfg := chstore.DefaultConfig()
	cfg.Addr, cfg.Database, cfg.MaxOpenConns, cfg.QueryTimeout = env.ClickHouseAddr, env.ClickHouseDB, 2, 20*time.Second
	cfg.MaxRowsToRead = 2
	store, err := chstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for i := range 5 {
		insertTraces(t, store, "t1", simpleTrace(fmt.Sprint("svc", i), [16]byte{0xd0, byte(i + 1)}, time.Duration(i)*time.Second))
	}
	reg := prometheus.NewRegistry()
	svcCfg := api.DefaultConfig()
	svcCfg.Addr = "127.0.0.1:0"
	svc, err := api.New(svcCfg, api.Deps{Store: store, Auth: authn.NewStatic(map[string]authn.Tenant{"k1": {ID: "t1"}}), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Close() }()

	target := "/api/v1/traces?service=svc1&start=" + url.QueryEscape(itStart.Add(-time.Minute).Format(time.RFC3339)) +
		"&end=" + url.QueryEscape(itStart.Add(time.Hour).Format(time.RFC3339))
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Authorization", "Bearer k1")
	rec := httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d %s, want 413", rec.Code, rec.Body)
	}
	if msg := decodeError(t, rec).Error.Message; !strings.Contains(msg, "more than 2 rows") {
		t.Errorf("message %q does not say the limit", msg)
	}
	if v := counterOf(t, reg, "aftertrace_api_rejected_total", "too_large"); v != 1 {
		t.Errorf("aftertrace_api_rejected_total{reason=too_large} = %v", v)
	}

	// Without the limit the same read works (the setting was the cause).
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg.MaxRowsToRead = 0
	open, err := chstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer open.Close()
	if _, err := open.SearchTraces(ctx, chstore.TraceQuery{TenantID: "t1", Service: "svc1", Start: itStart.Add(-time.Minute), End: itStart.Add(time.Hour)}); err != nil {
		t.Errorf("unlimited read: %v", err)
	}
}

// counterOf reads one labelled counter of reg.
func counterOf(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if hasLabelValue(m, label) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func hasLabelValue(m *dto.Metric, v string) bool {
	for _, l := range m.GetLabel() {
		if l.GetValue() == v {
			return true
		}
	}
	return false
}
