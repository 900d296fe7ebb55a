package replay

import (
	"context"
	"encoding/json"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// logConv maps Timestamp,TimeUnixNano,Node,PodName,Container,TraceID,SpanID,
// Log rows to log records, one resource per pod, container and node.
type logConv struct {
	ts, tsText, node, pod, container, trace, span, body int
	namespace                                           string
	ld                                                  plog.Logs
	byRes                                               map[[3]string]plog.LogRecordSlice
}

func newLogConv(path string, cols columns, namespace string) (*logConv, error) {
	idx, err := cols.need(path, "PodName", "Log")
	if err != nil {
		return nil, err
	}
	c := &logConv{pod: idx[0], body: idx[1], namespace: namespace,
		ts: cols.opt("TimeUnixNano"), tsText: cols.opt("Timestamp"),
		node: cols.opt("Node", "NodeName"), container: cols.opt("Container", "ContainerName"),
		trace: cols.opt("TraceID"), span: cols.opt("SpanID")}
	if c.ts < 0 && c.tsText < 0 {
		_, err := cols.need(path, "TimeUnixNano")
		return nil, err
	}
	c.reset()
	return c, nil
}

func (c *logConv) reset() {
	c.ld = plog.NewLogs()
	c.byRes = map[[3]string]plog.LogRecordSlice{}
}

func (c *logConv) rowTime(rec []string) (int64, error) {
	if c.ts >= 0 {
		if v, err := parseUnixNano(field(rec, c.ts)); err == nil || c.tsText < 0 {
			return v, err
		}
	}
	return parseGoTime(field(rec, c.tsText))
}

func (c *logConv) add(rec []string) (int, error) {
	t, err := c.rowTime(rec)
	if err != nil {
		return 0, err
	}
	key := [3]string{field(rec, c.pod), field(rec, c.container), field(rec, c.node)}
	logs, ok := c.byRes[key]
	if !ok {
		rl := c.ld.ResourceLogs().AppendEmpty()
		attrs := rl.Resource().Attributes()
		putResource(attrs, key[0], c.namespace)
		if key[1] != "" {
			attrs.PutStr("k8s.container.name", key[1])
		}
		if key[2] != "" {
			attrs.PutStr("k8s.node.name", key[2])
		}
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName(ScopeName)
		logs = sl.LogRecords()
		c.byRes[key] = logs
	}
	lr := logs.AppendEmpty()
	lr.SetTimestamp(pcommon.Timestamp(t))
	lr.SetObservedTimestamp(pcommon.Timestamp(t))
	body := field(rec, c.body)
	lr.Body().SetStr(body)
	if text, num := Severity(body); num != plog.SeverityNumberUnspecified {
		lr.SetSeverityText(text)
		lr.SetSeverityNumber(num)
	}
	if src := field(rec, c.trace); src != "" {
		id, mapped := TraceID(src)
		lr.SetTraceID(id)
		if mapped {
			lr.Attributes().PutStr(AttrSourceTraceID, src)
		}
	}
	if src := field(rec, c.span); src != "" {
		id, mapped := SpanID(src)
		lr.SetSpanID(id)
		if mapped {
			lr.Attributes().PutStr(AttrSourceSpanID, src)
		}
	}
	return 1, nil
}

func (c *logConv) flush(ctx context.Context, s *Sender) (int64, error) {
	ld := c.ld
	c.reset()
	if ld.LogRecordCount() == 0 {
		return 0, nil
	}
	return s.Logs(ctx, ld)
}

// Severity finds a severity in a JSON log line: a "severity", "level",
// "lvl" or "loglevel" field of the line itself or, for container runtime
// lines {"log": "<application line>", ...}, of the embedded application
// line. It returns the source text and its OTLP severity number
// (Unspecified when there is none or it is not recognised).
func Severity(line string) (string, plog.SeverityNumber) {
	var outer map[string]any
	if json.Unmarshal([]byte(line), &outer) != nil {
		return "", plog.SeverityNumberUnspecified
	}
	if inner, ok := outer["log"].(string); ok {
		var m map[string]any
		if json.Unmarshal([]byte(strings.TrimSpace(inner)), &m) == nil {
			if text, num := severityOf(m); num != plog.SeverityNumberUnspecified {
				return text, num
			}
		}
	}
	return severityOf(outer)
}

func severityOf(m map[string]any) (string, plog.SeverityNumber) {
	for k, v := range m {
		switch strings.ToLower(k) {
		case "severity", "level", "lvl", "loglevel", "log.level":
			if s, ok := v.(string); ok {
				if num := severityNumber(s); num != plog.SeverityNumberUnspecified {
					return s, num
				}
			}
		}
	}
	return "", plog.SeverityNumberUnspecified
}

func severityNumber(s string) plog.SeverityNumber {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "trace", "verbose":
		return plog.SeverityNumberTrace
	case "debug", "dbug":
		return plog.SeverityNumberDebug
	case "info", "information", "informational", "notice":
		return plog.SeverityNumberInfo
	case "warn", "warning":
		return plog.SeverityNumberWarn
	case "error", "err", "eror":
		return plog.SeverityNumberError
	case "fatal", "critical", "crit", "panic", "alert", "emergency", "emerg":
		return plog.SeverityNumberFatal
	}
	return plog.SeverityNumberUnspecified
}
