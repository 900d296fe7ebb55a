package chstore

import (
	"context"
	"time"

	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// eventColumns are the container_events columns InsertEvents writes, in
// the order of eventBatch.columns.
var eventColumns = []string{
	"tenant_id", "date", "timestamp", "retention_class", "event_id",
	"time_unix_nano", "observed_time_unix_nano", "source", "type", "severity", "severity_text",
	"reason", "message", "container_id", "container_id_short", "container_name",
	"k8s_pod_uid", "k8s_pod_name", "k8s_namespace_name", "k8s_node_name", "workload", "image",
	"process_name", "process_cmdline", "user_name", "exit_code", "tags", "field_keys", "field_values",
}

var insertEventsSQL = insertSQL("container_events", eventColumns)

// InsertEvents writes normalized container events in one insert. The same
// event inserted twice keeps its id (reads dedup by it).
func (s *Store) InsertEvents(ctx context.Context, evs []events.Event) error {
	return s.InsertEventsClassified(ctx, evs, nil)
}

// InsertEventsClassified is InsertEvents with classes[i] the retention
// class of evs[i] (nil: every event the default class).
func (s *Store) InsertEventsClassified(ctx context.Context, evs []events.Event, classes []string) error {
	if len(evs) == 0 {
		return nil
	}
	n := len(evs)
	var (
		tenant, retention, eid                     = make([]string, n), make([]string, n), make([]string, n)
		date, ts                                   = make([]time.Time, n), make([]time.Time, n)
		timeNs, observedNs                         = make([]uint64, n), make([]uint64, n)
		source, typ, sevText, reason, msg          = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		sev                                        = make([]uint8, n)
		cid, cidShort, cname                       = make([]string, n), make([]string, n), make([]string, n)
		podUID, podName, ns, node, workload, image = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		procName, procCmd, user                    = make([]string, n), make([]string, n), make([]string, n)
		exit                                       = make([]int32, n)
		tags, keys, vals                           = make([][]string, n), make([][]string, n), make([][]string, n)
	)
	for i := range evs {
		e := &evs[i]
		t := time.Unix(0, int64(min(e.TimeUnixNano, 1<<63-1))).UTC()
		tenant[i], retention[i], eid[i] = e.TenantID, otlpconv.DefaultRetentionClass, string(e.ID[:])
		if classes != nil {
			retention[i] = classes[i]
		}
		date[i], ts[i] = t, t
		timeNs[i], observedNs[i] = e.TimeUnixNano, e.ObservedUnixNano
		source[i], typ[i], sev[i], sevText[i], reason[i], msg[i] = e.Source, e.Type, e.Severity, e.SeverityText, e.Reason, e.Message
		cid[i], cidShort[i], cname[i] = e.ContainerID, e.ContainerIDShort(), e.ContainerName
		podUID[i], podName[i], ns[i], node[i], workload[i], image[i] = e.PodUID, e.PodName, e.Namespace, e.NodeName, e.Workload, e.Image
		procName[i], procCmd[i], user[i] = e.ProcessName, e.ProcessCmdline, e.UserName
		exit[i] = e.ExitCode
		tags[i], keys[i], vals[i] = nonNil(e.Tags), nonNil(e.FieldKeys), nonNil(e.FieldValues)
	}
	cols := []any{
		tenant, date, ts, retention, eid,
		timeNs, observedNs, source, typ, sev, sevText,
		reason, msg, cid, cidShort, cname,
		podUID, podName, ns, node, workload, image,
		procName, procCmd, user, exit, tags, keys, vals,
	}
	return s.insertColumns(ctx, insertEventsSQL, eventColumns, cols, n, "container events")
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
