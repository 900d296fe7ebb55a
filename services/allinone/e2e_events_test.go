package allinone

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/aftertrace/aftertrace/internal/testenv"
)

// podGen is one incarnation of pod "web-0": the same name each time, a new
// uid and container id.
type podGen struct {
	uid, cid string
	at       time.Time
	traceID  pcommon.TraceID
}

func (g podGen) resource(m pcommon.Map) {
	m.PutStr("service.name", "web")
	m.PutStr("k8s.pod.uid", g.uid)
	m.PutStr("k8s.pod.name", "web-0")
	m.PutStr("k8s.namespace.name", "shop")
	m.PutStr("k8s.node.name", "node-1")
	m.PutStr("container.id", "containerd://"+g.cid)
	m.PutStr("k8s.container.name", "web")
}

func ts(t time.Time) pcommon.Timestamp { return pcommon.NewTimestampFromTime(t) }

// postBody POSTs body to the gateway with the test key.
func (a *testApp) postBody(t *testing.T, path, contentType string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+a.Gateway.HTTPAddr()+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", contentType)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (a *testApp) mustPost(t *testing.T, path, contentType string, body []byte) {
	t.Helper()
	if code, b := a.postBody(t, path, contentType, body); code != http.StatusOK {
		t.Fatalf("POST %s: %d %s", path, code, b)
	}
}

// sendTelemetry sends one span, one log line and one gauge point of g.
func (a *testApp) sendTelemetry(t *testing.T, g podGen) {
	t.Helper()
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	g.resource(rs.Resource().Attributes())
	sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
	sp.SetTraceID(g.traceID)
	sp.SetSpanID(pcommon.SpanID{1, 2, 3})
	sp.SetName("GET /cart")
	sp.SetStartTimestamp(ts(g.at.Add(time.Second)))
	sp.SetEndTimestamp(ts(g.at.Add(time.Second + 7*time.Millisecond)))
	b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	a.mustPost(t, "/v1/traces", "application/json", b)

	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	g.resource(rl.Resource().Attributes())
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(ts(g.at.Add(1500 * time.Millisecond)))
	lr.Body().SetStr("cart of " + g.uid)
	b, _ = plogotlp.NewExportRequestFromLogs(ld).MarshalJSON()
	a.mustPost(t, "/v1/logs", "application/json", b)

	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	g.resource(rm.Resource().Attributes())
	m := rm.ScopeMetrics().AppendEmpty().Metrics().AppendEmpty()
	m.SetName("container.memory.usage")
	dp := m.SetEmptyGauge().DataPoints().AppendEmpty()
	dp.SetTimestamp(ts(g.at.Add(3 * time.Second)))
	dp.SetIntValue(900 << 20)
	b, _ = pmetricotlp.NewExportRequestFromMetrics(md).MarshalJSON()
	a.mustPost(t, "/v1/metrics", "application/json", b)
}

func falcoAlert(at time.Time, rule, priority, containerID string) string {
	return fmt.Sprintf(`{"hostname":"node-1","output":"%s: %s %s (container=%s)","priority":%q,"rule":%q,"source":"syscall","tags":["container"],"time":%q,"output_fields":{"container.id":%q,"container.image.repository":"acme/web","container.name":"web","k8s.ns.name":"shop","k8s.pod.name":"web-0","proc.name":"bash","proc.cmdline":"bash -i","user.name":"root"}}`,
		at.Format("15:04:05.000000000"), priority, rule, containerID, priority, rule, at.Format(time.RFC3339Nano), containerID)
}

