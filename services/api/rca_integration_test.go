package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/rca"
	"github.com/aftertrace/aftertrace/internal/retention"
	"github.com/aftertrace/aftertrace/internal/testenv"
	"github.com/aftertrace/aftertrace/services/api"
)

// rcaStart is when the synthetic fault begins.
var rcaStart = time.Date(2024, 6, 1, 12, 0, 0, 0, time.UTC)

// chainTraces makes n traces per minute from minute from to minute to
// (relative to rcaStart) along web → cart → store, each service a server
// span with a client span to the next; from minute 0 on, store's own time
// grows by slow, which web and cart inherit through their calls.
func chainTraces(from, to, n int, slow time.Duration) ptrace.Traces {
	rnd := rand.New(rand.NewPCG(1, 2))
	td := ptrace.NewTraces()
	type svc struct{ name, pod string }
	chain := []svc{{"web", "web-5d9c-a1"}, {"cart", "cart-77f-b2"}, {"store", "store-6c4-c3"}}
	spans := map[string]ptrace.SpanSlice{}
	for _, s := range chain {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", s.name)
		rs.Resource().Attributes().PutStr("k8s.pod.name", s.pod)
		rs.Resource().Attributes().PutStr("k8s.pod.uid", "uid-"+s.pod)
		spans[s.name] = rs.ScopeSpans().AppendEmpty().Spans()
	}
	var seq uint64
	id8 := func() pcommon.SpanID {
		seq++
		var b [8]byte
		for i := range 8 {
			b[i] = byte(seq >> (8 * (7 - i)))
		}
		return b
	}
	for m := from; m < to; m++ {
		for i := 0; i < n; i++ {
			var tid [16]byte
			tid[0], tid[1], tid[2], tid[3] = byte(m+128), byte(i), 0xab, 0xcd
			start := rcaStart.Add(time.Duration(m)*time.Minute + time.Duration(i)*time.Minute/time.Duration(n))
			// durations from the leaf up: own time ~N(10ms, 1ms), network 2ms
			own := func() time.Duration {
				return 10*time.Millisecond + time.Duration(rnd.NormFloat64()*float64(time.Millisecond))
			}
			storeDur := own()
			if m >= 0 {
				storeDur += slow
			}
			durs := []time.Duration{0, 0, storeDur}
			durs[1] = own() + storeDur + 2*time.Millisecond
			durs[0] = own() + durs[1] + 2*time.Millisecond
			var parent pcommon.SpanID
			t0 := start
			for k, s := range chain {
				srv := spans[s.name].AppendEmpty()
				srv.SetTraceID(tid)
				sid := id8()
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
				cid := id8()
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

// spanStatKeys prints span statistics in a stable order.
func spanStatKeys(ss []rca.SpanStat) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%+v", s)
	}
	slices.Sort(out)
	return out
}

// rankingOf prints services and scores in rank order.
func rankingOf(r rca.Result) string {
	var b strings.Builder
	for _, c := range r.Candidates {
		fmt.Fprintf(&b, "%s=%.2f ", c.Service, c.Score)
	}
	return b.String()
}

// POST /api/v1/rca against real ClickHouse: the service whose own latency
// rose ranks first although its callers' latency rose too, with evidence
// that points into the other routes; bad input answers 400 naming the field.
func TestRCAIntegration(t *testing.T) {
	env := testenv.Get(t)
	cfg := chstore.DefaultConfig()
	cfg.Addr, cfg.Database, cfg.MaxOpenConns, cfg.QueryTimeout = env.ClickHouseAddr, env.ClickHouseDB, 4, 20*time.Second
	store, err := chstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	insertTraces(t, store, "t1", chainTraces(-40, 10, 20, 150*time.Millisecond))

	svcCfg := api.DefaultConfig()
	svcCfg.Addr = "127.0.0.1:0"
	svc, err := api.New(svcCfg, api.Deps{
		Store: store,
		Auth:  authn.NewStatic(map[string]authn.Tenant{"k1": {ID: "t1"}, "k2": {ID: "t2"}}),
		RCA:   rca.New(rca.StoreSource{Store: store}, rca.DefaultConfig()),
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
	post := func(key, body string, into any) int {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+svc.Addr()+"/api/v1/rca", bytes.NewReader([]byte(body)))
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	window := `{"start":"2024-06-01T12:00:00Z","end":"2024-06-01T12:10:00Z"}`
	var res rca.Result
	if code := post("k1", window, &res); code != 200 {
		t.Fatalf("status %d", code)
	}
	if len(res.Candidates) == 0 || res.Candidates[0].Service != "store" || res.Candidates[0].Pod != "store-6c4-c3" {
		t.Fatalf("candidates = %+v, want store first", res.Candidates)
	}
	top := res.Candidates[0]
	var refs, traces int
	for _, e := range top.Evidence {
		if e.Summary == "" {
			t.Errorf("evidence without a summary: %+v", e)
		}
		if e.Ref != "" {
			refs++
		}
		if e.Kind == "trace" {
			traces++
		}
	}
	if refs == 0 || traces == 0 {
		t.Errorf("top evidence = %+v, want references and example traces", top.Evidence)
	}
	// every reference answers through the API
	for _, e := range top.Evidence {
		if e.Ref == "" {
			continue
		}
		req, _ := http.NewRequest("GET", "http://"+svc.Addr()+e.Ref, nil)
		req.Header.Set("Authorization", "Bearer k1")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("evidence %s: GET %s: %d", e.Kind, e.Ref, resp.StatusCode)
		}
	}
	for _, c := range res.Candidates[1:] {
		if c.Score >= top.Score {
			t.Errorf("%s scores %v >= store %v", c.Service, c.Score, top.Score)
		}
	}
	if res.Window.BaselineStart.After(rcaStart.Add(-30 * time.Minute)) {
		t.Errorf("baseline starts %v", res.Window.BaselineStart)
	}
	if res.Status != rca.StatusRanked || res.Signals["latency"] == 0 || len(res.Reasons) == 0 {
		t.Errorf("status %q, signals %v, reasons %v", res.Status, res.Signals, res.Reasons)
	}
	// A capture hold copies store's spans (retention class 'hold'): the
	// copies are the same spans and must not change a single statistic.
	direct := rca.StoreSource{Store: store, NoCache: true}
	r := rca.Range{TenantID: "t1", From: rcaStart.Add(-time.Hour), To: rcaStart.Add(10 * time.Minute), Step: time.Minute}
	statsBefore, err := direct.SpanStats(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.CopyHeld(context.Background(), retention.Selection{TenantID: "t1", Pods: []string{"uid-store-6c4-c3"}}); err != nil {
		t.Fatal(err)
	}
	var copies uint64
	if err := store.Conn().QueryRow(context.Background(), "SELECT count() FROM spans WHERE retention_class = 'hold'").Scan(&copies); err != nil || copies == 0 {
		t.Fatalf("hold copies: %d, %v", copies, err)
	}
	statsAfter, err := direct.SpanStats(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := spanStatKeys(statsBefore), spanStatKeys(statsAfter); !slices.Equal(a, b) {
		t.Errorf("span statistics changed by a hold's copies: %d rows before, %d after", len(a), len(b))
	}
	var after rca.Result
	if code := post("k1", window, &after); code != 200 {
		t.Fatalf("after the hold copy: status %d", code)
	}
	if a, b := rankingOf(res), rankingOf(after); a != b {
		t.Errorf("ranking changed by a hold's copies:\nbefore %s\nafter  %s", a, b)
	}
	// Another tenant sees nothing, and is told why.
	var other rca.Result
	if code := post("k2", window, &other); code != 200 || len(other.Candidates) != 0 || other.Status != rca.StatusInsufficentData || len(other.Suggestions) == 0 {
		t.Errorf("tenant t2: %d %q %+v", code, other.Status, other.Candidates)
	}
	// Bad input names the field.
	for _, tc := range []struct{ body, field string }{
		{`{"end":"2024-06-01T12:10:00Z"}`, "start"},
		{`{"start":"yesterday","end":"2024-06-01T12:10:00Z"}`, "start"},
		{`{"start":"2024-06-01T12:00:00Z"}`, "end"},
		{`{"start":"2024-06-01T12:00:00Z","end":"2024-06-01T11:00:00Z"}`, "end"},
		{`{"start":"2024-06-01T12:00:00Z","end":"2024-06-03T12:00:00Z"}`, "end"},
		{`{"start":"2024-06-01T12:00:00Z","end":"2024-06-01T12:10:00Z","bogus":1}`, "body"},
		{`not json`, "body"},
	} {
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		if code := post("k1", tc.body, &e); code != 400 || e.Error.Code != "invalid_argument" || !bytes.HasPrefix([]byte(e.Error.Message), []byte(tc.field)) {
			t.Errorf("%s: %d %+v, want 400 naming %s", tc.body, code, e.Error, tc.field)
		}
	}
}
