package gateway

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// encoding is the wire encoding of an OTLP/HTTP body.
type encoding int

const (
	encProto encoding = iota
	encJSON
)

func (e encoding) String() string {
	if e == encJSON {
		return "json"
	}
	return "protobuf"
}

// contentType is the Content-Type of bodies in encoding e.
func (e encoding) contentType() string {
	if e == encJSON {
		return "application/json"
	}
	return "application/x-protobuf"
}

// signal describes one OTLP signal: everything the two transports need to
// receive it. R is the signal's pdata export request type. Adding logs or
// metrics means writing one signal value, one small gRPC adapter (see
// grpc.go) and one entry in Service.registerSignals; the HTTP handler, body
// limits, auth, load shedding, validation, publishing, metrics and error
// answers are shared.
type signal[R any] struct {
	name       string // metric label and log field: "traces"
	httpPath   string // OTLP/HTTP path: "/v1/traces"
	grpcMethod string // full gRPC method name of the OTLP Export call

	newRequest     func() R
	unmarshalProto func(R, []byte) error
	unmarshalJSON  func(R, []byte) error
	// filter removes, in place, the records that fail checks pdata does not
	// make (e.g. all-zero ids) or whose time is outside the tenant's window,
	// and tallies them by reason (a metrics label, e.g. reasonInvalidID)
	// with the first offending field. The rest is accepted: OTLP partial
	// success.
	filter func(R, window, *rejects)
	// unit names one record in messages: "span".
	unit string
	// records counts the signal's records (spans, log records, points).
	records func(R) int
	// protoSize is the request's encoded protobuf size, for the size metric.
	protoSize func(R) int
	// publish hands the request to the bus; nil only once it acknowledged.
	publish func(ctx context.Context, p Publisher, tenantID string, req R) error
	// scan, when set, vouches for a protobuf body without decoding it: it
	// reports the records (and their time range) of a request that pdata
	// decodes without error, that filter leaves whole if the times are in
	// the window, and that publish would store unchanged. Such a body is
	// published under encoded as the bytes received; see receive.
	scan    func([]byte) (otlpconv.Scanned, bool)
	encoded bus.Signal
	// response encodes the signal's export response: empty on full success,
	// with partial_success {rejected_<records>, error_message} when rejected
	// is positive.
	response func(enc encoding, rejected int, msg string) ([]byte, error)
}

var tracesSignal = signal[ptraceotlp.ExportRequest]{
	name:           "traces",
	httpPath:       "/v1/traces",
	grpcMethod:     "/opentelemetry.proto.collector.trace.v1.TraceService/Export",
	newRequest:     ptraceotlp.NewExportRequest,
	unmarshalProto: ptraceotlp.ExportRequest.UnmarshalProto,
	unmarshalJSON:  ptraceotlp.ExportRequest.UnmarshalJSON,
	filter:         filterTraces,
	unit:           "span",
	records:        func(r ptraceotlp.ExportRequest) int { return r.Traces().SpanCount() },
	protoSize: func(r ptraceotlp.ExportRequest) int {
		return (&ptrace.ProtoMarshaler{}).TracesSize(r.Traces())
	},
	publish: func(ctx context.Context, p Publisher, tenantID string, r ptraceotlp.ExportRequest) error {
		return p.PublishTraces(ctx, tenantID, r.Traces())
	},
	scan:    otlpconv.ScanTraces,
	encoded: bus.SignalTraces,
	response: func(enc encoding, rejected int, msg string) ([]byte, error) {
		resp := ptraceotlp.NewExportResponse()
		if rejected > 0 {
			resp.PartialSuccess().SetRejectedSpans(int64(rejected))
			resp.PartialSuccess().SetErrorMessage(msg)
		}
		if enc == encJSON {
			return resp.MarshalJSON()
		}
		return resp.MarshalProto()
	},
}

// maxDecodeErrorLen caps how much of a parser's error text is echoed back.
const maxDecodeErrorLen = 512

