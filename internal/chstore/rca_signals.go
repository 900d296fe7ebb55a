package chstore

import (
	"context"
	"fmt"
	"math"
	"strings"
	"time"
)

// The aggregated signals internal/rca judges. Every aggregation runs in
// ClickHouse (18.16-compatible SQL: buckets are intDiv(ns, step) * step)
// and every read deduplicates re-delivered or hold-copied rows (LIMIT 1
// BY the row's id), so a span, record or point counts once.

// RCARange is what the RCA reads are asked for: [From, To) in buckets of
// Step of one tenant (and namespace, "" = every namespace).
type RCARange struct {
	TenantID  string
	Namespace string
	From, To  time.Time
	Step      time.Duration
}

func rcaSecs(t time.Time) uint32 {
	s := t.Unix()
	if s < 0 {
		return 0
	}
	if s > math.MaxUint32 {
		return math.MaxUint32
	}
	return uint32(s)
}

// rcaNS adds the optional namespace condition.
func rcaNS(r RCARange, args []any) (string, []any) {
	if r.Namespace == "" {
		return "", args
	}
	return " AND k8s_namespace_name = ?", append(args, r.Namespace)
}

// Span statistic kinds.
const (
	RCASpanSelf    = "self"    // time a span spent itself (duration minus its children)
	RCASpanInbound = "inbound" // the caller-observed gap of a call into this service (client span minus server span)
)

// RCASpanStat aggregates the spans of one key in one time bucket.
type RCASpanStat struct {
	Kind      string // RCASpanSelf or RCASpanInbound
	Service   string
	Pod       string
	Operation string // self: the span's name; inbound: the calling (client) span's name
	Callee    string // inbound: the called operation (the server span's name)
	Caller    string // inbound: the calling service
	CallerPod string
	T         int64 // bucket start, unix ns
	Count     uint64
	Errors    uint64
	// Q are the quantiles RCAQuantiles of the span's own time (self) or of
	// the gap (inbound), ns: a sketch of the bucket's distribution.
	Q []float64
}

// RCAQuantiles are the levels of RCASpanStat.Q.
var RCAQuantiles = []float64{0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99}

// A span whose children all belong to one other service is a client call:
// its own time (duration minus the callee's server span) is the inbound
// gap of the callee (network, queueing), so it is attributed to the
// callee as inbound; every other span's own time is self time of its
// service. Parent and child meet on a 64-bit hash of (trace id, span id):
// a narrower join key than the two FixedString(16) ids; a collision among
// the window's spans (odds ≈ n²/2⁶⁵) would only misattribute one span's
// children. Spans are named by a hash of (service, pod, operation) inside
// the query (strings carried through ClickHouse 18.16's join and grouped
// on cost more than the rest of it) and the names looked up after, in
// rcaSpanNamesSQL. Re-delivered and hold-copied spans count once.
const rcaSpanStatsSQL = `
SELECT inbound, ph, ch, b, count() AS n, sum(err) AS errs, quantiles(0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99)(self) AS q
FROM (
  SELECT child_svcs = 1 AND child_sh != sh AS inbound, ph, if(inbound, chh, 0) AS ch,
         intDiv(start_time_unix_nano, ?) * ? AS b,
         toUInt64(status_code = 2 OR (inbound AND child_errs > 0)) AS err,
         toFloat64(if(duration_ns > child_dur, duration_ns - child_dur, 0)) AS self
  FROM (
    SELECT cityHash64(trace_id, span_id) AS k, cityHash64(service_name) AS sh, cityHash64(service_name, k8s_pod_name, name) AS ph,
           start_time_unix_nano, duration_ns, status_code
    FROM spans
    WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)%s
    LIMIT 1 BY k
  ) ANY LEFT JOIN (
    SELECT k, sum(duration_ns) AS child_dur, any(sh) AS child_sh, any(ph) AS chh, uniqExact(sh) AS child_svcs,
           sum(toUInt64(status_code = 2)) AS child_errs
    FROM (
      SELECT cityHash64(trace_id, parent_span_id) AS k, cityHash64(trace_id, span_id) AS sk, duration_ns,
             cityHash64(service_name) AS sh, cityHash64(service_name, k8s_pod_name, name) AS ph, status_code
      FROM spans
      WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)%s
      LIMIT 1 BY sk
    )
    GROUP BY k
  ) USING (k)
)
GROUP BY inbound, ph, ch, b`