// k8sLogs is what the Collector's two Kubernetes receivers send about gen1:
// the k8s_events record of the kubelet's "Killing" event, the same event
// through k8sobjects (watch), and the final Pod object (watch DELETED and
// a pull) whose container was OOM-killed.
func k8sLogs(g podGen) []byte {
	ld := plog.NewLogs()
	evTime := g.at.Add(6 * time.Second).UTC().Truncate(time.Second)
	// k8s_events receiver.
	rl := ld.ResourceLogs().AppendEmpty()
	res := rl.Resource().Attributes()
	res.PutStr("k8s.node.name", "node-1")
	res.PutStr("k8s.object.kind", "Pod")
	res.PutStr("k8s.object.name", "web-0")
	res.PutStr("k8s.object.uid", g.uid)
	res.PutStr("k8s.object.fieldpath", "spec.containers{web}")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetTimestamp(ts(evTime))
	lr.SetObservedTimestamp(ts(evTime.Add(time.Second)))
	lr.SetSeverityText("Normal")
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	lr.Body().SetStr("Stopping container web")
	for k, v := range map[string]string{"k8s.event.reason": "Killing", "k8s.event.action": "", "k8s.event.name": "web-0.17c9",
		"k8s.event.uid": "ev-" + g.uid, "k8s.namespace.name": "shop"} {
		lr.Attributes().PutStr(k, v)
	}
	lr.Attributes().PutInt("k8s.event.count", 1)

	object := func(watchType string, obj map[string]any) {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr("k8s.namespace.name", "shop")
		r := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		r.SetObservedTimestamp(ts(evTime.Add(2 * time.Second)))
		r.Attributes().PutStr("k8s.resource.name", strings.ToLower(obj["kind"].(string))+"s")
		body := obj
		if watchType != "" {
			r.Attributes().PutStr("event.domain", "k8s")
			r.Attributes().PutStr("event.name", "web-0")
			body = map[string]any{"type": watchType, "object": obj}
		}
		_ = r.Body().SetEmptyMap().FromRaw(body)
	}
	object("ADDED", map[string]any{
		"apiVersion": "v1", "kind": "Event",
		"metadata":       map[string]any{"name": "web-0.17c9", "namespace": "shop", "uid": "ev-" + g.uid},
		"involvedObject": map[string]any{"kind": "Pod", "name": "web-0", "namespace": "shop", "uid": g.uid, "fieldPath": "spec.containers{web}"},
		"reason":         "Killing", "message": "Stopping container web", "type": "Normal", "count": 1,
		"source":        map[string]any{"component": "kubelet", "host": "node-1"},
		"lastTimestamp": evTime.Format(time.RFC3339), "firstTimestamp": evTime.Format(time.RFC3339),
	})
	pod := map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]any{"name": "web-0", "namespace": "shop", "uid": g.uid,
			"ownerReferences": []any{map[string]any{"kind": "StatefulSet", "name": "web"}}},
		"spec": map[string]any{"nodeName": "node-1", "containers": []any{map[string]any{"name": "web", "image": "acme/web:1"}}},
		"status": map[string]any{"phase": "Failed", "containerStatuses": []any{map[string]any{
			"name": "web", "image": "acme/web:1", "containerID": "containerd://" + g.cid, "restartCount": 0,
			"state": map[string]any{"terminated": map[string]any{"exitCode": 137, "reason": "OOMKilled",
				"containerID": "containerd://" + g.cid, "finishedAt": g.at.Add(5 * time.Second).UTC().Format(time.RFC3339)}},
		}}},
	}
	object("DELETED", pod)
	object("", pod)
	b, _ := plogotlp.NewExportRequestFromLogs(ld).MarshalJSON()
	return b
}

type apiEvent struct {
	ID          string `json:"id"`
	Time        string `json:"timeUnixNano"`
	Source      string `json:"source"`
	Type        string `json:"type"`
	Severity    int    `json:"severity"`
	Reason      string `json:"reason"`
	ContainerID string `json:"containerId"`
	PodUID      string `json:"podUid"`
	PodName     string `json:"podName"`
	Namespace   string `json:"namespace"`
	Workload    string `json:"workload"`
	Image       string `json:"image"`
	ExitCode    int    `json:"exitCode"`
	ProcessName string `json:"processName"`
}

