package chstore_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// TestMain runs the tests with the shared servers; testenv.Main also fails
// the run on goroutines left behind (goleak).
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// row is one spans row as a test writes it.
type row struct {
	tenant       string
	traceID      [16]byte
	spanID       [8]byte
	parent       [8]byte
	service      string
	name         string
	kind         int8
	start, end   time.Time
	status       int8
	statusMsg    string
	traceState   string
	flags        uint32
	scopeName    string
	scopeVersion string
	podName      string
	attrKeys     []string
	attrValues   []string
	attrTypes    []uint8
	events       []rowEvent
	links        []rowLink
}

type rowEvent struct {
	ns    uint64
	name  string
	attrs string
}

type rowLink struct {
	traceID, spanID, state, attrs string
}

// rowColumns is the explicit column list ClickHouse 18.16 needs for a
// native insert.
var rowColumns = []string{
	"tenant_id", "date", "timestamp", "retention_class", "trace_id", "span_id", "parent_span_id",
	"trace_state", "flags", "service_name", "name", "kind", "start_time_unix_nano", "end_time_unix_nano",
	"status_code", "status_message", "scope_name", "scope_version",
	"k8s_pod_uid", "k8s_pod_name", "k8s_namespace_name", "k8s_node_name", "container_id", "k8s_container_name",
	"attr_keys", "attr_values", "attr_types", "resource_keys", "resource_values", "resource_types",
	"event_times", "event_names", "event_attrs",
	"link_trace_ids", "link_span_ids", "link_trace_states", "link_attrs",
	"dropped_attributes_count", "dropped_events_count", "dropped_links_count",
}

