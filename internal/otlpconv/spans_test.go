package otlpconv

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

func TestAppendTraces(t *testing.T) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	res := rs.Resource().Attributes()
	res.PutStr(AttrServiceName, "checkout")
	res.PutStr(AttrPodUID, "uid-1")
	res.PutStr(AttrPodName, "checkout-abc")
	res.PutStr(AttrNamespace, "shop")
	res.PutStr(AttrNodeName, "node-1")
	res.PutStr(AttrContainerID, "containerd://ABC123")
	res.PutStr(AttrContainerName, "app")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("lib")
	ss.Scope().SetVersion("1.0")
	start := time.Date(2026, 11, 23, 23, 59, 59, 900, time.UTC)

	root := ss.Spans().AppendEmpty()
	root.SetTraceID(pcommon.TraceID{1, 2})
	root.SetSpanID(pcommon.SpanID{3})
	root.SetName("GET /")
	root.SetKind(ptrace.SpanKindServer)
	root.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	root.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Second)))
	root.Status().SetCode(ptrace.StatusCodeError)
	root.Status().SetMessage("boom")
	root.Attributes().PutInt("http.status_code", 500)
	ev := root.Events().AppendEmpty()
	ev.SetName("exception")
	ev.Attributes().PutStr("exception.type", "E")
	link := root.Links().AppendEmpty()
	link.SetTraceID(pcommon.TraceID{9})
	link.SetSpanID(pcommon.SpanID{8})

	child := ss.Spans().AppendEmpty()
	child.SetTraceID(pcommon.TraceID{1, 2})
	child.SetSpanID(pcommon.SpanID{4})
	child.SetParentSpanID(pcommon.SpanID{3})
	child.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
	child.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(-time.Second))) // clock skew

	var b SpanBatch
	b.AppendTraces("tenant-a", td)
	if b.Len() != 2 {
		t.Fatalf("len %d", b.Len())
	}
	for i, col := range b.Columns() {
		if n := lenOf(col); n != 2 {
			t.Errorf("column %s has %d rows", SpanColumns[i], n)
		}
	}
	if len(b.Columns()) != len(SpanColumns) {
		t.Fatalf("%d columns, %d names", len(b.Columns()), len(SpanColumns))
	}
	checks := []struct {
		what      string
		got, want any
	}{
		{"tenant", b.TenantID[0], "tenant-a"},
		{"service", b.ServiceName[0], "checkout"},
		{"trace id bytes", b.TraceID[0], string([]byte{1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})},
		{"root parent", b.ParentSpanID[0], ""},
		{"child parent", b.ParentSpanID[1], string([]byte{3, 0, 0, 0, 0, 0, 0, 0})},
		{"kind", b.Kind[0], int8(ptrace.SpanKindServer)},
		{"status", b.StatusCode[0], int8(ptrace.StatusCodeError)},
		{"status message", b.StatusMessage[0], "boom"},
		{"end", b.EndNs[0] - b.StartNs[0], uint64(time.Second)},
		{"date is UTC day of start", b.Date[0].Format("2006-01-02"), "2026-11-23"},
		{"container id normalized", b.ContainerID[0], "abc123"},
		{"pod uid", b.PodUID[0], "uid-1"},
		{"namespace", b.Namespace[0], "shop"},
		{"scope", b.ScopeName[0] + "/" + b.ScopeVersion[0], "lib/1.0"},
		{"event name", b.EventNames[0][0], "exception"},
		{"event attrs", b.EventAttrs[0][0], `{"exception.type":"E"}`},
		{"link trace", b.LinkTraceIDs[0][0], "09000000000000000000000000000000"},
		{"retention class", b.RetentionClass[0], DefaultRetentionClass},
		{"attr", DecodeAttrs(b.AttrKeys[0], b.AttrValues[0], b.AttrTypes[0])["http.status_code"], int64(500)},
		// promoted attributes live in their columns only; readers add them back
		{"resource attr", DecodeAttrs(b.ResourceKeys[1], b.ResourceValues[1], b.ResourceTypes[1])[AttrPodName], nil},
		{"promoted back", PromotedResource(DecodeAttrs(b.ResourceKeys[1], b.ResourceValues[1], b.ResourceTypes[1]),
			b.ServiceName[1], b.PodUID[1], b.PodName[1], b.Namespace[1], b.NodeName[1], b.ContainerID[1], b.ContainerName[1])[AttrPodName], "checkout-abc"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %#v, want %#v", c.what, c.got, c.want)
		}
	}
}

func TestMissingServiceName(t *testing.T) {
	td := ptrace.NewTraces()
	td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	var b SpanBatch
	b.AppendTraces("t", td)
	if b.ServiceName[0] != "unknown_service" {
		t.Errorf("service %q", b.ServiceName[0])
	}
}

func lenOf(col any) int {
	switch c := col.(type) {
	case []string:
		return len(c)
	case []time.Time:
		return len(c)
	case []uint32:
		return len(c)
	case []uint64:
		return len(c)
	case []int8:
		return len(c)
	case [][]string:
		return len(c)
	case [][]uint8:
		return len(c)
	case [][]uint64:
		return len(c)
	}
	return -1
}

func BenchmarkAppendTraces(b *testing.B) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(AttrServiceName, "svc")
	rs.Resource().Attributes().PutStr(AttrPodName, "pod")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := 0; i < 100; i++ {
		sp := spans.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{byte(i)})
		sp.SetSpanID(pcommon.SpanID{byte(i)})
		for j := 0; j < 10; j++ {
			sp.Attributes().PutStr("key"+string(rune('a'+j)), "value")
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		var batch SpanBatch
		batch.AppendTraces("t", td)
	}
}
