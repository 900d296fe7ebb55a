package api_test

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

func (f *fakeStore) SearchLogs(ctx context.Context, q chstore.LogQuery) ([]chstore.LogRecord, error) {
	if err := f.enter(ctx, q.TenantID); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.logQuery = q
	if len(f.logs) > q.Limit {
		return f.logs[:q.Limit], nil
	}
	return f.logs, nil
}

func (f *fakeStore) lastLogQuery() chstore.LogQuery {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.logQuery
}

const containerID = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestLogParameterValidation(t *testing.T) {
	h := newHarness(t, &fakeStore{})
	for _, tc := range []struct {
		name, query, field string
	}{
		{"traceId short", "traceId=0102", "traceId"},
		{"traceId non-hex", "traceId=" + strings.Repeat("g", 32), "traceId"},
		{"traceId zeros", "traceId=" + strings.Repeat("0", 32), "traceId"},
		{"spanId short", "spanId=01", "spanId"},
		{"spanId non-hex", "spanId=" + strings.Repeat("z", 16), "spanId"},
		{"spanId zeros", "spanId=" + strings.Repeat("0", 16), "spanId"},
		{"severityMin negative", "severityMin=-1", "severityMin"},
		{"severityMin too big", "severityMin=25", "severityMin"},
		{"severityMin text", "severityMin=ERROR", "severityMin"},
		{"start", "start=yesterday", "start"},
		{"end", "end=2024-13-01T00:00:00Z", "end"},
		{"end before start", "start=2024-01-02T00:00:00Z&end=2024-01-01T00:00:00Z", "end"},
		{"window too wide", "start=2024-01-01T00:00:00Z&end=2024-03-01T00:00:00Z", "start"},
		{"limit zero", "limit=0", "limit"},
		{"limit too big", "limit=100000", "limit"},
		{"limit text", "limit=ten", "limit"},
		{"cursor", "cursor=bm9wZQ", "cursor"},
		{"containerId short", "containerId=0123456789a", "containerId"},
		{"containerId long", "containerId=" + strings.Repeat("a", 200), "containerId"},
		{"containerId space", "containerId=" + url.QueryEscape("0123456789ab cdef"), "containerId"},
		{"podUid long", "podUid=" + strings.Repeat("p", 300), "podUid"},
		{"q long", "q=" + strings.Repeat("q", 2000), "q"},
		{"q invalid UTF-8", "q=%ff%fe", "q"},
		{"service invalid UTF-8", "service=%ff", "service"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := h.get(t, "/api/v1/logs?"+tc.query)
			if rec.Code != 400 {
				t.Fatalf("status %d, want 400: %s", rec.Code, rec.Body)
			}
			b := decodeError(t, rec)
			if b.Error.Code != "invalid_argument" || !strings.HasPrefix(b.Error.Message, tc.field+": ") {
				t.Errorf("error %+v, want invalid_argument naming %s", b.Error, tc.field)
			}
		})
	}
	// A trace search cursor is not a log cursor.
	h.store.sums = []chstore.TraceSummary{{}, {}}
	var traces struct {
		NextCursor string `json:"nextCursor"`
	}
	if err := json.Unmarshal(h.get(t, "/api/v1/traces?limit=1").Body.Bytes(), &traces); err != nil || traces.NextCursor == "" {
		t.Fatalf("trace cursor: %v %q", err, traces.NextCursor)
	}
	if rec := h.get(t, "/api/v1/logs?cursor="+traces.NextCursor); rec.Code != 400 {
		t.Errorf("trace cursor accepted for logs: %d", rec.Code)
	}
}

func TestLogQueryPassedToStore(t *testing.T) {
	h := newHarness(t, &fakeStore{})
	traceHex := strings.Repeat("ab", 16)
	trace := [16]byte{}
	for i := range trace {
		trace[i] = 0xab
	}

	// Every filter.
	q := url.Values{
		"traceId":     {strings.ToUpper(traceHex)},
		"spanId":      {"0102030405060708"},
		"service":     {"checkout"},
		"containerId": {"containerd://" + strings.ToUpper(containerID[:12])},
		"podUid":      {"uid-1"},
		"severityMin": {"17"},
		"q":           {"100% _done_"},
		"start":       {"2024-01-01T00:00:00Z"},
		"end":         {"1704070800000000000"},
		"limit":       {"7"},
	}
	if rec := h.get(t, "/api/v1/logs?"+q.Encode()); rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	got := h.store.lastLogQuery()
	want := chstore.LogQuery{
		TenantID: testTenant, TraceID: trace, SpanID: [8]byte{1, 2, 3, 4, 5, 6, 7, 8},
		Service: "checkout", ContainerID: containerID[:12], PodUID: "uid-1", SeverityMin: 17, Q: "100% _done_",
		Start: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC), End: time.Unix(0, 1704070800000000000),
		Limit: 8, // one more than asked, to learn whether there is a next page
	}
	if !got.Start.Equal(want.Start) || !got.End.Equal(want.End) {
		t.Errorf("window %v..%v, want %v..%v", got.Start, got.End, want.Start, want.End)
	}
	got.Start, got.End, want.Start, want.End = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if got != want {
		t.Errorf("query\n got %+v\nwant %+v", got, want)
	}

	// A trace id alone leaves the window to the store.
	h.get(t, "/api/v1/logs?traceId="+traceHex)
	if got := h.store.lastLogQuery(); !got.Start.IsZero() || !got.End.IsZero() || got.TraceID != trace {
		t.Errorf("trace-only query %+v: want no window", got)
	}
	// Without a trace id the default window applies.
	h.get(t, "/api/v1/logs")
	if got := h.store.lastLogQuery(); got.End.Sub(got.Start) != time.Hour || time.Since(got.End) > time.Minute || got.Limit != 21 {
		t.Errorf("default query %+v", got)
	}
}

