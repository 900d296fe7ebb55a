package gateway

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/limits"
)

func TestWindowCheck(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	g := &Service{limits: limits.New(limits.Limit{Retention: 30 * 24 * time.Hour, MaxFuture: time.Hour}, nil, 0, nil)}
	w := g.recordWindow("t", now)
	ns := func(d time.Duration) uint64 { return uint64(now.Add(d).UnixNano()) }
	for _, tc := range []struct {
		name   string
		t      uint64
		reason string
	}{
		{"now", ns(0), ""},
		{"oldest accepted", ns(-30 * 24 * time.Hour), ""},
		{"a day too old", ns(-31 * 24 * time.Hour), reasonTooOld},
		{"zero time (1970)", 0, reasonTooOld},
		{"within the future allowance", ns(time.Hour), ""},
		{"too far ahead", ns(time.Hour + time.Second), reasonTooNew},
		{"max uint64", ^uint64(0), reasonTooNew},
	} {
		t.Run(tc.name, func(t *testing.T) {
			reason, problem := w.check(tc.t)
			if reason != tc.reason {
				t.Fatalf("reason %q (%s), want %q", reason, problem, tc.reason)
			}
			if reason != "" && !strings.Contains(problem, "not accepted") {
				t.Fatalf("problem %q does not say what is accepted", problem)
			}
		})
	}
	unbounded := (&Service{limits: limits.New(limits.Limit{}, nil, 0, nil)}).recordWindow("t", now)
	if r, _ := unbounded.check(0); r != "" {
		t.Fatalf("a zero limit bounds the window: %s", r)
	}
}

// spansAt is one resource with a span starting at each of times.
func spansAt(times ...time.Time) ptrace.Traces {
	td := ptrace.NewTraces()
	spans := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans()
	for i, ts := range times {
		sp := spans.AppendEmpty()
		sp.SetTraceID(sampleTraceID)
		sp.SetSpanID(pcommon.SpanID{1, byte(i + 1)})
		sp.SetName("op")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(ts))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(ts.Add(time.Millisecond)))
	}
	return td
}

func TestFiltersDropRecordsOutsideWindow(t *testing.T) {
	now := time.Now()
	w := (&Service{limits: limits.New(limits.Limit{Retention: 24 * time.Hour, MaxFuture: time.Hour}, nil, 0, nil)}).recordWindow("t", now)
	old, ahead := now.Add(-48*time.Hour), now.Add(2*time.Hour)

	t.Run("traces", func(t *testing.T) {
		req := ptraceotlp.NewExportRequestFromTraces(spansAt(now, old, ahead, now))
		var rj rejects
		filterTraces(req, w, &rj)
		if rj.n != 2 || rj.byReason[reasonTooOld] != 1 || rj.byReason[reasonTooNew] != 1 || req.Traces().SpanCount() != 2 {
			t.Fatalf("rejects %+v, %d spans left", rj, req.Traces().SpanCount())
		}
		msg := rj.message("span")
		if !strings.Contains(msg, "resourceSpans[0].scopeSpans[0].spans[1].startTimeUnixNano") || !strings.Contains(msg, "too_old 1") {
			t.Fatalf("message %q", msg)
		}
	})
	t.Run("logs", func(t *testing.T) {
		ld := plog.NewLogs()
		recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		recs.AppendEmpty().SetTimestamp(pcommon.NewTimestampFromTime(now))
		recs.AppendEmpty().SetObservedTimestamp(pcommon.NewTimestampFromTime(old)) // no time: observed counts
		recs.AppendEmpty()                                                         // neither: stamped now
		req := plogotlp.NewExportRequestFromLogs(ld)
		var rj rejects
		filterLogs(req, w, &rj)
		if rj.n != 1 || req.Logs().LogRecordCount() != 2 || !strings.Contains(rj.first, "logRecords[1].observedTimeUnixNano") {
			t.Fatalf("rejects %+v, %d left", rj, req.Logs().LogRecordCount())
		}
	})
	t.Run("metrics", func(t *testing.T) {
		md := pmetric.NewMetrics()
		ms := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics()
		g := ms.AppendEmpty()
		g.SetName("g")
		dps := g.SetEmptyGauge().DataPoints()
		for _, ts := range []time.Time{now, ahead} {
			dps.AppendEmpty().SetTimestamp(pcommon.NewTimestampFromTime(ts))
		}
		h := ms.AppendEmpty()
		h.SetName("h")
		h.SetEmptyHistogram().DataPoints().AppendEmpty().SetTimestamp(pcommon.NewTimestampFromTime(old))
		req := pmetricotlp.NewExportRequestFromMetrics(md)
		var rj rejects
		filterMetrics(req, w, &rj)
		if rj.n != 2 || req.Metrics().DataPointCount() != 1 || !strings.Contains(rj.first, "metrics[0].dataPoints[1].timeUnixNano") {
			t.Fatalf("rejects %+v first %q, %d left", rj, rj.first, req.Metrics().DataPointCount())
		}
	})
}

