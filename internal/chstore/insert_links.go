package chstore

import (
	"context"
	"time"

	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// EventLink is one event → trace link (a row of event_links).
type EventLink struct {
	TenantID            string
	EventID             events.ID
	EventTimeNs         uint64
	TraceID             [16]byte
	TraceStartNs        uint64
	TraceDurationNs     uint64
	MatchKind           string // MatchContainer, MatchPodUID, MatchPodName
	SpanCount           uint32 // spans of the trace on the event's container/pod in the window
	RootService         string
	RootName            string
	Failed              bool // some span of the trace has status error
	BusinessTransaction string
	BusinessKeyNames    []string // parallel to BusinessKeyValues
	BusinessKeyValues   []string
	LinkedAtNs          uint64
	// Class is the retention class of the link (signal "links"); "" is
	// otlpconv.DefaultRetentionClass.
	Class string
}

var eventLinkColumns = []string{
	"tenant_id", "date", "retention_class", "event_id", "event_time_unix_nano", "trace_id",
	"trace_start_unix_nano", "trace_duration_ns", "match_kind", "span_count", "root_service", "root_name",
	"failed", "business_transaction", "business_key_names", "business_key_values", "linked_at_unix_nano",
}

var insertEventLinksSQL = insertSQL("event_links", eventLinkColumns)

// InsertEventLinks writes links in one insert. Writing the same (tenant,
// event, trace) again is harmless: reads keep one row per key.
func (s *Store) InsertEventLinks(ctx context.Context, links []EventLink) error {
	n := len(links)
	var (
		tenant, class, eventID, traceID, kind, rootSvc, rootName, tx = make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		date                             = make([]time.Time, n)
		evTime, trStart, trDur, linkedAt = make([]uint64, n), make([]uint64, n), make([]uint64, n), make([]uint64, n)
		spanCount                        = make([]uint32, n)
		failed                           = make([]uint8, n)
		keyNames, keyValues              = make([][]string, n), make([][]string, n)
	)
	for i := range links {
		l := &links[i]
		tenant[i], class[i] = l.TenantID, l.Class
		if class[i] == "" {
			class[i] = otlpconv.DefaultRetentionClass
		}
		date[i] = time.Unix(0, int64(l.EventTimeNs)).UTC()
		eventID[i], traceID[i] = string(l.EventID[:]), string(l.TraceID[:])
		evTime[i], trStart[i], trDur[i], linkedAt[i] = l.EventTimeNs, l.TraceStartNs, l.TraceDurationNs, l.LinkedAtNs
		kind[i], spanCount[i], rootSvc[i], rootName[i] = l.MatchKind, l.SpanCount, l.RootService, l.RootName
		if l.Failed {
			failed[i] = 1
		}
		tx[i] = l.BusinessTransaction
		keyNames[i], keyValues[i] = linkNonNil(l.BusinessKeyNames), linkNonNil(l.BusinessKeyValues)
	}
	cols := []any{tenant, date, class, eventID, evTime, traceID, trStart, trDur, kind, spanCount, rootSvc, rootName,
		failed, tx, keyNames, keyValues, linkedAt}
	return s.insertColumns(ctx, insertEventLinksSQL, eventLinkColumns, cols, n, "event links")
}

func linkNonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