const rcaSpanNamesSQL = `
SELECT cityHash64(service_name, k8s_pod_name, name) AS h, any(service_name), any(k8s_pod_name), any(name)
FROM spans
WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)%s
GROUP BY h`

// RCASpanStats computes the span statistics of the spans starting in
// [r.From, r.To); children are looked for in [childFrom, r.To + margin).
func (s *Store) RCASpanStats(ctx context.Context, r RCARange, childFrom time.Time, margin time.Duration) ([]RCASpanStat, error) {
	type name struct{ svc, pod, op string }
	names := map[uint64]name{}
	ns, args := rcaNS(r, []any{r.TenantID, rcaSecs(childFrom), rcaSecs(r.To.Add(margin))})
	rows, err := s.conn.Query(ctx, fmt.Sprintf(rcaSpanNamesSQL, ns), args...)
	if err != nil {
		return nil, readErr(ctx, "rca span names", err)
	}
	for rows.Next() {
		var h uint64
		var n name
		if err := rows.Scan(&h, &n.svc, &n.pod, &n.op); err != nil {
			rows.Close()
			return nil, readErr(ctx, "rca span names: scan", err)
		}
		names[h] = n
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "rca span names", err)
	}

	step := uint64(r.Step)
	args = []any{step, step, r.TenantID, rcaSecs(r.From), rcaSecs(r.To)}
	ns1, args := rcaNS(r, args)
	args = append(args, r.TenantID, rcaSecs(childFrom), rcaSecs(r.To.Add(margin)))
	ns2, args := rcaNS(r, args)
	rows, err = s.conn.Query(ctx, fmt.Sprintf(rcaSpanStatsSQL, ns1, ns2), args...)
	if err != nil {
		return nil, readErr(ctx, "rca span stats", err)
	}
	defer rows.Close()
	var out []RCASpanStat
	for rows.Next() {
		var st RCASpanStat
		var inbound uint8
		var ph, ch, b uint64
		if err := rows.Scan(&inbound, &ph, &ch, &b, &st.Count, &st.Errors, &st.Q); err != nil {
			return nil, readErr(ctx, "rca span stats: scan", err)
		}
		p, ok := names[ph]
		if !ok {
			continue // a span outside the names' range: cannot happen for the ranges used
		}
		st.T = int64(b)
		if inbound == 1 {
			c := names[ch]
			st.Kind, st.Service, st.Pod, st.Operation, st.Callee, st.Caller, st.CallerPod = RCASpanInbound, c.svc, c.pod, p.op, c.op, p.svc, p.pod
		} else {
			st.Kind, st.Service, st.Pod, st.Operation = RCASpanSelf, p.svc, p.pod, p.op
		}
		out = append(out, st)
	}
	return out, readErr2(ctx, "rca span stats", rows.Err())
}

// readErr2 is readErr for a possibly nil error.
func readErr2(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	return readErr(ctx, op, err)
}

// RCALogPattern counts the log records of one pod whose masked text is
// Key in one bucket.
type RCALogPattern struct {
	Service, Pod string
	Key          string // the record's text with ids and numbers masked ('#'), at most RCALogKeyBytes
	Severity     uint8  // the highest OTLP severity number among them (0: none given)
	T            int64
	Count        uint64
	Traced       uint64 // of Count, the records with a trace id
}

// RCALogKeyBytes bounds the text a pattern key is made of.
const RCALogKeyBytes = 300

// rcaLogMask masks UUIDs and every run of hex digits holding a digit
// (ids, hashes, numbers, times): what is left is the record's wording,
// which the caller's template miner groups further.
const rcaLogMask = `[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]*[0-9][0-9a-fA-F]*`

