package events

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Records as the Collector's receivers build them (see
// opentelemetry-collector-contrib receiver/k8seventsreceiver
// k8s_event_to_logdata.go and receiver/k8sobjectsreceiver
// unstructured_to_logdata.go), sent through OTLP JSON and back.

const (
	podUID   = "6b1f7c2e-93a4-4d1e-8f7a-2c0d5e9b1a44"
	fullCID  = "9a8b7c6d5e4f30211203f4e5d6c7b8a99a8b7c6d5e4f30211203f4e5d6c7b8a9"
	oldCID   = "1111222233334444555566667777888899990000aaaabbbbccccddddeeeeffff"
	evUID    = "0f9e8d7c-6b5a-4938-2716-05f4e3d2c1b0"
	nodeName = "node-7"
)

var (
	evTime  = time.Date(2024, 5, 6, 11, 0, 0, 0, time.UTC)
	obsTime = time.Date(2024, 5, 6, 11, 0, 3, 0, time.UTC)
)

// roundTrip sends ld through OTLP JSON, as the gateway receives it.
func roundTrip(t testing.TB, ld plog.Logs) plog.Logs {
	t.Helper()
	b, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	out, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(b)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// k8sEventsRecord is one k8s_events receiver record.
func k8sEventsRecord(ld plog.Logs, reason, typ, msg string, count int64) {
	rl := ld.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr("k8s.node.name", nodeName)
	res.PutStr("k8s.object.kind", "Pod")
	res.PutStr("k8s.object.name", "checkout-7d9f8b6c5d-x2k4p")
	res.PutStr("k8s.object.uid", podUID)
	res.PutStr("k8s.object.fieldpath", "spec.containers{app}")
	res.PutStr("k8s.object.api_version", "v1")
	res.PutStr("k8s.object.resource_version", "4711")
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName("github.com/open-telemetry/opentelemetry-collector-contrib/receiver/k8seventsreceiver")
	lr := sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(evTime))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(obsTime))
	lr.Body().SetStr(msg)
	lr.SetSeverityText(typ)
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	if typ == "Warning" {
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
	}
	a := lr.Attributes()
	a.PutStr("k8s.event.reason", reason)
	a.PutStr("k8s.event.action", "")
	a.PutStr("k8s.event.start_time", "2024-05-06 10:59:00 +0000 UTC")
	a.PutStr("k8s.event.name", "checkout-7d9f8b6c5d-x2k4p.17c9a1b2c3d4e5f6")
	a.PutStr("k8s.event.uid", evUID)
	a.PutStr("k8s.namespace.name", "shop")
	if count != 0 {
		a.PutInt("k8s.event.count", count)
	}
}

// eventObject is a core/v1 Event as the k8sobjects receiver puts it in a body.
func eventObject(reason, typ, msg string, count int64) map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Event",
		"metadata": map[string]any{
			"name": "checkout-7d9f8b6c5d-x2k4p.17c9a1b2c3d4e5f6", "namespace": "shop", "uid": evUID,
			"resourceVersion": "99", "creationTimestamp": "2024-05-06T10:59:00Z",
		},
		"involvedObject": map[string]any{
			"kind": "Pod", "namespace": "shop", "name": "checkout-7d9f8b6c5d-x2k4p", "uid": podUID,
			"apiVersion": "v1", "resourceVersion": "4711", "fieldPath": "spec.containers{app}",
		},
		"reason": reason, "message": msg, "type": typ, "count": count,
		"source":         map[string]any{"component": "kubelet", "host": nodeName},
		"firstTimestamp": "2024-05-06T10:59:00Z", "lastTimestamp": evTime.Format(time.RFC3339),
		"eventTime": nil, "reportingComponent": "kubelet", "reportingInstance": nodeName,
	}
}

// objectsRecord is one k8sobjects receiver record; watchType "" is pull mode.
func objectsRecord(ld plog.Logs, resource, watchType string, obj map[string]any) {
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("k8s.namespace.name", "shop")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(obsTime))
	lr.Attributes().PutStr("k8s.resource.name", resource)
	body := obj
	if watchType != "" {
		lr.Attributes().PutStr("event.domain", "k8s")
		lr.Attributes().PutStr("event.name", obj["metadata"].(map[string]any)["name"].(string))
		body = map[string]any{"type": watchType, "object": obj}
	}
	if err := lr.Body().SetEmptyMap().FromRaw(body); err != nil {
		panic(err)
	}
}

