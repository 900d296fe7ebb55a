package otlpconv

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

// pdataScanTraces is what ScanTraces must agree with whenever it says ok:
// pdata decodes the request and no span or link has an all-zero id; the
// times are the spans' start times.
func pdataScanTraces(data []byte) (Scanned, bool) {
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(data)
	if err != nil {
		return Scanned{}, false
	}
	var sc scannedTimes
	rss := td.ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			spans := sss.At(j).Spans()
			for k := range spans.Len() {
				sp := spans.At(k)
				if sp.TraceID().IsEmpty() || sp.SpanID().IsEmpty() {
					return Scanned{}, false
				}
				for l := range sp.Links().Len() {
					if ln := sp.Links().At(l); ln.TraceID().IsEmpty() || ln.SpanID().IsEmpty() {
						return Scanned{}, false
					}
				}
				sc.add(uint64(sp.StartTimestamp()))
			}
		}
	}
	return sc.Scanned, true
}

// scannedTimes accumulates a Scanned the slow way.
type scannedTimes struct{ Scanned }

func (s *scannedTimes) add(t uint64) {
	if s.Records == 0 || t < s.MinTime {
		s.MinTime = t
	}
	s.MaxTime = max(s.MaxTime, t)
	s.Records++
}

// pdataScanLogs: pdata decodes the request and every record has a time.
func pdataScanLogs(data []byte) (Scanned, bool) {
	ld, err := (&plog.ProtoUnmarshaler{}).UnmarshalLogs(data)
	if err != nil {
		return Scanned{}, false
	}
	var sc scannedTimes
	rls := ld.ResourceLogs()
	for i := range rls.Len() {
		sls := rls.At(i).ScopeLogs()
		for j := range sls.Len() {
			recs := sls.At(j).LogRecords()
			for k := range recs.Len() {
				r := recs.At(k)
				t := r.Timestamp()
				if t == 0 {
					t = r.ObservedTimestamp()
				}
				if t == 0 {
					return Scanned{}, false
				}
				sc.add(uint64(t))
			}
		}
	}
	return sc.Scanned, true
}

func cleanTraces(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.SetSchemaUrl("https://opentelemetry.io/schemas/1.26.0")
	rs.Resource().Attributes().PutStr(AttrServiceName, "checkout")
	rs.Resource().Attributes().PutStr(AttrPodUID, "uid-1")
	kv := rs.Resource().Attributes().PutEmptyMap("nested")
	kv.PutEmptySlice("list").AppendEmpty().SetInt(3)
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("lib")
	ss.Scope().Attributes().PutBool("b", true)
	for i := range n {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{1, byte(i)})
		sp.SetSpanID(pcommon.SpanID{2, byte(i)})
		sp.SetParentSpanID(pcommon.SpanID{3})
		sp.SetName("GET /")
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetFlags(1)
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Unix(1, 0)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Unix(2, 0)))
		sp.Attributes().PutDouble("d", 1.5)
		sp.Attributes().PutEmptyBytes("raw").FromRaw([]byte{1})
		sp.Status().SetCode(ptrace.StatusCodeError)
		ev := sp.Events().AppendEmpty()
		ev.SetName("e")
		ev.Attributes().PutInt("n", 1)
		ln := sp.Links().AppendEmpty()
		ln.SetTraceID(pcommon.TraceID{4})
		ln.SetSpanID(pcommon.SpanID{5})
	}
	return td
}

func cleanLogs(n int) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(AttrServiceName, "checkout")
	sl := rl.ScopeLogs().AppendEmpty()
	for i := range n {
		r := sl.LogRecords().AppendEmpty()
		r.SetTimestamp(pcommon.Timestamp(i + 1))
		r.SetSeverityNumber(plog.SeverityNumberError)
		r.Body().SetStr("boom")
		r.Attributes().PutStr("k", "v")
		r.SetTraceID(pcommon.TraceID{1})
		r.SetEventName("e")
	}
	sl.LogRecords().AppendEmpty().SetObservedTimestamp(7) // no trace id, observed time only
	return ld
}

