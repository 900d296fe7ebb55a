package loadgen

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// wireField says what Template.index does with one field of a message:
// descend into it (a nested message), or record where a trace id or a
// unix-nano time is. Fields not listed are skipped.
type wireField struct {
	num  protowire.Number
	kind wireKind
	sub  []wireField // for wireDescend
}

type wireKind uint8

const (
	wireDescend  wireKind = iota
	wireTraceID           // bytes, 16 long (empty ids are not encoded)
	wireUnixNano          // fixed64
)

// Field numbers of opentelemetry-proto (collector/trace/v1,
// collector/logs/v1, trace/v1/trace.proto, logs/v1/logs.proto).
var (
	spanFields = []wireField{
		{num: 1, kind: wireTraceID},  // Span.trace_id
		{num: 7, kind: wireUnixNano}, // Span.start_time_unix_nano
		{num: 8, kind: wireUnixNano}, // Span.end_time_unix_nano
		{num: 11, kind: wireDescend, sub: []wireField{ // Span.events
			{num: 1, kind: wireUnixNano}, // Event.time_unix_nano
		}},
		{num: 13, kind: wireDescend, sub: []wireField{ // Span.links
			{num: 1, kind: wireTraceID}, // Link.trace_id
		}},
	}
	traceRequestFields = []wireField{
		{num: 1, kind: wireDescend, sub: []wireField{ // ExportTraceServiceRequest.resource_spans
			{num: 2, kind: wireDescend, sub: []wireField{ // ResourceSpans.scope_spans
				{num: 2, kind: wireDescend, sub: spanFields}, // ScopeSpans.spans
			}},
		}},
	}
	logRecordFields = []wireField{
		{num: 1, kind: wireUnixNano},  // LogRecord.time_unix_nano
		{num: 11, kind: wireUnixNano}, // LogRecord.observed_time_unix_nano
		{num: 9, kind: wireTraceID},   // LogRecord.trace_id
	}
	logsRequestFields = []wireField{
		{num: 1, kind: wireDescend, sub: []wireField{ // ExportLogsServiceRequest.resource_logs
			{num: 2, kind: wireDescend, sub: []wireField{ // ResourceLogs.scope_logs
				{num: 2, kind: wireDescend, sub: logRecordFields}, // ScopeLogs.log_records
			}},
		}},
	}
)

// index walks the message msg, which starts at offset base of t.body, and
// records the offsets of the trace ids and times schema names.
func (t *Template) index(msg []byte, base int, schema []wireField) error {
	for i := 0; i < len(msg); {
		num, typ, n := protowire.ConsumeTag(msg[i:])
		if n < 0 {
			return fmt.Errorf("offset %d: %w", base+i, protowire.ParseError(n))
		}
		i += n
		f := lookupField(schema, num)
		switch {
		case typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(msg[i:])
			if m < 0 {
				return fmt.Errorf("field %d at %d: %w", num, base+i, protowire.ParseError(m))
			}
			at := base + i + m - len(v) // the value, after its length
			switch {
			case f == nil:
			case f.kind == wireDescend:
				if err := t.index(v, at, f.sub); err != nil {
					return err
				}
			case f.kind == wireTraceID && len(v) == 16:
				t.ids = append(t.ids, int32(at))
			}
			i += m
		case typ == protowire.Fixed64Type && f != nil && f.kind == wireUnixNano:
			if len(msg)-i < 8 {
				return fmt.Errorf("field %d at %d: truncated fixed64", num, base+i)
			}
			t.times = append(t.times, int32(base+i))
			i += 8
		default:
			m := protowire.ConsumeFieldValue(num, typ, msg[i:])
			if m < 0 {
				return fmt.Errorf("field %d at %d: %w", num, base+i, protowire.ParseError(m))
			}
			i += m
		}
	}
	return nil
}

func lookupField(schema []wireField, num protowire.Number) *wireField {
	for i := range schema {
		if schema[i].num == num {
			return &schema[i]
		}
	}
	return nil
}
