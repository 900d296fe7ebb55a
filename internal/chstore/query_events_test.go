package chstore_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// generation is one incarnation of the pod "web-0": same name, new uid and
// container id each time.
type generation struct {
	podUID, containerID string
	at                  time.Time
}

var (
	gen1 = generation{"uid-gen-1", strings.Repeat("a1", 32), base}
	gen2 = generation{"uid-gen-2", strings.Repeat("b2", 32), base.Add(10 * time.Minute)}
)

func (g generation) resource(m pcommon.Map) {
	m.PutStr(otlpconv.AttrServiceName, "web")
	m.PutStr(otlpconv.AttrPodUID, g.podUID)
	m.PutStr(otlpconv.AttrPodName, "web-0")
	m.PutStr(otlpconv.AttrNamespace, "shop")
	m.PutStr(otlpconv.AttrNodeName, "node-1")
	m.PutStr(otlpconv.AttrContainerID, "containerd://"+g.containerID)
	m.PutStr(otlpconv.AttrContainerName, "web")
	m.PutStr("container.image.name", "acme/web")
}

// insertGeneration writes one span, one log line and one gauge point of g,
// 1, 2 and 3 seconds after g.at.
func insertGeneration(t *testing.T, s *chstore.Store, g generation) {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	g.resource(rs.Resource().Attributes())
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{0xee, g.podUID[8]})
	sp.SetSpanID(pcommon.SpanID{1})
	sp.SetName("GET /cart")
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(g.at.Add(time.Second)))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(g.at.Add(time.Second + 5*time.Millisecond)))
	sp.Status().SetCode(ptrace.StatusCodeError)
	var sb otlpconv.SpanBatch
	sb.AppendTraces("t1", td)
	if err := s.InsertSpans(ctx(t), &sb); err != nil {
		t.Fatal(err)
	}

	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	g.resource(rl.Resource().Attributes())
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(g.at.Add(2 * time.Second)))
	lr.Body().SetStr("cart failed in " + g.podUID)
	insertLogs(t, s, "t1", ld)

	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	g.resource(rm.Resource().Attributes())
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("container.memory.usage")
	m.SetUnit("By")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(pcommon.NewTimestampFromTime(g.at.Add(3 * time.Second)))
	dp.SetIntValue(512 << 20)
	var mb otlpconv.MetricBatch
	mb.AppendMetrics("t1", md)
	if err := s.InsertMetrics(ctx(t), &mb); err != nil {
		t.Fatal(err)
	}
}

func event(tenant, source, typ string, at time.Time, mut func(*events.Event)) events.Event {
	e := events.Event{
		TenantID: tenant, TimeUnixNano: uint64(at.UnixNano()), ObservedUnixNano: uint64(at.UnixNano()) + 5,
		Source: source, Type: typ, Severity: events.SeverityWarning, SeverityText: "Warning",
		Reason: "r", Message: "m", PodName: "web-0", Namespace: "shop", NodeName: "node-1", Workload: "web",
		ExitCode: events.ExitCodeUnknown, Tags: []string{"a"}, FieldKeys: []string{"k"}, FieldValues: []string{"v"},
	}
	if mut != nil {
		mut(&e)
	}
	e.ID = events.NewID(tenant, source, []byte(typ+at.String()+e.ContainerID+e.PodUID))
	return e
}

