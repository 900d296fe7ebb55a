package gateway

import (
	"context"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// logsSignal is OTLP logs. pdata already checks id lengths; trace and span
// ids may be empty on a log record, so only times are filtered.
var logsSignal = signal[plogotlp.ExportRequest]{
	name:           "logs",
	httpPath:       "/v1/logs",
	grpcMethod:     "/opentelemetry.proto.collector.logs.v1.LogsService/Export",
	newRequest:     plogotlp.NewExportRequest,
	unmarshalProto: plogotlp.ExportRequest.UnmarshalProto,
	unmarshalJSON:  plogotlp.ExportRequest.UnmarshalJSON,
	filter:         filterLogs,
	unit:           "log record",
	records:        func(r plogotlp.ExportRequest) int { return r.Logs().LogRecordCount() },
	protoSize: func(r plogotlp.ExportRequest) int {
		return (&plog.ProtoMarshaler{}).LogsSize(r.Logs())
	},
	// The scanner declines records without a time, which publish stamps.
	scan:    otlpconv.ScanLogs,
	encoded: bus.SignalLogs,
	publish: func(ctx context.Context, p Publisher, tenantID string, r plogotlp.ExportRequest) error {
		stampObserved(r.Logs(), time.Now())
		return p.PublishLogs(ctx, tenantID, r.Logs())
	},
	response: func(enc encoding, rejected int, msg string) ([]byte, error) {
		resp := plogotlp.NewExportResponse()
		if rejected > 0 {
			resp.PartialSuccess().SetRejectedLogRecords(int64(rejected))
			resp.PartialSuccess().SetErrorMessage(msg)
		}
		if enc == encJSON {
			return resp.MarshalJSON()
		}
		return resp.MarshalProto()
	},
}

// filterLogs removes log records whose time (else observed time) is
// outside w; records with neither are stamped now by publish.
func filterLogs(req plogotlp.ExportRequest, w window, rj *rejects) {
	rls := req.Logs().ResourceLogs()
	for i := range rls.Len() {
		sls := rls.At(i).ScopeLogs()
		for j := range sls.Len() {
			k := -1
			sls.At(j).LogRecords().RemoveIf(func(r plog.LogRecord) bool {
				k++
				t, field := r.Timestamp(), ".timeUnixNano"
				if t == 0 {
					t, field = r.ObservedTimestamp(), ".observedTimeUnixNano"
				}
				if t == 0 {
					return false
				}
				reason, problem := rj.check(w, uint64(t))
				if reason == "" {
					return false
				}
				rj.add(reason, 1, "resourceLogs["+strconv.Itoa(i)+"].scopeLogs["+strconv.Itoa(j)+
					"].logRecords["+strconv.Itoa(k)+"]"+field, problem)
				return true
			})
		}
	}
}

// stampObserved sets the observed time of records that have neither time
// nor observed time to now: the gateway is where they were observed. Doing
// it before publishing keeps a record's stored time the same on every
// delivery from the bus.
func stampObserved(ld plog.Logs, now time.Time) {
	ts := pcommon.NewTimestampFromTime(now)
	rls := ld.ResourceLogs()
	for i := range rls.Len() {
		sls := rls.At(i).ScopeLogs()
		for j := range sls.Len() {
			recs := sls.At(j).LogRecords()
			for k := range recs.Len() {
				if r := recs.At(k); r.Timestamp() == 0 && r.ObservedTimestamp() == 0 {
					r.SetObservedTimestamp(ts)
				}
			}
		}
	}
}
