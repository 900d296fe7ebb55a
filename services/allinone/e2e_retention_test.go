package allinone

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/retention"
	"github.com/aftertrace/aftertrace/internal/retention/retentiontest"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// partitionKeys lists the (table, date, class) partitions of the managed
// tables, as "table/date/class".
func partitionKeys(t *testing.T, ctx context.Context, parts []retention.Partition) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, p := range parts {
		out[p.Table+"/"+p.Date.Format(time.DateOnly)+"/"+p.Class] = true
	}
	return out
}

type timelineAnswer struct {
	Items []struct {
		Kind         string `json:"kind"`
		TimeUnixNano string `json:"timeUnixNano"`
	} `json:"items"`
	Truncated bool `json:"truncated"`
}

// timelineCounts reads a container's timeline over the whole seeded range
// and counts its items by kind and day ("span/12").
func (a *testApp) timelineCounts(t *testing.T, c retentiontest.Container, asOf time.Time) map[string]int {
	t.Helper()
	q := url.Values{
		"start": {asOf.Add(-42 * 24 * time.Hour).Format(time.RFC3339)},
		"end":   {retentiontest.At(asOf, 0).Add(time.Hour).Format(time.RFC3339)}, // day 0 is at noon
		"limit": {"1000"},
	}
	var tl timelineAnswer
	if code := a.getJSON(t, "/api/v1/containers/"+c.ID+"/timeline?"+q.Encode(), &tl); code != http.StatusOK {
		t.Fatalf("timeline of %s: status %d", c.Short(), code)
	}
	if tl.Truncated {
		t.Fatalf("timeline of %s truncated", c.Short())
	}
	out := map[string]int{}
	today := retention.Day(asOf)
	for _, it := range tl.Items {
		var ns int64
		fmt.Sscan(it.TimeUnixNano, &ns)
		d := int(today.Sub(retention.Day(time.Unix(0, ns))).Hours() / 24)
		out[fmt.Sprintf("%s/%d", it.Kind, d)]++
	}
	return out
}