func marshalTraces(t testing.TB, td ptrace.Traces) []byte {
	b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func marshalLogs(t testing.TB, ld plog.Logs) []byte {
	b, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// field appends one length-delimited field to b.
func lenField(b []byte, num protowire.Number, v []byte) []byte {
	b = protowire.AppendTag(b, num, protowire.BytesType)
	return protowire.AppendBytes(b, v)
}

// wrapSpan builds request { resource_spans { scope_spans { spans: span } } }.
func wrapSpan(span []byte) []byte {
	return lenField(nil, 1, lenField(nil, 2, lenField(nil, 2, span)))
}

func TestScanTraces(t *testing.T) {
	okSpan := func(extra ...[]byte) []byte {
		b := lenField(nil, 1, []byte{15: 1})
		b = lenField(b, 2, []byte{7: 1})
		for _, e := range extra {
			b = append(b, e...)
		}
		return b
	}
	unknown := protowire.AppendVarint(protowire.AppendTag(nil, 99, protowire.VarintType), 5)
	group := append(protowire.AppendTag(nil, 98, protowire.StartGroupType), protowire.AppendTag(nil, 98, protowire.EndGroupType)...)
	deep := []byte{}
	for range 40 { // AnyValue{kvlist{KeyValue{value: ...}}}
		deep = lenField(nil, 6, lenField(nil, 1, lenField(nil, 2, deep)))
	}
	tests := []struct {
		name  string
		data  []byte
		spans int
		ok    bool
	}{
		{"realistic request", marshalTraces(t, cleanTraces(5)), 5, true},
		{"empty request", nil, 0, true},
		{"unknown fields are skipped like pdata", wrapSpan(okSpan(unknown)), 1, true},
		{"zero trace id", wrapSpan(lenField(lenField(nil, 1, make([]byte, 16)), 2, []byte{7: 1})), 0, false},
		{"missing span id", wrapSpan(lenField(nil, 1, []byte{15: 1})), 0, false},
		{"short trace id", wrapSpan(lenField(lenField(nil, 1, []byte{1}), 2, []byte{7: 1})), 0, false},
		{"last occurrence wins: zeroed again", wrapSpan(okSpan(lenField(nil, 1, make([]byte, 16)))), 0, false},
		{"link with zero span id", wrapSpan(okSpan(lenField(nil, 13, lenField(nil, 1, []byte{15: 1})))), 0, false},
		{"wrong wire type for name", wrapSpan(okSpan(protowire.AppendVarint(protowire.AppendTag(nil, 5, protowire.VarintType), 1))), 0, false},
		{"wrong wire type for start time", wrapSpan(okSpan(protowire.AppendVarint(protowire.AppendTag(nil, 7, protowire.VarintType), 1))), 0, false},
		{"truncated", marshalTraces(t, cleanTraces(2))[:40], 0, false},
		{"group field declined", wrapSpan(okSpan(group)), 0, false},
		{"deprecated instrumentation library spans declined", lenField(nil, 1, lenField(nil, 1000, nil)), 0, false},
		{"deep nesting declined", wrapSpan(okSpan(lenField(nil, 9, lenField(lenField(nil, 1, []byte("k")), 2, deep)))), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, ok := ScanTraces(tt.data)
			if ok != tt.ok || sc.Records != tt.spans && ok {
				t.Fatalf("ScanTraces = %d, %v; want %d, %v", sc.Records, ok, tt.spans, tt.ok)
			}
			if ok {
				if psc, pok := pdataScanTraces(tt.data); !pok || psc != sc {
					t.Fatalf("pdata disagrees: %+v, %v; scan %+v", psc, pok, sc)
				}
			}
		})
	}
}

func TestScanLogs(t *testing.T) {
	rec := func(fields ...[]byte) []byte {
		var b []byte
		for _, f := range fields {
			b = append(b, f...)
		}
		return lenField(nil, 1, lenField(nil, 2, lenField(nil, 2, b)))
	}
	timeField := func(num protowire.Number, v uint64) []byte {
		return protowire.AppendFixed64(protowire.AppendTag(nil, num, protowire.Fixed64Type), v)
	}
	tests := []struct {
		name    string
		data    []byte
		records int
		ok      bool
	}{
		{"realistic request", marshalLogs(t, cleanLogs(4)), 5, true},
		{"observed time only", rec(timeField(11, 5)), 1, true},
		{"no time: the gateway stamps it", rec(lenField(nil, 3, []byte("INFO"))), 0, false},
		{"time zeroed by a later occurrence", rec(timeField(1, 5), timeField(1, 0)), 0, false},
		{"empty trace id is fine", rec(timeField(1, 5), lenField(nil, 9, nil)), 1, true},
		{"short trace id", rec(timeField(1, 5), lenField(nil, 9, []byte{1})), 0, false},
		{"wrong wire type for body", rec(timeField(1, 5), protowire.AppendVarint(protowire.AppendTag(nil, 5, protowire.VarintType), 1)), 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc, ok := ScanLogs(tt.data)
			if ok != tt.ok || sc.Records != tt.records && ok {
				t.Fatalf("ScanLogs = %d, %v; want %d, %v", sc.Records, ok, tt.records, tt.ok)
			}
			if ok {
				if psc, pok := pdataScanLogs(tt.data); !pok || psc != sc {
					t.Fatalf("pdata disagrees: %+v, %v; scan %+v", psc, pok, sc)
				}
			}
		})
	}
}

func TestScanAllocatesNothing(t *testing.T) {
	data := marshalTraces(t, cleanTraces(50))
	if a := testing.AllocsPerRun(20, func() { ScanTraces(data) }); a != 0 {
		t.Errorf("ScanTraces allocates %.0f times per request", a)
	}
}

// FuzzScanTraces: whenever the scanner vouches for a request, pdata decodes
// it to the same number of spans, none with a zero id.
func FuzzScanTraces(f *testing.F) {
	f.Add(marshalTraces(f, cleanTraces(2)))
	for _, td := range wireCases(f) {
		f.Add(marshalTraces(f, td))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if sc, ok := ScanTraces(data); ok {
			if psc, pok := pdataScanTraces(data); !pok || psc != sc {
				t.Fatalf("scan says %+v, pdata %+v (ok %v)", sc, psc, pok)
			}
		}
	})
}

// FuzzScanLogs is FuzzScanTraces for logs.
func FuzzScanLogs(f *testing.F) {
	f.Add(marshalLogs(f, cleanLogs(2)))
	f.Fuzz(func(t *testing.T, data []byte) {
		if sc, ok := ScanLogs(data); ok {
			if psc, pok := pdataScanLogs(data); !pok || psc != sc {
				t.Fatalf("scan says %+v, pdata %+v (ok %v)", sc, psc, pok)
			}
		}
	})
}

func BenchmarkScanTraces(b *testing.B) {
	data := marshalTraces(b, cleanTraces(500))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := ScanTraces(data); !ok {
			b.Fatal("declined")
		}
	}
}

func BenchmarkPdataDecodeTraces(b *testing.B) {
	data := marshalTraces(b, cleanTraces(500))
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(data); err != nil {
			b.Fatal(err)
		}
	}
}