// podObject is a Pod whose container "app" was OOM-killed (lastState,
// old container) and now waits in CrashLoopBackOff.
func podObject() map[string]any {
	return map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{
			"name": "checkout-7d9f8b6c5d-x2k4p", "namespace": "shop", "uid": podUID,
			"creationTimestamp": "2024-05-06T10:00:00Z",
			"ownerReferences": []any{map[string]any{
				"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "checkout-7d9f8b6c5d", "uid": "rs-uid", "controller": true,
			}},
		},
		"spec": map[string]any{
			"nodeName":   nodeName,
			"containers": []any{map[string]any{"name": "app", "image": "ghcr.io/acme/checkout:1.4.2"}},
		},
		"status": map[string]any{
			"phase": "Running",
			"conditions": []any{
				map[string]any{"type": "Ready", "status": "False", "lastTransitionTime": "2024-05-06T10:59:58Z"},
				map[string]any{"type": "PodScheduled", "status": "True", "lastTransitionTime": "2024-05-06T10:00:00Z"},
			},
			"containerStatuses": []any{map[string]any{
				"name": "app", "image": "ghcr.io/acme/checkout:1.4.2", "ready": false, "restartCount": int64(3),
				"containerID": "containerd://" + fullCID,
				"state": map[string]any{"waiting": map[string]any{
					"reason":  "CrashLoopBackOff",
					"message": "back-off 40s restarting failed container=app pod=checkout-7d9f8b6c5d-x2k4p_shop(" + podUID + ")",
				}},
				"lastState": map[string]any{"terminated": map[string]any{
					"exitCode": int64(137), "reason": "OOMKilled", "containerID": "containerd://" + oldCID,
					"startedAt": "2024-05-06T10:58:00Z", "finishedAt": "2024-05-06T10:59:57Z",
				}},
			}},
		},
	}
}

func TestFromLogsK8sEventsReceiverAndObjectsAgree(t *testing.T) {
	for _, tc := range []struct {
		reason, typ, msg string
		wantType         string
		wantSev          uint8
	}{
		{"BackOff", "Warning", "Back-off restarting failed container app in pod checkout-7d9f8b6c5d-x2k4p_shop(" + podUID + ")", TypeCrashLoop, SeverityError},
		{"OOMKilling", "Warning", "Memory cgroup out of memory: Killed process 4242 (java)", TypeOOMKilled, SeverityError},
		{"Evicted", "Warning", "The node was low on resource: memory.", TypeEvicted, SeverityError},
		{"Failed", "Warning", "Failed to pull image \"ghcr.io/acme/nope:1\": rpc error: not found", TypeImagePullFailed, SeverityWarning},
		{"Failed", "Warning", "Error: ErrImagePull", TypeImagePullFailed, SeverityWarning},
		{"BackOff", "Normal", "Back-off pulling image \"ghcr.io/acme/nope:1\"", TypeImagePullFailed, SeverityWarning},
		{"Failed", "Warning", "Error: failed to create containerd task", TypeContainerError, SeverityError},
		{"Pulled", "Normal", "Container image already present on machine", TypeK8sEvent, SeverityInfo},
		{"Unhealthy", "Warning", "Readiness probe failed", TypeK8sEvent, SeverityWarning},
	} {
		t.Run(tc.reason+"/"+tc.wantType, func(t *testing.T) {
			ld := plog.NewLogs()
			k8sEventsRecord(ld, tc.reason, tc.typ, tc.msg, 5)
			objectsRecord(ld, "events", "ADDED", eventObject(tc.reason, tc.typ, tc.msg, 5))
			objectsRecord(ld, "events", "", eventObject(tc.reason, tc.typ, tc.msg, 5))
			evs := FromLogs("t1", roundTrip(t, ld))
			if len(evs) != 3 {
				t.Fatalf("%d events, want 3", len(evs))
			}
			e := evs[0]
			if e.Source != SourceK8sEvent || evs[1].Source != SourceK8sObject {
				t.Errorf("sources %s %s", e.Source, evs[1].Source)
			}
			if e.Type != tc.wantType || e.Severity != tc.wantSev || e.Reason != tc.reason || e.Message != tc.msg ||
				e.PodUID != podUID || e.PodName != "checkout-7d9f8b6c5d-x2k4p" || e.Namespace != "shop" ||
				e.NodeName != nodeName || e.ContainerName != "app" || e.Workload != "checkout" ||
				e.TimeUnixNano != uint64(evTime.UnixNano()) || e.ExitCode != ExitCodeUnknown || e.ContainerID != "" {
				t.Errorf("event %+v", e)
			}
			for i := 1; i < 3; i++ {
				o := evs[i]
				o.Source = e.Source
				if !equalEvents(e, o) {
					t.Errorf("receiver record and objects record %d differ:\n%+v\n%+v", i, e, o)
				}
			}
			// A repeat of the event (count 6) is another occurrence.
			ld2 := plog.NewLogs()
			k8sEventsRecord(ld2, tc.reason, tc.typ, tc.msg, 6)
			if again := FromLogs("t1", ld2); again[0].ID == e.ID {
				t.Error("a repeated event (higher count) must get a new id")
			}
		})
	}
}

