package bus

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// bigTraces builds resources × scopes × spans spans with padding attributes.
func bigTraces(resources, scopes, spans, pad int) ptrace.Traces {
	td := ptrace.NewTraces()
	n := 0
	for r := 0; r < resources; r++ {
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutInt("r", int64(r))
		for s := 0; s < scopes; s++ {
			ss := rs.ScopeSpans().AppendEmpty()
			ss.Scope().SetName("scope")
			for i := 0; i < spans; i++ {
				sp := ss.Spans().AppendEmpty()
				sp.SetTraceID(pcommon.TraceID{byte(r), byte(s), byte(i), 1})
				sp.SetSpanID(pcommon.SpanID{byte(n), byte(n >> 8), 1})
				sp.Attributes().PutStr("pad", string(make([]byte, pad)))
				n++
			}
		}
	}
	return td
}

func TestChunkTraces(t *testing.T) {
	cases := []struct {
		name                     string
		resources, scopes, spans int
		pad, max                 int
		wantChunksAtLeast        int
	}{
		{"fits in one", 2, 2, 5, 10, 1 << 20, 1},
		{"split across resources", 4, 1, 10, 1000, 8 << 10, 4},
		{"split inside a scope", 1, 1, 100, 1000, 8 << 10, 10},
		{"mixed", 3, 3, 7, 500, 4 << 10, 5},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			td := bigTraces(tc.resources, tc.scopes, tc.spans, tc.pad)
			payloads, counts, err := chunkTraces(td, tc.max)
			if err != nil {
				t.Fatal(err)
			}
			if len(payloads) < tc.wantChunksAtLeast {
				t.Errorf("%d chunks, want at least %d", len(payloads), tc.wantChunksAtLeast)
			}
			var um ptrace.ProtoUnmarshaler
			seen := map[pcommon.SpanID]bool{}
			total := 0
			for i, p := range payloads {
				if len(p) > tc.max {
					t.Errorf("chunk %d is %d bytes, over %d", i, len(p), tc.max)
				}
				part, err := um.UnmarshalTraces(p)
				if err != nil {
					t.Fatal(err)
				}
				if part.SpanCount() != counts[i] {
					t.Errorf("chunk %d: count %d, header says %d", i, part.SpanCount(), counts[i])
				}
				rss := part.ResourceSpans()
				for r := 0; r < rss.Len(); r++ {
					if _, ok := rss.At(r).Resource().Attributes().Get("r"); !ok {
						t.Error("resource attributes lost in a chunk")
					}
					sss := rss.At(r).ScopeSpans()
					for s := 0; s < sss.Len(); s++ {
						if sss.At(s).Scope().Name() != "scope" {
							t.Error("scope lost in a chunk")
						}
						for i := 0; i < sss.At(s).Spans().Len(); i++ {
							id := sss.At(s).Spans().At(i).SpanID()
							if seen[id] {
								t.Errorf("span %s in two chunks", id)
							}
							seen[id] = true
						}
					}
				}
				total += part.SpanCount()
			}
			if total != td.SpanCount() {
				t.Errorf("chunks hold %d spans, want %d", total, td.SpanCount())
			}
		})
	}
}

func TestChunkTracesSpanTooLarge(t *testing.T) {
	td := bigTraces(1, 1, 1, 10_000)
	_, _, err := chunkTraces(td, 1024)
	if apperr.KindOf(err) != apperr.KindTooLarge {
		t.Fatalf("err = %v, want KindTooLarge", err)
	}
}

func TestMessageIDDeterministic(t *testing.T) {
	a := MessageID("t1", SignalTraces, []byte("x"))
	if a != MessageID("t1", SignalTraces, []byte("x")) {
		t.Error("same input, different ids")
	}
	for _, other := range []string{
		MessageID("t2", SignalTraces, []byte("x")),
		MessageID("t1", Signal("logs"), []byte("x")),
		MessageID("t1", SignalTraces, []byte("y")),
	} {
		if other == a {
			t.Error("different input, same id")
		}
	}
}