// The key is the record's body_pattern (otlpconv.LogPattern, written at
// ingest); records stored before that column existed are masked here the
// same way: the "log" (container runtime), "message" or "msg" field of a
// JSON body, else the body. PREWHERE keeps bodies unread where patterns
// exist.
const rcaLogPatternsSQL = `
SELECT svc, pod, key, max(severity_number) AS sev, b, count() AS n, sum(traced) AS traced
FROM (
  SELECT service_name AS svc, k8s_pod_name AS pod, severity_number,
         toUInt64(trace_id != toFixedString(unhex('00000000000000000000000000000000'), 16)) AS traced,
         intDiv(if(time_unix_nano != 0, time_unix_nano, observed_time_unix_nano), ?) * ? AS b,
         body_pattern AS key
  FROM logs
  PREWHERE body_pattern != ''
  WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)%s
  LIMIT 1 BY record_id
  UNION ALL
  SELECT service_name AS svc, k8s_pod_name AS pod, severity_number,
         toUInt64(trace_id != toFixedString(unhex('00000000000000000000000000000000'), 16)) AS traced,
         intDiv(if(time_unix_nano != 0, time_unix_nano, observed_time_unix_nano), ?) * ? AS b,
         replaceRegexpAll(substring(if(substring(body, 1, 1) = '{' AND length(concat(visitParamExtractString(body, 'log'), visitParamExtractString(body, 'message'), visitParamExtractString(body, 'msg'))) > 0,
           concat(visitParamExtractString(body, 'log'), visitParamExtractString(body, 'message'), visitParamExtractString(body, 'msg')), body), 1, ?), ?, '#') AS key
  FROM logs
  PREWHERE body_pattern = ''
  WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)%s
  LIMIT 1 BY record_id
)
GROUP BY svc, pod, key, b`

// RCALogPatterns counts the log records in r by pod, masked text and
// bucket.
func (s *Store) RCALogPatterns(ctx context.Context, r RCARange) ([]RCALogPattern, error) {
	step := uint64(r.Step)
	ns1, args := rcaNS(r, []any{step, step, r.TenantID, rcaSecs(r.From), rcaSecs(r.To)})
	args = append(args, step, step, uint64(RCALogKeyBytes), rcaLogMask, r.TenantID, rcaSecs(r.From), rcaSecs(r.To))
	ns2, args := rcaNS(r, args)
	rows, err := s.conn.Query(ctx, fmt.Sprintf(rcaLogPatternsSQL, ns1, ns2), args...)
	if err != nil {
		return nil, readErr(ctx, "rca log patterns", err)
	}
	defer rows.Close()
	var out []RCALogPattern
	for rows.Next() {
		var p RCALogPattern
		var b uint64
		if err := rows.Scan(&p.Service, &p.Pod, &p.Key, &p.Severity, &b, &p.Count, &p.Traced); err != nil {
			return nil, readErr(ctx, "rca log patterns: scan", err)
		}
		p.T = int64(b)
		out = append(out, p)
	}
	return out, readErr2(ctx, "rca log patterns", rows.Err())
}

// RCAMetricStat is the mean of one metric of one pod (or service) in one
// time bucket.
type RCAMetricStat struct {
	Service, Pod, Container, Name string
	// Source and Destination are set on per-edge metrics (a service mesh's
	// request metrics): the calling and the called workload.
	Source, Destination string
	T                   int64
	Value               float64
	Cumulative          bool // a monotonic cumulative sum: judge its increments
}

// A series' points travel as arrays, one row per series (its identity
// columns are the same on every point): far less to aggregate and decode
// than a row per point or bucket. Bucket means and the deduplication of
// re-delivered points (the same time twice) are done by the reader.
const rcaMetricStatsSQL = `
SELECT series_id, any(service_name), any(k8s_pod_name), any(k8s_container_name), any(metric_name),
       any(attr_keys), any(attr_values), max(toUInt8(metric_type = 2 AND is_monotonic = 1 AND aggregation_temporality = 2)),
       groupArray(time_unix_nano), groupArray(value)
FROM metric_points
WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)
  AND metric_type IN (1, 2) AND value_type != 0%s
GROUP BY series_id`

// attrOf is the value of the first of keys present in a point's
// attributes.
func attrOf(keys, values []string, names ...string) string {
	for _, n := range names {
		for i, k := range keys {
			if k == n && i < len(values) {
				return values[i]
			}
		}
	}
	return ""
}