func equalEvents(a, b Event) bool {
	if a.ID != b.ID || a.TimeUnixNano != b.TimeUnixNano || a.Type != b.Type || a.Severity != b.Severity ||
		a.SeverityText != b.SeverityText || a.Reason != b.Reason || a.Message != b.Message ||
		a.ContainerID != b.ContainerID || a.ContainerName != b.ContainerName || a.PodUID != b.PodUID ||
		a.PodName != b.PodName || a.Namespace != b.Namespace || a.NodeName != b.NodeName ||
		a.Workload != b.Workload || a.Image != b.Image || a.ExitCode != b.ExitCode || a.Source != b.Source {
		return false
	}
	if len(a.FieldKeys) != len(b.FieldKeys) {
		return false
	}
	for i := range a.FieldKeys {
		if a.FieldKeys[i] != b.FieldKeys[i] || a.FieldValues[i] != b.FieldValues[i] {
			return false
		}
	}
	return true
}

func TestFromLogsPodTransitions(t *testing.T) {
	ld := plog.NewLogs()
	objectsRecord(ld, "pods", "MODIFIED", podObject())
	objectsRecord(ld, "pods", "", podObject()) // a pull round of the same state
	evs := FromLogs("t1", roundTrip(t, ld))
	if len(evs) != 4 {
		t.Fatalf("%d events, want 4 (OOM + crash loop, twice): %+v", len(evs), evs)
	}
	oom, crash := evs[0], evs[1]
	if oom.Type != TypeOOMKilled || oom.ExitCode != 137 || oom.ContainerID != oldCID || oom.Reason != "OOMKilled" ||
		oom.PodUID != podUID || oom.ContainerName != "app" || oom.Image != "ghcr.io/acme/checkout:1.4.2" ||
		oom.Workload != "checkout" || oom.NodeName != nodeName || oom.Namespace != "shop" ||
		oom.TimeUnixNano != uint64(time.Date(2024, 5, 6, 10, 59, 57, 0, time.UTC).UnixNano()) ||
		oom.Severity != SeverityError || oom.Source != SourceK8sObject {
		t.Errorf("oom event %+v", oom)
	}
	if oom.ContainerIDShort() != oldCID[:12] {
		t.Errorf("short id %q", oom.ContainerIDShort())
	}
	if crash.Type != TypeCrashLoop || crash.ContainerID != fullCID || crash.Reason != "CrashLoopBackOff" ||
		crash.TimeUnixNano != oom.TimeUnixNano || crash.ExitCode != ExitCodeUnknown {
		t.Errorf("crash loop event %+v", crash)
	}
	if !equalEvents(evs[0], evs[2]) || !equalEvents(evs[1], evs[3]) {
		t.Errorf("watch and pull of the same pod state differ:\n%+v\n%+v", evs[:2], evs[2:])
	}

	// The container restarted again and was OOM-killed again: a new event.
	p := podObject()
	cs := p["status"].(map[string]any)["containerStatuses"].([]any)[0].(map[string]any)
	cs["lastState"].(map[string]any)["terminated"].(map[string]any)["finishedAt"] = "2024-05-06T11:05:00Z"
	cs["lastState"].(map[string]any)["terminated"].(map[string]any)["containerID"] = "containerd://" + fullCID
	ld2 := plog.NewLogs()
	objectsRecord(ld2, "pods", "MODIFIED", p)
	evs2 := FromLogs("t1", ld2)
	if len(evs2) != 2 || evs2[0].ID == oom.ID || evs2[0].ContainerID != fullCID {
		t.Errorf("second OOM kill: %+v", evs2)
	}
}

