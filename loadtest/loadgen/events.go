package loadgen

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Container events for correlation scenarios: Falco alerts (http_output
// JSON) and Kubernetes pod transitions (OTLP logs as the Collector's
// k8sobjects receiver sends them in watch mode), about the model's pods at
// known times, with the ground truth of which traces each event must be
// linked to and its business impact.

// FalcoAlert is one Falco http_output alert about pod's container at t.
// Falco gives the 12-character container id and no pod uid.
func FalcoAlert(p *Pod, t time.Time, rule, priority, output string) []byte {
	alert := map[string]any{
		"time":     t.UTC().Format(time.RFC3339Nano),
		"rule":     rule,
		"priority": priority,
		"output":   fmt.Sprintf("%s %s (container=%s pod=%s)", t.UTC().Format("15:04:05.000000000"), output, p.ContainerID[:12], p.Name),
		"source":   "syscall",
		"tags":     []string{"container", "shell", "mitre_execution"},
		"hostname": p.Node,
		"output_fields": map[string]any{
			"container.id":               p.ContainerID[:12],
			"container.name":             p.Service.Name,
			"container.image.repository": "registry.example.com/shop/" + p.Service.Name,
			"k8s.pod.name":               p.Name,
			"k8s.ns.name":                p.Resource.AsRaw()["k8s.namespace.name"],
			"proc.name":                  "bash",
			"proc.cmdline":               "bash -i",
			"user.name":                  "root",
			"evt.time":                   t.UnixNano(),
		},
	}
	b, _ := json.Marshal(alert)
	return b
}

// OOMKilledPod is the k8sobjects (watch mode) record of pod after its
// container was OOM-killed at t (whole seconds, as Kubernetes stores it)
// and restarted. The terminated state carries no container id, so the
// event is about the pod (by uid).
func OOMKilledPod(p *Pod, t time.Time) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("k8s.namespace.name", fmt.Sprint(p.Resource.AsRaw()["k8s.namespace.name"]))
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(t.Add(2 * time.Second)))
	lr.Attributes().PutStr("k8s.resource.name", "pods")
	lr.Attributes().PutStr("event.domain", "k8s")
	lr.Attributes().PutStr("event.name", p.Name)
	ts := t.UTC().Truncate(time.Second).Format(time.RFC3339)
	_ = lr.Body().SetEmptyMap().FromRaw(map[string]any{
		"type": "MODIFIED",
		"object": map[string]any{
			"kind": "Pod", "apiVersion": "v1",
			"metadata": map[string]any{
				"name": p.Name, "namespace": p.Resource.AsRaw()["k8s.namespace.name"], "uid": p.UID,
				"ownerReferences": []any{map[string]any{"kind": "ReplicaSet", "name": p.Name[:len(p.Name)-6]}},
			},
			"spec": map[string]any{"nodeName": p.Node, "containers": []any{map[string]any{"name": p.Service.Name, "image": "registry.example.com/shop/" + p.Service.Name}}},
			"status": map[string]any{
				"phase": "Running",
				"containerStatuses": []any{map[string]any{
					"name": p.Service.Name, "restartCount": int64(1), "ready": true,
					"containerID": "containerd://" + p.ContainerID,
					"state":       map[string]any{"running": map[string]any{"startedAt": ts}},
					"lastState": map[string]any{"terminated": map[string]any{
						"reason": "OOMKilled", "exitCode": int64(137), "startedAt": ts, "finishedAt": ts,
					}},
				}},
			},
		},
	})
	return ld
}

// BusinessTransactionDef mirrors the API's business transaction body.
type BusinessTransactionDef struct {
	Name  string              `json:"name"`
	Rules []map[string]string `json:"rules"`
	Keys  []string            `json:"keys"`
}

// BusinessTransactionDefs are the definitions the ground truth of
// EventTruth assumes: checkout and payment named by the generator's
// business.transaction attribute (keys order.id, user.id), and browse =
// a frontend root span on route /product/{id} (key enduser.id).
func BusinessTransactionDefs() []BusinessTransactionDef {
	return []BusinessTransactionDef{
		{Name: "checkout", Rules: []map[string]string{{"scope": "any", "attribute": "business.transaction", "equals": "checkout"}}, Keys: []string{"order.id", "user.id"}},
		{Name: "payment", Rules: []map[string]string{{"scope": "any", "attribute": "business.transaction", "equals": "payment"}}, Keys: []string{"order.id", "user.id"}},
		{Name: "browse", Rules: []map[string]string{{"service": "frontend", "httpRoute": "/product/{id}"}}, Keys: []string{"enduser.id"}},
	}
}

var truthKeys = map[string][]string{"checkout": {"order.id", "user.id"}, "payment": {"order.id", "user.id"}, "browse": {"enduser.id"}}

// SpanRecorder remembers what the ground truth of events needs of every
// span sent: where it ran, when it started, and what its trace is.
type SpanRecorder struct {
	spans  []recordedSpan
	traces map[pcommon.TraceID]*recordedTrace
}

type recordedSpan struct {
	trace     pcommon.TraceID
	container string
	podUID    string
	start     time.Time
}

type recordedTrace struct {
	failed bool
	tx     string
	keys   map[string]map[string]bool // attribute → values, over every span
	route  string                     // http.route of a frontend root span
}

