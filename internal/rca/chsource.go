package rca

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// CHSource reads the signals from the Aftertrace ClickHouse tables. Every
// aggregation runs in ClickHouse (18.16-compatible SQL: buckets are
// intDiv(ns, step) * step).
type CHSource struct {
	Conn driver.Conn
	// NoSpanCache computes every span bucket with the self-join instead of
	// reusing the buckets stored in rca_span_stats (see span_cache.go).
	NoSpanCache bool
	// Now is the clock deciding which buckets have settled (nil: time.Now).
	Now func() time.Time
}

var _ Source = CHSource{}

func secs(t time.Time) uint32 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	if s > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(s)
}

// nsFilter adds the optional namespace condition.
func nsFilter(r Range, args []any) (string, []any) {
	if r.Namespace == "" {
		return "", args
	}
	return " AND k8s_namespace_name = ?", append(args, r.Namespace)
}

// A span whose children all belong to one other service is a client call:
// its own time (duration minus the callee's server span) is the inbound
// gap of the callee (network, queueing), so it is attributed to the
// callee as SpanInbound; every other span's own time is SpanSelf of its
// service. Parent and child meet on a 64-bit hash of (trace id, span id):
// a narrower join key than the two FixedString(16) ids (≈25 % faster on
// ClickHouse 18.16); a collision among the window's spans (odds ≈ n²/2⁶⁵)
// would only misattribute one span's children.
const spanStatsSQL = `
SELECT sig, svc, pod, op, caller, caller_pod, b, count() AS n, sum(err) AS errs, quantile(0.9)(self) AS p90
FROM (
  SELECT if(child_svcs = 1 AND child_svc != service_name, 'inbound', 'self') AS sig,
         if(sig = 'inbound', child_svc, service_name) AS svc,
         if(sig = 'inbound', child_pod, k8s_pod_name) AS pod,
         name AS op,
         if(sig = 'inbound', service_name, '') AS caller,
         if(sig = 'inbound', k8s_pod_name, '') AS caller_pod,
         intDiv(start_time_unix_nano, ?) * ? AS b,
         toUInt64(status_code = 2) AS err,
         toFloat64(if(duration_ns > child_dur, duration_ns - child_dur, 0)) AS self
  FROM (
    SELECT cityHash64(trace_id, span_id) AS k, service_name, k8s_pod_name, name, start_time_unix_nano, duration_ns, status_code
    FROM spans
    WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)%s
  ) ANY LEFT JOIN (
    SELECT cityHash64(trace_id, parent_span_id) AS k, sum(duration_ns) AS child_dur,
           any(service_name) AS child_svc, any(k8s_pod_name) AS child_pod, uniqExact(service_name) AS child_svcs
    FROM spans
    WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)%s
    GROUP BY k
  ) USING (k)
)
GROUP BY sig, svc, pod, op, caller, caller_pod, b`

// spanStatsRange computes the span statistics of the spans starting in
// [from, to) with the self-join; children are looked for in
// [childFrom, to + childMargin).
func (c CHSource) spanStatsRange(ctx context.Context, r Range, from, to, childFrom time.Time) ([]SpanStat, error) {
	step := uint64(r.Step)
	args := []any{step, step, r.TenantID, secs(from), secs(to)}
	ns1, args := nsFilter(r, args)
	// children may start a little after the range's last parent
	args = append(args, r.TenantID, secs(childFrom), secs(to.Add(childMargin)))
	ns2, args := nsFilter(r, args)
	rows, err := c.Conn.Query(ctx, fmt.Sprintf(spanStatsSQL, ns1, ns2), args...)
	if err != nil {
		return nil, fmt.Errorf("rca: span stats: %w", err)
	}
	defer rows.Close()
	var out []SpanStat
	for rows.Next() {
		var s SpanStat
		var b uint64
		if err := rows.Scan(&s.Kind, &s.Service, &s.Pod, &s.Operation, &s.Caller, &s.CallerPod, &b, &s.Count, &s.Errors, &s.P90); err != nil {
			return nil, fmt.Errorf("rca: span stats: %w", err)
		}
		s.T = int64(b)
		out = append(out, s)
	}
	return out, rows.Err()
}

const metricStatsSQL = `
SELECT service_name, k8s_pod_name, k8s_container_name, metric_name, b, avg(value) AS v, max(cum) AS cum
FROM (
  SELECT service_name, k8s_pod_name, k8s_container_name, metric_name,
         intDiv(time_unix_nano, ?) * ? AS b, value,
         toUInt8(metric_type = 2 AND is_monotonic = 1 AND aggregation_temporality = 2) AS cum
  FROM metric_points
  WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)
    AND metric_type IN (1, 2) AND value_type != 0 AND k8s_pod_name != ''%s
  LIMIT 1 BY series_id, time_unix_nano
)
GROUP BY service_name, k8s_pod_name, k8s_container_name, metric_name, b`

