package otlpconv

import (
	"google.golang.org/protobuf/encoding/protowire"
)

// Scanned is what a scan learned of a request it vouches for.
type Scanned struct {
	Records int // spans or log records
	// MinTime and MaxTime bound the records' stored times in unix
	// nanoseconds (a span's start, a log record's time or else its
	// observed time), so a gateway can check time bounds without decoding.
	MinTime, MaxTime uint64
}

// ScanTraces vouches for a protobuf ExportTraceServiceRequest without
// decoding it: ok means pdata would decode data without error and every
// span and span link has a non-zero trace id and span id, so a gateway may
// accept the bytes as they are; the Scanned then counts the spans and
// bounds their start times. It allocates nothing. ok is false for anything
// else — malformed input, but also shapes it does not model (groups, the
// pre-1.0 instrumentation-library field, deeply nested values): the caller
// decodes those with pdata, which words the error or filters the records.
func ScanTraces(data []byte) (Scanned, bool) {
	return scanRequest(data, scanSpan)
}

// ScanLogs is ScanTraces for an ExportLogsServiceRequest. It also declines
// a request with a record that has neither time nor observed time (the
// gateway stamps those) and records whose ids pdata would refuse; log
// records may have no trace or span id.
func ScanLogs(data []byte) (Scanned, bool) {
	return scanRequest(data, scanLogRecord)
}

// maxScanDepth bounds nested attribute values; deeper ones go to pdata
// (which allows 100).
const maxScanDepth = 16

// scanRequest: Export{Trace,Logs}ServiceRequest { repeated Resource{Spans,Logs} = 1 },
// Resource{Spans,Logs} { Resource resource = 1; repeated Scope{Spans,Logs} = 2;
// string schema_url = 3 }. The deprecated field 1000 is declined.
func scanRequest(data []byte, record func(r reader) (uint64, bool)) (Scanned, bool) {
	sc := Scanned{MinTime: ^uint64(0)}
	ok := scanFields(reader{data: data, end: len(data)}, func(d []byte, f field) bool {
		if f.num != 1 {
			return unknownField(f)
		}
		return f.typ == protowire.BytesType && scanFields(sub(d, f), func(d []byte, f field) bool {
			switch f.num {
			case 1:
				return f.typ == protowire.BytesType && scanResource(sub(d, f))
			case 2:
				if f.typ != protowire.BytesType {
					return false
				}
				return scanScopeRecords(sub(d, f), record, &sc)
			case 3:
				return f.typ == protowire.BytesType
			}
			return unknownField(f) && f.num != 1000
		})
	})
	if sc.Records == 0 {
		sc.MinTime = 0
	}
	return sc, ok
}

// scanFields calls fn for each field of r's message; false if the
// message is malformed or fn says so.
func scanFields(r reader, fn func(d []byte, f field) bool) bool {
	var f field
	for {
		more, err := r.next(&f)
		if err != nil {
			return false
		}
		if !more {
			return true
		}
		if !fn(r.data, f) {
			return false
		}
	}
}

// unknownField: pdata skips fields it does not know (reader.next has
// already consumed the value; it declines groups).
func unknownField(field) bool { return true }

// scanResource: Resource { repeated KeyValue attributes = 1;
// uint32 dropped_attributes_count = 2; repeated EntityRef entity_refs = 3 }.
func scanResource(r reader) bool {
	return scanFields(r, func(d []byte, f field) bool {
		switch f.num {
		case 1:
			return f.typ == protowire.BytesType && scanKeyValue(sub(d, f), 0)
		case 2:
			return f.typ == protowire.VarintType
		case 3:
			return f.typ == protowire.BytesType && scanEntityRef(sub(d, f))
		}
		return unknownField(f)
	})
}

// scanEntityRef: EntityRef { string schema_url = 1; string type = 2;
// repeated string id_keys = 3; repeated string description_keys = 4 }.
func scanEntityRef(r reader) bool {
	return scanFields(r, func(_ []byte, f field) bool {
		if f.num >= 1 && f.num <= 4 {
			return f.typ == protowire.BytesType
		}
		return unknownField(f)
	})
}

// scanScope: InstrumentationScope { string name = 1; string version = 2;
// repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4 }.
func scanScope(r reader) bool {
	return scanFields(r, func(d []byte, f field) bool {
		switch f.num {
		case 1, 2:
			return f.typ == protowire.BytesType
		case 3:
			return f.typ == protowire.BytesType && scanKeyValue(sub(d, f), 0)
		case 4:
			return f.typ == protowire.VarintType
		}
		return unknownField(f)
	})
}

