package events

import (
	"encoding/binary"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// Attributes that mark a log record as coming from one of the Collector's
// Kubernetes receivers.
const (
	// k8s_events receiver (log record attributes).
	attrEventUID    = "k8s.event.uid"
	attrEventReason = "k8s.event.reason"
	attrEventName   = "k8s.event.name"
	attrEventAction = "k8s.event.action"
	attrEventCount  = "k8s.event.count"
	// k8s_events receiver (resource attributes): the involved object.
	attrObjectKind      = "k8s.object.kind"
	attrObjectName      = "k8s.object.name"
	attrObjectUID       = "k8s.object.uid"
	attrObjectFieldPath = "k8s.object.fieldpath"
	// k8sobjects receiver (log record attributes).
	attrResourceName  = "k8s.resource.name" // "pods", "events"
	attrEventDomain   = "event.domain"      // "k8s" (watch mode)
	attrEventNameOTel = "event.name"        // the resource (older versions) or the object name (watch mode)
)

// idSourceK8s is the source NewID is given for every Kubernetes-derived
// event, whichever receiver delivered it, so both receivers' records of the
// same Kubernetes event (or the same pod transition) get the same id.
const idSourceK8s = "k8s"

// FromLogs extracts the container events from OTLP logs sent by the
// OpenTelemetry Collector's Kubernetes receivers:
//
//   - k8s_events: one record per Kubernetes Event (attributes
//     k8s.event.reason/uid/name/action/count, k8s.namespace.name; resource
//     k8s.object.kind/name/uid/fieldpath and k8s.node.name; severity text
//     Normal or Warning; body = the event's message);
//   - k8sobjects, for pods and events, in watch mode (body
//     {"type": ADDED|MODIFIED|DELETED, "object": {...}}) or pull mode (body
//     = the object); attributes k8s.resource.name and, in watch mode,
//     event.domain=k8s. Pod objects yield their container status
//     transitions (OOMKilled, Error exits, CrashLoopBackOff, image pull
//     failures) and evictions; Event objects are read like k8s_events
//     records.
//
// Every other log record is ignored; logs without such records cost one
// attribute lookup per record. The same Kubernetes event, or the same pod
// transition, seen by both receivers or several times (watch updates, pull
// rounds), gets the same event id.
func FromLogs(tenantID string, ld plog.Logs) []Event {
	var out []Event
	rls := ld.ResourceLogs()
	for i := range rls.Len() {
		rl := rls.At(i)
		sls := rl.ScopeLogs()
		for j := range sls.Len() {
			recs := sls.At(j).LogRecords()
			for k := range recs.Len() {
				lr := recs.At(k)
				switch recordKind(lr.Attributes()) {
				case kindK8sEvent:
					if ev, ok := fromEventRecord(tenantID, rl.Resource().Attributes(), lr); ok {
						out = append(out, ev)
					}
				case kindK8sObject:
					out = append(out, fromObjectRecord(tenantID, rl.Resource().Attributes(), lr)...)
				}
			}
		}
	}
	return out
}

type k8sRecordKind int

const (
	kindNone k8sRecordKind = iota
	kindK8sEvent
	kindK8sObject
)

// recordKind tells the receivers' records from ordinary logs by their
// attributes (a single pass over them).
func recordKind(attrs pcommon.Map) k8sRecordKind {
	kind := kindNone
	attrs.Range(func(k string, v pcommon.Value) bool {
		switch k {
		case attrEventUID, attrEventReason:
			kind = kindK8sEvent
			return false
		case attrResourceName:
			kind = kindK8sObject
		case attrEventDomain:
			if v.Str() == "k8s" {
				kind = kindK8sObject
			}
		}
		return true
	})
	return kind
}

// k8sEvent is a Kubernetes Event, from either receiver.
type k8sEvent struct {
	uid, name, namespace string
	reason, message      string
	evType               string // Normal, Warning
	action               string
	count                int64
	timeNs               uint64
	observedNs           uint64
	objKind, objName     string
	objUID, fieldPath    string
	node                 string
	source               string
}

func attrStr(m pcommon.Map, key string) string {
	if v, ok := m.Get(key); ok {
		return v.AsString()
	}
	return ""
}

// fromEventRecord reads a k8s_events receiver record.
func fromEventRecord(tenantID string, res pcommon.Map, lr plog.LogRecord) (Event, bool) {
	attrs := lr.Attributes()
	ke := k8sEvent{
		source:     SourceK8sEvent,
		uid:        attrStr(attrs, attrEventUID),
		name:       attrStr(attrs, attrEventName),
		namespace:  attrStr(attrs, otlpconv.AttrNamespace),
		reason:     attrStr(attrs, attrEventReason),
		action:     attrStr(attrs, attrEventAction),
		message:    lr.Body().AsString(),
		evType:     lr.SeverityText(),
		timeNs:     uint64(lr.Timestamp()),
		observedNs: uint64(lr.ObservedTimestamp()),
		objKind:    attrStr(res, attrObjectKind),
		objName:    attrStr(res, attrObjectName),
		objUID:     attrStr(res, attrObjectUID),
		fieldPath:  attrStr(res, attrObjectFieldPath),
		node:       attrStr(res, otlpconv.AttrNodeName),
	}
	if v, ok := attrs.Get(attrEventCount); ok {
		switch v.Type() {
		case pcommon.ValueTypeInt:
			ke.count = v.Int()
		default:
			ke.count, _ = strconv.ParseInt(v.AsString(), 10, 64)
		}
	}
	// Older receiver versions put the involved object in record attributes
	// k8s.<kind>.name/uid and the field path in k8s.container.name.
	if ke.objKind == "" {
		if uid := attrStr(attrs, otlpconv.AttrPodUID); uid != "" {
			ke.objKind, ke.objUID, ke.objName = "Pod", uid, attrStr(attrs, otlpconv.AttrPodName)
		}
		if ke.fieldPath == "" {
			ke.fieldPath = attrStr(attrs, otlpconv.AttrContainerName)
		}
	}
	if ke.evType == "" {
		switch {
		case lr.SeverityNumber() >= plog.SeverityNumberWarn:
			ke.evType = "Warning"
		case lr.SeverityNumber() > 0:
			ke.evType = "Normal"
		}
	}
	if ke.uid == "" && ke.reason == "" {
		return Event{}, false
	}
	return ke.toEvent(tenantID), true
}

// fromObjectRecord reads a k8sobjects receiver record.
func fromObjectRecord(tenantID string, res pcommon.Map, lr plog.LogRecord) []Event {
	if lr.Body().Type() != pcommon.ValueTypeMap {
		return nil
	}
	body := lr.Body().Map().AsRaw()
	obj := body
	if o, ok := body["object"].(map[string]any); ok {
		if _, ok := body["type"].(string); ok { // watch mode
			obj = o
		}
	}
	kind, _ := obj["kind"].(string)
	if kind == "" {
		switch resourceOf(lr.Attributes()) {
		case "pods":
			kind = "Pod"
		case "events":
			kind = "Event"
		}
	}
	observed := uint64(lr.ObservedTimestamp())
	if observed == 0 {
		observed = uint64(lr.Timestamp())
	}
	ns := attrStr(res, otlpconv.AttrNamespace)
	switch kind {
	case "Pod":
		return podTransitions(tenantID, obj, observed)
	case "Event":
		ke, ok := eventFromObject(obj, ns, observed)
		if !ok {
			return nil
		}
		return []Event{ke.toEvent(tenantID)}
	}
	return nil
}

// resourceOf is the watched resource of a k8sobjects record: the
// k8s.resource.name attribute, or event.name when it names a resource
// (older versions).
func resourceOf(attrs pcommon.Map) string {
	if r := attrStr(attrs, attrResourceName); r != "" {
		return r
	}
	switch r := attrStr(attrs, attrEventNameOTel); r {
	case "pods", "events":
		return r
	}
	return ""
}

// ---- generic access to unstructured objects ----

func mapAt(m map[string]any, path ...string) map[string]any {
	cur := m
	for _, p := range path {
		next, ok := cur[p].(map[string]any)
		if !ok {
			return nil
		}
		cur = next
	}
	return cur
}

func strAt(m map[string]any, path ...string) string {
	if len(path) == 0 || m == nil {
		return ""
	}
	parent := mapAt(m, path[:len(path)-1]...)
	if parent == nil {
		return ""
	}
	switch v := parent[path[len(path)-1]].(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// intAt reads an integer (int64 from pdata, float64 from JSON-ish
// sources, or a decimal string); ok is false when absent.
func intAt(m map[string]any, path ...string) (int64, bool) {
	if len(path) == 0 || m == nil {
		return 0, false
	}
	parent := mapAt(m, path[:len(path)-1]...)
	if parent == nil {
		return 0, false
	}
	switch v := parent[path[len(path)-1]].(type) {
	case int64:
		return v, true
	case float64:
		if v != math.Trunc(v) || math.Abs(v) > 1<<53 {
			return 0, false
		}
		return int64(v), true
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// timeAt parses an RFC 3339 timestamp (Kubernetes Time or MicroTime) into
// unix ns; 0 when absent or malformed.
func timeAt(m map[string]any, path ...string) uint64 {
	s := strAt(m, path...)
	if s == "" {
		return 0
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil || t.Before(time.Unix(0, 0)) || t.After(time.Unix(0, math.MaxInt64)) {
		return 0
	}
	return uint64(t.UnixNano())
}

// eventFromObject reads a core/v1 or events.k8s.io/v1 Event object.
func eventFromObject(obj map[string]any, nsFallback string, observed uint64) (k8sEvent, bool) {
	involved := mapAt(obj, "involvedObject")
	if involved == nil {
		involved = mapAt(obj, "regarding") // events.k8s.io/v1
	}
	ke := k8sEvent{
		source:     SourceK8sObject,
		uid:        strAt(obj, "metadata", "uid"),
		name:       strAt(obj, "metadata", "name"),
		namespace:  strAt(involved, "namespace"),
		reason:     strAt(obj, "reason"),
		message:    strAt(obj, "message"),
		evType:     strAt(obj, "type"),
		action:     strAt(obj, "action"),
		observedNs: observed,
		objKind:    strAt(involved, "kind"),
		objName:    strAt(involved, "name"),
		objUID:     strAt(involved, "uid"),
		fieldPath:  strAt(involved, "fieldPath"),
		node:       strAt(obj, "source", "host"),
	}
	if ke.message == "" {
		ke.message = strAt(obj, "note") // events.k8s.io/v1
	}
	if ke.namespace == "" {
		ke.namespace = strAt(obj, "metadata", "namespace")
	}
	if ke.namespace == "" {
		ke.namespace = nsFallback
	}
	if ke.node == "" {
		ke.node = strAt(obj, "deprecatedSource", "host")
	}
	if c, ok := intAt(obj, "count"); ok {
		ke.count = c
	} else if c, ok := intAt(obj, "deprecatedCount"); ok {
		ke.count = c
	}
	// The k8s_events receiver's timestamp: eventTime, else lastTimestamp,
	// else firstTimestamp.
	for _, f := range [][]string{{"eventTime"}, {"lastTimestamp"}, {"deprecatedLastTimestamp"}, {"firstTimestamp"}, {"deprecatedFirstTimestamp"}} {
		if ke.timeNs = timeAt(obj, f...); ke.timeNs != 0 {
			break
		}
	}
	if ke.uid == "" && ke.reason == "" {
		return ke, false
	}
	return ke, true
}

// containerOfFieldPath is the container a field path such as
// "spec.containers{app}" names.
func containerOfFieldPath(fp string) string {
	i := strings.IndexByte(fp, '{')
	if i < 0 || !strings.HasSuffix(fp, "}") {
		return ""
	}
	return fp[i+1 : len(fp)-1]
}

// eventType classifies a Kubernetes event by its reason and message.
func eventType(reason, message string) string {
	switch reason {
	case "OOMKilling", "OOMKilled":
		return TypeOOMKilled
	case "CrashLoopBackOff":
		return TypeCrashLoop
	case "Evicted", "Evict":
		return TypeEvicted
	case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "ErrImageInspect":
		return TypeImagePullFailed
	case "BackOff":
		switch {
		case strings.Contains(message, "restarting failed container"):
			return TypeCrashLoop
		case strings.Contains(message, "pulling image"):
			return TypeImagePullFailed
		}
	case "Failed":
		switch {
		case strings.Contains(message, "ErrImagePull"), strings.Contains(message, "ImagePullBackOff"),
			strings.Contains(message, "Failed to pull image"), strings.Contains(message, "InvalidImageName"):
			return TypeImagePullFailed
		}
		return TypeContainerError
	}
	return TypeK8sEvent
}

// typeSeverity is the least severity of an event type: a Kubernetes
// "Warning" is only a warning, but an OOM kill is an error.
func typeSeverity(typ string) uint8 {
	switch typ {
	case TypeOOMKilled, TypeCrashLoop, TypeContainerError, TypeEvicted:
		return SeverityError
	case TypeImagePullFailed:
		return SeverityWarning
	}
	return 0
}

func (ke *k8sEvent) toEvent(tenantID string) Event {
	sev := SeverityInfo
	if s, ok := ParseSeverity(ke.evType); ok {
		sev = s
	}
	typ := eventType(ke.reason, ke.message)
	sev = max(sev, typeSeverity(typ))
	ev := Event{
		TenantID:         tenantID,
		TimeUnixNano:     ke.timeNs,
		ObservedUnixNano: ke.observedNs,
		Source:           ke.source,
		Type:             typ,
		Severity:         sev,
		SeverityText:     ke.evType,
		Reason:           ke.reason,
		Message:          ke.message,
		Namespace:        ke.namespace,
		NodeName:         ke.node,
		ExitCode:         ExitCodeUnknown,
		Tags:             []string{},
	}
	if ev.TimeUnixNano == 0 {
		ev.TimeUnixNano = ke.observedNs
	}
	if ke.objKind == "Pod" {
		ev.PodUID, ev.PodName = ke.objUID, ke.objName
		ev.ContainerName = containerOfFieldPath(ke.fieldPath)
		ev.Workload = WorkloadFromPodName(ke.objName)
	}
	fields := map[string]string{
		"k8s.event.uid": ke.uid, "k8s.event.name": ke.name, "k8s.event.action": ke.action,
		"k8s.object.kind": ke.objKind, "k8s.object.name": ke.objName, "k8s.object.uid": ke.objUID,
		"k8s.object.fieldpath": ke.fieldPath,
	}
	if ke.count != 0 {
		fields["k8s.event.count"] = strconv.FormatInt(ke.count, 10)
	}
	for k, v := range fields {
		if v == "" {
			delete(fields, k)
		}
	}
	ev.FieldKeys, ev.FieldValues = sortedFields(fields)
	// Identity of an occurrence: the Event object and its count (a
	// repeated event is the same object with a higher count) at its time.
	canon := canonical("event", ke.uid, strconv.FormatInt(ke.count, 10), strconv.FormatUint(ke.timeNs, 10))
	if ke.uid == "" {
		canon = canonical("event-nouid", ke.namespace, ke.objKind, ke.objUID, ke.reason, ke.message, strconv.FormatUint(ke.timeNs, 10))
	}
	ev.ID = NewID(tenantID, idSourceK8s, canon)
	return ev
}

// canonical joins parts unambiguously (length-prefixed).
func canonical(parts ...string) []byte {
	var b []byte
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

// ---- pod objects ----

// pod is what the transitions need of a Pod object.
type pod struct {
	uid, name, namespace, node, workload string
}

// podTransitions derives events from a Pod object's status: for each
// container status, a terminated state (current or last) with reason
// OOMKilled or a non-zero exit, a waiting state CrashLoopBackOff or an image
// pull failure; and the pod's eviction. Their ids are over the pod uid,
// container id, type, reason and transition time, so every report of the
// same state (watch updates, pull rounds, DELETED) gives the same event.
func podTransitions(tenantID string, obj map[string]any, observed uint64) []Event {
	p := pod{
		uid:       strAt(obj, "metadata", "uid"),
		name:      strAt(obj, "metadata", "name"),
		namespace: strAt(obj, "metadata", "namespace"),
		node:      strAt(obj, "spec", "nodeName"),
	}
	if p.uid == "" {
		return nil
	}
	p.workload = WorkloadFromPodName(p.name)
	if owners, ok := mapAt(obj, "metadata")["ownerReferences"].([]any); ok {
		for _, o := range owners {
			if om, ok := o.(map[string]any); ok {
				if kind, name := strAt(om, "kind"), strAt(om, "name"); name != "" {
					p.workload = WorkloadFromOwner(kind, name)
					break
				}
			}
		}
	}
	images := map[string]string{}
	if specs, ok := mapAt(obj, "spec")["containers"].([]any); ok {
		for _, c := range specs {
			if cm, ok := c.(map[string]any); ok {
				images[strAt(cm, "name")] = strAt(cm, "image")
			}
		}
	}
	// A stable time for states that carry none: when the pod last changed
	// condition (e.g. became not ready), else its creation.
	condTime := uint64(0)
	if conds, ok := mapAt(obj, "status")["conditions"].([]any); ok {
		for _, c := range conds {
			if cm, ok := c.(map[string]any); ok {
				condTime = max(condTime, timeAt(cm, "lastTransitionTime"))
			}
		}
	}
	if condTime == 0 {
		condTime = timeAt(obj, "metadata", "creationTimestamp")
	}

	var out []Event
	status := mapAt(obj, "status")
	for _, list := range []string{"initContainerStatuses", "containerStatuses", "ephemeralContainerStatuses"} {
		statuses, _ := status[list].([]any)
		for _, s := range statuses {
			cs, ok := s.(map[string]any)
			if !ok {
				continue
			}
			out = append(out, containerTransitions(tenantID, p, cs, images, condTime, observed)...)
		}
	}
	if strAt(status, "reason") == "Evicted" {
		t := condTime
		if t == 0 {
			t = observed
		}
		ev := p.event(tenantID, TypeEvicted, "Evicted", strAt(status, "message"), "", "", "", t, observed)
		out = append(out, ev)
	}
	return out
}

func containerTransitions(tenantID string, p pod, cs map[string]any, images map[string]string, condTime, observed uint64) []Event {
	name := strAt(cs, "name")
	image := strAt(cs, "image")
	if image == "" {
		image = images[name]
	}
	curID := otlpconv.NormalizeContainerID(strAt(cs, "containerID"))
	var out []Event
	seen := map[ID]bool{}
	add := func(ev Event) {
		if !seen[ev.ID] {
			seen[ev.ID] = true
			out = append(out, ev)
		}
	}
	// Terminations: the current state and the last one (after a restart
	// the OOM kill is only in lastState, with the old container's id).
	for _, st := range []string{"state", "lastState"} {
		term := mapAt(cs, st, "terminated")
		if term == nil {
			continue
		}
		reason := strAt(term, "reason")
		code, hasCode := intAt(term, "exitCode")
		typ := ""
		switch {
		case reason == "OOMKilled":
			typ = TypeOOMKilled
		case reason == "Completed" && (!hasCode || code == 0):
			continue
		case reason == "Error" || reason == "ContainerCannotRun" || reason == "StartError" || (hasCode && code != 0):
			typ = TypeContainerError
			if reason == "" {
				reason = "Error"
			}
		default:
			continue
		}
		cid := otlpconv.NormalizeContainerID(strAt(term, "containerID"))
		if cid == "" && st == "state" {
			cid = curID
		}
		t := timeAt(term, "finishedAt")
		if t == 0 {
			t = condTime
		}
		msg := fmt.Sprintf("container %s terminated: %s", name, reason)
		if hasCode {
			msg += " (exit code " + strconv.FormatInt(code, 10) + ")"
		}
		if m := strAt(term, "message"); m != "" {
			msg += ": " + m
		}
		ev := p.event(tenantID, typ, reason, msg, cid, name, image, t, observed)
		if hasCode && code >= math.MinInt32 && code <= math.MaxInt32 {
			ev.ExitCode = int32(code)
		}
		ev.FieldKeys, ev.FieldValues = addField(ev.FieldKeys, ev.FieldValues, "container.state", st)
		if sig, ok := intAt(term, "signal"); ok {
			ev.FieldKeys, ev.FieldValues = addField(ev.FieldKeys, ev.FieldValues, "container.signal", strconv.FormatInt(sig, 10))
		}
		add(ev)
	}
	if waiting := mapAt(cs, "state", "waiting"); waiting != nil {
		reason := strAt(waiting, "reason")
		typ := ""
		switch reason {
		case "CrashLoopBackOff":
			typ = TypeCrashLoop
		case "ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull", "ErrImageInspect":
			typ = TypeImagePullFailed
		}
		if typ != "" {
			// The crash that led to the back-off dates it; an image pull
			// failure is dated by the pod's last condition change.
			t := timeAt(cs, "lastState", "terminated", "finishedAt")
			if typ != TypeCrashLoop || t == 0 {
				t = condTime
			}
			if t == 0 {
				t = observed
			}
			msg := fmt.Sprintf("container %s waiting: %s", name, reason)
			if m := strAt(waiting, "message"); m != "" {
				msg += ": " + m
			}
			ev := p.event(tenantID, typ, reason, msg, curID, name, image, t, observed)
			if rc, ok := intAt(cs, "restartCount"); ok {
				ev.FieldKeys, ev.FieldValues = addField(ev.FieldKeys, ev.FieldValues, "container.restartCount", strconv.FormatInt(rc, 10))
			}
			add(ev)
		}
	}
	return out
}

// event builds one pod transition event.
func (p pod) event(tenantID, typ, reason, msg, containerID, containerName, image string, t, observed uint64) Event {
	ev := Event{
		TenantID:         tenantID,
		ID:               NewID(tenantID, idSourceK8s, canonical("pod", p.uid, containerID, typ, reason, strconv.FormatUint(t, 10))),
		TimeUnixNano:     t,
		ObservedUnixNano: observed,
		Source:           SourceK8sObject,
		Type:             typ,
		Severity:         max(typeSeverity(typ), SeverityWarning),
		Reason:           reason,
		Message:          msg,
		ContainerID:      containerID,
		ContainerName:    containerName,
		PodUID:           p.uid,
		PodName:          p.name,
		Namespace:        p.namespace,
		NodeName:         p.node,
		Workload:         p.workload,
		Image:            image,
		ExitCode:         ExitCodeUnknown,
		Tags:             []string{},
	}
	ev.SeverityText = SeverityName(ev.Severity)
	// The watch type (ADDED, MODIFIED, DELETED) is left out: a watch
	// update and a pull of the same state normalize to the same event.
	ev.FieldKeys, ev.FieldValues = []string{"k8s.pod.uid"}, []string{p.uid}
	return ev
}

// addField inserts key=value into sorted parallel slices.
func addField(keys, vals []string, key, val string) ([]string, []string) {
	i := 0
	for i < len(keys) && keys[i] < key {
		i++
	}
	keys = append(keys[:i], append([]string{key}, keys[i:]...)...)
	vals = append(vals[:i], append([]string{val}, vals[i:]...)...)
	return keys, vals
}