// clipDecodeError is a parser's error text, at most maxDecodeErrorLen
// bytes of it.
func clipDecodeError(err error) string {
	msg := err.Error()
	if len(msg) > maxDecodeErrorLen {
		msg = msg[:maxDecodeErrorLen] + "..."
	}
	return msg
}

// decode parses an OTLP/HTTP body of signal sig. It never panics, whatever
// the input; on failure it returns an apperr of KindInvalid that says what
// failed, and the reject reason.
func decode[R any](sig *signal[R], body []byte, enc encoding) (R, string, error) {
	req := sig.newRequest()
	var err error
	if enc == encJSON {
		err = sig.unmarshalJSON(req, body)
		// pdata's streaming parser stops after the top-level object and so
		// accepts trailing garbage; insist on one well-formed JSON value.
		if err == nil && !json.Valid(body) {
			return req, reasonMalformed, apperr.New(apperr.KindInvalid,
				"invalid OTLP JSON body: not a single well-formed JSON value (trailing data?)")
		}
	} else {
		err = sig.unmarshalProto(req, body)
	}
	if err == nil {
		return req, "", nil
	}
	msg := clipDecodeError(err)
	prefix := "invalid OTLP " + enc.String() + " body: "
	if isIDError(msg) {
		return req, reasonInvalidID, apperr.New(apperr.KindInvalid,
			"%sa trace or span id is malformed (traceId must be 16 bytes, spanId 8 bytes; in JSON 32 and 16 hex digits): %s", prefix, msg)
	}
	return req, reasonMalformed, apperr.New(apperr.KindInvalid, "%s%s", prefix, msg)
}

// isIDError recognises pdata's errors for ids of the wrong length or bad hex.
func isIDError(msg string) bool {
	return strings.Contains(msg, "ID.UnmarshalJSONIter") || // JSON: length mismatch or bad hex
		strings.Contains(msg, "invalid TraceID length") ||
		strings.Contains(msg, "invalid SpanID length")
}

// filterTraces removes the spans the OTLP spec forbids but pdata lets
// through — all-zero trace or span ids, on the span or on one of its
// links — and spans that start outside w. The tally names the first
// offending field by its index in the request as received.
func filterTraces(req ptraceotlp.ExportRequest, w window, rj *rejects) {
	rss := req.Traces().ResourceSpans()
	for i := range rss.Len() {
		sss := rss.At(i).ScopeSpans()
		for j := range sss.Len() {
			k := -1
			sss.At(j).Spans().RemoveIf(func(sp ptrace.Span) bool {
				k++
				reason, field, problem := reasonInvalidID, "", ""
				if field, problem = spanIDProblem(sp); field == "" {
					if reason, problem = rj.check(w, uint64(sp.StartTimestamp())); reason == "" {
						return false
					}
					field = ".startTimeUnixNano"
				}
				rj.add(reason, 1, "resourceSpans["+strconv.Itoa(i)+"].scopeSpans["+strconv.Itoa(j)+
					"].spans["+strconv.Itoa(k)+"]"+field, problem)
				return true
			})
		}
	}
}

const (
	zeroTraceID = "missing or all zeros; a trace id must be 16 bytes with at least one non-zero byte"
	zeroSpanID  = "missing or all zeros; a span id must be 8 bytes with at least one non-zero byte"
)

// spanIDProblem returns the field path suffix (".traceId",
// ".links[2].spanId") and problem of the span's first all-zero id, or "".
func spanIDProblem(sp ptrace.Span) (string, string) {
	if sp.TraceID().IsEmpty() {
		return ".traceId", zeroTraceID
	}
	if sp.SpanID().IsEmpty() {
		return ".spanId", zeroSpanID
	}
	links := sp.Links()
	for l := range links.Len() {
		ln := links.At(l)
		if ln.TraceID().IsEmpty() {
			return ".links[" + strconv.Itoa(l) + "].traceId", zeroTraceID
		}
		if ln.SpanID().IsEmpty() {
			return ".links[" + strconv.Itoa(l) + "].spanId", zeroSpanID
		}
	}
	return "", ""
}