func TestFromLogsPodStates(t *testing.T) {
	base := func(mut func(status map[string]any, cs map[string]any)) map[string]any {
		p := podObject()
		status := p["status"].(map[string]any)
		cs := status["containerStatuses"].([]any)[0].(map[string]any)
		delete(cs, "lastState")
		mut(status, cs)
		return p
	}
	for _, tc := range []struct {
		name     string
		pod      map[string]any
		wantType string
		wantCode int32
	}{
		{"error exit", base(func(_, cs map[string]any) {
			cs["state"] = map[string]any{"terminated": map[string]any{"exitCode": int64(2), "reason": "Error", "finishedAt": "2024-05-06T11:00:00Z"}}
		}), TypeContainerError, 2},
		{"image pull", base(func(_, cs map[string]any) {
			delete(cs, "containerID")
			cs["state"] = map[string]any{"waiting": map[string]any{"reason": "ImagePullBackOff", "message": "Back-off pulling image"}}
		}), TypeImagePullFailed, ExitCodeUnknown},
		{"evicted", base(func(status, cs map[string]any) {
			status["phase"], status["reason"], status["message"] = "Failed", "Evicted", "The node was low on resource: memory."
			cs["state"] = map[string]any{"terminated": map[string]any{"exitCode": int64(0), "reason": "Completed"}}
		}), TypeEvicted, ExitCodeUnknown},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ld := plog.NewLogs()
			objectsRecord(ld, "pods", "MODIFIED", tc.pod)
			evs := FromLogs("t1", roundTrip(t, ld))
			if len(evs) != 1 || evs[0].Type != tc.wantType || evs[0].ExitCode != tc.wantCode || evs[0].PodUID != podUID {
				t.Fatalf("events %+v", evs)
			}
		})
	}
	// A healthy pod yields nothing.
	healthy := base(func(_, cs map[string]any) {
		cs["state"] = map[string]any{"running": map[string]any{"startedAt": "2024-05-06T10:00:05Z"}}
	})
	ld := plog.NewLogs()
	objectsRecord(ld, "pods", "ADDED", healthy)
	if evs := FromLogs("t1", ld); len(evs) != 0 {
		t.Errorf("healthy pod: %+v", evs)
	}
}

func TestFromLogsIgnoresOtherLogs(t *testing.T) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("k8s.pod.uid", podUID)
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.Body().SetStr("GET /health 200")
	lr.Attributes().PutStr("event.domain", "browser")
	lr2 := rl.ScopeLogs().At(0).LogRecords().AppendEmpty()
	lr2.Attributes().PutStr("k8s.resource.name", "pods")
	lr2.Body().SetStr("not a map") // k8sobjects-looking, but no object
	if evs := FromLogs("t1", ld); len(evs) != 0 {
		t.Errorf("events from ordinary logs: %+v", evs)
	}
}

func BenchmarkFromLogsOrdinary(b *testing.B) {
	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	for i := range 1000 {
		lr := sl.LogRecords().AppendEmpty()
		lr.Body().SetStr("line")
		lr.Attributes().PutInt("i", int64(i))
		lr.Attributes().PutStr("http.route", "/x")
	}
	b.ReportAllocs()
	for b.Loop() {
		if FromLogs("t", ld) != nil {
			b.Fatal("events")
		}
	}
}