// RCAMetricStats averages the gauge and sum points of every metric of
// every pod (or service) by bucket. The pod of a point is its resource's
// k8s.pod.name or, for metrics scraped by Prometheus (cAdvisor,
// kube-state-metrics) where the pod is a label, the point's
// "k8s.pod.name", "pod" or "pod_name" attribute; the container likewise.
// A point with neither is the service's own. A point labelled with a
// destination (Istio's destination_workload, or destination.service.name)
// and a source is a per-edge metric. Series of one identity (differing in
// other attributes) are averaged together.
func (s *Store) RCAMetricStats(ctx context.Context, r RCARange) ([]RCAMetricStat, error) {
	step := r.Step.Nanoseconds()
	ns, args := rcaNS(r, []any{r.TenantID, rcaSecs(r.From), rcaSecs(r.To)})
	rows, err := s.conn.Query(ctx, fmt.Sprintf(rcaMetricStatsSQL, ns), args...)
	if err != nil {
		return nil, readErr(ctx, "rca metric stats", err)
	}
	defer rows.Close()
	type key struct {
		svc, pod, ctr, name, src, dst string
		b                             int64
	}
	type acc struct {
		sum float64
		n   int
		cum bool
	}
	agg := map[key]*acc{}
	from, to := r.From.UnixNano(), r.To.UnixNano()
	for rows.Next() {
		var sid uint64
		var svc, pod, ctr, name string
		var keys, values []string
		var cum uint8
		var ts []uint64
		var vs []float64
		if err := rows.Scan(&sid, &svc, &pod, &ctr, &name, &keys, &values, &cum, &ts, &vs); err != nil {
			return nil, readErr(ctx, "rca metric stats: scan", err)
		}
		if pod == "" {
			pod = attrOf(keys, values, "k8s.pod.name", "pod", "pod_name")
		}
		if ctr == "" {
			ctr = attrOf(keys, values, "k8s.container.name", "container")
		}
		src := attrOf(keys, values, "source_workload", "source.service.name")
		dst := attrOf(keys, values, "destination_workload", "destination.service.name")
		seen := make(map[uint64]bool, len(ts))
		for i, t := range ts {
			if i >= len(vs) || seen[t] || int64(t) < from || int64(t) >= to || math.IsNaN(vs[i]) || math.IsInf(vs[i], 0) {
				continue
			}
			seen[t] = true // a re-delivered point counts once
			k := key{svc, pod, ctr, name, src, dst, int64(t) / step * step}
			a := agg[k]
			if a == nil {
				a = &acc{}
				agg[k] = a
			}
			a.sum += vs[i]
			a.n++
			a.cum = a.cum || cum == 1
		}
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "rca metric stats", err)
	}
	out := make([]RCAMetricStat, 0, len(agg))
	for k, a := range agg {
		out = append(out, RCAMetricStat{Service: k.svc, Pod: k.pod, Container: k.ctr, Name: k.name, Source: k.src, Destination: k.dst,
			T: k.b, Value: a.sum / float64(a.n), Cumulative: a.cum})
	}
	return out, nil
}

// RCAEvent is a container event in the window.
type RCAEvent struct {
	ID, Type, Reason, Message string
	Service, Pod, Container   string
	T                         int64
	Severity                  uint8
}

const rcaEventsSQL = `
SELECT lower(hex(event_id)), type, reason, message, workload, k8s_pod_name, container_name, time_unix_nano, severity
FROM container_events
WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)%s
ORDER BY time_unix_nano
LIMIT 1 BY event_id
LIMIT 10000`

// RCAEvents returns the container events in r.
func (s *Store) RCAEvents(ctx context.Context, r RCARange) ([]RCAEvent, error) {
	ns, args := rcaNS(r, []any{r.TenantID, rcaSecs(r.From), rcaSecs(r.To)})
	rows, err := s.conn.Query(ctx, fmt.Sprintf(rcaEventsSQL, ns), args...)
	if err != nil {
		return nil, readErr(ctx, "rca events", err)
	}
	defer rows.Close()
	var out []RCAEvent
	for rows.Next() {
		var e RCAEvent
		var t uint64
		if err := rows.Scan(&e.ID, &e.Type, &e.Reason, &e.Message, &e.Service, &e.Pod, &e.Container, &t, &e.Severity); err != nil {
			return nil, readErr(ctx, "rca events: scan", err)
		}
		e.T = int64(t)
		out = append(out, e)
	}
	return out, readErr2(ctx, "rca events", rows.Err())
}

const rcaExampleTracesSQL = `
SELECT service_name, lower(hex(trace_id)) AS tid
FROM spans
WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?) AND has(?, service_name)%s
ORDER BY service_name, status_code = 2 DESC, duration_ns DESC
LIMIT ? BY service_name`