func TestEventsAndRegistry(t *testing.T) {
	s := openStore(t)
	for _, tbl := range []string{"container_events", "logs", "metric_points"} {
		if err := s.Conn().Exec(ctx(t), "SYSTEM STOP MERGES "+tbl); err != nil {
			t.Fatal(err)
		}
	}
	insertGeneration(t, s, gen1)
	insertGeneration(t, s, gen2)

	falco := event("t1", events.SourceFalco, events.TypeSecurityAlert, gen1.at.Add(1500*time.Millisecond), func(e *events.Event) {
		e.ContainerID, e.Severity, e.Reason = gen1.containerID[:12], events.SeverityCritical, "Terminal shell in container"
		e.ProcessName, e.ProcessCmdline, e.UserName, e.Image = "bash", "bash -i", "root", "acme/web:1"
	})
	oom := event("t1", events.SourceK8sObject, events.TypeOOMKilled, gen1.at.Add(4*time.Second), func(e *events.Event) {
		e.ContainerID, e.PodUID, e.ExitCode, e.Reason, e.Severity = gen1.containerID, gen1.podUID, 137, "OOMKilled", events.SeverityError
	})
	backoff := event("t1", events.SourceK8sEvent, events.TypeCrashLoop, gen1.at.Add(5*time.Second), func(e *events.Event) {
		e.PodUID, e.Reason, e.Severity = gen1.podUID, "BackOff", events.SeverityError // pod-level: no container id
	})
	other := event("t1", events.SourceFalco, events.TypeSecurityAlert, gen2.at.Add(time.Second), func(e *events.Event) {
		e.ContainerID = gen2.containerID[:12]
	})
	foreign := event("t2", events.SourceFalco, events.TypeSecurityAlert, gen1.at.Add(time.Second), func(e *events.Event) {
		e.ContainerID = gen1.containerID[:12]
	})
	all := []events.Event{falco, oom, backoff, other, foreign}
	if err := s.InsertEvents(ctx(t), all); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertEvents(ctx(t), all[:3]); err != nil { // a re-delivery
		t.Fatal(err)
	}

	window := chstore.EventQuery{TenantID: "t1", Start: base.Add(-time.Hour), End: base.Add(time.Hour)}
	ids := func(evs []events.Event) []events.ID {
		out := make([]events.ID, len(evs))
		for i := range evs {
			out[i] = evs[i].ID
		}
		return out
	}
	for _, tc := range []struct {
		name string
		mut  func(*chstore.EventQuery)
		want []events.Event
	}{
		{"all, newest first, once each", nil, []events.Event{other, backoff, oom, falco}},
		{"by full container id", func(q *chstore.EventQuery) { q.ContainerID = "containerd://" + strings.ToUpper(gen1.containerID) }, []events.Event{oom, falco}},
		{"by short container id", func(q *chstore.EventQuery) { q.ContainerID = gen1.containerID[:12] }, []events.Event{oom, falco}},
		{"by pod uid", func(q *chstore.EventQuery) { q.PodUID = gen1.podUID }, []events.Event{backoff, oom}},
		{"by type", func(q *chstore.EventQuery) { q.Type = events.TypeOOMKilled }, []events.Event{oom}},
		{"by severity", func(q *chstore.EventQuery) { q.MinSeverity = events.SeverityCritical }, []events.Event{falco}},
		{"by namespace", func(q *chstore.EventQuery) { q.Namespace = "other" }, []events.Event{}},
		{"limit", func(q *chstore.EventQuery) { q.Limit = 2 }, []events.Event{other, backoff}},
		{"cursor", func(q *chstore.EventQuery) {
			q.Cursor = &chstore.EventCursor{TimeNs: backoff.TimeUnixNano, ID: backoff.ID}
		}, []events.Event{oom, falco}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := window
			if tc.mut != nil {
				tc.mut(&q)
			}
			got, err := s.SearchEvents(ctx(t), q)
			if err != nil {
				t.Fatal(err)
			}
			if g, w := ids(got), ids(tc.want); len(g) != len(w) || (len(g) > 0 && !equalIDs(g, w)) {
				t.Fatalf("got %v, want %v", g, w)
			}
		})
	}

	got, err := s.GetEvent(ctx(t), "t1", falco.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.ContainerID != falco.ContainerID || got.ProcessCmdline != "bash -i" || got.Severity != events.SeverityCritical ||
		got.TimeUnixNano != falco.TimeUnixNano || got.ObservedUnixNano != falco.ObservedUnixNano || got.ExitCode != -1 ||
		len(got.Tags) != 1 || got.FieldValues[0] != "v" || got.TenantID != "t1" || got.Image != "acme/web:1" {
		t.Errorf("GetEvent: %+v", got)
	}
	if _, err := s.GetEvent(ctx(t), "t2", oom.ID); apperr.KindOf(err) != apperr.KindNotFound {
		t.Errorf("another tenant's event: %v", err)
	}

	// The registry: by the short or the full id, long after the container.
	for _, id := range []string{gen1.containerID[:12], gen1.containerID, "docker://" + strings.ToUpper(gen1.containerID)} {
		c, err := s.GetContainer(ctx(t), "t1", id)
		if err != nil {
			t.Fatal(err)
		}
		if c.ContainerID != gen1.containerID || c.PodUID != gen1.podUID || c.PodName != "web-0" || c.Namespace != "shop" ||
			c.NodeName != "node-1" || c.ContainerName != "web" || c.TerminationReason != "OOMKilled" || c.ExitCode != 137 ||
			c.TerminationType != events.TypeOOMKilled || strings.Join(c.Signals, ",") != "events,logs,metrics,spans" ||
			strings.Join(c.Services, ",") != "web" || c.FirstSeenNs != uint64(gen1.at.Add(time.Second).UnixNano()) ||
			c.LastSeenNs != oom.TimeUnixNano {
			t.Errorf("GetContainer(%s): %+v", id, c)
		}
	}
	if _, err := s.GetContainer(ctx(t), "t1", strings.Repeat("f", 64)); apperr.KindOf(err) != apperr.KindNotFound {
		t.Errorf("unknown container: %v", err)
	}
	if _, err := s.GetContainer(ctx(t), "t2", gen2.containerID); apperr.KindOf(err) != apperr.KindNotFound {
		t.Errorf("another tenant's container: %v", err)
	}
	c2, err := s.GetContainer(ctx(t), "t1", gen2.containerID[:12])
	if err != nil || c2.PodUID != gen2.podUID || c2.TerminationReason != "" || c2.ExitCode != -1 {
		t.Errorf("second generation: %+v %v", c2, err)
	}

	p, err := s.GetPod(ctx(t), "t1", gen1.podUID)
	if err != nil {
		t.Fatal(err)
	}
	if p.PodName != "web-0" || len(p.Containers) != 1 || p.Containers[0].ContainerID != gen1.containerID ||
		p.FirstSeenNs != uint64(gen1.at.Add(time.Second).UnixNano()) {
		t.Errorf("GetPod: %+v", p)
	}
	if _, err := s.GetPod(ctx(t), "t1", "nope"); apperr.KindOf(err) != apperr.KindNotFound {
		t.Errorf("unknown pod: %v", err)
	}

	// The timeline of generation 1 holds its own rows only, in time order.
	items, cut, err := s.ContainerTimeline(ctx(t), "t1", gen1.containerID[:12], base.Add(-time.Hour), base.Add(time.Hour), 100)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, it := range items {
		kinds = append(kinds, it.Kind)
		switch it.Kind {
		case chstore.TimelineLog:
			if !strings.Contains(it.Log.Body, gen1.podUID) {
				t.Errorf("log of another generation: %+v", it.Log)
			}
		case chstore.TimelineSpan:
			if it.Span.Name != "GET /cart" || it.Span.StatusCode != 2 || it.Span.DurationNs != 5e6 || it.Span.Service != "web" {
				t.Errorf("span %+v", it.Span)
			}
		case chstore.TimelineMetric:
			if it.Metric.Name != "container.memory.usage" || it.Metric.ValueInt != 512<<20 {
				t.Errorf("metric %+v", it.Metric)
			}
		}
	}
	if want := "span,event,log,metric,event,event"; strings.Join(kinds, ",") != want || cut {
		t.Errorf("timeline kinds %v (cut %v), want %s", kinds, cut, want)
	}
	items, cut, err = s.ContainerTimeline(ctx(t), "t1", gen1.containerID, base.Add(-time.Hour), base.Add(time.Hour), 2)
	if err != nil || len(items) != 2 || !cut {
		t.Errorf("limited timeline: %d items, cut %v, %v", len(items), cut, err)
	}
	if _, _, err := s.ContainerTimeline(ctx(t), "t1", strings.Repeat("c", 12), base, base.Add(time.Hour), 10); !errors.Is(err, err) || apperr.KindOf(err) != apperr.KindNotFound {
		t.Errorf("unknown container timeline: %v", err)
	}
}

func equalIDs(a, b []events.ID) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