// scanKeyValue: KeyValue { string key = 1; AnyValue value = 2;
// int32 key_strindex = 3 }. Attributes are most of a request: this and
// scanAnyValue loop without closures.
func scanKeyValue(r reader, depth int) bool {
	if depth > maxScanDepth {
		return false
	}
	var f field
	for {
		more, err := r.next(&f)
		if err != nil {
			return false
		}
		if !more {
			return true
		}
		switch f.num {
		case 1:
			if f.typ != protowire.BytesType {
				return false
			}
		case 2:
			if f.typ != protowire.BytesType || !scanAnyValue(sub(r.data, f), depth+1) {
				return false
			}
		case 3:
			if f.typ != protowire.VarintType {
				return false
			}
		}
	}
}

// scanAnyValue: AnyValue { oneof value { string = 1; bool = 2; int64 = 3;
// double = 4; ArrayValue = 5; KeyValueList = 6; bytes = 7;
// int32 string_value_strindex = 8 } }; ArrayValue { repeated AnyValue = 1 },
// KeyValueList { repeated KeyValue = 1 }.
func scanAnyValue(r reader, depth int) bool {
	if depth > maxScanDepth {
		return false
	}
	var f field
	for {
		more, err := r.next(&f)
		if err != nil {
			return false
		}
		if !more {
			return true
		}
		ok := true
		switch f.num {
		case 1, 7:
			ok = f.typ == protowire.BytesType
		case 2, 3, 8:
			ok = f.typ == protowire.VarintType
		case 4:
			ok = f.typ == protowire.Fixed64Type
		case 5, 6:
			ok = f.typ == protowire.BytesType && scanValueList(sub(r.data, f), f.num == 5, depth)
		}
		if !ok {
			return false
		}
	}
}

// scanValueList: the elements (field 1) of an ArrayValue (AnyValues) or a
// KeyValueList (KeyValues).
func scanValueList(r reader, array bool, depth int) bool {
	return scanFields(r, func(d []byte, f field) bool {
		if f.num != 1 {
			return unknownField(f)
		}
		if f.typ != protowire.BytesType {
			return false
		}
		if array {
			return scanAnyValue(sub(d, f), depth+1)
		}
		return scanKeyValue(sub(d, f), depth+1)
	})
}

// scanAttrs is the common "repeated KeyValue" field check.
func scanAttrs(d []byte, f field) bool {
	return f.typ == protowire.BytesType && scanKeyValue(sub(d, f), 0)
}

// scanScopeRecords: Scope{Spans,Logs} { InstrumentationScope scope = 1;
// repeated Span spans / LogRecord log_records = 2; string schema_url = 3 };
// record checks one span or log record and returns its time, which sc's
// bounds take in.
func scanScopeRecords(r reader, record func(r reader) (uint64, bool), sc *Scanned) bool {
	return scanFields(r, func(d []byte, f field) bool {
		switch f.num {
		case 1:
			return f.typ == protowire.BytesType && scanScope(sub(d, f))
		case 2:
			if f.typ != protowire.BytesType {
				return false
			}
			t, ok := record(sub(d, f))
			sc.Records++
			sc.MinTime, sc.MaxTime = min(sc.MinTime, t), max(sc.MaxTime, t)
			return ok
		case 3:
			return f.typ == protowire.BytesType
		}
		return unknownField(f)
	})
}

// idState tracks an id field; pdata keeps the last occurrence.
type idState uint8

const (
	idMissing idState = iota // absent, empty or all zeros
	idSet
)

// scanID checks an id's length as pdata does (empty or exactly size) and
// whether it has a non-zero byte.
func scanID(d []byte, f field, size int) (idState, bool) {
	if f.typ != protowire.BytesType {
		return 0, false
	}
	n := f.end - f.start
	if n == 0 {
		return idMissing, true
	}
	if n != size {
		return 0, false
	}
	for _, c := range d[f.start:f.end] {
		if c != 0 {
			return idSet, true
		}
	}
	return idMissing, true
}

