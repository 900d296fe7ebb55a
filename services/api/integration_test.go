package api_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
	"github.com/aftertrace/aftertrace/internal/testenv"
	"github.com/aftertrace/aftertrace/services/api"
)

// itStart is when the integration traces start.
var itStart = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

var (
	traceA = [16]byte{0xa0, 0x27, 0x5c, 0x00, 0x3f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11} // bytes that need SQL escaping
	traceB = [16]byte{0xb0, 1}
	traceC = [16]byte{0xc0, 1}
)

func ts(d time.Duration) pcommon.Timestamp { return pcommon.NewTimestampFromTime(itStart.Add(d)) }

// checkoutTrace is traceA: a root span of checkout with every attribute
// type, events and a link, and a failing child span of payments.
func checkoutTrace() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	rs.Resource().Attributes().PutStr("k8s.pod.name", "checkout-1")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("lib")
	ss.Scope().SetVersion("1.0")
	sp := ss.Spans().AppendEmpty()
	sp.SetTraceID(traceA)
	sp.SetSpanID([8]byte{1})
	sp.SetName("POST /checkout")
	sp.SetKind(ptrace.SpanKindServer)
	sp.SetStartTimestamp(ts(0))
	sp.SetEndTimestamp(ts(300 * time.Millisecond))
	sp.Status().SetCode(ptrace.StatusCodeOk)
	sp.TraceState().FromRaw("k=v")
	sp.SetFlags(1)
	a := sp.Attributes()
	a.PutStr("s", "x")
	a.PutBool("b", true)
	a.PutInt("i", 42)
	a.PutDouble("d", 1.5)
	a.PutEmptyBytes("bytes").FromRaw([]byte{1, 2})
	arr := a.PutEmptySlice("arr")
	arr.AppendEmpty().SetStr("a")
	arr.AppendEmpty().SetInt(1)
	a.PutEmptyMap("map").PutStr("k", "v")
	ev := sp.Events().AppendEmpty()
	ev.SetName("retry")
	ev.SetTimestamp(ts(100 * time.Millisecond))
	ev.Attributes().PutInt("attempt", 2)
	ln := sp.Links().AppendEmpty()
	ln.SetTraceID(traceB)
	ln.SetSpanID([8]byte{9})
	ln.TraceState().FromRaw("x=y")

	rs2 := td.ResourceSpans().AppendEmpty()
	rs2.Resource().Attributes().PutStr("service.name", "payments")
	child := rs2.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	child.SetTraceID(traceA)
	child.SetSpanID([8]byte{2})
	child.SetParentSpanID([8]byte{1})
	child.SetName("charge")
	child.SetKind(ptrace.SpanKindClient)
	child.SetStartTimestamp(ts(50 * time.Millisecond))
	child.SetEndTimestamp(ts(400 * time.Millisecond))
	child.Status().SetCode(ptrace.StatusCodeError)
	child.Status().SetMessage("card declined")
	return td
}

// simpleTrace is one root span.
func simpleTrace(service string, id [16]byte, start time.Duration) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(id)
	sp.SetSpanID([8]byte{1})
	sp.SetName("GET /" + service)
	sp.SetStartTimestamp(ts(start))
	sp.SetEndTimestamp(ts(start + time.Second))
	return td
}

