package bus

import (
	"fmt"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// chunkTraces marshals td into protobuf payloads of at most maxBytes each,
// halving the span set until every part fits. Resource and scope are
// copied into each part so every message decodes on its own.
func chunkTraces(td ptrace.Traces, maxBytes int) ([][]byte, []int, error) {
	var m ptrace.ProtoMarshaler
	if m.TracesSize(td) <= maxBytes {
		b, err := m.MarshalTraces(td)
		if err != nil {
			return nil, nil, fmt.Errorf("marshal traces: %w", err)
		}
		return [][]byte{b}, []int{td.SpanCount()}, nil
	}
	n := td.SpanCount()
	if n <= 1 {
		return nil, nil, apperr.New(apperr.KindTooLarge,
			"a single span is larger than the queue's message limit of %d bytes", maxBytes)
	}
	a, b := splitTraces(td, n/2)
	pa, ca, err := chunkTraces(a, maxBytes)
	if err != nil {
		return nil, nil, err
	}
	pb, cb, err := chunkTraces(b, maxBytes)
	if err != nil {
		return nil, nil, err
	}
	return append(pa, pb...), append(ca, cb...), nil
}

// splitTraces returns the first k spans of td and the rest, each with its
// resource and scope.
func splitTraces(td ptrace.Traces, k int) (ptrace.Traces, ptrace.Traces) {
	first, rest := ptrace.NewTraces(), ptrace.NewTraces()
	i := 0
	rss := td.ResourceSpans()
	for r := 0; r < rss.Len(); r++ {
		rs := rss.At(r)
		var dst [2]ptrace.ResourceSpans
		var have [2]bool
		sss := rs.ScopeSpans()
		for s := 0; s < sss.Len(); s++ {
			ss := sss.At(s)
			var sdst [2]ptrace.ScopeSpans
			var shave [2]bool
			spans := ss.Spans()
			for j := 0; j < spans.Len(); j++ {
				side := 0
				if i >= k {
					side = 1
				}
				i++
				if !have[side] {
					out := first
					if side == 1 {
						out = rest
					}
					dst[side] = out.ResourceSpans().AppendEmpty()
					rs.Resource().CopyTo(dst[side].Resource())
					dst[side].SetSchemaUrl(rs.SchemaUrl())
					have[side] = true
				}
				if !shave[side] {
					sdst[side] = dst[side].ScopeSpans().AppendEmpty()
					ss.Scope().CopyTo(sdst[side].Scope())
					sdst[side].SetSchemaUrl(ss.SchemaUrl())
					shave[side] = true
				}
				spans.At(j).CopyTo(sdst[side].Spans().AppendEmpty())
			}
		}
	}
	return first, rest
}
