package allinone

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// TestSharedOTLPFixtures ingests every OTLP/JSON example of
// opentelemetry-proto (../shared/fixtures/otlp) through OTLP/HTTP and reads
// each back through the API; a second tenant sees none of it.
func TestSharedOTLPFixtures(t *testing.T) {
	const dir = "../../../shared/fixtures/otlp/"
	read := func(name string) []byte {
		b, err := os.ReadFile(dir + name)
		if err != nil {
			t.Fatalf("fixture %s: %v", name, err)
		}
		return b
	}
	env := testenv.Get(t)
	app := startApp(t, env, env.ClickHouseAddr, appOptions{})

	for _, f := range []struct{ file, path string }{
		{"trace.json", "/v1/traces"},
		{"logs.json", "/v1/logs"},
		{"events.json", "/v1/logs"},
		{"metrics.json", "/v1/metrics"},
	} {
		code, body := app.postPath(t, testKey, f.path, read(f.file))
		if code != http.StatusOK {
			t.Fatalf("POST %s %s: %d %s", f.path, f.file, code, body)
		}
	}

	// trace.json: upper-case hex ids, read back lower-case.
	const traceID = "5b8efff798038103d269b633813fc60c"
	tr := app.waitTrace(t, traceID, 1, 20*time.Second)
	sp := tr.Spans[0]
	mustEqual(t, "spanId", sp.SpanID, "eee19b7ec3c1b174")
	mustEqual(t, "parentSpanId", sp.ParentSpanID, "eee19b7ec3c1b173")
	mustEqual(t, "name", sp.Name, "I'm a server span")
	mustEqual(t, "kind", sp.Kind, "server")
	mustEqual(t, "service", sp.Service, "my.service")
	mustEqual(t, "start", sp.Start, "1544712660000000000")
	mustEqual(t, "end", sp.End, "1544712661000000000")
	mustEqual(t, "my.span.attr", sp.Attributes["my.span.attr"], any("some value"))

	// logs.json and events.json, in the December 2018 window they carry.
	window := params("start", "2018-12-13T14:50:00Z", "end", "2018-12-13T14:52:00Z")
	recs := app.waitLogs(t, window, 2, 20*time.Second)
	var event *apiLog
	for i := range recs {
		if recs[i].EventName == "browser.page_view" {
			event = &recs[i]
		}
	}
	if event == nil {
		t.Fatalf("events.json record not found among %+v", recs)
	}
	mustEqual(t, "event severity", event.SeverityNumber, 9)
	mustEqual(t, "event attribute", event.Attributes["event.attribute"], any("some event attribute"))
	if body, ok := event.Body.(map[string]any); !ok || body["url"] == nil {
		t.Errorf("event body = %#v, want the kvlist with url", event.Body)
	}

	// metrics.json: every metric of the example is listed (metrics have
	// their own consumer, so they may land after the logs).
	wantNames := []string{"my.counter", "my.gauge", "my.histogram", "my.exponential.histogram"}
	deadline := time.Now().Add(20 * time.Second)
	for {
		names := app.metricNames(t, params("start", "2018-12-13T00:00:00Z", "end", "2018-12-14T00:00:00Z"))
		missing := 0
		for _, want := range wantNames {
			if _, ok := names[want]; !ok {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics %v not all listed after 20s; got %v", wantNames, names)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Another tenant reads none of it: 404 for the trace, empty lists.
	ctx := context.Background()
	store, err := pgstore.Open(ctx, env.PostgresDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	other, err := store.CreateTenant(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	key, err := store.CreateKey(ctx, other.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if code, _ := app.doJSON(t, key.Key, "GET", "/api/v1/traces/"+traceID, nil, nil); code != http.StatusNotFound {
		t.Errorf("other tenant reads the fixture trace: %d, want 404", code)
	}
	var page struct {
		Items []any `json:"items"`
	}
	for _, path := range []string{
		"/api/v1/logs?traceId=" + traceID,
		"/api/v1/logs?" + window.Encode(),
		"/api/v1/metrics/names?start=2018-12-13T00:00:00Z&end=2018-12-14T00:00:00Z",
		"/api/v1/metrics/series?name=my.counter&start=2018-12-13T00:00:00Z&end=2018-12-14T00:00:00Z",
		"/api/v1/metrics/exemplars?name=my.counter&start=2018-12-13T00:00:00Z&end=2018-12-14T00:00:00Z",
		"/api/v1/services?start=2018-12-10T00:00:00Z&end=2018-12-15T00:00:00Z",
	} {
		page.Items = nil
		if code, ecode := app.doJSON(t, key.Key, "GET", path, nil, &page); code != http.StatusOK || len(page.Items) != 0 {
			t.Errorf("other tenant GET %s: %d %s, %d items, want 200 and none", path, code, ecode, len(page.Items))
		}
	}
}