// scanSpan: see opentelemetry-proto trace/v1 Span. Trace and span id must
// be set and non-zero (the gateway's filter rejects the span otherwise).
// It returns the span's start time.
func scanSpan(r reader) (uint64, bool) {
	traceID, spanID := idMissing, idMissing
	var start uint64
	var f field
	for {
		more, err := r.next(&f)
		if err != nil {
			return 0, false
		}
		if !more {
			return start, traceID == idSet && spanID == idSet
		}
		ok := true
		switch f.num {
		case 1:
			traceID, ok = scanID(r.data, f, 16)
		case 2:
			spanID, ok = scanID(r.data, f, 8)
		case 4:
			_, ok = scanID(r.data, f, 8)
		case 3, 5:
			ok = f.typ == protowire.BytesType
		case 6, 10, 12, 14:
			ok = f.typ == protowire.VarintType
		case 7:
			start, ok = f.u, f.typ == protowire.Fixed64Type
		case 8:
			ok = f.typ == protowire.Fixed64Type
		case 16:
			ok = f.typ == protowire.Fixed32Type
		case 9:
			ok = scanAttrs(r.data, f)
		case 11:
			ok = f.typ == protowire.BytesType && scanEvent(sub(r.data, f))
		case 13:
			ok = f.typ == protowire.BytesType && scanLink(sub(r.data, f))
		case 15:
			ok = f.typ == protowire.BytesType && scanStatus(sub(r.data, f))
		}
		if !ok {
			return 0, false
		}
	}
}

// scanEvent: Span.Event { fixed64 time_unix_nano = 1; string name = 2;
// repeated KeyValue attributes = 3; uint32 dropped_attributes_count = 4 }.
func scanEvent(r reader) bool {
	return scanFields(r, func(d []byte, f field) bool {
		switch f.num {
		case 1:
			return f.typ == protowire.Fixed64Type
		case 2:
			return f.typ == protowire.BytesType
		case 3:
			return scanAttrs(d, f)
		case 4:
			return f.typ == protowire.VarintType
		}
		return unknownField(f)
	})
}

// scanLink: Span.Link { bytes trace_id = 1; bytes span_id = 2;
// string trace_state = 3; repeated KeyValue attributes = 4;
// uint32 dropped_attributes_count = 5; fixed32 flags = 6 }; both ids set.
func scanLink(r reader) bool {
	traceID, spanID := idMissing, idMissing
	ok := scanFields(r, func(d []byte, f field) bool {
		var ok bool
		switch f.num {
		case 1:
			traceID, ok = scanID(d, f, 16)
			return ok
		case 2:
			spanID, ok = scanID(d, f, 8)
			return ok
		case 3:
			return f.typ == protowire.BytesType
		case 4:
			return scanAttrs(d, f)
		case 5:
			return f.typ == protowire.VarintType
		case 6:
			return f.typ == protowire.Fixed32Type
		}
		return unknownField(f)
	})
	return ok && traceID == idSet && spanID == idSet
}

// scanStatus: Status { string message = 2; StatusCode code = 3 } (field 1
// was the deprecated code, unknown to pdata).
func scanStatus(r reader) bool {
	return scanFields(r, func(_ []byte, f field) bool {
		switch f.num {
		case 2:
			return f.typ == protowire.BytesType
		case 3:
			return f.typ == protowire.VarintType
		}
		return unknownField(f)
	})
}

// scanLogRecord: see opentelemetry-proto logs/v1 LogRecord. A record needs
// a non-zero time or observed time (pdata keeps the last occurrence); it
// returns the time the record is stored under: its time, else observed.
func scanLogRecord(r reader) (uint64, bool) {
	var t, observed uint64
	ok := scanFields(r, func(d []byte, f field) bool {
		switch f.num {
		case 1:
			t = f.u
			return f.typ == protowire.Fixed64Type
		case 11:
			observed = f.u
			return f.typ == protowire.Fixed64Type
		case 2:
			return f.typ == protowire.VarintType
		case 3, 12:
			return f.typ == protowire.BytesType
		case 5:
			return f.typ == protowire.BytesType && scanAnyValue(sub(d, f), 0)
		case 6:
			return scanAttrs(d, f)
		case 7:
			return f.typ == protowire.VarintType
		case 8:
			return f.typ == protowire.Fixed32Type
		case 9:
			_, ok := scanID(d, f, 16)
			return ok
		case 10:
			_, ok := scanID(d, f, 8)
			return ok
		}
		return unknownField(f)
	})
	if t == 0 {
		t = observed
	}
	return t, ok && t != 0
}

// sub is a reader over the length-delimited field f of data.
func sub(data []byte, f field) reader { return reader{data: data, pos: f.start, end: f.end} }