// overrides is a fixed limits.Source.
type overrides map[string]limits.Override

func (o overrides) Overrides(context.Context) (map[string]limits.Override, error) { return o, nil }

// TestExportOutsideWindow: records outside the tenant's window are refused
// through OTLP partial success on both the decoded and the as-received
// (scanned) path, counted by reason, and never published; a request with
// nothing inside is refused whole; a tenant_limits override narrows one
// tenant's window only.
func TestExportOutsideWindow(t *testing.T) {
	var pub *encodedPublisherFake
	hour := time.Hour
	g := startGatewayWith(t, func(c *Config) {
		c.TenantLimit.Retention, c.TenantLimit.MaxFuture = 30*24*time.Hour, time.Hour
	}, func(d *Deps) {
		pub = &encodedPublisherFake{fakePublisher: d.Publisher.(*fakePublisher), maxBytes: 1 << 20}
		d.Publisher = pub
		d.LimitOverrides = overrides{"t2": {MaxAge: &hour}}
		d.Auth = authn.NewStatic(map[string]authn.Tenant{testKey: {ID: "t1"}, "k2": {ID: "t2"}})
	})
	now := time.Now()
	mixed := protoBody(t, spansAt(now, now.Add(-120*24*time.Hour), now.Add(3*time.Hour)))
	res := postHTTP(t, g, httpRequest{contentType: "application/x-protobuf", body: mixed})
	if res.status != http.StatusOK {
		t.Fatalf("mixed request: %d %s", res.status, res.body)
	}
	resp := ptraceotlp.NewExportResponse()
	if err := resp.UnmarshalProto(res.body); err != nil {
		t.Fatal(err)
	}
	ps := resp.PartialSuccess()
	if ps.RejectedSpans() != 2 || !strings.Contains(ps.ErrorMessage(), "too_far_future 1, too_old 1") ||
		!strings.Contains(ps.ErrorMessage(), "spans[1].startTimeUnixNano") {
		t.Fatalf("partial success %d %q", ps.RejectedSpans(), ps.ErrorMessage())
	}
	if enc, _ := pub.takeEncoded(); len(enc) != 0 {
		t.Fatal("a request with records outside the window was published as received")
	}
	if calls := g.pub.take(); len(calls) != 1 || calls[0].td.SpanCount() != 1 {
		t.Fatalf("published %v", calls)
	}
	for reason, want := range map[string]float64{reasonTooOld: 1, reasonTooNew: 1} {
		if got := counterValue(g.svc.metrics.rejectedRecords.WithLabelValues("traces", reason)); got != want {
			t.Errorf("rejected records %s = %v, want %v", reason, got, want)
		}
	}

	// Everything too old: refused whole, nothing published.
	res = postHTTP(t, g, httpRequest{contentType: "application/x-protobuf", body: protoBody(t, spansAt(now.Add(-40*24*time.Hour)))})
	if res.status != http.StatusBadRequest || !strings.Contains(string(res.body), "older than") {
		t.Fatalf("all too old: %d %s", res.status, res.body)
	}
	if g.rejected(transportHTTP, reasonTooOld) != 1 {
		t.Fatalf("request rejections too_old = %v", g.rejected(transportHTTP, reasonTooOld))
	}

	// Inside the window the scanned body goes out as received.
	res = postHTTP(t, g, httpRequest{contentType: "application/x-protobuf", body: protoBody(t, spansAt(now.Add(-2*time.Hour)))})
	if enc, _ := pub.takeEncoded(); res.status != http.StatusOK || len(enc) != 1 {
		t.Fatalf("in-window request: %d, %d published as received", res.status, len(enc))
	}

	// t2's override: an hour at most.
	res = postHTTP(t, g, httpRequest{key: "k2", contentType: "application/x-protobuf", body: protoBody(t, spansAt(now.Add(-2*time.Hour)))})
	if res.status != http.StatusBadRequest || !strings.Contains(string(res.body), "tenant limit") {
		t.Fatalf("t2 two hours old: %d %s", res.status, res.body)
	}
}
