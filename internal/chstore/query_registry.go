package chstore

import (
	"context"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// Container is what every signal saw of one container (container_sightings
// and container_events), kept after the container is gone for as long as
// its rows are retained.
type Container struct {
	ContainerID   string // the longest form seen (the full runtime id when any source sent it)
	ContainerName string
	PodUID        string
	PodName       string
	Namespace     string
	NodeName      string
	Image         string
	Services      []string // service.name of its spans, logs and metrics
	Signals       []string // spans, logs, metrics, events
	FirstSeenNs   uint64
	LastSeenNs    uint64
	Records       uint64 // rows seen (re-deliveries may count twice)
	// The latest terminating event of the container (OOM kill, error exit)
	// or eviction of its pod, if any.
	TerminationReason string
	TerminationType   string
	TerminatedNs      uint64
	ExitCode          int32 // events.ExitCodeUnknown when not known
}

// Pod is what every signal saw of one pod (by uid).
type Pod struct {
	PodUID      string
	PodName     string
	Namespace   string
	NodeName    string
	Services    []string
	Signals     []string
	FirstSeenNs uint64
	LastSeenNs  uint64
	Containers  []Container // by first seen; only ids, names, image and times are set
}

// containerMatch is the condition (with its args) selecting the rows of a
// container id given in full or as Falco's 12-char prefix: every row whose
// id starts with the 12-char prefix and, when the full id was given, is
// either a short id or that full id.
func containerMatch(col, id string) (string, []any) {
	short := events.ShortContainerID(id)
	cond := "startsWith(" + col + ", ?) AND " + col + " >= ?"
	args := []any{short, short}
	if len(id) > len(short) {
		cond += " AND (length(" + col + ") <= 12 OR " + col + " = ?)"
		args = append(args, id)
	}
	return cond, args
}

const sightingAggSQL = `argMaxIf(container_name, last_seen_unix_nano, container_name != ''),
    argMaxIf(k8s_pod_uid, last_seen_unix_nano, k8s_pod_uid != ''),
    argMaxIf(k8s_pod_name, last_seen_unix_nano, k8s_pod_name != ''),
    argMaxIf(k8s_namespace_name, last_seen_unix_nano, k8s_namespace_name != ''),
    argMaxIf(k8s_node_name, last_seen_unix_nano, k8s_node_name != ''),
    argMaxIf(image, last_seen_unix_nano, image != ''),
    groupUniqArrayIf(service_name, service_name != '' AND signal != 'events'),
    groupUniqArray(signal),
    min(first_seen_unix_nano), max(last_seen_unix_nano), sum(records), count()`

// GetContainer returns the registry record of a container, by its full id
// or 12-char prefix (any runtime form: it is normalized). An id never seen
// is an apperr KindNotFound.
func (s *Store) GetContainer(ctx context.Context, tenantID, containerID string) (Container, error) {
	ctx, cancel := s.readCtx(ctx)
	defer cancel()
	id := otlpconv.NormalizeContainerID(containerID)
	notFound := apperr.New(apperr.KindNotFound, "container %s not found", containerID)
	if id == "" {
		return Container{}, notFound
	}
	cond, cargs := containerMatch("container_id", id)
	query := `SELECT argMax(container_id, length(container_id)), ` + sightingAggSQL + `
FROM container_sightings
WHERE tenant_id = ? AND ` + cond
	var c Container
	var n uint64
	err := s.conn.QueryRow(ctx, query, append([]any{tenantID}, cargs...)...).Scan(&c.ContainerID,
		&c.ContainerName, &c.PodUID, &c.PodName, &c.Namespace, &c.NodeName, &c.Image,
		&c.Services, &c.Signals, &c.FirstSeenNs, &c.LastSeenNs, &c.Records, &n)
	if err != nil {
		return Container{}, readErr(ctx, "get container", err)
	}
	if n == 0 {
		return Container{}, notFound
	}
	slices.Sort(c.Services)
	slices.Sort(c.Signals)
	c.ExitCode = events.ExitCodeUnknown
	if err := s.termination(ctx, tenantID, &c); err != nil {
		return Container{}, err
	}
	return c, nil
}

// termination fills the latest terminating event of the container (or the
// eviction of its pod).
func (s *Store) termination(ctx context.Context, tenantID string, c *Container) error {
	where := "container_id_short = ? AND type IN ('" + events.TypeOOMKilled + "', '" + events.TypeContainerError + "')"
	args := []any{tenantID, events.ShortContainerID(c.ContainerID)}
	if c.PodUID != "" {
		where = "(" + where + ") OR (container_id = '' AND k8s_pod_uid = ? AND type = '" + events.TypeEvicted + "')"
		args = append(args, c.PodUID)
	}
	rows, err := s.conn.Query(ctx, `SELECT type, reason, exit_code, time_unix_nano
FROM container_events
WHERE tenant_id = ? AND (`+where+`)
ORDER BY time_unix_nano DESC
LIMIT 1`, args...)
	if err != nil {
		return readErr(ctx, "get container: termination", err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(&c.TerminationType, &c.TerminationReason, &c.ExitCode, &c.TerminatedNs); err != nil {
			return readErr(ctx, "get container: scan termination", err)
		}
	}
	if err := rows.Err(); err != nil {
		return readErr(ctx, "get container: read termination", err)
	}
	return nil
}

// GetPod returns the registry record of a pod by uid; an unknown uid is an
// apperr KindNotFound.
func (s *Store) GetPod(ctx context.Context, tenantID, podUID string) (Pod, error) {
	ctx, cancel := s.readCtx(ctx)
	defer cancel()
	notFound := apperr.New(apperr.KindNotFound, "pod %s not found", podUID)
	if podUID == "" {
		return Pod{}, notFound
	}
	rows, err := s.conn.Query(ctx, `SELECT container_id, `+sightingAggSQL+`
FROM container_sightings
WHERE tenant_id = ? AND k8s_pod_uid = ?
GROUP BY container_id
ORDER BY container_id`, tenantID, podUID)
	if err != nil {
		return Pod{}, readErr(ctx, "get pod", err)
	}
	defer rows.Close()
	p := Pod{PodUID: podUID}
	var lastSeen uint64
	services, signals := map[string]bool{}, map[string]bool{}
	var containers []Container
	for rows.Next() {
		var c Container
		var n uint64
		if err := rows.Scan(&c.ContainerID, &c.ContainerName, &c.PodUID, &c.PodName, &c.Namespace, &c.NodeName, &c.Image,
			&c.Services, &c.Signals, &c.FirstSeenNs, &c.LastSeenNs, &c.Records, &n); err != nil {
			return Pod{}, readErr(ctx, "get pod: scan", err)
		}
		if p.FirstSeenNs == 0 || c.FirstSeenNs < p.FirstSeenNs {
			p.FirstSeenNs = c.FirstSeenNs
		}
		p.LastSeenNs = max(p.LastSeenNs, c.LastSeenNs)
		if c.LastSeenNs >= lastSeen { // names of the most recent sighting
			lastSeen = c.LastSeenNs
			p.PodName = cmpOr(c.PodName, p.PodName)
			p.Namespace = cmpOr(c.Namespace, p.Namespace)
			p.NodeName = cmpOr(c.NodeName, p.NodeName)
		}
		for _, v := range c.Services {
			services[v] = true
		}
		for _, v := range c.Signals {
			signals[v] = true
		}
		if c.ContainerID != "" {
			containers = append(containers, Container{ContainerID: c.ContainerID, ContainerName: c.ContainerName,
				Image: c.Image, FirstSeenNs: c.FirstSeenNs, LastSeenNs: c.LastSeenNs, ExitCode: events.ExitCodeUnknown})
		}
	}
	if err := rows.Err(); err != nil {
		return Pod{}, readErr(ctx, "get pod: read", err)
	}
	if p.FirstSeenNs == 0 && p.LastSeenNs == 0 && len(containers) == 0 && len(signals) == 0 {
		return Pod{}, notFound
	}
	p.Containers = mergeShortIDs(containers)
	p.Services, p.Signals = sortedKeys(services), sortedKeys(signals)
	return p, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// mergeShortIDs folds containers known by a 12-char id (Falco) into the
// one full id they prefix, if exactly one does; the result is ordered by
// first seen.
func mergeShortIDs(cs []Container) []Container {
	var out []Container
	var shorts []Container
	for _, c := range cs {
		if len(c.ContainerID) <= 12 {
			shorts = append(shorts, c)
		} else {
			out = append(out, c)
		}
	}
	for _, sc := range shorts {
		match := -1
		for i := range out {
			if strings.HasPrefix(out[i].ContainerID, sc.ContainerID) {
				if match >= 0 {
					match = -2
					break
				}
				match = i
			}
		}
		if match < 0 {
			out = append(out, sc)
			continue
		}
		m := &out[match]
		m.FirstSeenNs = min(m.FirstSeenNs, sc.FirstSeenNs)
		m.LastSeenNs = max(m.LastSeenNs, sc.LastSeenNs)
		m.ContainerName = cmpOr(m.ContainerName, sc.ContainerName)
		m.Image = cmpOr(m.Image, sc.Image)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].FirstSeenNs < out[j].FirstSeenNs })
	if out == nil {
		out = []Container{}
	}
	return out
}

// Timeline item kinds.
const (
	TimelineEvent  = "event"
	TimelineLog    = "log"
	TimelineSpan   = "span"
	TimelineMetric = "metric"
)

// TimelineItem is one entry of a container's timeline; exactly the field
// of its Kind is set.
type TimelineItem struct {
	Kind   string
	TimeNs uint64
	Event  *events.Event
	Log    *TimelineLogLine
	Span   *TimelineSpanSummary
	Metric *TimelineMetricPoint
}

// TimelineLogLine is a log record of the timeline.
type TimelineLogLine struct {
	RecordID       string // lower-case hex
	SeverityNumber uint8
	SeverityText   string
	Body           string // text in the otlpconv encoding of BodyType
	BodyType       uint8
	TraceID        string // lower-case hex, "" when none
	SpanID         string
	Service        string
}

// TimelineSpanSummary is a span of the timeline.
type TimelineSpanSummary struct {
	TraceID       string // lower-case hex
	SpanID        string
	Name          string
	Service       string
	Kind          int8
	StatusCode    int8
	StatusMessage string
	DurationNs    uint64
}

// TimelineMetricPoint is a gauge or sum point of the timeline.
type TimelineMetricPoint struct {
	Name      string
	Unit      string
	Type      uint8 // MetricTypeGauge or MetricTypeSum
	SeriesID  uint64
	ValueType uint8 // otlpconv.ValueDouble or otlpconv.ValueInt
	Value     float64
	ValueInt  int64
	Labels    map[string]any
}

// ContainerTimeline returns, oldest first, what happened to one container
// in [start, end]: its events (and the pod-level events of its pod), its
// log records, its spans and its gauge and sum points. Identity is strictly
// the container id (its 12-char prefix, so Falco's short ids match) and its
// pod's uid for rows without a container id; never names. At most limit
// items of each kind are read and the merged result is cut to limit; the
// bool reports whether anything was cut. An unknown container is an apperr
// KindNotFound.
func (s *Store) ContainerTimeline(ctx context.Context, tenantID, containerID string, start, end time.Time, limit int) ([]TimelineItem, bool, error) {
	c, err := s.GetContainer(ctx, tenantID, containerID)
	if err != nil {
		return nil, false, err
	}
	ctx, cancel := s.readCtx(ctx)
	defer cancel()
	if limit <= 0 {
		limit = DefaultSearchLimit
	}
	if end.Before(start) {
		return []TimelineItem{}, false, nil
	}
	startNs, endNs := unixNanos(start), unixNanos(end)
	short := events.ShortContainerID(c.ContainerID)
	var items []TimelineItem
	evs, err := s.eventsOfContainer(ctx, tenantID, short, c.PodUID, startNs, endNs, limit+1)
	if err != nil {
		return nil, false, err
	}
	for i := range evs {
		items = append(items, TimelineItem{Kind: TimelineEvent, TimeNs: evs[i].TimeUnixNano, Event: &evs[i]})
	}
	for _, read := range []func(context.Context, string, string, string, uint64, uint64, int) ([]TimelineItem, error){
		s.timelineLogs, s.timelineSpans, s.timelineMetrics,
	} {
		more, err := read(ctx, tenantID, short, c.PodUID, startNs, endNs, limit+1)
		if err != nil {
			return nil, false, err
		}
		items = append(items, more...)
	}
	rank := map[string]int{TimelineEvent: 0, TimelineSpan: 1, TimelineLog: 2, TimelineMetric: 3}
	sort.SliceStable(items, func(i, j int) bool {
		if items[i].TimeNs != items[j].TimeNs {
			return items[i].TimeNs < items[j].TimeNs
		}
		return rank[items[i].Kind] < rank[items[j].Kind]
	})
	if len(items) > limit {
		return items[:limit], true, nil
	}
	if items == nil {
		items = []TimelineItem{}
	}
	return items, false, nil
}

// identityWhere selects a signal table's rows of the container (by the
// 12-char prefix of container_id) or, without a container id, of its pod.
func identityWhere(short, podUID string) (string, []any) {
	if podUID == "" {
		return "startsWith(container_id, ?)", []any{short}
	}
	return "(startsWith(container_id, ?) OR (container_id = '' AND k8s_pod_uid = ?))", []any{short, podUID}
}

// windowArgs are the args of the date/timestamp/ns window conditions.
func windowArgs(tenantID string, startNs, endNs uint64) []any {
	startSec, endSec := nsSeconds(startNs, -1), nsSeconds(endNs, 1)
	return []any{tenantID,
		dateString(time.Unix(int64(startSec), 0)), dateString(time.Unix(int64(endSec), 0)),
		startSec, endSec, startNs, endNs}
}

const windowWhere = `WHERE tenant_id = ?
  AND date BETWEEN toDate(?) AND toDate(?)
  AND timestamp BETWEEN toDateTime(?) AND toDateTime(?)`

func (s *Store) timelineLogs(ctx context.Context, tenantID, short, podUID string, startNs, endNs uint64, limit int) ([]TimelineItem, error) {
	idw, idArgs := identityWhere(short, podUID)
	query := `SELECT lower(hex(record_id)) AS rid, ` + logTimeExpr + ` AS ts, severity_number, severity_text, body, body_type,
    lower(hex(trace_id)), lower(hex(span_id)), service_name
FROM logs
` + windowWhere + `
  AND ts BETWEEN ? AND ?
  AND ` + idw + `
ORDER BY ts, rid
LIMIT 1 BY rid
LIMIT ?`
	args := append(append(windowArgs(tenantID, startNs, endNs), idArgs...), limit)
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, readErr(ctx, "container timeline: logs", err)
	}
	defer rows.Close()
	var out []TimelineItem
	for rows.Next() {
		var l TimelineLogLine
		var ts uint64
		if err := rows.Scan(&l.RecordID, &ts, &l.SeverityNumber, &l.SeverityText, &l.Body, &l.BodyType,
			&l.TraceID, &l.SpanID, &l.Service); err != nil {
			return nil, readErr(ctx, "container timeline: scan log", err)
		}
		if strings.Trim(l.TraceID, "0") == "" {
			l.TraceID = ""
		}
		if strings.Trim(l.SpanID, "0") == "" {
			l.SpanID = ""
		}
		out = append(out, TimelineItem{Kind: TimelineLog, TimeNs: ts, Log: &l})
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "container timeline: read logs", err)
	}
	return out, nil
}

