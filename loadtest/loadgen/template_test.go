package loadgen

import (
	"reflect"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

func decodeTraces(t *testing.T, body []byte) ptrace.Traces {
	t.Helper()
	req := ptraceotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		t.Fatalf("decode rendered traces: %v", err)
	}
	return req.Traces()
}

func decodeLogs(t *testing.T, body []byte) plog.Logs {
	t.Helper()
	req := plogotlp.NewExportRequest()
	if err := req.UnmarshalProto(body); err != nil {
		t.Fatalf("decode rendered logs: %v", err)
	}
	return req.Logs()
}

// allSpans flattens td in encoding order.
func allSpans(td ptrace.Traces) []ptrace.Span {
	var out []ptrace.Span
	for _, rs := range td.ResourceSpans().All() {
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				out = append(out, sp)
			}
		}
	}
	return out
}

func allRecords(ld plog.Logs) []plog.LogRecord {
	var out []plog.LogRecord
	for _, rl := range ld.ResourceLogs().All() {
		for _, sl := range rl.ScopeLogs().All() {
			for _, lr := range sl.LogRecords().All() {
				out = append(out, lr)
			}
		}
	}
	return out
}

func ts(t time.Time) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t) }

// handTraces has what the generator does not make: links, a span
// without a trace id, several events.
func handTraces() ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "hand")
	ss := rs.ScopeSpans().AppendEmpty()
	a := ss.Spans().AppendEmpty()
	a.SetTraceID(pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	a.SetSpanID(pcommon.SpanID{1})
	a.SetName("a")
	a.SetStartTimestamp(ts(t0))
	a.SetEndTimestamp(ts(t0.Add(time.Millisecond)))
	a.Attributes().PutStr("k", "v")
	for i := range 2 {
		ev := a.Events().AppendEmpty()
		ev.SetName("ev")
		ev.SetTimestamp(ts(t0.Add(time.Duration(i+1) * time.Microsecond)))
	}
	l := a.Links().AppendEmpty()
	l.SetTraceID(pcommon.TraceID{0xf0, 2: 0xaa, 15: 0x01})
	l.SetSpanID(pcommon.SpanID{9})
	b := ss.Spans().AppendEmpty() // no trace id, no end
	b.SetSpanID(pcommon.SpanID{2})
	b.SetName("b")
	b.SetStartTimestamp(ts(t0.Add(time.Second)))
	return td
}

func TestTemplateTraces(t *testing.T) {
	const delta = 90*time.Minute + 7*time.Nanosecond
	tests := []struct {
		name  string
		delta time.Duration
		salt  uint64
	}{
		{"as encoded", 0, 0},
		{"shifted", delta, 0},
		{"salted", 0, RoundSalt(1, 3)},
		{"both", delta, RoundSalt(1, 3)},
		{"back in time", -time.Hour, RoundSalt(2, 1)},
	}
	orig := handTraces()
	tmpl, err := EncodeTraces(orig)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := allSpans(decodeTraces(t, tmpl.Render(tt.delta, tt.salt)))
			want := allSpans(orig)
			if len(got) != len(want) {
				t.Fatalf("%d spans, want %d", len(got), len(want))
			}
			shift := func(v pcommon.Timestamp) pcommon.Timestamp {
				if v == 0 {
					return 0 // not encoded, so not moved
				}
				return pcommon.Timestamp(int64(v) + int64(tt.delta))
			}
			for i, w := range want {
				g := got[i]
				wantID := w.TraceID()
				if !wantID.IsEmpty() {
					wantID = SaltTraceID(wantID, tt.salt)
				}
				if g.TraceID() != wantID || g.SpanID() != w.SpanID() || g.Name() != w.Name() {
					t.Errorf("span %d: id %v/%v name %q, want %v/%v %q", i, g.TraceID(), g.SpanID(), g.Name(), wantID, w.SpanID(), w.Name())
				}
				if g.StartTimestamp() != shift(w.StartTimestamp()) || g.EndTimestamp() != shift(w.EndTimestamp()) {
					t.Errorf("span %d: times %d..%d, want %d..%d", i, g.StartTimestamp(), g.EndTimestamp(), shift(w.StartTimestamp()), shift(w.EndTimestamp()))
				}
				if !reflect.DeepEqual(g.Attributes().AsRaw(), w.Attributes().AsRaw()) {
					t.Errorf("span %d: attributes %v, want %v", i, g.Attributes().AsRaw(), w.Attributes().AsRaw())
				}
				for j, we := range w.Events().All() {
					if ge := g.Events().At(j); ge.Timestamp() != shift(we.Timestamp()) || ge.Name() != we.Name() {
						t.Errorf("span %d event %d: %q at %d, want %q at %d", i, j, ge.Name(), ge.Timestamp(), we.Name(), shift(we.Timestamp()))
					}
				}
				for j, wl := range w.Links().All() {
					if gl := g.Links().At(j); gl.TraceID() != SaltTraceID(wl.TraceID(), tt.salt) || gl.SpanID() != wl.SpanID() {
						t.Errorf("span %d link %d: %v/%v", i, j, gl.TraceID(), gl.SpanID())
					}
				}
			}
		})
	}
}