type logPage struct {
	Items []struct {
		RecordID             string         `json:"recordId"`
		TimeUnixNano         string         `json:"timeUnixNano"`
		ObservedTimeUnixNano string         `json:"observedTimeUnixNano"`
		SeverityNumber       int            `json:"severityNumber"`
		SeverityText         string         `json:"severityText"`
		Body                 any            `json:"body"`
		TraceID              string         `json:"traceId"`
		SpanID               string         `json:"spanId"`
		Service              string         `json:"service"`
		Attributes           map[string]any `json:"attributes"`
		Resource             map[string]any `json:"resource"`
		Scope                struct{ Name, Version string }
	} `json:"items"`
	NextCursor string `json:"nextCursor"`
}

func TestLogAnswer(t *testing.T) {
	store := &fakeStore{logs: []chstore.LogRecord{
		{
			RecordID: [16]byte{1}, TimeNs: 1_700_000_000_000_000_001, ObservedNs: 1_700_000_000_000_000_002,
			SeverityNumber: 17, SeverityText: "ERROR", Body: "boom", BodyType: otlpconv.TypeString,
			TraceID: [16]byte{0xab}, SpanID: [8]byte{0xcd}, Service: "checkout", ScopeName: "lib", ScopeVersion: "1",
			Attributes: map[string]any{"n": int64(3)}, Resource: map[string]any{"service.name": "checkout"},
		},
		{RecordID: [16]byte{2}, ObservedNs: 1_700_000_000_000_000_000, Body: `{"k":[1,"x"]}`, BodyType: otlpconv.TypeMap},
		{RecordID: [16]byte{3}, TimeNs: 1, BodyType: otlpconv.TypeEmpty},
	}}
	h := newHarness(t, store)
	var page logPage
	rec := h.get(t, "/api/v1/logs?limit=2")
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil || rec.Code != 200 {
		t.Fatalf("%d %s: %v", rec.Code, rec.Body, err)
	}
	if len(page.Items) != 2 || page.NextCursor == "" {
		t.Fatalf("%d items, cursor %q", len(page.Items), page.NextCursor)
	}
	a, b := page.Items[0], page.Items[1]
	checks := []struct {
		what      string
		got, want any
	}{
		{"recordId", a.RecordID, "01000000000000000000000000000000"},
		{"time", a.TimeUnixNano, "1700000000000000001"},
		{"observed", a.ObservedTimeUnixNano, "1700000000000000002"},
		{"severity", a.SeverityNumber, 17},
		{"severityText", a.SeverityText, "ERROR"},
		{"body", a.Body, "boom"},
		{"traceId", a.TraceID, "ab000000000000000000000000000000"},
		{"spanId", a.SpanID, "cd00000000000000"},
		{"service", a.Service, "checkout"},
		{"attr", a.Attributes["n"], float64(3)},
		{"resource", a.Resource["service.name"], "checkout"},
		{"scope", a.Scope.Name + "/" + a.Scope.Version, "lib/1"},
		{"no trace: empty id", b.TraceID, ""},
		{"no span: empty id", b.SpanID, ""},
		{"time unset", b.TimeUnixNano, "0"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#v, want %#v", c.what, c.got, c.want)
		}
	}
	if m, ok := b.Body.(map[string]any); !ok || len(m["k"].([]any)) != 2 {
		t.Errorf("map body = %#v", b.Body)
	}

	// The cursor is the last item's (sort time, id): observed time here.
	h.get(t, "/api/v1/logs?limit=2&cursor="+page.NextCursor)
	cur := h.store.lastLogQuery().Cursor
	if cur == nil || cur.TimeNs != 1_700_000_000_000_000_000 || cur.RecordID != [16]byte{2} {
		t.Errorf("cursor decoded as %+v", cur)
	}

	// The last page has no cursor; an empty body is null.
	store.logs = store.logs[2:]
	page = logPage{}
	if err := json.Unmarshal(h.get(t, "/api/v1/logs?limit=2").Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	if page.NextCursor != "" || len(page.Items) != 1 || page.Items[0].Body != nil {
		t.Errorf("last page %+v", page)
	}
	if !strings.Contains(h.get(t, "/api/v1/logs").Body.String(), `"body":null`) {
		t.Error("empty body not rendered as null")
	}
}

// TestOpenAPILogRecordMatchesAnswer checks the LogRecord schema lists
// exactly the keys the handler writes.
func TestOpenAPILogRecordMatchesAnswer(t *testing.T) {
	s := loadSpec(t)
	h := newHarness(t, &fakeStore{logs: []chstore.LogRecord{{}}})
	var page struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(h.get(t, "/api/v1/logs").Body.Bytes(), &page); err != nil || len(page.Items) != 1 {
		t.Fatalf("answer: %v", err)
	}
	got := sortedKeys(page.Items[0])
	sc, ok := s.Comps.Schemas["LogRecord"]
	if !ok {
		t.Fatal("schema LogRecord missing")
	}
	req := slices.Clone(sc.Required)
	sort.Strings(req)
	if props := sortedKeys(sc.Properties); !slices.Equal(props, got) || !slices.Equal(req, got) {
		t.Errorf("LogRecord: properties %v, required %v; answer keys %v", props, req, got)
	}
}
