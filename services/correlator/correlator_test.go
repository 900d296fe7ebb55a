package correlator

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/biztx"
	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

type harness struct {
	ch  *chstore.Store
	pg  *pgstore.Store
	js  jetstream.JetStream
	reg *prometheus.Registry
	svc *Service
}

func startHarness(t *testing.T, cfg Config) *harness {
	t.Helper()
	return startHarnessWith(t, cfg, nil)
}

// startHarnessWith is startHarness with a hook that may change the
// correlator's deps before it starts (the stores are open by then).
func startHarnessWith(t *testing.T, cfg Config, tweak func(h *harness, d *Deps)) *harness {
	t.Helper()
	env := testenv.Get(t)
	chCfg := chstore.DefaultConfig()
	chCfg.Addr, chCfg.Database = env.ClickHouseAddr, env.ClickHouseDB
	ch, err := chstore.Open(chCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ch.Close() })
	pg, err := pgstore.Open(context.Background(), env.PostgresDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	if _, err := pg.EnsureTenant(context.Background(), "t1", "t1"); err != nil {
		t.Fatal(err)
	}
	nc, err := bus.Connect(env.NATSURL, "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{ch: ch, pg: pg, js: js, reg: prometheus.NewRegistry()}
	deps := Deps{JS: js, Traces: ch, Definitions: pg, Incidents: pg, Rules: pg, Registry: h.reg, Streams: bus.DefaultStreamConfig()}
	if tweak != nil {
		tweak(h, &deps)
	}
	h.svc, err = New(cfg, deps)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	waitUntil(t, "correlator ready", 30*time.Second, h.svc.Ready)
	return h
}

func waitUntil(t *testing.T, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) publish(t *testing.T, msgID string, evs ...events.Event) {
	t.Helper()
	b, err := json.Marshal(evs)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(bus.CorrelateSubject)
	m.Data = b
	m.Header.Set(bus.HeaderTenant, "t1")
	m.Header.Set(nats.MsgIdHdr, msgID)
	if _, err := h.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
}

const (
	cPay = "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111"
	cWeb = "bbbbbbbbbbbb2222222222222222222222222222222222222222222222222222"
)

// spansAround writes traces: frontend (container cWeb, pod uid-web) calls
// payment (cPay, uid-pay). Trace i starts at at + i*10s; even traces are
// checkouts with order ids, trace 3 fails in payment.
func spansAround(t *testing.T, ch *chstore.Store, at time.Time, n int) {
	td := ptrace.NewTraces()
	res := func(svc, container, uid string) ptrace.SpanSlice {
		rs := td.ResourceSpans().AppendEmpty()
		r := rs.Resource().Attributes()
		r.PutStr(otlpconv.AttrServiceName, svc)
		r.PutStr(otlpconv.AttrContainerID, container)
		r.PutStr(otlpconv.AttrPodUID, uid)
		r.PutStr(otlpconv.AttrPodName, svc+"-pod")
		r.PutStr(otlpconv.AttrNamespace, "shop")
		return rs.ScopeSpans().AppendEmpty().Spans()
	}
	web, pay := res("frontend", cWeb, "uid-web"), res("payment", cPay, "uid-pay")
	for i := range n {
		start := at.Add(time.Duration(i) * 10 * time.Second)
		tid := pcommon.TraceID{byte(i + 1), 7}
		root := web.AppendEmpty()
		root.SetTraceID(tid)
		root.SetSpanID(pcommon.SpanID{byte(i + 1), 1})
		root.SetName("POST /api/checkout")
		if i%2 == 1 {
			root.SetName("GET /")
		}
		root.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		root.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(50 * time.Millisecond)))
		child := pay.AppendEmpty()
		child.SetTraceID(tid)
		child.SetSpanID(pcommon.SpanID{byte(i + 1), 2})
		child.SetParentSpanID(root.SpanID())
		child.SetName("Charge")
		child.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
		child.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(40 * time.Millisecond)))
		if i%2 == 0 {
			child.Attributes().PutStr("order.id", fmt.Sprintf("o%d", i))
			child.Attributes().PutStr("user.id", "u1")
		}
		if i == 3 {
			child.Status().SetCode(ptrace.StatusCodeError)
		}
	}
	var b otlpconv.SpanBatch
	b.AppendTraces("t1", td)
	if err := ch.InsertSpans(context.Background(), &b); err != nil {
		t.Fatal(err)
	}
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.OpsAddr = ""
	cfg.Settle = 0
	cfg.Workers = 2
	cfg.DefinitionsTTL = 0
	cfg.RulesTTL = 0
	cfg.Anomalies.Interval = 0
	cfg.RetryMin, cfg.RetryMax = 10*time.Millisecond, 100*time.Millisecond
	return cfg
}

