package replay

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// traceConv maps TraceID,SpanID,ParentID,PodName,OperationName,
// StartTimeUnixNano,EndTimeUnixNano rows to spans, one resource per pod.
type traceConv struct {
	trace, span, parent, pod, op, start, end int
	namespace                                string
	td                                       ptrace.Traces
	byPod                                    map[string]ptrace.SpanSlice
}

func newTraceConv(path string, cols columns, namespace string) (*traceConv, error) {
	idx, err := cols.need(path, "TraceID", "SpanID", "ParentID", "PodName", "OperationName", "StartTimeUnixNano", "EndTimeUnixNano")
	if err != nil {
		return nil, err
	}
	c := &traceConv{trace: idx[0], span: idx[1], parent: idx[2], pod: idx[3], op: idx[4], start: idx[5], end: idx[6], namespace: namespace}
	c.reset()
	return c, nil
}

func (c *traceConv) reset() {
	c.td = ptrace.NewTraces()
	c.byPod = map[string]ptrace.SpanSlice{}
}

func (c *traceConv) rowTime(rec []string) (int64, error) { return parseUnixNano(field(rec, c.start)) }

func (c *traceConv) add(rec []string) (int, error) {
	start, err := parseUnixNano(field(rec, c.start))
	if err != nil {
		return 0, err
	}
	end, err := parseUnixNano(field(rec, c.end))
	if err != nil {
		return 0, err
	}
	srcTrace, srcSpan := field(rec, c.trace), field(rec, c.span)
	if srcTrace == "" || srcSpan == "" {
		return 0, fmt.Errorf("empty TraceID or SpanID")
	}
	pod := field(rec, c.pod)
	spans, ok := c.byPod[pod]
	if !ok {
		rs := c.td.ResourceSpans().AppendEmpty()
		putResource(rs.Resource().Attributes(), pod, c.namespace)
		ss := rs.ScopeSpans().AppendEmpty()
		ss.Scope().SetName(ScopeName)
		spans = ss.Spans()
		c.byPod[pod] = spans
	}
	sp := spans.AppendEmpty()
	tid, tmapped := TraceID(srcTrace)
	sid, smapped := SpanID(srcSpan)
	sp.SetTraceID(tid)
	sp.SetSpanID(sid)
	if p := field(rec, c.parent); p != "" && p != "root" {
		pid, _ := SpanID(p)
		sp.SetParentSpanID(pid)
	}
	sp.SetName(field(rec, c.op))
	sp.SetStartTimestamp(pcommon.Timestamp(start))
	sp.SetEndTimestamp(pcommon.Timestamp(max(end, start)))
	if tmapped {
		sp.Attributes().PutStr(AttrSourceTraceID, srcTrace)
	}
	if smapped {
		sp.Attributes().PutStr(AttrSourceSpanID, srcSpan)
	}
	return 1, nil
}

func (c *traceConv) flush(ctx context.Context, s *Sender) (int64, error) {
	td := c.td
	c.reset()
	if td.SpanCount() == 0 {
		return 0, nil
	}
	return s.Traces(ctx, td)
}
