package chstore_test

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// linkSpan adds one span on the given container/pod.
func linkSpan(td ptrace.Traces, container, podUID, podName, svc string, trace byte, span byte, parent byte, at time.Time, failed bool, attrs map[string]string) {
	rs := td.ResourceSpans().AppendEmpty()
	r := rs.Resource().Attributes()
	r.PutStr(otlpconv.AttrServiceName, svc)
	if container != "" {
		r.PutStr(otlpconv.AttrContainerID, container)
	}
	r.PutStr(otlpconv.AttrPodUID, podUID)
	r.PutStr(otlpconv.AttrPodName, podName)
	r.PutStr(otlpconv.AttrNamespace, "shop")
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(pcommon.TraceID{trace, 1})
	sp.SetSpanID(pcommon.SpanID{span, 1})
	if parent != 0 {
		sp.SetParentSpanID(pcommon.SpanID{parent, 1})
	}
	sp.SetName(svc + "-op")
	sp.SetStartTimestamp(pcommon.NewTimestampFromTime(at))
	sp.SetEndTimestamp(pcommon.NewTimestampFromTime(at.Add(10 * time.Millisecond)))
	if failed {
		sp.Status().SetCode(ptrace.StatusCodeError)
	}
	for k, v := range attrs {
		sp.Attributes().PutStr(k, v)
	}
}

func TestEventLinks(t *testing.T) {
	s := openStore(t)
	const containerA = "aaaaaaaaaaaa0000000000000000000000000000000000000000000000000000"
	const containerB = "bbbbbbbbbbbb0000000000000000000000000000000000000000000000000000"
	ev := base.Add(time.Hour)
	td := ptrace.NewTraces()
	// trace 1: root on B, child on A inside the window, failing child on B.
	linkSpan(td, containerB, "uid-b", "b-1", "frontend", 1, 1, 0, ev.Add(-2*time.Minute), false, map[string]string{"business.transaction": "checkout", "order.id": "o1"})
	linkSpan(td, containerA, "uid-a", "a-1", "payment", 1, 2, 1, ev.Add(-2*time.Minute+time.Millisecond), false, nil)
	linkSpan(td, containerA, "uid-a", "a-1", "payment", 1, 3, 1, ev.Add(-2*time.Minute+2*time.Millisecond), false, nil)
	linkSpan(td, containerB, "uid-b", "b-1", "frontend", 1, 4, 1, ev.Add(-2*time.Minute+3*time.Millisecond), true, nil)
	// trace 2: on A but before the window; trace 3: on A, in the window.
	linkSpan(td, containerA, "uid-a", "a-1", "payment", 2, 1, 0, ev.Add(-6*time.Minute), false, nil)
	linkSpan(td, containerA, "uid-a", "a-1", "payment", 3, 1, 0, ev.Add(30*time.Second), false, nil)
	// trace 4: same pod name, other uid (a replacement pod), in the window.
	linkSpan(td, "", "uid-a2", "a-1", "payment", 4, 1, 0, ev.Add(40*time.Second), false, nil)
	var b otlpconv.SpanBatch
	b.AppendTraces("t1", td)
	if err := s.InsertSpans(ctx(t), &b); err != nil {
		t.Fatal(err)
	}
	from, to := uint64(ev.Add(-5*time.Minute).UnixNano()), uint64(ev.Add(time.Minute).UnixNano())

	got, err := s.FindLinkCandidates(ctx(t), "t1", chstore.LinkTarget{Kind: chstore.MatchContainer, Value: containerA[:12]}, from, to, 100)
	if err != nil {
		t.Fatal(err)
	}
	want := []chstore.LinkCandidate{{TraceID: [16]byte{1, 1}, SpanCount: 2}, {TraceID: [16]byte{3, 1}, SpanCount: 1}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("container candidates = %+v, want %+v", got, want)
	}
	got, err = s.FindLinkCandidates(ctx(t), "t1", chstore.LinkTarget{Kind: chstore.MatchPodUID, Value: "uid-a2"}, from, to, 100)
	if err != nil || len(got) != 1 || got[0].TraceID != [16]byte{4, 1} {
		t.Fatalf("pod candidates = %+v, %v", got, err)
	}
	if got, _ := s.FindLinkCandidates(ctx(t), "other", chstore.LinkTarget{Kind: chstore.MatchContainer, Value: containerA[:12]}, from, to, 100); len(got) != 0 {
		t.Fatalf("other tenant sees %+v", got)
	}

	sightings, err := s.PodSightings(ctx(t), "t1", "shop", "a-1", from, to)
	if err != nil || len(sightings) != 2 {
		t.Fatalf("pod sightings = %+v, %v", sightings, err)
	}

	spans, err := s.SpansOfTraces(ctx(t), "t1", [][16]byte{{1, 1}}, from-uint64(time.Hour), to+uint64(time.Hour))
	if err != nil || len(spans) != 4 {
		t.Fatalf("spans of traces = %d, %v", len(spans), err)
	}
	roots, errs := 0, 0
	for _, sp := range spans {
		if sp.Root {
			roots++
			if sp.Attrs["order.id"] != "o1" || sp.Service != "frontend" {
				t.Errorf("root span = %+v", sp)
			}
		}
		if sp.Error {
			errs++
		}
	}
	if roots != 1 || errs != 1 {
		t.Errorf("roots %d errors %d, want 1 and 1", roots, errs)
	}

	eid := events.NewID("t1", events.SourceFalco, []byte("x"))
	link := chstore.EventLink{TenantID: "t1", EventID: eid, EventTimeNs: uint64(ev.UnixNano()), TraceID: [16]byte{1, 1},
		TraceStartNs: 5, TraceDurationNs: 6, MatchKind: chstore.MatchContainer, SpanCount: 2, RootService: "frontend",
		RootName: "frontend-op", Failed: true, BusinessTransaction: "checkout",
		BusinessKeyNames: []string{"order.id"}, BusinessKeyValues: []string{"o1"}, LinkedAtNs: 1}
	link3 := link
	link3.TraceID, link3.Failed, link3.TraceStartNs, link3.BusinessKeyNames, link3.BusinessKeyValues = [16]byte{3, 1}, false, 7, nil, nil
	for range 2 { // the same links twice: read once
		if err := s.InsertEventLinks(ctx(t), []chstore.EventLink{link, link3}); err != nil {
			t.Fatal(err)
		}
	}
	links, err := s.LinksOfEvent(ctx(t), "t1", eid, 100)
	if err != nil || len(links) != 2 {
		t.Fatalf("links = %+v, %v", links, err)
	}
	if l := links[0]; l.TraceID != link.TraceID || !l.Failed || l.BusinessKeyValues[0] != "o1" || l.SpanCount != 2 || l.MatchKind != chstore.MatchContainer {
		t.Errorf("link = %+v", l)
	}
	if links, _ := s.LinksOfEvent(ctx(t), "other", eid, 100); len(links) != 0 {
		t.Errorf("other tenant sees links %+v", links)
	}
	tevs, err := s.EventsOfTrace(ctx(t), "t1", [16]byte{3, 1}, 100)
	if err != nil || len(tevs) != 1 || tevs[0].EventID != eid || !tevs[0].EventMissing || tevs[0].MatchKind != chstore.MatchContainer {
		t.Fatalf("events of trace = %+v, %v", tevs, err)
	}
}