func TestCorrelateLinksClassifiesAndGroups(t *testing.T) {
	h := startHarness(t, testConfig())
	ctx := context.Background()
	if _, err := h.pg.CreateBusinessTransaction(ctx, "t1", biztx.Definition{
		Name: "checkout", Rules: []biztx.Rule{{Service: "frontend", SpanName: "POST /api/checkout"}}, Keys: []string{"order.id", "user.id"},
	}); err != nil {
		t.Fatal(err)
	}
	evTime := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	// Traces start from evTime-6m every 10s: those starting in
	// payment spans (1ms after the trace start) starting in
	// [evTime-5m, evTime+1m] are linked: indexes 6..41 of 0..49.
	spansAround(t, h.ch, evTime.Add(-6*time.Minute), 50)

	falco := events.Event{ID: events.NewID("t1", events.SourceFalco, []byte("shell")), TimeUnixNano: uint64(evTime.UnixNano()),
		Source: events.SourceFalco, Type: events.TypeSecurityAlert, Severity: events.SeverityCritical, Reason: "Terminal shell in container",
		ContainerID: cPay[:12], Namespace: "shop", PodName: "payment-pod", ExitCode: events.ExitCodeUnknown}
	byName := events.Event{ID: events.NewID("t1", events.SourceK8sEvent, []byte("oom")), TimeUnixNano: uint64(evTime.Add(30 * time.Second).UnixNano()),
		Source: events.SourceK8sEvent, Type: events.TypeOOMKilled, Severity: events.SeverityWarning, Reason: "OOMKilled",
		Namespace: "shop", PodName: "frontend-pod", ExitCode: 137}
	h.publish(t, "m1", falco, byName)

	var links []chstore.EventLink
	waitUntil(t, "links of the falco event", 30*time.Second, func() bool {
		var err error
		links, err = h.ch.LinksOfEvent(ctx, "t1", falco.ID, 1000)
		return err == nil && len(links) > 0 && testutil.ToFloat64(h.svc.m.messages.WithLabelValues("acked", "")) == 1
	})
	wantTraces := map[[16]byte]bool{}
	for i := 6; i <= 41; i++ {
		wantTraces[[16]byte{byte(i + 1), 7}] = true
	}
	if len(links) != len(wantTraces) {
		t.Fatalf("%d links, want %d", len(links), len(wantTraces))
	}
	checkouts, failed, orders := 0, 0, map[string]bool{}
	for _, l := range links {
		if !wantTraces[l.TraceID] || l.MatchKind != chstore.MatchContainer || l.SpanCount != 1 || l.RootService != "frontend" {
			t.Fatalf("unexpected link %+v", l)
		}
		if l.BusinessTransaction == "checkout" {
			checkouts++
			for i, k := range l.BusinessKeyNames {
				if k == "order.id" {
					orders[l.BusinessKeyValues[i]] = true
				}
			}
		}
		if l.Failed {
			failed++
		}
	}
	if checkouts != 18 || len(orders) != 18 || failed != 0 {
		t.Errorf("checkouts %d orders %d failed %d, want 18 18 0", checkouts, len(orders), failed)
	}
	oomLinks, err := h.ch.LinksOfEvent(ctx, "t1", byName.ID, 1000)
	if err != nil || len(oomLinks) != 37 || oomLinks[0].MatchKind != chstore.MatchPodName {
		t.Fatalf("pod-name links: %d %v", len(oomLinks), err)
	}
	// The OOMKilled (frontend, a direct caller of payment) joins the incident
	// the critical Falco alert opened.
	inc, err := h.pg.GetIncident(ctx, "t1", falco.ID.String())
	if err != nil || inc.EventCount != 2 || inc.Status != pgstore.IncidentOpen {
		t.Fatalf("incident %+v, %v", inc, err)
	}

	// Re-delivery (another message id, so JetStream does not dedup it).
	h.publish(t, "m2", falco, byName)
	waitUntil(t, "redelivery acked", 30*time.Second, func() bool {
		return testutil.ToFloat64(h.svc.m.messages.WithLabelValues("acked", "")) == 2
	})
	again, _ := h.ch.LinksOfEvent(ctx, "t1", falco.ID, 1000)
	list, _ := h.pg.ListIncidents(ctx, pgstore.IncidentQuery{TenantID: "t1", Start: evTime.Add(-time.Hour), End: evTime.Add(time.Hour)})
	if len(again) != len(links) || len(list) != 1 || list[0].EventCount != 2 {
		t.Fatalf("after re-delivery: %d links (want %d), incidents %+v", len(again), len(links), list)
	}
	if got := testutil.ToFloat64(h.svc.m.incidents.WithLabelValues(pgstore.IncidentOutcomeKnown)); got != 2 {
		t.Errorf("known incident events = %v, want 2", got)
	}
}

