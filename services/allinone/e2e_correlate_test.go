package allinone

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/testenv"
	"github.com/aftertrace/aftertrace/loadtest/loadgen"
)

// TestCorrelationScenario is the acceptance scenario of event correlation:
// generated traffic of an 8-service shop on 24 pods (business transactions
// with business keys), Falco alerts and an OOMKilled pod at known times,
// all through the public endpoints; every event's linked traces and
// business impact are checked against the ground truth through the API
// (precision = recall = 1), then every event is re-delivered and neither
// links nor incidents may be duplicated.
func TestCorrelationScenario(t *testing.T) {
	env := testenv.Get(t)
	const before, after = 2 * time.Minute, 30 * time.Second
	app := startApp(t, env, env.ClickHouseAddr, appOptions{cfg: func(c *Config) {
		c.Correlator.OpsAddr = ""
		c.Correlator.Before, c.Correlator.After, c.Correlator.Settle = before, after, 2*time.Second
		c.Correlator.DefinitionsTTL = 0
		c.Correlator.MaxDelay = 500 * time.Millisecond
	}})
	ctx := context.Background()

	// Business transaction definitions, through the API.
	for _, d := range loadgen.BusinessTransactionDefs() {
		if code, body := app.send(t, http.MethodPost, "/api/v1/business-transactions", d); code != http.StatusCreated {
			t.Fatalf("create business transaction %s: %d %s", d.Name, code, body)
		}
	}

	// Traffic: one trace every 250 ms over 6 minutes, ending 90 s ago (so
	// every window has closed once the events arrive).
	model, err := loadgen.NewModel(loadgen.DefaultModelConfig())
	if err != nil {
		t.Fatal(err)
	}
	pods := 0
	for _, s := range model.Services {
		pods += len(s.Pods)
	}
	if len(model.Services) < 5 || pods < 10 {
		t.Fatalf("model has %d services, %d pods", len(model.Services), pods)
	}
	gen := loadgen.NewGenerator(model, 7)
	rec := loadgen.NewSpanRecorder()
	sender := loadgen.NewHTTPSender("http://"+app.Gateway.HTTPAddr(), testKey, nil)
	defer sender.Close()
	end := time.Now().Add(-90 * time.Second).Truncate(time.Second)
	start := end.Add(-6 * time.Minute)
	spans := 0
	for at := start; at.Before(end); {
		b := gen.NextBatch(at, 200)
		rec.Observe(b.Traces)
		spans += b.Spans
		if rej, err := sender.SendTraces(ctx, b.Traces); err != nil || rej != 0 {
			t.Fatalf("send traces: rejected %d, %v", rej, err)
		}
		at = at.Add(time.Duration(len(b.Refs)) * 250 * time.Millisecond)
	}
	t.Logf("sent %d spans", spans)
	// Every span is stored before the events arrive: the correlator's
	// settle time covers spans late by seconds, not a bulk backlog.
	store, err := openStore(env)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var n uint64
		if err := store.Conn().QueryRow(ctx, "SELECT uniqExact(span_id, trace_id) FROM spans").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n >= uint64(spans) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d spans stored after 2 minutes", n, spans)
		}
		time.Sleep(200 * time.Millisecond)
	}

	// Events at known times.
	type scenarioEvent struct {
		truth loadgen.EventTruth
		id    events.ID
		send  func()
	}
	var scenario []scenarioEvent
	falco := func(name, svc string, pod int, at time.Time, rule, prio string) {
		p := model.Service(svc).Pods[pod]
		body := loadgen.FalcoAlert(p, at, rule, prio, name)
		evs, err := events.ParseFalco("dev", body, time.Now())
		if err != nil || len(evs) != 1 {
			t.Fatalf("falco %s: %v", name, err)
		}
		scenario = append(scenario, scenarioEvent{
			truth: rec.Truth(name, "falco", p, at, true, before, after), id: evs[0].ID,
			send: func() { app.postFalco(t, body) },
		})
	}
	falco("shell in payment", "payment", 0, start.Add(3*time.Minute+123456789), "Terminal shell in container", "Critical")
	falco("sensitive file in cart", "cart", 1, start.Add(4*time.Minute), "Read sensitive file untrusted", "Warning")
	falco("outbound from currency", "currency", 2, start.Add(5*time.Minute+500*time.Millisecond), "Unexpected outbound connection", "Notice")
	falco("before the traffic", "email", 0, start.Add(-10*time.Minute), "Write below etc", "Error")
	{
		p := model.Service("checkout").Pods[1]
		at := start.Add(150 * time.Second)
		ld := loadgen.OOMKilledPod(p, at)
		evs := events.FromLogs("dev", ld)
		if len(evs) != 1 {
			t.Fatalf("oom: %d events", len(evs))
		}
		scenario = append(scenario, scenarioEvent{
			truth: rec.Truth("checkout OOMKilled", "oom_killed", p, at, false, before, after), id: evs[0].ID,
			send: func() {
				if rej, err := sender.SendLogs(ctx, loadgen.OOMKilledPod(p, at)); err != nil || rej != 0 {
					t.Fatalf("send oom: %d %v", rej, err)
				}
			},
		})
	}
	truths := make([]loadgen.EventTruth, len(scenario))
	for i, e := range scenario {
		truths[i] = e.truth
		e.send()
	}
	if err := loadgen.WriteEventTruth(filepath.Join(t.TempDir(), "events-truth.json"), truths); err != nil {
		t.Fatal(err)
	}

	check := func(round string) {
		totalLinks := 0
		for _, e := range scenario {
			got := app.waitLinks(t, e.truth.Name, e.id, len(e.truth.TraceIDs), 2*time.Minute)
			ids := make([]string, len(got.LinkedTraces))
			for i, l := range got.LinkedTraces {
				ids[i] = l.TraceID
				if l.MatchKind != e.truth.MatchKind {
					t.Errorf("%s %s: trace %s match kind %s, want %s", round, e.truth.Name, l.TraceID, l.MatchKind, e.truth.MatchKind)
				}
			}
			slices.Sort(ids)
			tp := 0
			for _, id := range ids {
				if _, ok := slices.BinarySearch(e.truth.TraceIDs, id); ok {
					tp++
				}
			}
			precision, recall := 1.0, 1.0
			if len(ids) > 0 {
				precision = float64(tp) / float64(len(ids))
			}
			if len(e.truth.TraceIDs) > 0 {
				recall = float64(tp) / float64(len(e.truth.TraceIDs))
			}
			t.Logf("%s %-24s links %4d (truth %4d) precision %.3f recall %.3f", round, e.truth.Name, len(ids), len(e.truth.TraceIDs), precision, recall)
			for _, id := range ids {
				if !slices.Contains(e.truth.TraceIDs, id) {
					t.Errorf("%s %s: linked trace %s is not in the ground truth", round, e.truth.Name, id)
				}
			}
			for _, id := range e.truth.TraceIDs {
				if !slices.Contains(ids, id) {
					t.Errorf("%s %s: trace %s of the ground truth is not linked", round, e.truth.Name, id)
				}
			}
			if precision != 1 || recall != 1 || len(ids) != len(e.truth.TraceIDs) {
				t.Errorf("%s %s: precision %v recall %v (%d links, %d true)", round, e.truth.Name, precision, recall, len(ids), len(e.truth.TraceIDs))
			}
			totalLinks += len(ids)
			app.checkImpact(t, round, e.id, e.truth)
		}
		if totalLinks == 0 {
			t.Fatal("the scenario linked nothing")
		}
	}
	check("first")

	var incidents corrList[apiIncident]
	incPath := fmt.Sprintf("/api/v1/incidents?start=%d&end=%d", start.Add(-time.Hour).UnixNano(), time.Now().Add(time.Hour).UnixNano())
	if code := app.getJSON(t, incPath, &incidents); code != http.StatusOK || len(incidents.Items) == 0 {
		t.Fatalf("incidents: %d %+v", code, incidents)
	}
	eventsInIncidents := 0
	for _, in := range incidents.Items {
		eventsInIncidents += in.EventCount
	}

	// Re-delivery of every event: same links, same incidents.
	for _, e := range scenario {
		e.send()
	}
	time.Sleep(after) // the events are old: they are re-linked as soon as they are stored again
	check("re-delivered")
	var again corrList[apiIncident]
	app.getJSON(t, incPath, &again)
	n := 0
	for _, in := range again.Items {
		n += in.EventCount
	}
	if len(again.Items) != len(incidents.Items) || n != eventsInIncidents {
		t.Errorf("after re-delivery: %d incidents with %d events, before %d with %d", len(again.Items), n, len(incidents.Items), eventsInIncidents)
	}
	// The critical alert is in an incident (opened by it or by a related
	// event) that lists its event, the affected containers and the traces.
	var detail apiIncidentDetail
	for _, in := range again.Items {
		var d apiIncidentDetail
		if code := app.getJSON(t, "/api/v1/incidents/"+in.ID, &d); code != http.StatusOK {
			t.Fatalf("incident %s: %d", in.ID, code)
		}
		if slices.ContainsFunc(d.Events, func(e apiIncidentEvent) bool { return e.EventID == scenario[0].id.String() }) {
			detail = d
		}
	}
	if detail.ID == "" {
		t.Fatalf("the critical alert is in no incident (%+v)", again.Items)
	}
	t.Logf("incident %s: %d events, %d containers, %d traces", detail.ID, len(detail.Events), len(detail.AffectedContainers), len(detail.LinkedTraces))
	if len(detail.AffectedContainers) == 0 || len(detail.LinkedTraces) < len(scenario[0].truth.TraceIDs) {
		t.Errorf("incident detail: %d events, %d containers, %d traces", len(detail.Events), len(detail.AffectedContainers), len(detail.LinkedTraces))
	}
	code, body := app.send(t, http.MethodPost, "/api/v1/incidents/"+detail.ID+"/ack", map[string]string{"actor": "alice"})
	if code != http.StatusOK {
		t.Errorf("ack: %d %s", code, body)
	}
	if code, body := app.send(t, http.MethodPost, "/api/v1/incidents/"+detail.ID+"/resolve", nil); code != http.StatusOK {
		t.Errorf("resolve: %d %s", code, body)
	}
	var resolved apiIncident
	if app.getJSON(t, "/api/v1/incidents/"+detail.ID, &resolved); resolved.Status != "resolved" {
		t.Errorf("status after resolve: %q", resolved.Status)
	}
}