// insertTraces writes td for tenant as the writer does: one native insert
// with the explicit column list ClickHouse 18.16 requires.
func insertTraces(t *testing.T, s *chstore.Store, tenant string, td ptrace.Traces) {
	t.Helper()
	var b otlpconv.SpanBatch
	b.AppendTraces(tenant, td)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	batch, err := s.Conn().PrepareBatch(ctx, "INSERT INTO spans ("+strings.Join(otlpconv.SpanColumns, ", ")+")")
	if err != nil {
		t.Fatalf("prepare insert: %v", err)
	}
	for i, col := range b.Columns() {
		if err := batch.Column(i).Append(col); err != nil {
			t.Fatalf("append column %s: %v", otlpconv.SpanColumns[i], err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatalf("insert: %v", err)
	}
}

func queryUint(t *testing.T, s *chstore.Store, q string, args ...any) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n uint64
	if err := s.Conn().QueryRow(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestIntegrationClickHouse(t *testing.T) {
	env := testenv.Get(t)
	cfg := chstore.DefaultConfig()
	cfg.Addr, cfg.Database, cfg.MaxOpenConns, cfg.QueryTimeout = env.ClickHouseAddr, env.ClickHouseDB, 4, 20*time.Second
	store, err := chstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	// Keep re-delivered copies apart: the API must dedup at read time.
	if err := store.Conn().Exec(context.Background(), "SYSTEM STOP MERGES spans"); err != nil {
		t.Fatal(err)
	}

	insertTraces(t, store, "t1", checkoutTrace())
	insertTraces(t, store, "t1", checkoutTrace()) // re-delivery
	insertTraces(t, store, "t1", simpleTrace("search", traceB, time.Minute))
	insertTraces(t, store, "t2", simpleTrace("other", traceC, 30*time.Second))

	if n := queryUint(t, store, "SELECT count() FROM spans WHERE tenant_id = 't1' AND trace_id = ?", string(traceA[:])); n != 4 {
		t.Fatalf("stored rows of trace A = %d, want 4 (2 spans, twice)", n)
	}
	// The materialized views fill both indexes.
	if n := queryUint(t, store, "SELECT uniqExact(trace_id) FROM trace_index WHERE tenant_id = 't1'"); n != 2 {
		t.Errorf("trace_index: %d traces of t1, want 2", n)
	}
	if n := queryUint(t, store, "SELECT min(start_time_unix_nano) FROM trace_index WHERE tenant_id = 't1' AND trace_id = ?", string(traceA[:])); n != uint64(itStart.UnixNano()) {
		t.Errorf("trace_index start of A = %d", n)
	}
	if n := queryUint(t, store, "SELECT sum(span_count) FROM service_index WHERE tenant_id = 't1' AND service_name = 'payments'"); n != 2 {
		t.Errorf("service_index payments = %d, want 2 (one span, delivered twice)", n)
	}

	svcCfg := api.DefaultConfig()
	svcCfg.Addr = "127.0.0.1:0"
	svc, err := api.New(svcCfg, api.Deps{
		Store: store,
		Auth:  authn.NewStatic(map[string]authn.Tenant{"k1": {ID: "t1"}, "k2": {ID: "t2"}}),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runErr := make(chan error, 1)
	go func() { runErr <- svc.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-runErr; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	get := func(key, path string, into any) int {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+svc.Addr()+path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == 200 && into != nil {
			if err := json.Unmarshal(b, into); err != nil {
				t.Fatalf("GET %s: %v in %s", path, err, b)
			}
		}
		if resp.StatusCode >= 500 {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, b)
		}
		return resp.StatusCode
	}
	idA := hex.EncodeToString(traceA[:])

	t.Run("trace by id, deduped", func(t *testing.T) {
		var got map[string]any
		if code := get("k1", "/api/v1/traces/"+strings.ToUpper(idA), &got); code != 200 {
			t.Fatalf("status %d", code)
		}
		spans := got["spans"].([]any)
		if got["traceId"] != idA || len(spans) != 2 {
			t.Fatalf("trace %v with %d spans, want %s with 2", got["traceId"], len(spans), idA)
		}
		root, child := spans[0].(map[string]any), spans[1].(map[string]any)
		wantRoot := map[string]any{
			"traceId": idA, "spanId": "0100000000000000", "parentSpanId": "",
			"name": "POST /checkout", "service": "checkout", "kind": "server",
			"startTimeUnixNano": fmt.Sprint(itStart.UnixNano()), "endTimeUnixNano": fmt.Sprint(itStart.Add(300 * time.Millisecond).UnixNano()),
			"durationNs": "300000000",
			"status":     map[string]any{"code": "ok", "message": ""},
			"attributes": map[string]any{"s": "x", "b": true, "i": 42.0, "d": 1.5, "bytes": "AQI=", "arr": []any{"a", 1.0}, "map": map[string]any{"k": "v"}},
			"resource":   map[string]any{"service.name": "checkout", "k8s.pod.name": "checkout-1"},
			"events":     []any{map[string]any{"timeUnixNano": fmt.Sprint(itStart.Add(100 * time.Millisecond).UnixNano()), "name": "retry", "attributes": map[string]any{"attempt": 2.0}}},
			"links":      []any{map[string]any{"traceId": hex.EncodeToString(traceB[:]), "spanId": "0900000000000000", "traceState": "x=y", "attributes": map[string]any{}}},
			"scope":      map[string]any{"name": "lib", "version": "1.0"},
			"traceState": "k=v", "flags": 1.0,
			"droppedAttributesCount": 0.0, "droppedEventsCount": 0.0, "droppedLinksCount": 0.0,
		}
		if !reflect.DeepEqual(root, wantRoot) {
			g, _ := json.MarshalIndent(root, "", " ")
			t.Errorf("root span =\n%s", g)
		}
		if child["parentSpanId"] != "0100000000000000" || child["service"] != "payments" || child["kind"] != "client" ||
			!reflect.DeepEqual(child["status"], map[string]any{"code": "error", "message": "card declined"}) {
			t.Errorf("child span = %v", child)
		}
	})

	t.Run("tenant isolation and not found", func(t *testing.T) {
		if code := get("k2", "/api/v1/traces/"+idA, nil); code != 404 {
			t.Errorf("other tenant: %d, want 404", code)
		}
		if code := get("k1", "/api/v1/traces/"+strings.Repeat("f", 32), nil); code != 404 {
			t.Errorf("unknown trace: %d, want 404", code)
		}
	})

	window := "start=" + url.QueryEscape(itStart.Add(-time.Minute).Format(time.RFC3339)) +
		"&end=" + fmt.Sprint(itStart.Add(time.Hour).UnixNano())
	type page struct {
		Items []struct {
			TraceID           string   `json:"traceId"`
			RootService       string   `json:"rootService"`
			RootName          string   `json:"rootName"`
			StartTimeUnixNano string   `json:"startTimeUnixNano"`
			DurationNs        string   `json:"durationNs"`
			SpanCount         int      `json:"spanCount"`
			ErrorCount        int      `json:"errorCount"`
			Services          []string `json:"services"`
		} `json:"items"`
		NextCursor string `json:"nextCursor"`
	}

	t.Run("search pages newest first", func(t *testing.T) {
		var ids []string
		cursor := ""
		for i := 0; i < 5; i++ {
			var p page
			if code := get("k1", "/api/v1/traces?limit=1&"+window+"&cursor="+cursor, &p); code != 200 {
				t.Fatalf("page %d: %d", i, code)
			}
			for _, it := range p.Items {
				ids = append(ids, it.TraceID)
				if it.TraceID == idA {
					if it.RootService != "checkout" || it.RootName != "POST /checkout" || it.SpanCount != 2 || it.ErrorCount != 1 ||
						it.DurationNs != "400000000" || it.StartTimeUnixNano != fmt.Sprint(itStart.UnixNano()) ||
						!reflect.DeepEqual(it.Services, []string{"checkout", "payments"}) {
						t.Errorf("summary of A = %+v", it)
					}
				}
			}
			if cursor = p.NextCursor; cursor == "" {
				break
			}
		}
		if want := []string{hex.EncodeToString(traceB[:]), idA}; !reflect.DeepEqual(ids, want) {
			t.Errorf("pages = %v, want %v", ids, want)
		}
	})

	t.Run("search by service", func(t *testing.T) {
		for service, want := range map[string]int{"payments": 1, "search": 1, "other": 0, "'; DROP TABLE spans; --": 0, "ü✓": 0} {
			var p page
			if code := get("k1", "/api/v1/traces?"+window+"&service="+url.QueryEscape(service), &p); code != 200 || len(p.Items) != want {
				t.Errorf("service %q: %d, %d items, want %d", service, code, len(p.Items), want)
			}
		}
		if n := queryUint(t, store, "SELECT count() FROM spans"); n == 0 {
			t.Error("spans table emptied")
		}
	})

	t.Run("services", func(t *testing.T) {
		var got struct {
			Items []struct {
				Name      string `json:"name"`
				SpanCount int    `json:"spanCount"`
			} `json:"items"`
			NextCursor string `json:"nextCursor"`
		}
		if code := get("k1", "/api/v1/services?"+window, &got); code != 200 {
			t.Fatalf("status %d", code)
		}
		want := `[{checkout 2} {payments 2} {search 1}]` // service_index counts rows as delivered
		if fmt.Sprint(got.Items) != want || got.NextCursor != "" {
			t.Errorf("services = %v %q, want %s", got.Items, got.NextCursor, want)
		}
	})
}