// NewSpanRecorder returns an empty recorder.
func NewSpanRecorder() *SpanRecorder {
	return &SpanRecorder{traces: map[pcommon.TraceID]*recordedTrace{}}
}

// Observe records every span of td.
func (r *SpanRecorder) Observe(td ptrace.Traces) {
	for _, rs := range td.ResourceSpans().All() {
		res := rs.Resource().Attributes()
		container, podUID, svc := "", "", ""
		if v, ok := res.Get("container.id"); ok {
			container = v.Str()
		}
		if v, ok := res.Get("k8s.pod.uid"); ok {
			podUID = v.Str()
		}
		if v, ok := res.Get("service.name"); ok {
			svc = v.Str()
		}
		for _, ss := range rs.ScopeSpans().All() {
			for _, sp := range ss.Spans().All() {
				r.spans = append(r.spans, recordedSpan{trace: sp.TraceID(), container: container, podUID: podUID, start: sp.StartTimestamp().AsTime()})
				tr := r.traces[sp.TraceID()]
				if tr == nil {
					tr = &recordedTrace{keys: map[string]map[string]bool{}}
					r.traces[sp.TraceID()] = tr
				}
				if sp.Status().Code() == ptrace.StatusCodeError {
					tr.failed = true
				}
				for k, v := range sp.Attributes().All() {
					if k == "business.transaction" {
						tr.tx = v.AsString()
						continue
					}
					if tr.keys[k] == nil {
						tr.keys[k] = map[string]bool{}
					}
					if len(tr.keys[k]) < 64 {
						tr.keys[k][v.AsString()] = true
					}
				}
				if sp.ParentSpanID().IsEmpty() && svc == "frontend" {
					if v, ok := sp.Attributes().Get("http.route"); ok {
						tr.route = v.Str()
					}
				}
			}
		}
	}
}

// Transaction is the ground-truth classification of a trace under
// BusinessTransactionDefs.
func (t *recordedTrace) transaction() string {
	switch {
	case t.tx != "":
		return t.tx
	case t.route == "/product/{id}":
		return "browse"
	}
	return ""
}

// TransactionImpact is the expected impact of an event on one business
// transaction.
type TransactionImpact struct {
	Traces int                 `json:"traces"`
	Failed int                 `json:"failed"`
	Keys   map[string][]string `json:"keys"` // key name → distinct values, sorted
}

// EventTruth is the ground truth of one event.
type EventTruth struct {
	Name        string                       `json:"name"`
	Kind        string                       `json:"kind"` // falco, oom_killed
	Service     string                       `json:"service"`
	Pod         string                       `json:"pod"`
	PodUID      string                       `json:"podUid"`
	ContainerID string                       `json:"containerId"`
	Time        time.Time                    `json:"time"`
	MatchKind   string                       `json:"matchKind"` // container or pod_uid
	TraceIDs    []string                     `json:"traceIds"`  // linked traces, lower-case hex, sorted
	Failed      int                          `json:"failed"`
	Impact      map[string]TransactionImpact `json:"impact"`
}

// Truth computes an event's ground truth: the traces with a span on the
// pod's container (byContainer; Falco) or pod uid (else) that starts in
// [t-before, t+after], and their business impact.
func (r *SpanRecorder) Truth(name, kind string, p *Pod, t time.Time, byContainer bool, before, after time.Duration) EventTruth {
	et := EventTruth{Name: name, Kind: kind, Service: p.Service.Name, Pod: p.Name, PodUID: p.UID, ContainerID: p.ContainerID,
		Time: t.UTC(), MatchKind: "pod_uid", TraceIDs: []string{}, Impact: map[string]TransactionImpact{}}
	if byContainer {
		et.MatchKind = "container"
	}
	from, to := t.Add(-before), t.Add(after)
	seen := map[pcommon.TraceID]bool{}
	for _, s := range r.spans {
		on := s.podUID == p.UID
		if byContainer {
			on = len(s.container) >= 12 && s.container[:12] == p.ContainerID[:12]
		}
		if !on || s.start.Before(from) || s.start.After(to) || seen[s.trace] {
			continue
		}
		seen[s.trace] = true
		et.TraceIDs = append(et.TraceIDs, hex.EncodeToString(s.trace[:]))
		tr := r.traces[s.trace]
		if tr.failed {
			et.Failed++
		}
		tx := tr.transaction()
		if tx == "" {
			continue
		}
		imp := et.Impact[tx]
		if imp.Keys == nil {
			imp.Keys = map[string][]string{}
		}
		imp.Traces++
		if tr.failed {
			imp.Failed++
		}
		for _, k := range truthKeys[tx] {
			for v := range tr.keys[k] {
				if !slices.Contains(imp.Keys[k], v) {
					imp.Keys[k] = append(imp.Keys[k], v)
				}
			}
		}
		et.Impact[tx] = imp
	}
	slices.Sort(et.TraceIDs)
	for tx, imp := range et.Impact {
		for k := range imp.Keys {
			slices.Sort(imp.Keys[k])
		}
		et.Impact[tx] = imp
	}
	return et
}

// WriteEventTruth writes the ground truth of a scenario as indented JSON.
func WriteEventTruth(path string, truth []EventTruth) error {
	return writeJSONFile(path, truth)
}

func writeJSONFile(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