// insertRows writes rows in one insert (one part per call, so calling it
// twice with the same span leaves two copies until a merge).
func insertRows(t *testing.T, s *chstore.Store, rows ...row) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := s.Conn().PrepareBatch(ctx, "INSERT INTO spans ("+strings.Join(rowColumns, ", ")+")")
	if err != nil {
		t.Fatalf("prepare insert: %v", err)
	}
	for _, r := range rows {
		parent := ""
		if r.parent != ([8]byte{}) {
			parent = string(r.parent[:])
		}
		var et []uint64
		var en, ea, lt, ls, lst, la []string
		for _, e := range r.events {
			et, en, ea = append(et, e.ns), append(en, e.name), append(ea, e.attrs)
		}
		for _, l := range r.links {
			lt, ls, lst, la = append(lt, l.traceID), append(ls, l.spanID), append(lst, l.state), append(la, l.attrs)
		}
		ts := r.start.UTC()
		err := b.Append(
			r.tenant, ts, ts, "default", string(r.traceID[:]), string(r.spanID[:]), parent,
			r.traceState, r.flags, r.service, r.name, r.kind, uint64(r.start.UnixNano()), uint64(r.end.UnixNano()),
			r.status, r.statusMsg, r.scopeName, r.scopeVersion,
			"", r.podName, "", "", "", "",
			nonNil(r.attrKeys), nonNil(r.attrValues), nonNilU8(r.attrTypes),
			[]string{"service.name"}, []string{r.service}, []uint8{otlpconv.TypeString},
			nonNilU64(et), nonNil(en), nonNil(ea),
			nonNil(lt), nonNil(ls), nonNil(lst), nonNil(la),
			uint32(1), uint32(2), uint32(3),
		)
		if err != nil {
			t.Fatalf("append row: %v", err)
		}
	}
	if err := b.Send(); err != nil {
		t.Fatalf("insert %d rows: %v", len(rows), err)
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilU8(s []uint8) []uint8 {
	if s == nil {
		return []uint8{}
	}
	return s
}

func nonNilU64(s []uint64) []uint64 {
	if s == nil {
		return []uint64{}
	}
	return s
}

func tid(s string) [16]byte {
	var id [16]byte
	if _, err := hex.Decode(id[:], []byte(s)); err != nil || len(s) != 32 {
		panic("bad trace id " + s)
	}
	return id
}

func sid(n uint64) [8]byte {
	var id [8]byte
	for i := 7; i >= 0; i-- {
		id[i] = byte(n)
		n >>= 8
	}
	return id
}

// openStore opens a Store on a fresh migrated database, with merges of the
// spans table stopped so duplicate rows stay duplicate.
func openStore(t *testing.T) *chstore.Store {
	t.Helper()
	env := testenv.Get(t)
	cfg := chstore.DefaultConfig()
	cfg.Addr, cfg.Database = env.ClickHouseAddr, env.ClickHouseDB
	cfg.MaxOpenConns = 4
	s, err := chstore.Open(cfg)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.Conn().Exec(ctx, "SYSTEM STOP MERGES spans"); err != nil {
		t.Fatalf("stop merges: %v", err)
	}
	return s
}

func countRows(t *testing.T, s *chstore.Store, query string, args ...any) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var n uint64
	if err := s.Conn().QueryRow(ctx, query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// base is a fixed time a little before midnight UTC, so traces can
// straddle days.
var base = time.Date(2024, 3, 10, 23, 59, 58, 0, time.UTC)

func TestGetTrace(t *testing.T) {
	s := openStore(t)
	// Bytes that need escaping in a SQL literal: quote, backslash, NUL, '?'.
	tricky := [16]byte{0x27, 0x5c, 0x00, 0x3f, 0x0a, 0xff, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	root := row{
		tenant: "t1", traceID: tricky, spanID: sid(1), service: "frontend", name: "GET /",
		kind: 2, start: base, end: base.Add(3 * time.Second), status: 1,
		traceState: "k=v", flags: 1, scopeName: "scope", scopeVersion: "1.2", podName: "pod-a",
		attrKeys:   []string{"s", "b", "i", "d", "arr"},
		attrValues: []string{"x", "true", "42", "1.5", `["a",1]`},
		attrTypes:  []uint8{otlpconv.TypeString, otlpconv.TypeBool, otlpconv.TypeInt, otlpconv.TypeDouble, otlpconv.TypeSlice},
		events:     []rowEvent{{ns: uint64(base.Add(time.Second).UnixNano()), name: "ev", attrs: `{"k":"v"}`}, {name: "bare"}},
		links:      []rowLink{{traceID: strings.Repeat("ab", 16), spanID: strings.Repeat("cd", 8), state: "a=b", attrs: `{"l":1}`}},
	}
	// The child starts after midnight: another date partition.
	child := row{
		tenant: "t1", traceID: tricky, spanID: sid(2), parent: sid(1), service: "backend", name: "query",
		kind: 3, start: base.Add(2500 * time.Millisecond), end: base.Add(2900 * time.Millisecond), status: 2, statusMsg: "boom",
	}
	early := row{ // same start as root, sorts after it by span id
		tenant: "t1", traceID: tricky, spanID: sid(3), parent: sid(1), service: "frontend", name: "auth",
		start: base, end: base.Add(time.Millisecond),
	}
	other := row{tenant: "t2", traceID: tricky, spanID: sid(9), service: "x", name: "other tenant", start: base, end: base.Add(time.Second)}
	insertRows(t, s, root, child, early, other)
	insertRows(t, s, child, root) // re-delivered copies

	if n := countRows(t, s, "SELECT count() FROM spans WHERE tenant_id = 't1'"); n != 5 {
		t.Fatalf("rows before dedup = %d, want 5 (merges must stay stopped)", n)
	}

	spans, err := s.GetTrace(ctx(t), "t1", tricky)
	if err != nil {
		t.Fatalf("GetTrace: %v", err)
	}
	var got []string
	for _, sp := range spans {
		got = append(got, sp.Name)
	}
	if want := []string{"GET /", "auth", "query"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("span names = %q, want %q (once each, by start time)", got, want)
	}

	r := spans[0]
	if r.TraceID != tricky || r.SpanID != sid(1) || !r.IsRoot() {
		t.Errorf("root ids = %x %x parent %x", r.TraceID, r.SpanID, r.ParentSpanID)
	}
	if r.Service != "frontend" || r.Kind != 2 || r.StatusCode != 1 || r.TraceState != "k=v" || r.Flags != 1 ||
		r.ScopeName != "scope" || r.ScopeVersion != "1.2" || r.K8sPodName != "pod-a" ||
		r.StartNs != uint64(base.UnixNano()) || r.EndNs != uint64(base.Add(3*time.Second).UnixNano()) ||
		r.DroppedAttributesCount != 1 || r.DroppedEventsCount != 2 || r.DroppedLinksCount != 3 {
		t.Errorf("root span = %+v", r)
	}
	wantAttrs := map[string]any{"s": "x", "b": true, "i": int64(42), "d": 1.5, "arr": json.RawMessage(`["a",1]`)}
	if !reflect.DeepEqual(r.Attributes, wantAttrs) {
		t.Errorf("attributes = %#v, want %#v", r.Attributes, wantAttrs)
	}
	// k8s.pod.name comes back from its promoted column.
	if !reflect.DeepEqual(r.Resource, map[string]any{"service.name": "frontend", "k8s.pod.name": "pod-a"}) {
		t.Errorf("resource = %#v", r.Resource)
	}
	wantEvents := []chstore.SpanEvent{
		{TimeNs: uint64(base.Add(time.Second).UnixNano()), Name: "ev", Attributes: json.RawMessage(`{"k":"v"}`)},
		{Name: "bare"},
	}
	if !reflect.DeepEqual(r.Events, wantEvents) {
		t.Errorf("events = %+v, want %+v", r.Events, wantEvents)
	}
	wantLinks := []chstore.SpanLink{{TraceID: strings.Repeat("ab", 16), SpanID: strings.Repeat("cd", 8), TraceState: "a=b", Attributes: json.RawMessage(`{"l":1}`)}}
	if !reflect.DeepEqual(r.Links, wantLinks) {
		t.Errorf("links = %+v, want %+v", r.Links, wantLinks)
	}
	c := spans[2]
	if c.ParentSpanID != sid(1) || c.IsRoot() || c.StatusCode != 2 || c.StatusMessage != "boom" || c.Events != nil || c.Links != nil {
		t.Errorf("child span = %+v", c)
	}

	// Tenant isolation: t2's span of the same trace id is t2's alone.
	spans, err = s.GetTrace(ctx(t), "t2", tricky)
	if err != nil || len(spans) != 1 || spans[0].Name != "other tenant" {
		t.Errorf("GetTrace(t2) = %d spans, %v", len(spans), err)
	}

	for _, tc := range []struct {
		tenant string
		id     [16]byte
	}{{"t1", tid("00000000000000000000000000000001")}, {"t3", tricky}, {"", tricky}} {
		_, err := s.GetTrace(ctx(t), tc.tenant, tc.id)
		want := fmt.Sprintf("trace %x not found", tc.id)
		if apperr.KindOf(err) != apperr.KindNotFound || apperr.PublicMessage(err) != want {
			t.Errorf("GetTrace(%q, %x) error = %v (kind %v), want not found %q", tc.tenant, tc.id, err, apperr.KindOf(err), want)
		}
	}
}

func TestSearchTraces(t *testing.T) {
	s := openStore(t)
	t0 := base.Add(-time.Hour)
	ids := []string{
		"10000000000000000000000000000000",
		"20000000000000000000000000000000",
		"30000000000000000000000000000000",
		"40000000000000000000000000000000", // same start as 3: the id breaks the tie
		"50000000000000000000000000000000",
	}
	var rows []row
	for i, id := range ids {
		start := t0.Add(time.Duration(i) * time.Minute)
		if i == 3 {
			start = t0.Add(2 * time.Minute)
		}
		rows = append(rows,
			row{tenant: "t1", traceID: tid(id), spanID: sid(1), service: "frontend", name: fmt.Sprintf("root-%d", i), start: start, end: start.Add(time.Second)},
			row{tenant: "t1", traceID: tid(id), spanID: sid(2), parent: sid(1), service: "db", name: "q", status: 2, start: start.Add(time.Millisecond), end: start.Add(2 * time.Second)},
		)
	}
	// A trace without a root span: its earliest span names it.
	orphanID := "60000000000000000000000000000000"
	orphanStart := t0.Add(10 * time.Minute)
	rows = append(rows,
		row{tenant: "t1", traceID: tid(orphanID), spanID: sid(7), parent: sid(99), service: "worker", name: "late", start: orphanStart.Add(time.Second), end: orphanStart.Add(2 * time.Second)},
		row{tenant: "t1", traceID: tid(orphanID), spanID: sid(8), parent: sid(99), service: "queue", name: "first", status: 2, start: orphanStart, end: orphanStart.Add(time.Second)},
		// Outside the window, and another tenant's trace inside it.
		row{tenant: "t1", traceID: tid("70000000000000000000000000000000"), spanID: sid(1), service: "frontend", name: "old", start: t0.Add(-2 * time.Hour), end: t0.Add(-2 * time.Hour)},
		row{tenant: "t2", traceID: tid("80000000000000000000000000000000"), spanID: sid(1), service: "frontend", name: "other", start: t0, end: t0.Add(time.Second)},
	)
	insertRows(t, s, rows...)
	insertRows(t, s, rows[2], rows[3], rows[len(rows)-3]) // duplicates

	// The materialized views filled the indexes.
	if n := countRows(t, s, "SELECT uniqExact(trace_id) FROM trace_index WHERE tenant_id = 't1'"); n != 7 {
		t.Errorf("trace_index traces of t1 = %d, want 7", n)
	}

	q := chstore.TraceQuery{TenantID: "t1", Start: t0.Add(-time.Minute), End: t0.Add(30 * time.Minute), Limit: 100}
	all, err := s.SearchTraces(ctx(t), q)
	if err != nil {
		t.Fatalf("SearchTraces: %v", err)
	}
	var got []string
	for _, ts := range all {
		got = append(got, hex.EncodeToString(ts.TraceID[:]))
	}
	want := []string{orphanID, ids[4], ids[3], ids[2], ids[1], ids[0]}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("order = %v, want %v", got, want)
	}
	wantFirst := chstore.TraceSummary{
		TraceID: tid(orphanID), RootService: "queue", RootName: "first",
		StartNs: uint64(orphanStart.UnixNano()), DurationNs: uint64(2 * time.Second),
		SpanCount: 2, ErrorCount: 1, Services: []string{"queue", "worker"},
	}
	if !reflect.DeepEqual(all[0], wantFirst) {
		t.Errorf("orphan summary = %+v, want %+v", all[0], wantFirst)
	}
	wantDup := chstore.TraceSummary{ // rows[2], rows[3] were inserted twice
		TraceID: tid(ids[1]), RootService: "frontend", RootName: "root-1",
		StartNs: uint64(t0.Add(time.Minute).UnixNano()), DurationNs: uint64(2 * time.Second),
		SpanCount: 2, ErrorCount: 1, Services: []string{"db", "frontend"},
	}
	if !reflect.DeepEqual(all[4], wantDup) {
		t.Errorf("duplicated trace summary = %+v, want %+v", all[4], wantDup)
	}

	// Pages of two walk the same order with no gaps or repeats, through the
	// tie between traces 3 and 4.
	var paged []string
	q.Limit = 2
	for page := 0; ; page++ {
		res, err := s.SearchTraces(ctx(t), q)
		if err != nil {
			t.Fatalf("page %d: %v", page, err)
		}
		for _, ts := range res {
			paged = append(paged, hex.EncodeToString(ts.TraceID[:]))
		}
		if len(res) < q.Limit || page > 10 {
			break
		}
		last := res[len(res)-1]
		q.Cursor = &chstore.TraceCursor{StartNs: last.StartNs, TraceID: last.TraceID}
	}
	if !reflect.DeepEqual(paged, want) {
		t.Errorf("paged order = %v, want %v", paged, want)
	}

	for _, tc := range []struct {
		name    string
		service string
		want    []string
	}{
		{"service worker", "worker", []string{orphanID}},
		{"service db", "db", []string{ids[4], ids[3], ids[2], ids[1], ids[0]}},
		{"unknown service", "nope", nil},
		{"injection", "'; DROP TABLE spans; --", nil},
		{"unicode", "svc-ü-✓", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := s.SearchTraces(ctx(t), chstore.TraceQuery{TenantID: "t1", Service: tc.service, Start: q.Start, End: q.End, Limit: 10})
			if err != nil {
				t.Fatalf("SearchTraces: %v", err)
			}
			var got []string
			for _, ts := range res {
				got = append(got, hex.EncodeToString(ts.TraceID[:]))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("traces = %v, want %v", got, tc.want)
			}
		})
	}

	// A narrow window holds only the traces that start in it.
	res, err := s.SearchTraces(ctx(t), chstore.TraceQuery{TenantID: "t1", Start: t0.Add(time.Minute), End: t0.Add(2 * time.Minute), Limit: 10})
	if err != nil || len(res) != 3 {
		t.Errorf("narrow window = %d traces, %v; want 3", len(res), err)
	}
}

func TestListServices(t *testing.T) {
	s := openStore(t)
	day := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	insertRows(t, s,
		row{tenant: "t1", traceID: tid("01000000000000000000000000000000"), spanID: sid(1), service: "zeta", name: "a", start: day, end: day},
		row{tenant: "t1", traceID: tid("01000000000000000000000000000000"), spanID: sid(2), service: "alpha", name: "b", start: day, end: day},
		row{tenant: "t1", traceID: tid("01000000000000000000000000000000"), spanID: sid(3), service: "alpha", name: "c", start: day, end: day},
		row{tenant: "t1", traceID: tid("02000000000000000000000000000000"), spanID: sid(1), service: "old", name: "d", start: day.AddDate(0, 0, -10), end: day},
		row{tenant: "t2", traceID: tid("03000000000000000000000000000000"), spanID: sid(1), service: "theirs", name: "e", start: day, end: day},
	)
	insertRows(t, s, row{tenant: "t1", traceID: tid("04000000000000000000000000000000"), spanID: sid(1), service: "alpha", name: "f", start: day.Add(time.Hour), end: day})

	if n := countRows(t, s, "SELECT count() FROM service_index WHERE tenant_id = 't1'"); n < 3 {
		t.Errorf("service_index rows of t1 = %d, want >= 3", n)
	}
	got, err := s.ListServices(ctx(t), "t1", day.AddDate(0, 0, -1), day.AddDate(0, 0, 1))
	if err != nil {
		t.Fatalf("ListServices: %v", err)
	}
	want := []chstore.ServiceSummary{{Name: "alpha", SpanCount: 3}, {Name: "zeta", SpanCount: 1}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("services = %+v, want %+v", got, want)
	}
	got, err = s.ListServices(ctx(t), "nobody", day.AddDate(0, 0, -1), day)
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf("unknown tenant = %#v, %v; want empty, non-nil", got, err)
	}
}

