package correlator

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/rca"
	"github.com/aftertrace/aftertrace/services/api"
)

// anomalyStart is when the synthetic latency fault begins.
var anomalyStart = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

// latencyTraces makes n traces per minute from minute from to minute to
// (relative to anomalyStart) along web → cart → store (a server span per
// service, a client span per call); from minute 0 on, store's own time
// grows by slow, which its callers inherit.
func latencyTraces(from, to, n int, slow time.Duration) ptrace.Traces {
	rnd := rand.New(rand.NewPCG(3, 4))
	td := ptrace.NewTraces()
	chain := []struct{ name, pod string }{{"web", "web-5d9c-a1"}, {"cart", "cart-77f-b2"}, {"store", "store-6c4-c3"}}
	spans := map[string]ptrace.SpanSlice{}
	for _, s := range chain {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr(otlpconv.AttrServiceName, s.name)
		rs.Resource().Attributes().PutStr(otlpconv.AttrPodName, s.pod)
		rs.Resource().Attributes().PutStr(otlpconv.AttrNamespace, "shop")
		spans[s.name] = rs.ScopeSpans().AppendEmpty().Spans()
	}
	var seq uint64
	nextID := func() pcommon.SpanID {
		seq++
		var b [8]byte
		for i := range 8 {
			b[i] = byte(seq >> (8 * (7 - i)))
		}
		return b
	}
	own := func() time.Duration {
		return 10*time.Millisecond + time.Duration(rnd.NormFloat64()*float64(time.Millisecond))
	}
	for m := from; m < to; m++ {
		for i := range n {
			tid := pcommon.TraceID{byte(m + 128), byte(i), 0xab, 0xcd}
			start := anomalyStart.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Minute/time.Duration(n))
			durs := []time.Duration{0, 0, own()}
			if m >= 0 {
				durs[2] += slow
			}
			durs[1] = own() + durs[2] + 2*time.Millisecond
			durs[0] = own() + durs[1] + 2*time.Millisecond
			var parent pcommon.SpanID
			t0 := start
			for k, s := range chain {
				srv := spans[s.name].AppendEmpty()
				srv.SetTraceID(tid)
				sid := nextID()
				srv.SetSpanID(sid)
				srv.SetParentSpanID(parent)
				srv.SetName("handle " + s.name)
				srv.SetKind(ptrace.SpanKindServer)
				srv.SetStartTimestamp(pcommon.NewTimestampFromTime(t0))
				srv.SetEndTimestamp(pcommon.NewTimestampFromTime(t0.Add(durs[k])))
				if k == len(chain)-1 {
					break
				}
				cl := spans[s.name].AppendEmpty()
				cl.SetTraceID(tid)
				cid := nextID()
				cl.SetSpanID(cid)
				cl.SetParentSpanID(sid)
				cl.SetName("call " + chain[k+1].name)
				cl.SetKind(ptrace.SpanKindClient)
				t1 := t0.Add(time.Millisecond)
				cl.SetStartTimestamp(pcommon.NewTimestampFromTime(t1))
				cl.SetEndTimestamp(pcommon.NewTimestampFromTime(t1.Add(durs[k+1] + 2*time.Millisecond)))
				parent, t0 = cid, t1.Add(time.Millisecond)
			}
		}
	}
	return td
}

// testClock is a settable Deps.Now.
type testClock struct{ ns atomic.Int64 }

func (c *testClock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *testClock) now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *testClock) add(d time.Duration) { c.ns.Add(int64(d)) }

// startAPI serves the incident routes on the harness's stores for keys
// k1 (tenant t1) and k2 (t2).
func startAPI(t *testing.T, h *harness) string {
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Addr = "127.0.0.1:0"
	svc, err := api.New(cfg, api.Deps{
		Store: h.ch, Auth: authn.NewStatic(map[string]authn.Tenant{"k1": {ID: "t1"}, "k2": {ID: "t2"}}),
		Incidents: h.pg, Correlations: h.ch, IncidentRules: h.pg,
		IncidentRuleDefaults: pgstore.IncidentRules{MinSeverity: 17, AnomalyMinScore: DefaultAnomalyMinScore},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return "http://" + svc.Addr()
}

func httpJSON(t *testing.T, method, url, key, body string, into any) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil {
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatalf("%s %s: %v", method, url, err)
		}
	}
	return resp.StatusCode
}

type incidentList struct {
	Items []struct {
		ID         string   `json:"id"`
		Kind       string   `json:"kind"`
		Title      string   `json:"title"`
		Workload   string   `json:"workload"`
		Services   []string `json:"services"`
		EventCount int      `json:"eventCount"`
	} `json:"items"`
}

type incidentDetail struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Events []struct {
		EventID string  `json:"eventId"`
		Type    string  `json:"type"`
		PodName string  `json:"podName"`
		Score   float64 `json:"score"`
		Summary string  `json:"summary"`
	} `json:"events"`
}