func TestCorrelateWaitsForTheWindow(t *testing.T) {
	cfg := testConfig()
	cfg.After, cfg.Settle, cfg.MaxDelay = 1500*time.Millisecond, 500*time.Millisecond, 300*time.Millisecond
	h := startHarness(t, cfg)
	ctx := context.Background()
	evTime := time.Now()
	ev := events.Event{ID: events.NewID("t1", events.SourceFalco, []byte("late")), TimeUnixNano: uint64(evTime.UnixNano()),
		Source: events.SourceFalco, Type: events.TypeSecurityAlert, Severity: events.SeverityNotice, ContainerID: cWeb, ExitCode: events.ExitCodeUnknown}
	h.publish(t, "w1", ev)
	// A span that arrives after the event but inside After is still linked.
	time.Sleep(200 * time.Millisecond)
	spansAround(t, h.ch, evTime.Add(time.Second), 1)
	waitUntil(t, "acked", 30*time.Second, func() bool {
		return testutil.ToFloat64(h.svc.m.messages.WithLabelValues("acked", "")) == 1
	})
	if since := time.Since(evTime); since < 2*time.Second {
		t.Errorf("acked %v after the event, before after+settle", since)
	}
	if testutil.ToFloat64(h.svc.m.messages.WithLabelValues("deferred", "window_open")) < 1 {
		t.Error("message was never deferred")
	}
	links, err := h.ch.LinksOfEvent(ctx, "t1", ev.ID, 10)
	if err != nil || len(links) != 1 {
		t.Fatalf("links %+v %v", links, err)
	}
}

// A message the correlator cannot read is dead-lettered (kept for
// `aftertrace dlq`), not dropped, and the queue moves on.
func TestUndecodableMessageIsDeadLettered(t *testing.T) {
	h := startHarness(t, testConfig())
	ctx := context.Background()
	dlq, err := h.js.Stream(ctx, bus.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	before, err := dlq.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	m := nats.NewMsg(bus.CorrelateSubject)
	m.Data = []byte("{not json")
	m.Header.Set(bus.HeaderTenant, "t1")
	m.Header.Set(nats.MsgIdHdr, "poison-1")
	if _, err := h.js.PublishMsg(ctx, m); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "dead-lettered", 30*time.Second, func() bool {
		return testutil.ToFloat64(h.svc.m.messages.WithLabelValues("dead_lettered", "decode")) == 1
	})
	info, err := dlq.Info(ctx)
	if err != nil || info.State.Msgs != before.State.Msgs+1 {
		t.Fatalf("dead letters %d → %+v, %v", before.State.Msgs, info.State, err)
	}
	got, err := dlq.GetLastMsgForSubject(ctx, bus.DeadLetterSubject(bus.SignalCorrelate))
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Data) != "{not json" || got.Header.Get(bus.HeaderOrigin) != bus.CorrelateSubject || got.Header.Get(bus.HeaderReason) != "decode" {
		t.Errorf("dead letter %q headers %v", got.Data, got.Header)
	}
	// the queue moves on
	ev := events.Event{ID: events.NewID("t1", events.SourceFalco, []byte("after-poison")), TimeUnixNano: uint64(time.Now().Add(-time.Hour).UnixNano()),
		Source: events.SourceFalco, Type: events.TypeSecurityAlert, Severity: events.SeverityNotice, ContainerID: cWeb, ExitCode: events.ExitCodeUnknown}
	h.publish(t, "after-poison", ev)
	waitUntil(t, "next message acked", 30*time.Second, func() bool {
		return testutil.ToFloat64(h.svc.m.messages.WithLabelValues("acked", "")) >= 1
	})
}
