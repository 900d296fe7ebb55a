package otlpconv

import (
	"math"
	"os"
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// wireCases are requests the one-pass walk must flatten exactly as pdata
// does, including the shapes it hands back to pdata.
func wireCases(t testing.TB) map[string]ptrace.Traces {
	start := time.Date(2026, 12, 6, 23, 59, 59, 900, time.UTC)
	full := func(declined bool) ptrace.Traces {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		res := rs.Resource().Attributes()
		res.PutStr(AttrServiceName, "checkout")
		res.PutStr(AttrPodUID, "uid-1")
		res.PutStr(AttrPodName, "checkout-abc")
		res.PutStr(AttrNamespace, "shop")
		res.PutStr(AttrContainerID, "containerd://ABC123")
		res.PutStr(AttrContainerName, "")
		res.PutInt("process.pid", 42)
		res.PutDouble("host.load", 0.5)
		res.PutBool("k8s.ready", true)
		res.PutEmptyBytes("raw").FromRaw([]byte{0, 1, 2})
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName("lib")
		ss.Scope().SetVersion("1.0")
		ss.Scope().Attributes().PutStr("scope.attr", "x")
		root := ss.Spans().AppendEmpty()
		root.SetTraceID(pcommon.TraceID{1, 2})
		root.SetSpanID(pcommon.SpanID{3})
		root.TraceState().FromRaw("k=v")
		root.SetFlags(257)
		root.SetName("POST /api/checkout")
		root.SetKind(ptrace.SpanKindServer)
		root.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		root.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Second)))
		root.Status().SetCode(ptrace.StatusCodeError)
		root.Status().SetMessage("boom")
		root.SetDroppedAttributesCount(1)
		root.SetDroppedEventsCount(2)
		root.SetDroppedLinksCount(3)
		a := root.Attributes()
		a.PutInt("http.status_code", 500)
		a.PutInt("neg", -7)
		a.PutDouble("nan", math.NaN())
		a.PutDouble("inf", math.Inf(-1))
		a.PutStr("order.id", "o-1")
		a.PutEmptyBytes("b")
		a.PutEmpty("nothing")
		if declined {
			a.PutEmptySlice("list").AppendEmpty().SetStr("x")
		}
		ev := root.Events().AppendEmpty()
		ev.SetName("exception")
		ev.SetTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Millisecond)))
		ev.Attributes().PutStr("exception.type", "E")
		ev.Attributes().PutInt("n", 3)
		ev.Attributes().PutDouble("d", 1.25)
		ev.Attributes().PutBool("ok", false)
		ev2 := root.Events().AppendEmpty()
		ev2.Attributes().PutDouble("nan", math.NaN()) // no JSON form: ""
		root.Events().AppendEmpty()
		link := root.Links().AppendEmpty()
		link.SetTraceID(pcommon.TraceID{9})
		link.SetSpanID(pcommon.SpanID{8})
		link.TraceState().FromRaw("a=b")
		link.Attributes().PutStr("why", "retry")
		root.Links().AppendEmpty() // zero ids: ""

		child := ss.Spans().AppendEmpty()
		child.SetTraceID(pcommon.TraceID{1, 2})
		child.SetSpanID(pcommon.SpanID{4})
		child.SetParentSpanID(pcommon.SpanID{3})
		child.SetStartTimestamp(pcommon.NewTimestampFromTime(start))
		child.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(-time.Second))) // clock skew
		ss.Spans().AppendEmpty()                                                     // all defaults

		// A second resource without service.name, a duplicated promoted key
		// and an empty scope.
		rs2 := td.ResourceSpans().AppendEmpty()
		rs2.Resource().Attributes().PutStr(AttrNodeName, "node-1")
		rs2.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("orphan")
		rs2.ScopeSpans().AppendEmpty()
		td.ResourceSpans().AppendEmpty() // no resource, no scopes
		return td
	}
	cases := map[string]ptrace.Traces{
		"full":     full(false),
		"declined": full(true),
		"empty":    ptrace.NewTraces(),
	}
	// Non-string promoted attributes go to pdata.
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutInt(AttrPodUID, 7)
	rs.Resource().Attributes().PutStr(AttrPodUID, "second")
	rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("x")
	cases["promoted-int"] = td
	// Duplicate promoted keys: the first wins, equal copies are dropped.
	td = ptrace.NewTraces()
	rs = td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr(AttrServiceName, "a")
	rs.Resource().Attributes().PutStr(AttrServiceName, "b")
	rs.Resource().Attributes().PutStr(AttrServiceName, "a")
	rs.Resource().Attributes().PutStr(AttrServiceName, "unknown_service")
	rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty().SetName("x")
	cases["promoted-dup"] = td
	// Event attributes with bytes go to pdata (AsRaw's nil-slice JSON).
	td = ptrace.NewTraces()
	sp := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.Events().AppendEmpty().Attributes().PutEmptyBytes("b")
	cases["event-bytes"] = td

	raw, err := os.ReadFile("../../../shared/fixtures/otlp/trace.json")
	if err != nil {
		t.Fatalf("fixture (../shared beside the repository): %v", err)
	}
	if cases["fixture"], err = (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(raw); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return cases
}

