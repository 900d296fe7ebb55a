package chstore

import (
	"context"
	"encoding/hex"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// How an event was linked to a trace (event_links.match_kind).
const (
	MatchContainer = "container" // spans on the event's container (12-char id prefix)
	MatchPodUID    = "pod_uid"   // spans on the event's pod, by uid
	MatchPodName   = "pod_name"  // pod uid resolved from the pod name and namespace at the event time
)

// LinkTarget is what an event's traces are searched by.
type LinkTarget struct {
	Kind  string // MatchContainer (Value: 12-char container id) or MatchPodUID / MatchPodName (Value: pod uid)
	Value string
}

// LinkCandidate is a trace with spans on the target in the window.
type LinkCandidate struct {
	TraceID   [16]byte
	SpanCount uint32 // distinct spans of the trace on the target starting in the window
}

const linkCandidatesContainerSQL = `SELECT lower(hex(trace_id)) AS tid, toUInt32(uniqExact(span_id))
FROM spans
WHERE tenant_id = ? AND timestamp BETWEEN toDateTime(?) AND toDateTime(?)
  AND start_time_unix_nano BETWEEN ? AND ?
  AND substring(container_id, 1, 12) = ?
GROUP BY trace_id
ORDER BY tid
LIMIT ?`

const linkCandidatesPodSQL = `SELECT lower(hex(trace_id)) AS tid, toUInt32(uniqExact(span_id))
FROM spans
WHERE tenant_id = ? AND timestamp BETWEEN toDateTime(?) AND toDateTime(?)
  AND start_time_unix_nano BETWEEN ? AND ?
  AND k8s_pod_uid = ?
GROUP BY trace_id
ORDER BY tid
LIMIT ?`

// FindLinkCandidates returns the traces (by id, at most limit) with spans
// on target that start in [fromNs, toNs].
func (s *Store) FindLinkCandidates(ctx context.Context, tenantID string, target LinkTarget, fromNs, toNs uint64, limit int) ([]LinkCandidate, error) {
	query := linkCandidatesPodSQL
	switch target.Kind {
	case MatchContainer:
		query = linkCandidatesContainerSQL
	case MatchPodUID, MatchPodName:
	default:
		return nil, fmt.Errorf("find link candidates: unknown match kind %q", target.Kind)
	}
	if target.Value == "" {
		return nil, nil
	}
	ctx, cancel := s.readCtx(ctx)
	defer cancel()
	rows, err := s.conn.Query(ctx, query, tenantID, nsSeconds(fromNs, -1), nsSeconds(toNs, 1), fromNs, toNs, target.Value, limit)
	if err != nil {
		return nil, readErr(ctx, "find link candidates", err)
	}
	defer rows.Close()
	var out []LinkCandidate
	for rows.Next() {
		var (
			tid string
			c   LinkCandidate
		)
		if err := rows.Scan(&tid, &c.SpanCount); err != nil {
			return nil, readErr(ctx, "find link candidates: scan", err)
		}
		if err := decodeHexID(c.TraceID[:], tid); err != nil {
			return nil, fmt.Errorf("find link candidates: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "find link candidates: read", err)
	}
	return out, nil
}

// PodSighting is one pod uid seen under a pod name, with the time range of
// every signal that carried it.
type PodSighting struct {
	UID         string
	FirstSeenNs uint64
	LastSeenNs  uint64
}

const podSightingsSQL = `SELECT k8s_pod_uid, min(first_seen_unix_nano), max(last_seen_unix_nano)
FROM container_sightings
WHERE tenant_id = ? AND date BETWEEN toDate(?) AND toDate(?)
  AND k8s_pod_name = ? AND k8s_namespace_name = ? AND k8s_pod_uid != ''
GROUP BY k8s_pod_uid
HAVING min(first_seen_unix_nano) <= ? AND max(last_seen_unix_nano) >= ?
ORDER BY k8s_pod_uid
LIMIT 100`

// PodSightings returns the uids seen under pod name in namespace whose
// sightings overlap [fromNs, toNs].
func (s *Store) PodSightings(ctx context.Context, tenantID, namespace, podName string, fromNs, toNs uint64) ([]PodSighting, error) {
	ctx, cancel := s.readCtx(ctx)
	defer cancel()
	rows, err := s.conn.Query(ctx, podSightingsSQL, tenantID,
		dateString(linkNsTime(fromNs).Add(-indexDateSlack)), dateString(linkNsTime(toNs).Add(indexDateSlack)),
		podName, namespace, toNs, fromNs)
	if err != nil {
		return nil, readErr(ctx, "pod sightings", err)
	}
	defer rows.Close()
	var out []PodSighting
	for rows.Next() {
		var p PodSighting
		if err := rows.Scan(&p.UID, &p.FirstSeenNs, &p.LastSeenNs); err != nil {
			return nil, readErr(ctx, "pod sightings: scan", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "pod sightings: read", err)
	}
	return out, nil
}

// LinkSpan is what the correlator needs of one span of a linked trace.
type LinkSpan struct {
	TraceID      [16]byte
	SpanID       string // lower-case hex
	ParentSpanID string // lower-case hex, "" for a root
	ContainerID  string
	PodUID       string
	Root         bool
	Service      string
	Name         string
	StartNs      uint64
	EndNs        uint64
	Error        bool
	Attrs        map[string]string // values as text
}

const linkSpansSQL = `SELECT lower(hex(trace_id)), lower(hex(span_id)), lower(hex(parent_span_id)), container_id, k8s_pod_uid,
    service_name, name, start_time_unix_nano, end_time_unix_nano, status_code, attr_keys, attr_values, attr_types
FROM spans
WHERE tenant_id = ? AND timestamp BETWEEN toDateTime(?) AND toDateTime(?) AND has(?, lower(hex(trace_id)))
LIMIT 1 BY trace_id, span_id`

// SpansOfTraces returns every span (each once) of the given traces that
// starts in [fromNs, toNs].
func (s *Store) SpansOfTraces(ctx context.Context, tenantID string, ids [][16]byte, fromNs, toNs uint64) ([]LinkSpan, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	hexIDs := make([]string, len(ids))
	for i, id := range ids {
		hexIDs[i] = hex.EncodeToString(id[:])
	}
	ctx, cancel := s.readCtx(ctx)
	defer cancel()
	rows, err := s.conn.Query(ctx, linkSpansSQL, tenantID, nsSeconds(fromNs, -1), nsSeconds(toNs, 1), hexIDs)
	if err != nil {
		return nil, readErr(ctx, "spans of traces", err)
	}
	defer rows.Close()
	var out []LinkSpan
	for rows.Next() {
		var (
			sp     LinkSpan
			tid    string
			status int8
			k, v   []string
			ty     []uint8
		)
		if err := rows.Scan(&tid, &sp.SpanID, &sp.ParentSpanID, &sp.ContainerID, &sp.PodUID, &sp.Service, &sp.Name, &sp.StartNs, &sp.EndNs, &status, &k, &v, &ty); err != nil {
			return nil, readErr(ctx, "spans of traces: scan", err)
		}
		if err := decodeHexID(sp.TraceID[:], tid); err != nil {
			return nil, fmt.Errorf("spans of traces: %w", err)
		}
		if sp.ParentSpanID == zeroSpanIDHex {
			sp.ParentSpanID = ""
		}
		sp.Root, sp.Error = sp.ParentSpanID == "", status == 2
		sp.Attrs = make(map[string]string, len(k))
		for i := range min(len(k), len(v), len(ty)) {
			if ty[i] != otlpconv.TypeEmpty {
				sp.Attrs[k[i]] = strings.Clone(v[i])
			}
		}
		out = append(out, sp)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "spans of traces: read", err)
	}
	return out, nil
}

// linkNsTime is the time of unix nanoseconds (clamped to int64).
func linkNsTime(ns uint64) time.Time { return time.Unix(0, int64(min(ns, math.MaxInt64))) }