// MetricStats implements Source.
func (c CHSource) MetricStats(ctx context.Context, r Range) ([]MetricStat, error) {
	step := uint64(r.Step)
	ns, args := nsFilter(r, []any{step, step, r.TenantID, secs(r.From), secs(r.To)})
	rows, err := c.Conn.Query(ctx, fmt.Sprintf(metricStatsSQL, ns), args...)
	if err != nil {
		return nil, fmt.Errorf("rca: metric stats: %w", err)
	}
	defer rows.Close()
	var out []MetricStat
	for rows.Next() {
		var m MetricStat
		var b uint64
		var cum uint8
		if err := rows.Scan(&m.Service, &m.Pod, &m.Container, &m.Name, &b, &m.Value, &cum); err != nil {
			return nil, fmt.Errorf("rca: metric stats: %w", err)
		}
		m.T, m.Cumulative = int64(b), cum == 1
		if !math.IsNaN(m.Value) && !math.IsInf(m.Value, 0) {
			out = append(out, m)
		}
	}
	return out, rows.Err()
}

// errorSeverity is the lowest OTLP severity number of an error (ERROR = 17).
const errorSeverity = 17

const logStatsSQL = `
SELECT service_name, k8s_pod_name, k8s_container_name, intDiv(ts, ?) * ? AS b, count() AS n, sum(toUInt64(severity_number >= ?)) AS errs
FROM (
  SELECT service_name, k8s_pod_name, k8s_container_name, severity_number,
         if(time_unix_nano != 0, time_unix_nano, observed_time_unix_nano) AS ts
  FROM logs
  WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)%s
  LIMIT 1 BY record_id
)
GROUP BY service_name, k8s_pod_name, k8s_container_name, b`

// LogStats implements Source.
func (c CHSource) LogStats(ctx context.Context, r Range) ([]LogStat, error) {
	step := uint64(r.Step)
	ns, args := nsFilter(r, []any{step, step, uint8(errorSeverity), r.TenantID, secs(r.From), secs(r.To)})
	rows, err := c.Conn.Query(ctx, fmt.Sprintf(logStatsSQL, ns), args...)
	if err != nil {
		return nil, fmt.Errorf("rca: log stats: %w", err)
	}
	defer rows.Close()
	var out []LogStat
	for rows.Next() {
		var l LogStat
		var b uint64
		if err := rows.Scan(&l.Service, &l.Pod, &l.Container, &b, &l.Count, &l.Errors); err != nil {
			return nil, fmt.Errorf("rca: log stats: %w", err)
		}
		l.T = int64(b)
		out = append(out, l)
	}
	return out, rows.Err()
}

const eventsSQL = `
SELECT lower(hex(event_id)), type, reason, message, workload, k8s_pod_name, container_name, time_unix_nano, severity
FROM container_events
WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)%s
ORDER BY time_unix_nano
LIMIT 1 BY event_id
LIMIT 10000`

// Events implements Source.
func (c CHSource) Events(ctx context.Context, r Range) ([]Event, error) {
	ns, args := nsFilter(r, []any{r.TenantID, secs(r.From), secs(r.To)})
	rows, err := c.Conn.Query(ctx, fmt.Sprintf(eventsSQL, ns), args...)
	if err != nil {
		return nil, fmt.Errorf("rca: events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var t uint64
		if err := rows.Scan(&e.ID, &e.Type, &e.Reason, &e.Message, &e.Service, &e.Pod, &e.Container, &t, &e.Severity); err != nil {
			return nil, fmt.Errorf("rca: events: %w", err)
		}
		e.T = int64(t)
		out = append(out, e)
	}
	return out, rows.Err()
}

const slowTracesSQL = `
SELECT service_name, lower(hex(trace_id)) AS tid
FROM spans
WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?) AND has(?, service_name)%s
ORDER BY service_name, status_code = 2 DESC, duration_ns DESC
LIMIT ? BY service_name`

// SlowTraces implements Source.
func (c CHSource) SlowTraces(ctx context.Context, r Range, services []string, n int) (map[string][]string, error) {
	out := map[string][]string{}
	if len(services) == 0 || n <= 0 {
		return out, nil
	}
	ns, args := nsFilter(r, []any{r.TenantID, secs(r.From), secs(r.To), services})
	args = append(args, uint64(n))
	rows, err := c.Conn.Query(ctx, fmt.Sprintf(slowTracesSQL, ns), args...)
	if err != nil {
		return nil, fmt.Errorf("rca: slow traces: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var svc, id string
		if err := rows.Scan(&svc, &id); err != nil {
			return nil, fmt.Errorf("rca: slow traces: %w", err)
		}
		if !strings.HasPrefix(id, strings.Repeat("0", 32)) {
			out[svc] = append(out[svc], id)
		}
	}
	return out, rows.Err()
}