func TestReadsClassifyUnreachableStorage(t *testing.T) {
	cfg := chstore.DefaultConfig()
	cfg.Addr = "127.0.0.1:1" // nothing listens on port 1
	cfg.DialTimeout = time.Second
	cfg.QueryTimeout = 5 * time.Second
	s, err := chstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	_, err = s.GetTrace(context.Background(), "t1", [16]byte{1})
	if k := apperr.KindOf(err); k != apperr.KindUnavailable {
		t.Errorf("GetTrace on a down server: kind %v (%v), want unavailable", k, err)
	}
	if !strings.HasPrefix(err.Error(), apperr.PublicMessage(err)) || !strings.Contains(err.Error(), "get trace") {
		t.Errorf("error %q lacks context", err)
	}

	// A caller's deadline surfaces as a timeout, not as unavailable.
	c, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-c.Done()
	_, err = s.ListServices(c, "t1", time.Now().Add(-time.Hour), time.Now())
	if !errors.Is(err, context.DeadlineExceeded) || apperr.KindOf(err) != apperr.KindTimeout {
		t.Errorf("expired context: %v (kind %v), want timeout", err, apperr.KindOf(err))
	}
}

// duration_ns is computed on read (an ALIAS): end - start, 0 under clock skew.
func TestDurationAlias(t *testing.T) {
	s := openStore(t)
	base := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	tid := [16]byte{0x0f}
	insertRows(t, s,
		row{tenant: "t1", traceID: tid, spanID: sid(1), service: "a", name: "ok", start: base, end: base.Add(40 * time.Millisecond)},
		row{tenant: "t1", traceID: tid, spanID: sid(2), service: "a", name: "skew", start: base, end: base.Add(-time.Second)},
	)
	for name, want := range map[string]uint64{"ok": uint64(40 * time.Millisecond), "skew": 0} {
		var got uint64
		if err := s.Conn().QueryRow(context.Background(), `SELECT duration_ns FROM spans WHERE tenant_id = 't1' AND name = ?`, name).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: duration_ns = %d, want %d", name, got, want)
		}
	}
}