func TestTemplateLogs(t *testing.T) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", "hand")
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	full := recs.AppendEmpty()
	full.SetTimestamp(ts(t0))
	full.SetObservedTimestamp(ts(t0.Add(time.Millisecond)))
	full.SetTraceID(pcommon.TraceID{1, 15: 2})
	full.SetSpanID(pcommon.SpanID{3})
	full.Body().SetStr("full")
	full.Attributes().PutInt("n", 1)
	bare := recs.AppendEmpty() // no trace id, no observed time
	bare.SetTimestamp(ts(t0.Add(time.Second)))
	bare.Body().SetStr("bare")
	tmpl, err := EncodeLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		delta time.Duration
		salt  uint64
	}{{"round 0", 0, 0}, {"round 3", 3 * time.Hour, RoundSalt(9, 3)}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := allRecords(decodeLogs(t, tmpl.Render(tt.delta, tt.salt)))
			if len(got) != 2 {
				t.Fatalf("%d records", len(got))
			}
			g, b := got[0], got[1]
			if g.Timestamp().AsTime() != t0.Add(tt.delta) || g.ObservedTimestamp().AsTime() != t0.Add(time.Millisecond+tt.delta) {
				t.Errorf("times %v %v", g.Timestamp().AsTime(), g.ObservedTimestamp().AsTime())
			}
			if g.TraceID() != SaltTraceID(full.TraceID(), tt.salt) || g.SpanID() != full.SpanID() || g.Body().Str() != "full" {
				t.Errorf("record %v/%v %q", g.TraceID(), g.SpanID(), g.Body().Str())
			}
			if b.Timestamp().AsTime() != t0.Add(time.Second+tt.delta) || b.ObservedTimestamp() != 0 || !b.TraceID().IsEmpty() {
				t.Errorf("bare record %v %d %v", b.Timestamp().AsTime(), b.ObservedTimestamp(), b.TraceID())
			}
		})
	}
}

func TestTemplateRejectsGarbage(t *testing.T) {
	tmpl := &Template{}
	tests := []struct {
		name string
		body []byte
	}{
		{"truncated length", []byte{0x0a, 0x05, 0x01}},
		{"bad tag", []byte{0x00}},
		{"truncated fixed64", []byte{0x0a, 0x07, 0x12, 0x05, 0x12, 0x03, 0x39, 0x01, 0x02}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tmpl.index(tt.body, 0, traceRequestFields); err == nil {
				t.Fatal("garbage indexed")
			}
		})
	}
}

func TestRoundSalt(t *testing.T) {
	if RoundSalt(1, 0) != 0 || RoundSalt(2, 0) != 0 {
		t.Fatal("round 0 must keep the ids")
	}
	seen := map[uint64]bool{}
	for r := uint64(1); r <= 1000; r++ {
		s := RoundSalt(1, r)
		if s == 0 || seen[s] {
			t.Fatalf("round %d: salt %x zero or repeated", r, s)
		}
		seen[s] = true
	}
	if RoundSalt(1, 1) == RoundSalt(2, 1) {
		t.Fatal("seeds share a salt")
	}
	id := pcommon.TraceID{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	if s := SaltTraceID(id, RoundSalt(1, 1)); s == id || [8]byte(s[:8]) != [8]byte(id[:8]) || SaltTraceID(s, RoundSalt(1, 1)) != id {
		t.Fatalf("salted id %v of %v", s, id)
	}
}