// RCAExampleTraces returns, for each of services, the ids of up to n
// traces with its slowest spans in r (failed ones first).
func (s *Store) RCAExampleTraces(ctx context.Context, r RCARange, services []string, n int) (map[string][]string, error) {
	out := map[string][]string{}
	if len(services) == 0 || n <= 0 {
		return out, nil
	}
	ns, args := rcaNS(r, []any{r.TenantID, rcaSecs(r.From), rcaSecs(r.To), services})
	args = append(args, uint64(n))
	rows, err := s.conn.Query(ctx, fmt.Sprintf(rcaExampleTracesSQL, ns), args...)
	if err != nil {
		return nil, readErr(ctx, "rca example traces", err)
	}
	defer rows.Close()
	for rows.Next() {
		var svc, id string
		if err := rows.Scan(&svc, &id); err != nil {
			return nil, readErr(ctx, "rca example traces: scan", err)
		}
		if !strings.HasPrefix(id, strings.Repeat("0", 32)) {
			out[svc] = append(out[svc], id)
		}
	}
	return out, readErr2(ctx, "rca example traces", rows.Err())
}

// RCAErrorTraces counts, per bucket, the traces whose failed spans and
// error log lines came from the same set of services.
type RCAErrorTraces struct {
	T        int64    // bucket of the trace's first failure
	Services []string // services with a failed span or an error line in the trace, sorted
	Count    uint64   // traces
}

// rcaErrorLine finds an error level in a log line that carries no OTLP
// severity: a level word near its start, or an exception class name.
const rcaErrorLine = `(?i)(^|[^a-z])(error|fatal|critical|crit|severe|panic|emerg)([^a-z]|$)|[a-z]Exception`

const rcaErrorTracesSQL = `
SELECT b, svcs, count() AS n
FROM (
  SELECT trace_id, min(b) AS b, arraySort(groupUniqArray(svc)) AS svcs
  FROM (
    SELECT trace_id, service_name AS svc, intDiv(if(time_unix_nano != 0, time_unix_nano, observed_time_unix_nano), ?) * ? AS b
    FROM logs
    PREWHERE body_pattern != ''
    WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)%s
      AND trace_id != toFixedString(unhex('00000000000000000000000000000000'), 16)
      AND (severity_number >= 17 OR (severity_number = 0 AND match(substring(body_pattern, 1, 200), ?)))
    UNION ALL
    SELECT trace_id, service_name AS svc, intDiv(if(time_unix_nano != 0, time_unix_nano, observed_time_unix_nano), ?) * ? AS b
    FROM logs
    PREWHERE body_pattern = ''
    WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)%s
      AND trace_id != toFixedString(unhex('00000000000000000000000000000000'), 16)
      AND (severity_number >= 17 OR (severity_number = 0 AND match(substring(body, 1, 200), ?)))
    UNION ALL
    SELECT trace_id, service_name AS svc, intDiv(start_time_unix_nano, ?) * ? AS b
    FROM spans
    WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp < toDateTime(?)%s AND status_code = 2
  )
  GROUP BY trace_id
)
GROUP BY b, svcs`

// RCAErrorTracesIn groups the traces with failures in r by the set of
// services that failed in them.
func (s *Store) RCAErrorTracesIn(ctx context.Context, r RCARange) ([]RCAErrorTraces, error) {
	step := uint64(r.Step)
	ns1, args := rcaNS(r, []any{step, step, r.TenantID, rcaSecs(r.From), rcaSecs(r.To)})
	args = append(args, rcaErrorLine, step, step, r.TenantID, rcaSecs(r.From), rcaSecs(r.To))
	ns2, args := rcaNS(r, args)
	args = append(args, rcaErrorLine, step, step, r.TenantID, rcaSecs(r.From), rcaSecs(r.To))
	ns3, args := rcaNS(r, args)
	rows, err := s.conn.Query(ctx, fmt.Sprintf(rcaErrorTracesSQL, ns1, ns2, ns3), args...)
	if err != nil {
		return nil, readErr(ctx, "rca error traces", err)
	}
	defer rows.Close()
	var out []RCAErrorTraces
	for rows.Next() {
		var e RCAErrorTraces
		var b uint64
		if err := rows.Scan(&b, &e.Services, &e.Count); err != nil {
			return nil, readErr(ctx, "rca error traces: scan", err)
		}
		e.T = int64(b)
		out = append(out, e)
	}
	return out, readErr2(ctx, "rca error traces", rows.Err())
}