func (a *testApp) waitEvents(t *testing.T, q url.Values, want int) []apiEvent {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var page struct {
			Items      []apiEvent `json:"items"`
			NextCursor string     `json:"nextCursor"`
		}
		code := a.getJSON(t, "/api/v1/events?"+q.Encode(), &page)
		if code == http.StatusOK && len(page.Items) == want {
			return page.Items
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET /events?%s: %d, %d items, want %d: %+v", q.Encode(), code, len(page.Items), want, page.Items)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestEventsEndToEnd(t *testing.T) {
	env := testenv.Get(t)
	app := startApp(t, env, env.ClickHouseAddr, appOptions{})
	t0 := time.Now().Add(-10 * time.Minute).Truncate(time.Second)
	gen1 := podGen{uid: "uid-web-0-first", cid: strings.Repeat("c1", 32), at: t0, traceID: pcommon.TraceID{0xa1, 1}}
	gen2 := podGen{uid: "uid-web-0-second", cid: strings.Repeat("d2", 32), at: t0.Add(20 * time.Second), traceID: pcommon.TraceID{0xb2, 2}}

	// Falco alerts in the three shapes; the same alert in several bodies
	// is one event.
	alertA := falcoAlert(t0.Add(2*time.Second), "Terminal shell in container", "Notice", gen1.cid[:12])
	alertB := falcoAlert(t0.Add(3*time.Second), "Write below root", "Error", "host")
	alertC := falcoAlert(gen2.at.Add(2*time.Second), "Terminal shell in container", "Warning", gen2.cid[:12])
	app.mustPost(t, "/ingest/falco", "application/json", []byte(alertA))
	app.mustPost(t, "/ingest/falco", "application/json", []byte("["+alertA+",\n"+alertB+"]"))
	app.mustPost(t, "/ingest/falco", "application/x-ndjson", []byte(alertA+"\n"+alertB+"\n"+alertC+"\n"))
	alerts := app.waitEvents(t, params("type", "security_alert"), 3)
	a := alerts[2] // oldest last
	if a.ContainerID != gen1.cid[:12] || a.Source != "falco" || a.Reason != "Terminal shell in container" || a.PodName != "web-0" ||
		a.Namespace != "shop" || a.ProcessName != "bash" || a.Workload != "web" || a.Image != "acme/web" || a.Severity != 10 {
		t.Errorf("alert A: %+v", a)
	}
	if b := alerts[1]; b.ContainerID != "" || b.Severity != 17 {
		t.Errorf("host alert B: %+v", b)
	}
	if n := len(app.waitEvents(t, params("type", "security_alert", "minSeverity", "warning"), 2)); n != 2 {
		t.Errorf("minSeverity=warning: %d", n)
	}
	if n := len(app.waitEvents(t, params("type", "security_alert", "minSeverity", "17"), 1)); n != 1 {
		t.Errorf("minSeverity=17: %d", n)
	}

	// Malformed Falco bodies: 400 naming the reason, nothing stored.
	code, body := app.postBody(t, "/ingest/falco", "application/json",
		[]byte(alertA+"\n"+`{"time":"2024-05-06T10:01:02Z","rule":"r"}`))
	if code != http.StatusBadRequest || !strings.Contains(body, "record 2: field priority: missing") {
		t.Errorf("missing priority: %d %s", code, body)
	}
	code, body = app.postBody(t, "/ingest/falco", "application/json", []byte(`[{"time":`))
	if code != http.StatusBadRequest || !strings.Contains(body, "malformed JSON") || !strings.Contains(body, `"code"`) {
		t.Errorf("malformed: %d %s", code, body)
	}

	// Both generations' telemetry, and the Kubernetes receivers' records
	// of gen1's end, through OTLP/HTTP.
	app.sendTelemetry(t, gen1)
	app.sendTelemetry(t, gen2)
	app.mustPost(t, "/v1/logs", "application/json", k8sLogs(gen1))

	podEvents := app.waitEvents(t, params("podUid", gen1.uid), 2)
	kill, oom := podEvents[0], podEvents[1]
	if oom.Type != "oom_killed" || oom.ExitCode != 137 || oom.ContainerID != gen1.cid || oom.Reason != "OOMKilled" ||
		oom.Workload != "web" || oom.Image != "acme/web:1" || oom.Source != "k8s_object" {
		t.Errorf("OOM event: %+v", oom)
	}
	if kill.Type != "k8s_event" || kill.Reason != "Killing" || kill.ContainerID != "" || kill.PodName != "web-0" {
		t.Errorf("Killing event (both receiver shapes, once): %+v", kill)
	}
	byContainer := app.waitEvents(t, params("containerId", "containerd://"+gen1.cid), 2)
	if byContainer[0].Type != "oom_killed" || byContainer[1].Type != "security_alert" {
		t.Errorf("events of gen1's container: %+v", byContainer)
	}
	if n := len(app.waitEvents(t, params("type", "oom_killed", "namespace", "shop"), 1)); n != 1 {
		t.Errorf("type+namespace: %d", n)
	}
	if code := app.getJSON(t, "/api/v1/events?minSeverity=loud", nil); code != http.StatusBadRequest {
		t.Errorf("bad minSeverity: %d", code)
	}

	// The registry: gen1's container by its 12-char and full id, long gone.
	type apiContainer struct {
		ContainerID string   `json:"containerId"`
		PodUID      string   `json:"podUid"`
		PodName     string   `json:"podName"`
		Signals     []string `json:"signals"`
		Termination *struct {
			Reason   string `json:"reason"`
			ExitCode *int   `json:"exitCode"`
		} `json:"termination"`
	}
	var c1 apiContainer
	deadline := time.Now().Add(30 * time.Second)
	for {
		c1 = apiContainer{}
		if app.getJSON(t, "/api/v1/containers/"+gen1.cid[:12], &c1) == http.StatusOK && len(c1.Signals) == 4 && c1.Termination != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("container %s: %+v", gen1.cid[:12], c1)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if c1.ContainerID != gen1.cid || c1.PodUID != gen1.uid || c1.Termination.Reason != "OOMKilled" ||
		c1.Termination.ExitCode == nil || *c1.Termination.ExitCode != 137 {
		t.Errorf("container gen1: %+v", c1)
	}
	var c2 apiContainer
	if code := app.getJSON(t, "/api/v1/containers/"+gen2.cid, &c2); code != http.StatusOK || c2.PodUID != gen2.uid || c2.Termination != nil {
		t.Errorf("container gen2: %d %+v", code, c2)
	}
	if code := app.getJSON(t, "/api/v1/containers/"+strings.Repeat("e", 12), nil); code != http.StatusNotFound {
		t.Errorf("unknown container: %d", code)
	}
	if code := app.getJSON(t, "/api/v1/containers/abc", nil); code != http.StatusBadRequest {
		t.Errorf("short container id: %d", code)
	}
	var pod struct {
		PodName    string `json:"podName"`
		Containers []struct {
			ContainerID string `json:"containerId"`
		} `json:"containers"`
	}
	if code := app.getJSON(t, "/api/v1/pods/"+gen1.uid, &pod); code != http.StatusOK || pod.PodName != "web-0" ||
		len(pod.Containers) != 1 || pod.Containers[0].ContainerID != gen1.cid {
		t.Errorf("pod gen1: %d %+v", code, pod)
	}

	// gen1's timeline (no window: its whole known life) is complete and
	// holds nothing of gen2, though both pods were named web-0.
	var tl struct {
		Items []struct {
			Kind  string    `json:"kind"`
			Time  string    `json:"timeUnixNano"`
			Event *apiEvent `json:"event"`
			Log   *struct {
				Body any `json:"body"`
			} `json:"log"`
			Span *struct {
				TraceID    string `json:"traceId"`
				Name       string `json:"name"`
				DurationNs string `json:"durationNs"`
			} `json:"span"`
			Metric *struct {
				Name  string `json:"name"`
				Value any    `json:"value"`
			} `json:"metric"`
		} `json:"items"`
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		if app.getJSON(t, "/api/v1/containers/"+gen1.cid[:12]+"/timeline", &tl) == http.StatusOK && len(tl.Items) >= 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("timeline: %+v", tl.Items)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var kinds []string
	for _, it := range tl.Items {
		k := it.Kind
		switch {
		case it.Event != nil:
			k += ":" + it.Event.Type
			if it.Event.PodUID == gen2.uid || it.Event.ContainerID == gen2.cid[:12] {
				t.Errorf("gen2 event in gen1's timeline: %+v", it.Event)
			}
		case it.Log != nil:
			if it.Log.Body != "cart of "+gen1.uid {
				t.Errorf("log of another pod: %v", it.Log.Body)
			}
		case it.Span != nil:
			if it.Span.TraceID != fmt.Sprintf("%x", gen1.traceID[:]) || it.Span.DurationNs != "7000000" {
				t.Errorf("span %+v", it.Span)
			}
		case it.Metric != nil:
			if it.Metric.Name != "container.memory.usage" || it.Metric.Value != float64(900<<20) {
				t.Errorf("metric %+v", it.Metric)
			}
		}
		kinds = append(kinds, k)
	}
	want := "span,log,event:security_alert,metric,event:oom_killed,event:k8s_event"
	if got := strings.Join(kinds, ","); got != want {
		t.Errorf("timeline %s, want %s", got, want)
	}
	for i := 1; i < len(tl.Items); i++ {
		if len(tl.Items[i].Time) < len(tl.Items[i-1].Time) ||
			(len(tl.Items[i].Time) == len(tl.Items[i-1].Time) && tl.Items[i].Time < tl.Items[i-1].Time) {
			t.Errorf("timeline not in time order at %d", i)
		}
	}
	_ = json.Valid
}