// A synthetic latency anomaly (store's own time up 150 ms over a 40-minute
// baseline, spans written directly) makes the correlator's anomaly loop
// open exactly one incident of kind anomaly, visible through GET
// /api/v1/incidents; later passes over the same window bucket (also with
// a shifted window) add nothing. Tenant t2 has the same anomaly but its
// own rule's threshold is above the score: no incident.
func TestAnomalyLoopOpensOneIncident(t *testing.T) {
	cfg := testConfig()
	cfg.Settle = 0
	cfg.Anomalies = AnomalyConfig{Interval: 150 * time.Millisecond, Window: 10 * time.Minute, MaxTenants: 10}
	var clock testClock
	clock.set(anomalyStart.Add(10 * time.Minute))
	h := startHarnessWith(t, cfg, func(h *harness, d *Deps) {
		d.RCA = rca.New(rca.StoreSource{Store: h.ch}, rca.DefaultConfig())
		d.Tenants = h.ch
		d.Now = clock.now
		ctx := context.Background()
		if _, err := h.pg.EnsureTenant(ctx, "t2", "t2"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.pg.SetIncidentRules(ctx, "t2", pgstore.IncidentRules{MinSeverity: 17, AnomalyMinScore: pgstore.MaxAnomalyMinScore}); err != nil {
			t.Fatal(err)
		}
		for _, tenant := range []string{"t1", "t2"} {
			var b otlpconv.SpanBatch
			b.AppendTraces(tenant, latencyTraces(-40, 12, 20, 150*time.Millisecond))
			if err := h.ch.InsertSpans(ctx, &b); err != nil {
				t.Fatal(err)
			}
		}
	})
	base := startAPI(t, h)
	ctx := context.Background()

	passes := func() float64 { return testutil.ToFloat64(h.svc.m.passes) }
	waitUntil(t, "three anomaly passes", 60*time.Second, func() bool { return passes() >= 3 })
	if got := testutil.ToFloat64(h.svc.m.anomalies.WithLabelValues("error")); got != 0 {
		t.Fatalf("%v failed anomaly checks", got)
	}
	res, err := h.svc.deps.RCA.Analyze(ctx, rca.Query{TenantID: "t1", Start: anomalyStart, End: anomalyStart.Add(10 * time.Minute)})
	if err != nil || len(res.Candidates) == 0 {
		t.Fatalf("rca: %+v %v", res, err)
	}
	for i, c := range res.Candidates[:min(3, len(res.Candidates))] {
		t.Logf("candidate %d: %s/%s score %.2f", i, c.Service, c.Pod, c.Score)
	}

	listURL := base + "/api/v1/incidents?start=2024-06-01T11:00:00Z&end=2024-06-01T13:00:00Z"
	check := func(when string, wantRecords int) string {
		t.Helper()
		var list incidentList
		if code := httpJSON(t, http.MethodGet, listURL, "k1", "", &list); code != http.StatusOK {
			t.Fatalf("%s: list incidents: %d", when, code)
		}
		if len(list.Items) != 1 {
			t.Fatalf("%s: %d incidents, want 1: %+v", when, len(list.Items), list.Items)
		}
		in := list.Items[0]
		if in.Kind != pgstore.IncidentKindAnomaly || in.Workload != "store" || len(in.Services) != 1 || in.Services[0] != "store" || in.EventCount != wantRecords {
			t.Fatalf("%s: incident %+v", when, in)
		}
		var d incidentDetail
		if code := httpJSON(t, http.MethodGet, base+"/api/v1/incidents/"+in.ID, "k1", "", &d); code != http.StatusOK || len(d.Events) != wantRecords {
			t.Fatalf("%s: detail %d %+v", when, code, d)
		}
		e := d.Events[0]
		if e.Type != TypeAnomaly || e.PodName != "store-6c4-c3" || e.Score < DefaultAnomalyMinScore || e.Summary == "" || e.EventID != in.ID {
			t.Fatalf("%s: anomaly record %+v", when, e)
		}
		t.Logf("%s: %q; %s", when, in.Title, e.Summary)
		return in.ID
	}
	id := check("after three passes", 1)
	if opened := testutil.ToFloat64(h.svc.m.anomalies.WithLabelValues(pgstore.IncidentOutcomeOpened)); opened != 1 {
		t.Errorf("opened %v times, want 1", opened)
	}
	if known := testutil.ToFloat64(h.svc.m.anomalies.WithLabelValues(pgstore.IncidentOutcomeKnown)); known < 2 {
		t.Errorf("known %v, want at least 2 (later passes)", known)
	}
	if below := testutil.ToFloat64(h.svc.m.anomalies.WithLabelValues("below")); below < 3 {
		t.Errorf("below %v, want at least 3 (tenant t2's threshold)", below)
	}
	var other incidentList
	if code := httpJSON(t, http.MethodGet, listURL, "k2", "", &other); code != http.StatusOK || len(other.Items) != 0 {
		t.Fatalf("tenant t2: %d %+v", code, other.Items)
	}

	// A window shifted by a minute, in the same bucket: still one record.
	clock.add(time.Minute)
	n := passes()
	waitUntil(t, "two more passes", 60*time.Second, func() bool { return passes() >= n+2 })
	if got := check("after a shifted window", 1); got != id {
		t.Fatalf("incident %s, want %s", got, id)
	}
}