// sameRows compares two batches as ClickHouse stores them: a nil array
// row and an empty one are the same empty array, and no rows are no rows.
func sameRows(a, b *SpanBatch) bool {
	norm := func(cols []any) []any {
		for i, c := range cols {
			v := reflect.ValueOf(c)
			if v.Len() == 0 {
				cols[i] = reflect.Zero(v.Type()).Interface()
				continue
			}
			if v.Type().Elem().Kind() != reflect.Slice {
				continue
			}
			for i := range v.Len() {
				if r := v.Index(i); r.IsNil() {
					r.Set(reflect.MakeSlice(r.Type(), 0, 0))
				}
			}
		}
		return cols
	}
	return reflect.DeepEqual(norm(a.Columns()), norm(b.Columns()))
}

func pdataBatch(tenant string, data []byte, into *SpanBatch) (int, error) {
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(data)
	if err != nil {
		return 0, err
	}
	into.AppendTraces(tenant, td)
	return td.SpanCount(), nil
}

func TestAppendTracesProtoMatchesPdata(t *testing.T) {
	cases := wireCases(t)
	var all [][]byte
	for name, td := range cases {
		data, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, data)
		t.Run(name, func(t *testing.T) {
			var got, want SpanBatch
			n, err := got.AppendTracesProto("t1", data)
			wn, werr := pdataBatch("t1", data, &want)
			if err != nil || werr != nil || n != wn {
				t.Fatalf("wire n=%d err=%v, pdata n=%d err=%v", n, err, wn, werr)
			}
			if !sameRows(&got, &want) {
				for i, c := range got.Columns() {
					if w := want.Columns()[i]; !reflect.DeepEqual(c, w) {
						t.Errorf("column %s:\n got %#v\nwant %#v", SpanColumns[i], c, w)
					}
				}
			}
		})
	}
	// All requests into one batch, declined ones between walked ones: the
	// rows of a declined walk are rolled back before pdata appends.
	var got, want SpanBatch
	for _, data := range all {
		if _, err := got.AppendTracesProto("t1", data); err != nil {
			t.Fatal(err)
		}
		if _, err := pdataBatch("t1", data, &want); err != nil {
			t.Fatal(err)
		}
	}
	if !sameRows(&got, &want) {
		t.Errorf("concatenated batches differ")
	}
}

func TestAppendTracesProtoMalformed(t *testing.T) {
	data, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(wireCases(t)["full"])
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][]byte{data[:len(data)/2], {0xff}, {0x0a, 0x05, 0x12}} {
		var b SpanBatch
		n, err := b.AppendTracesProto("t1", bad)
		_, werr := pdataBatch("t1", bad, &SpanBatch{})
		if err == nil || werr == nil || err.Error() != werr.Error() || n != 0 || b.Len() != 0 {
			t.Errorf("%x: err %v (pdata %v), n %d, rows %d", bad, err, werr, n, b.Len())
		}
	}
}

// FuzzAppendTracesProto: whatever the bytes, the one-pass walk fails
// exactly when pdata fails and otherwise yields pdata's rows.
func FuzzAppendTracesProto(f *testing.F) {
	for _, td := range wireCases(f) {
		data, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var got, want SpanBatch
		n, err := got.AppendTracesProto("t", data)
		wn, werr := pdataBatch("t", data, &want)
		if (err == nil) != (werr == nil) || n != wn {
			t.Fatalf("wire n=%d err=%v, pdata n=%d err=%v", n, err, wn, werr)
		}
		if !sameRows(&got, &want) {
			t.Fatalf("rows differ")
		}
	})
}

// BenchmarkDecodeAppendTraces compares the writer's two ways from message
// bytes to rows: pdata decode + AppendTraces, and the one-pass walk. A
// batch takes 100 messages, then a new one starts, as in the writer.
func BenchmarkDecodeAppendTraces(b *testing.B) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	for k, v := range map[string]string{AttrServiceName: "svc", AttrPodName: "pod", AttrPodUID: "uid", AttrNamespace: "ns", "host.name": "node-1"} {
		rs.Resource().Attributes().PutStr(k, v)
	}
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range 100 {
		sp := spans.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{byte(i), 1})
		sp.SetSpanID(pcommon.SpanID{byte(i), 1})
		sp.SetParentSpanID(pcommon.SpanID{byte(i), 2})
		sp.SetName("GET /api/items")
		sp.SetStartTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000 + i))
		sp.SetEndTimestamp(pcommon.Timestamp(1_700_000_000_005_000_000 + i))
		for j := range 8 {
			sp.Attributes().PutStr("key."+string(rune('a'+j)), "value-of-attribute")
		}
		sp.Attributes().PutInt("http.status_code", 200)
		sp.Attributes().PutBool("error", false)
	}
	data, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, appendMsg func(*SpanBatch) error) {
		b.ReportAllocs()
		var batch SpanBatch
		for i := 0; b.Loop(); i++ {
			if i%100 == 0 {
				batch.Reset()
			}
			if err := appendMsg(&batch); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("pdata", func(b *testing.B) {
		run(b, func(sb *SpanBatch) error {
			_, err := pdataBatch("t", data, sb)
			return err
		})
	})
	b.Run("wire", func(b *testing.B) {
		run(b, func(sb *SpanBatch) error {
			_, err := sb.AppendTracesProto("t", data)
			return err
		})
	})
	b.Run("wire-owned", func(b *testing.B) {
		run(b, func(sb *SpanBatch) error {
			_, err := sb.AppendTracesProtoOwned("t", data)
			return err
		})
	})
}