// TestRetentionEnforceHoldsCaptureEvidence is the acceptance test of
// retention: 40 days of past-dated spans, logs, metrics and events of four
// containers; policies spans 7 d, events 30 d, namespace payments 90 d; a
// hold on one container; a Falco Critical alert firing a capture rule on
// another; enforcement drops exactly the expected partitions; the held
// data reads back through the API, the rest beyond retention does not; an
// evidence bundle downloads, verifies, fails after one byte changes, and
// its custody shows each download; another tenant gets 404s.
func TestRetentionEnforceHoldsCaptureEvidence(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	app := startApp(t, env, env.ClickHouseAddr, appOptions{cfg: func(c *Config) {
		c.API.MaxSearchWindow = 60 * 24 * time.Hour
		c.Retention.EnforceInterval = 0 // enforced by the test
		c.Retention.HoldSyncInterval = time.Hour
		c.Retention.CaptureInterval = 100 * time.Millisecond
		c.Retention.BundlePollInterval = 100 * time.Millisecond
		c.Retention.SettleDelay = 0
		for _, s := range retention.Signals {
			c.Retention.DefaultDays[s] = 30
		}
	}})
	store, err := openStore(env)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	t.Cleanup(func() { dropTables(t, env) })
	pg, err := pgstore.Open(ctx, env.PostgresDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()

	// Policies: validation names the field; then spans 7 d, events 30 d,
	// everything of namespace payments 90 d.
	for _, bad := range []struct {
		body  string
		field string
	}{
		{`{"policies":[{"signal":"traces","days":7}]}`, "policies[0].signal"},
		{`{"policies":[{"signal":"spans","days":7},{"signal":"logs","days":0}]}`, "policies[1].days"},
	} {
		code, msg := app.raw(t, testKey, "PUT", "/api/v1/retention", bad.body)
		if code != http.StatusBadRequest || !strings.Contains(msg, bad.field) {
			t.Errorf("PUT %s: %d %s, want 400 naming %s", bad.body, code, msg, bad.field)
		}
	}
	policies := map[string]any{"policies": []map[string]any{
		{"signal": "spans", "days": 7},
		{"signal": "events", "days": 30},
		{"signal": "spans", "days": 90, "namespace": "payments"},
		{"signal": "logs", "days": 90, "namespace": "payments"},
		{"signal": "metrics", "days": 90, "namespace": "payments"},
		{"signal": "events", "days": 90, "namespace": "payments"},
	}}
	if code, ecode := app.doJSON(t, testKey, "PUT", "/api/v1/retention", policies, nil); code != http.StatusOK {
		t.Fatalf("PUT policies: %d %s", code, ecode)
	}
	var got struct {
		Policies []retention.Policy `json:"policies"`
	}
	if code, _ := app.doJSON(t, testKey, "GET", "/api/v1/retention", nil, &got); code != http.StatusOK || len(got.Policies) != 6 || got.Policies[2].Namespace != "payments" {
		t.Fatalf("GET policies: %d %+v", code, got)
	}

	// 40 days of data, classified like the writer classifies.
	asOf := time.Now().UTC()
	held := retentiontest.NewContainer("held", "shop", "checkout")
	other := retentiontest.NewContainer("other", "shop", "cart")
	pay := retentiontest.NewContainer("pay", "payments", "billing")
	falco := retentiontest.NewContainer("falco", "shop", "web")
	all := []retentiontest.Container{held, other, pay, falco}
	cls := retention.NewClassifier(pg, nil)
	if err := cls.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if err := retentiontest.Seed(ctx, store, cls, app.cfg.DevTenantID, asOf, 40, all); err != nil {
		t.Fatal(err)
	}
	before := app.timelineCounts(t, held, asOf)
	if before["span/39"] != 2 || before["log/39"] != 1 || before["metric/39"] != 1 || before["event/39"] != 1 {
		t.Fatalf("held container's timeline before enforcement: %v", before)
	}

	// A hold on one container (by its full id), through the API.
	var hold retention.Hold
	if code, ecode := app.doJSON(t, testKey, "POST", "/api/v1/holds",
		map[string]any{"scope": "container", "id": held.ID, "reason": "incident 42"}, &hold); code != http.StatusOK || hold.Status != "open" || hold.Target != held.Short() {
		t.Fatalf("POST hold: %d %s %+v", code, ecode, hold)
	}
	if code, _ := app.doJSON(t, testKey, "POST", "/api/v1/holds", map[string]any{"scope": "rack", "id": "x", "reason": "r"}, nil); code != http.StatusBadRequest {
		t.Errorf("hold of an unknown scope: %d", code)
	}

	// A Falco Critical alert on another container, 20 days ago, fires a
	// capture rule holding 10 days before it and 1 day after.
	rules := map[string]any{"rules": []map[string]any{
		{"id": "falco-critical", "trigger": "falco", "minSeverity": "critical", "beforeSeconds": 10 * 86400, "afterSeconds": 86400},
	}}
	if code, ecode := app.doJSON(t, testKey, "PUT", "/api/v1/capture-rules", rules, nil); code != http.StatusOK {
		t.Fatalf("PUT capture rules: %d %s", code, ecode)
	}
	alertAt := retentiontest.At(asOf, 20).Add(time.Hour)
	alert := events.Event{
		TenantID: app.cfg.DevTenantID, TimeUnixNano: uint64(alertAt.UnixNano()), ObservedUnixNano: uint64(time.Now().UnixNano()),
		Source: events.SourceFalco, Type: events.TypeSecurityAlert, Severity: events.SeverityCritical, SeverityText: "critical",
		Reason: "Terminal shell in container", ContainerID: falco.ID[:12], PodUID: falco.PodUID, PodName: falco.PodName,
		Namespace: falco.Namespace, ExitCode: events.ExitCodeUnknown,
	}
	alert.ID = events.NewID(app.cfg.DevTenantID, events.SourceFalco, []byte("terminal shell"))
	if err := store.InsertEvents(ctx, []events.Event{alert}); err != nil {
		t.Fatal(err)
	}
	var captured []retention.Hold
	deadline := time.Now().Add(30 * time.Second)
	for len(captured) < 2 {
		var list struct {
			Items []retention.Hold `json:"items"`
		}
		if code, _ := app.doJSON(t, testKey, "GET", "/api/v1/holds", nil, &list); code != http.StatusOK {
			t.Fatalf("GET holds: %d", code)
		}
		captured = captured[:0]
		for _, h := range list.Items {
			if h.RuleID == "falco-critical" {
				captured = append(captured, h)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the capture rule placed %d holds within 30s: %+v", len(captured), list.Items)
		}
		time.Sleep(100 * time.Millisecond)
	}
	sort.Slice(captured, func(i, j int) bool { return captured[i].Scope < captured[j].Scope })
	if captured[0].Scope != "container" || captured[0].Target != falco.Short() || captured[1].Scope != "pod" || captured[1].Target != falco.PodUID ||
		captured[0].CreatedBy != "capture-rule:falco-critical" || !captured[0].Start.Equal(alertAt.Add(-10*24*time.Hour)) {
		t.Fatalf("captured holds %+v", captured)
	}

	// Enforcement: exactly the partitions older than their class's days
	// go, in every managed table; nothing held.
	parts0, err := store.ListPartitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p0 := partitionKeys(t, ctx, parts0)
	want := map[string]bool{}
	for d := range 40 {
		date := retention.Day(asOf).AddDate(0, 0, -d).Format(time.DateOnly)
		if d > 7 {
			for _, table := range []string{"spans", "trace_index", "container_sightings"} {
				want[table+"/"+date+"/d7"] = true
			}
		}
		if d > 30 {
			for _, table := range []string{"logs", "log_trace_index", "metric_points", "container_sightings"} {
				want[table+"/"+date+"/default"] = true
			}
			for _, table := range []string{"container_events", "container_sightings"} {
				want[table+"/"+date+"/d30"] = true // the events policy
			}
		}
	}
	for k := range want {
		if !p0[k] {
			t.Fatalf("expected partition %s missing before enforcement", k)
		}
	}
	enforceStart := time.Now()
	rep, err := app.worker.Enforce(ctx, asOf, false)
	if err != nil {
		t.Fatal(err)
	}
	enforceTook := time.Since(enforceStart)
	dropped := map[string]bool{}
	for _, d := range rep.Drops {
		dropped[d.Table+"/"+d.Date.Format(time.DateOnly)+"/"+d.Class] = true
	}
	if len(dropped) != len(want) {
		t.Errorf("dropped %d partitions, want %d", len(dropped), len(want))
	}
	for k := range want {
		if !dropped[k] {
			t.Errorf("partition %s not dropped", k)
		}
	}
	for k := range dropped {
		if !want[k] {
			t.Errorf("partition %s dropped unexpectedly", k)
		}
	}
	parts1, err := store.ListPartitions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p1 := partitionKeys(t, ctx, parts1)
	for k := range p0 {
		if p1[k] == want[k] {
			t.Errorf("system.parts after enforcement: %s present=%v", k, p1[k])
		}
	}
	holdParts := 0
	for k := range p1 {
		if strings.HasSuffix(k, "/hold") {
			holdParts++
		} else if !p0[k] {
			t.Errorf("new partition %s", k)
		}
	}
	if holdParts == 0 {
		t.Error("no hold partitions")
	}
	t.Logf("enforcement (hold sync + drops) took %v: dropped %d partitions; %d hold partitions; held rows copied %v",
		enforceTook.Round(time.Millisecond), len(rep.Drops), holdParts, rep.HoldRows)
	if got := counterValue(t, app.deps.Registry, "aftertrace_retention_partitions_dropped_total"); got != float64(len(want)) {
		t.Errorf("dropped counter %v, want %d", got, len(want))
	}

	// The held container's complete timeline reads back unchanged.
	after := app.timelineCounts(t, held, asOf)
	if fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("held timeline changed:\nbefore %v\n after %v", before, after)
	}
	// The other container lost what is beyond retention.
	otl := app.timelineCounts(t, other, asOf)
	for k, n := range otl {
		var kind string
		var d int
		fmt.Sscanf(strings.Replace(k, "/", " ", 1), "%s %d", &kind, &d)
		if (kind == "span" && d > 7) || d > 30 {
			t.Errorf("unheld container still has %d %s", n, k)
		}
	}
	if otl["span/7"] != 2 || otl["log/30"] != 1 || otl["event/30"] != 1 || otl["metric/30"] != 1 {
		t.Errorf("unheld container lost data within retention: %v", otl)
	}
	// Payments keeps 90 days.
	if ptl := app.timelineCounts(t, pay, asOf); ptl["span/39"] != 2 || ptl["log/39"] != 1 {
		t.Errorf("payments (90 d) lost data: %v", ptl)
	}
	// Traces, logs, events endpoints.
	traceStatus := func(c retentiontest.Container, d int) int {
		id := c.TraceID(d)
		return app.getJSON(t, "/api/v1/traces/"+hex.EncodeToString(id[:]), nil)
	}
	for _, c := range []struct {
		c    retentiontest.Container
		d    int
		want int
	}{{held, 39, 200}, {other, 39, 404}, {other, 7, 200}, {other, 8, 404}, {falco, 19, 200}, {falco, 20, 200}, {falco, 29, 200}, {falco, 30, 404}, {falco, 18, 404}, {pay, 39, 200}} {
		if got := traceStatus(c.c, c.d); got != c.want {
			t.Errorf("trace of %s day %d: %d, want %d", c.c.Short(), c.d, got, c.want)
		}
	}
	var logs struct {
		Items []struct {
			Body any `json:"body"`
		} `json:"items"`
	}
	day39 := retentiontest.At(asOf, 39)
	lq := url.Values{"start": {day39.Add(-time.Hour).Format(time.RFC3339)}, "end": {day39.Add(time.Hour).Format(time.RFC3339)}, "containerId": {held.ID}}
	if code := app.getJSON(t, "/api/v1/logs?"+lq.Encode(), &logs); code != 200 || len(logs.Items) != 1 {
		t.Errorf("held logs of day 39: %d %+v", code, logs)
	}
	lq.Set("containerId", other.ID)
	if code := app.getJSON(t, "/api/v1/logs?"+lq.Encode(), &logs); code != 200 || len(logs.Items) != 0 {
		t.Errorf("unheld logs of day 39: %d %+v", code, logs)
	}
	var evs struct {
		Items []events.Event `json:"items"`
	}
	eq := url.Values{"start": {day39.Add(-time.Hour).Format(time.RFC3339)}, "end": {day39.Add(time.Hour).Format(time.RFC3339)}, "containerId": {held.ID}}
	if code := app.getJSON(t, "/api/v1/events?"+eq.Encode(), &evs); code != 200 || len(evs.Items) != 1 {
		t.Errorf("held events of day 39: %d %d", code, len(evs.Items))
	}
	eq.Set("containerId", other.ID)
	if code := app.getJSON(t, "/api/v1/events?"+eq.Encode(), &evs); code != 200 || len(evs.Items) != 0 {
		t.Errorf("unheld events of day 39: %d %d", code, len(evs.Items))
	}

	// Evidence bundle of the held container over the 40 days.
	var bundle retention.Bundle
	req := map[string]any{"scope": "container", "id": held.Short(),
		// Day 0's rows are at noon of asOf's date: after asOf before noon UTC.
		"start": asOf.Add(-41 * 24 * time.Hour).Format(time.RFC3339), "end": retentiontest.At(asOf, 0).Add(time.Hour).Format(time.RFC3339)}
	if code, ecode := app.doJSON(t, testKey, "POST", "/api/v1/evidence", req, &bundle); code != http.StatusOK || bundle.Status != "pending" {
		t.Fatalf("POST evidence: %d %s %+v", code, ecode, bundle)
	}
	deadline = time.Now().Add(30 * time.Second)
	for bundle.Status != retention.BundleDone {
		if code, _ := app.doJSON(t, testKey, "GET", "/api/v1/evidence/"+bundle.ID, nil, &bundle); code != 200 || bundle.Status == retention.BundleFailed {
			t.Fatalf("GET evidence: %d %+v", code, bundle)
		}
		if time.Now().After(deadline) {
			t.Fatalf("bundle not done within 30s: %+v", bundle)
		}
		time.Sleep(100 * time.Millisecond)
	}
	rows := map[string]int64{}
	for _, f := range bundle.Manifest.Files {
		rows[f.Signal] = f.Rows
	}
	if rows["spans"] != 80 || rows["logs"] != 40 || rows["metrics"] != 40 || rows["events"] != 40 {
		t.Errorf("bundle rows %v", rows)
	}
	var archives [][]byte
	for range 2 {
		b, code := app.download(t, testKey, "/api/v1/evidence/"+bundle.ID+"/download")
		if code != 200 {
			t.Fatalf("download: %d", code)
		}
		archives = append(archives, b)
	}
	m, err := retention.Verify(bytes.NewReader(archives[0]))
	if err != nil {
		t.Fatalf("downloaded bundle does not verify: %v", err)
	}
	if m.BundleID != bundle.ID || m.CreatedBy == "" || !strings.HasPrefix(m.CreatedBy, "api-key:") || m.Request.ID != held.Short() {
		t.Errorf("manifest %+v", m)
	}
	tampered := bytes.Clone(archives[1])
	tampered[len(tampered)/2] ^= 0x20
	if _, err := retention.Verify(bytes.NewReader(tampered)); err == nil {
		t.Error("bundle with one byte changed verified")
	}
	var custody struct {
		Items []retention.CustodyEntry `json:"items"`
	}
	if code, _ := app.doJSON(t, testKey, "GET", "/api/v1/evidence/"+bundle.ID+"/custody", nil, &custody); code != 200 {
		t.Fatalf("custody: %d", code)
	}
	actions := map[string]int{}
	for _, e := range custody.Items {
		actions[e.Action]++
		if e.Actor == "" || strings.Contains(e.Actor, testKey) {
			t.Errorf("custody actor %q", e.Actor)
		}
	}
	if actions[retention.CustodyBundleCreated] != 1 || actions[retention.CustodyBundleCompleted] != 1 ||
		actions[retention.CustodyBundleDownload] != 2 || actions[retention.CustodyHoldCreated] != 1 {
		t.Errorf("custody actions %v", actions)
	}

	// Another tenant sees none of it.
	beta, err := pg.CreateTenant(ctx, "beta")
	if err != nil {
		t.Fatal(err)
	}
	betaKey, err := pg.CreateKey(ctx, beta.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/evidence/" + bundle.ID},
		{"GET", "/api/v1/evidence/" + bundle.ID + "/download"},
		{"GET", "/api/v1/evidence/" + bundle.ID + "/custody"},
		{"DELETE", "/api/v1/holds/" + hold.ID},
	} {
		if code, _ := app.doJSON(t, betaKey.Key, c.method, c.path, nil, nil); code != http.StatusNotFound {
			t.Errorf("other tenant %s %s: %d, want 404", c.method, c.path, code)
		}
	}
	var betaHolds struct {
		Items []retention.Hold `json:"items"`
	}
	if code, _ := app.doJSON(t, betaKey.Key, "GET", "/api/v1/holds", nil, &betaHolds); code != 200 || len(betaHolds.Items) != 0 {
		t.Errorf("other tenant's holds: %d %+v", code, betaHolds)
	}
	var betaPolicies struct {
		Policies []retention.Policy `json:"policies"`
	}
	if code, _ := app.doJSON(t, betaKey.Key, "GET", "/api/v1/retention", nil, &betaPolicies); code != 200 || len(betaPolicies.Policies) != 0 {
		t.Errorf("other tenant's policies: %d %+v", code, betaPolicies)
	}

	// Releasing the hold is recorded, not erased.
	var released retention.Hold
	if code, _ := app.doJSON(t, testKey, "DELETE", "/api/v1/holds/"+hold.ID, nil, &released); code != 200 ||
		released.Status != retention.HoldReleased || released.ReleasedBy == "" || released.ReleasedAt == nil {
		t.Errorf("release: %d %+v", code, released)
	}
	if code, _ := app.doJSON(t, testKey, "GET", "/api/v1/evidence/"+bundle.ID+"/custody", nil, &custody); code != 200 ||
		custody.Items[len(custody.Items)-1].Action != retention.CustodyHoldReleased {
		t.Errorf("custody after release: %+v", custody.Items)
	}
}

// raw sends a raw JSON body and returns the status and the error message.
func (a *testApp) raw(t *testing.T, key, method, path, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, a.apiURL(path), strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// download GETs a binary answer.
func (a *testApp) download(t *testing.T, key, path string) ([]byte, int) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.apiURL(path), nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return b, resp.StatusCode
}

// dropTables drops the test database's tables one by one, each with a
// generous deadline: the hundreds of (date, class) partitions this test
// makes can take DROP DATABASE past testenv's cleanup deadline on a busy
// machine.
func dropTables(t *testing.T, env *testenv.Env) {
	store, err := openStore(env)
	if err != nil {
		t.Log(err)
		return
	}
	defer store.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	rows, err := store.Conn().Query(ctx, "SELECT name, engine FROM system.tables WHERE database = currentDatabase()")
	if err != nil {
		t.Log(err)
		return
	}
	var views, tables []string
	for rows.Next() {
		var name, engine string
		if err := rows.Scan(&name, &engine); err == nil {
			if engine == "MaterializedView" {
				views = append(views, name)
			} else {
				tables = append(tables, name)
			}
		}
	}
	rows.Close()
	for _, name := range append(views, tables...) {
		if err := store.Conn().Exec(ctx, "DROP TABLE IF EXISTS `"+name+"`"); err != nil {
			t.Logf("drop %s: %v", name, err)
		}
	}
}