func (s *Store) timelineSpans(ctx context.Context, tenantID, short, podUID string, startNs, endNs uint64, limit int) ([]TimelineItem, error) {
	idw, idArgs := identityWhere(short, podUID)
	query := `SELECT lower(hex(trace_id)) AS tid, lower(hex(span_id)) AS sid, name, service_name, kind,
    status_code, status_message, start_time_unix_nano, duration_ns
FROM spans
` + windowWhere + `
  AND start_time_unix_nano BETWEEN ? AND ?
  AND ` + idw + `
ORDER BY start_time_unix_nano, tid, sid
LIMIT 1 BY tid, sid
LIMIT ?`
	args := append(append(windowArgs(tenantID, startNs, endNs), idArgs...), limit)
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, readErr(ctx, "container timeline: spans", err)
	}
	defer rows.Close()
	var out []TimelineItem
	for rows.Next() {
		var sp TimelineSpanSummary
		var ts uint64
		if err := rows.Scan(&sp.TraceID, &sp.SpanID, &sp.Name, &sp.Service, &sp.Kind,
			&sp.StatusCode, &sp.StatusMessage, &ts, &sp.DurationNs); err != nil {
			return nil, readErr(ctx, "container timeline: scan span", err)
		}
		out = append(out, TimelineItem{Kind: TimelineSpan, TimeNs: ts, Span: &sp})
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "container timeline: read spans", err)
	}
	return out, nil
}

