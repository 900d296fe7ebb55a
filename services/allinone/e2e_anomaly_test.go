package allinone

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/otlpconv"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// recentLatencyTraces makes 20 traces per minute of web calling store in
// the 50 whole minutes before now; in the last 10 of them store's own time
// rose from ~10ms to ~60ms.
func recentLatencyTraces(now time.Time) ptrace.Traces {
	rnd := rand.New(rand.NewPCG(5, 6))
	td := ptrace.NewTraces()
	slice := func(svc string) ptrace.SpanSlice {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr(otlpconv.AttrServiceName, svc)
		rs.Resource().Attributes().PutStr(otlpconv.AttrPodName, svc+"-pod")
		return rs.ScopeSpans().AppendEmpty().Spans()
	}
	web, store := slice("web"), slice("store")
	begin := now.Truncate(time.Minute).Add(-50 * time.Minute)
	for m := range 50 {
		for i := range 20 {
			start := begin.Add(time.Duration(m)*time.Minute + time.Duration(i)*3*time.Second)
			own := func() time.Duration {
				return 10*time.Millisecond + time.Duration(rnd.NormFloat64()*float64(time.Millisecond))
			}
			storeDur := own()
			if m >= 40 {
				storeDur += 50 * time.Millisecond
			}
			tid := pcommon.TraceID{byte(m), byte(i), 0xee}
			root := web.AppendEmpty()
			root.SetTraceID(tid)
			root.SetSpanID(pcommon.SpanID{byte(m), byte(i), 1})
			root.SetName("GET /")
			root.SetKind(ptrace.SpanKindServer)
			root.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
			root.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(own() + storeDur + 2*time.Millisecond)))
			child := store.AppendEmpty()
			child.SetTraceID(tid)
			child.SetSpanID(pcommon.SpanID{byte(m), byte(i), 2})
			child.SetParentSpanID(root.SpanID())
			child.SetName("query")
			child.SetKind(ptrace.SpanKindServer)
			child.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
			child.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond + storeDur)))
		}
	}
	return td
}

// The whole process: the correlator's anomaly pass (RCA engine on
// ClickHouse, tenants with recent spans, Postgres incidents and rules)
// opens one anomaly incident for a latency rise of spans written directly
// to ClickHouse, and /api/v1/incident-rules shows the configured defaults.
func TestAnomalyIncidentEndToEnd(t *testing.T) {
	env := testenv.Get(t)
	app := startApp(t, env, env.ClickHouseAddr, appOptions{cfg: func(c *Config) {
		c.Correlator.OpsAddr = ""
		c.Correlator.Settle = 0
		c.Correlator.Anomalies.Interval = 300 * time.Millisecond
		c.Correlator.Incidents.AnomalyMinScore = 2.5
	}})
	var rules struct {
		AnomalyMinScore float64 `json:"anomalyMinScore"`
		Custom          bool    `json:"custom"`
	}
	if code := app.getJSON(t, "/api/v1/incident-rules", &rules); code != http.StatusOK || rules.Custom || rules.AnomalyMinScore != 2.5 {
		t.Fatalf("incident rules: %d %+v", code, rules)
	}
	store, err := openStore(env)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now()
	var b otlpconv.SpanBatch
	b.AppendTraces(app.Config().DevTenantID, recentLatencyTraces(now))
	if err := store.InsertSpans(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/api/v1/incidents?start=%d&end=%d", now.Add(-time.Hour).UnixNano(), now.Add(time.Hour).UnixNano())
	var list struct {
		Items []struct {
			ID       string `json:"id"`
			Kind     string `json:"kind"`
			Workload string `json:"workload"`
		} `json:"items"`
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(list.Items) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("no anomaly incident within 60s")
		}
		time.Sleep(200 * time.Millisecond)
		if code := app.getJSON(t, path, &list); code != http.StatusOK {
			t.Fatalf("incidents: %d", code)
		}
	}
	time.Sleep(time.Second) // a few more passes
	app.getJSON(t, path, &list)
	if len(list.Items) != 1 || list.Items[0].Kind != "anomaly" || list.Items[0].Workload != "store" {
		t.Fatalf("incidents %+v, want one anomaly on store", list.Items)
	}
}
