package allinone

import (
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/otlpconv"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// bigTrace is one trace of n spans over 10 services: a root fanning out
// to 100 calls, each with its own subtree of calls, so the waterfall has
// depth as well as length.
func bigTrace(now time.Time, n int) (ptrace.Traces, pcommon.TraceID) {
	td := ptrace.NewTraces()
	tid := pcommon.TraceID{0xb1, 0x9e, 0x10}
	slices := make([]ptrace.SpanSlice, 10)
	for i := range slices {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr(otlpconv.AttrServiceName, fmt.Sprintf("svc-%d", i))
		rs.Resource().Attributes().PutStr(otlpconv.AttrPodName, fmt.Sprintf("svc-%d-0", i))
		slices[i] = rs.ScopeSpans().AppendEmpty().Spans()
	}
	start := now.Add(-5 * time.Minute)
	for i := range n {
		s := slices[i%10].AppendEmpty()
		s.SetTraceID(tid)
		s.SetSpanID(pcommon.SpanID{byte(i >> 16), byte(i >> 8), byte(i), 1})
		switch {
		case i == 0:
		case i <= 100:
			s.SetParentSpanID(pcommon.SpanID{0, 0, 0, 1})
		default:
			p := (i - 1) / 2 // a binary tree under the fan-out
			s.SetParentSpanID(pcommon.SpanID{byte(p >> 16), byte(p >> 8), byte(p), 1})
		}
		s.SetName(fmt.Sprintf("op-%d", i%37))
		s.SetKind(ptrace.SpanKindServer)
		at := start.Add(time.Duration(i) * 100 * time.Microsecond)
		s.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
		s.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(1+i%50) * time.Millisecond)))
		s.Attributes().PutStr("http.route", fmt.Sprintf("/api/items/%d", i%97))
	}
	return td, tid
}

// BenchmarkConsolePaint times the console in headless Chromium from a
// navigation to the moment its main content is on screen (the page's
// performance marks, after the next frame): the incident page (its
// details; root causes are asked for after them and stored once
// computed) and a trace of 10,000 spans. Run it with make bench-console;
// it reports ms per paint.
func BenchmarkConsolePaint(b *testing.B) {
	env := testenv.Get(b)
	td, tid := bigTrace(time.Now(), 10_000)
	app, incidentID := anomalyApp(b, env, td)
	// The root causes are computed once and stored: warm them, as the
	// first visitor of an incident does.
	app.getJSON(b, "/api/v1/incidents/"+incidentID+"/root-causes", nil)

	br := newBrowser(b)
	ui := "http://" + app.API.Addr() + "/ui/"
	br.run(b, "sign in", chromedp.Navigate(ui+"signin"), chromedp.Evaluate(`sessionStorage.setItem('aftertrace.key', '`+testKey+`')`, nil))
	for _, page := range []struct{ name, path, mark string }{
		{"incident", "incidents/" + incidentID, "incident"},
		{"incident-causes", "incidents/" + incidentID, "causes"},
		{"trace-10k", "traces/" + hex.EncodeToString(tid[:]), "trace"},
	} {
		b.Run(page.name, func(b *testing.B) {
			var total float64
			for b.Loop() {
				var ms float64
				br.run(b, page.name,
					chromedp.Navigate(ui+page.path),
					chromedp.Poll(`performance.getEntriesByName('aftertrace:`+page.mark+`').length > 0`, nil, chromedp.WithPollingTimeout(30*time.Second)),
					chromedp.Evaluate(`performance.getEntriesByName('aftertrace:`+page.mark+`')[0].startTime`, &ms),
				)
				total += ms
			}
			b.ReportMetric(total/float64(b.N), "ms/paint")
		})
	}
}