func (s *Store) timelineMetrics(ctx context.Context, tenantID, short, podUID string, startNs, endNs uint64, limit int) ([]TimelineItem, error) {
	idw, idArgs := identityWhere(short, podUID)
	query := `SELECT metric_name, unit, metric_type, series_id, time_unix_nano, value_type, value, value_int,
    attr_keys, attr_values, attr_types
FROM metric_points
` + windowWhere + `
  AND time_unix_nano BETWEEN ? AND ?
  AND metric_type IN (1, 2) AND value_type != 0
  AND ` + idw + `
ORDER BY time_unix_nano, metric_name, series_id
LIMIT 1 BY series_id, time_unix_nano
LIMIT ?`
	args := append(append(windowArgs(tenantID, startNs, endNs), idArgs...), limit)
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return nil, readErr(ctx, "container timeline: metrics", err)
	}
	defer rows.Close()
	var out []TimelineItem
	for rows.Next() {
		var m TimelineMetricPoint
		var ts uint64
		var keys, vals []string
		var types []uint8
		if err := rows.Scan(&m.Name, &m.Unit, &m.Type, &m.SeriesID, &ts, &m.ValueType, &m.Value, &m.ValueInt,
			&keys, &vals, &types); err != nil {
			return nil, readErr(ctx, "container timeline: scan metric point", err)
		}
		m.Labels = otlpconv.DecodeAttrs(keys, vals, types)
		out = append(out, TimelineItem{Kind: TimelineMetric, TimeNs: ts, Metric: &m})
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "container timeline: read metric points", err)
	}
	return out, nil
}