type corrList[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"nextCursor"`
}

type apiIncident struct {
	ID         string `json:"id"`
	Status     string `json:"status"`
	EventCount int    `json:"eventCount"`
}

type apiIncidentDetail struct {
	apiIncident
	Events             []apiIncidentEvent `json:"events"`
	AffectedContainers []json.RawMessage  `json:"affectedContainers"`
	LinkedTraces       []json.RawMessage  `json:"linkedTraces"`
}

type apiIncidentEvent struct {
	EventID string `json:"eventId"`
}

type apiEventDetail struct {
	ID           string `json:"id"`
	LinkedTraces []struct {
		TraceID   string `json:"traceId"`
		MatchKind string `json:"matchKind"`
	} `json:"linkedTraces"`
}

type apiImpact struct {
	Traces       int `json:"traces"`
	Failed       int `json:"failed"`
	Transactions []struct {
		BusinessTransaction string `json:"businessTransaction"`
		Traces              int    `json:"traces"`
		Failed              int    `json:"failed"`
		Keys                []struct {
			Name   string   `json:"name"`
			Count  int      `json:"count"`
			Values []string `json:"values"`
		} `json:"keys"`
	} `json:"transactions"`
}

// waitLinks polls GET /api/v1/events/{id} until the event exists and has
// at least want linked traces (and, for want 0, until it exists and the
// correlator had time to run).
func (a *testApp) waitLinks(t *testing.T, name string, id events.ID, want int, within time.Duration) apiEventDetail {
	t.Helper()
	deadline := time.Now().Add(within)
	var found time.Time
	for {
		var ev apiEventDetail
		code := a.getJSON(t, "/api/v1/events/"+id.String(), &ev)
		if code == http.StatusOK {
			if found.IsZero() {
				found = time.Now()
			}
			if len(ev.LinkedTraces) >= want && (want > 0 || time.Since(found) > 5*time.Second) {
				return ev
			}
		} else if code != http.StatusNotFound {
			t.Fatalf("event %s: status %d", id, code)
		}
		if time.Now().After(deadline) {
			t.Errorf("event %s (%s): %d linked traces after %v, want %d", name, id, len(ev.LinkedTraces), within, want)
			return ev
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (a *testApp) checkImpact(t *testing.T, round string, id events.ID, truth loadgen.EventTruth) {
	t.Helper()
	var imp apiImpact
	if code := a.getJSON(t, "/api/v1/events/"+id.String()+"/impact", &imp); code != http.StatusOK {
		t.Fatalf("impact of %s: %d", truth.Name, code)
	}
	if imp.Traces != len(truth.TraceIDs) || imp.Failed != truth.Failed {
		t.Errorf("%s %s impact: %d traces %d failed, want %d %d", round, truth.Name, imp.Traces, imp.Failed, len(truth.TraceIDs), truth.Failed)
	}
	if len(imp.Transactions) != len(truth.Impact) {
		t.Errorf("%s %s impact: %d transactions, want %d", round, truth.Name, len(imp.Transactions), len(truth.Impact))
	}
	for _, tx := range imp.Transactions {
		want, ok := truth.Impact[tx.BusinessTransaction]
		if !ok || tx.Traces != want.Traces || tx.Failed != want.Failed || len(tx.Keys) != len(want.Keys) {
			t.Errorf("%s %s impact on %s: %d traces %d failed %d keys, want %+v", round, truth.Name, tx.BusinessTransaction, tx.Traces, tx.Failed, len(tx.Keys), want)
			continue
		}
		for _, k := range tx.Keys {
			wv := want.Keys[k.Name]
			if k.Count != len(wv) || (len(wv) <= 100 && !slices.Equal(k.Values, wv)) {
				t.Errorf("%s %s impact on %s key %s: %d values, want %d", round, truth.Name, tx.BusinessTransaction, k.Name, k.Count, len(wv))
			}
		}
	}
}

// send makes an authenticated JSON request; it returns the status and body.
func (a *testApp) send(t *testing.T, method, path string, body any) (int, string) {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(method, a.apiURL(path), bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(out)
}

// postFalco sends Falco http_output JSON to the gateway.
func (a *testApp) postFalco(t *testing.T, body []byte) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+a.Gateway.HTTPAddr()+"/ingest/falco", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("post falco: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("post falco: %d %s", resp.StatusCode, b)
	}
}
