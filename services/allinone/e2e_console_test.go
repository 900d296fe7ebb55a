package allinone

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/aftertrace/aftertrace/internal/otlpconv"
	"github.com/aftertrace/aftertrace/internal/retention"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// browserSession is headless Chromium (Debian's) for one test, with every
// console error and uncaught exception of its pages recorded.
type browserSession struct {
	ctx     context.Context
	mu      sync.Mutex
	errs    []string
	downDir string
	done    chan string // GUIDs of completed downloads
}

func newBrowser(t testing.TB) *browserSession {
	t.Helper()
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal("chromium not found: deploy/dev/install-deps.sh installs Debian's chromium")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.NoSandbox, // tests run as root
		chromedp.WindowSize(1280, 900),
		chromedp.UserDataDir(t.TempDir()),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelB := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 3*time.Minute)
	t.Cleanup(func() { cancelT(); cancelB(); cancelA() })
	b := &browserSession{ctx: ctx, downDir: t.TempDir(), done: make(chan string, 4)}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.APITypeError {
				b.record(fmt.Sprintf("console.error: %v", ev.Args))
			}
		case *runtime.EventExceptionThrown:
			b.record("exception: " + ev.ExceptionDetails.Error())
		case *browser.EventDownloadProgress: // the page's target reports its downloads
			if ev.State == browser.DownloadProgressStateCompleted {
				b.done <- ev.GUID
			}
		case *log.EventEntryAdded:
			if ev.Entry.Level == log.LevelError {
				b.record("log: " + ev.Entry.Text + " " + ev.Entry.URL)
			}
		}
	})
	if err := chromedp.Run(ctx, log.Enable(), runtime.Enable(),
		browser.SetDownloadBehavior(browser.SetDownloadBehaviorBehaviorAllowAndName).WithDownloadPath(b.downDir).WithEventsEnabled(true)); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *browserSession) record(s string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs = append(b.errs, s)
}

// run runs actions; on failure it saves a screenshot of the page in the
// test's artifact directory and fails the test with step's name.
func (b *browserSession) run(t testing.TB, step string, actions ...chromedp.Action) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 45*time.Second)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		var png []byte
		sctx, scancel := context.WithTimeout(b.ctx, 10*time.Second)
		defer scancel()
		if chromedp.Run(sctx, chromedp.FullScreenshot(&png, 100)) == nil {
			p := filepath.Join(t.ArtifactDir(), strings.ReplaceAll(step, " ", "_")+".png")
			if os.WriteFile(p, png, 0o644) == nil {
				t.Logf("screenshot: %s", p)
			}
		}
		b.mu.Lock()
		t.Fatalf("%s: %v (browser errors so far: %q)", step, err, b.errs)
	}
}

// screenshot saves the page in AFTERTRACE_CONSOLE_SCREENSHOTS (a folder),
// when set: how the README's pictures are made.
func (b *browserSession) screenshot(t *testing.T, name string) {
	t.Helper()
	dir := os.Getenv("AFTERTRACE_CONSOLE_SCREENSHOTS")
	if dir == "" {
		return
	}
	var png []byte
	b.run(t, "screenshot "+name, chromedp.Evaluate(`window.scrollTo(0, 0)`, nil), chromedp.CaptureScreenshot(&png))
	if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// accessibility checks the page in view: every control has a label (a
// <label>, aria-label or its text), and the focused control after a Tab
// shows an outline.
func (b *browserSession) accessibility(t *testing.T, page string) {
	t.Helper()
	var unlabelled []string
	var outline string
	b.run(t, page+" accessibility",
		chromedp.Evaluate(`[...document.querySelectorAll('input:not([type=hidden]),select,textarea,button,[role=listbox]')]
			.filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
			.map(el => el.outerHTML.slice(0, 120))`, &unlabelled),
		chromedp.Evaluate(`document.getElementById('main').focus()`, nil), // Tab from the top of the content
		chromedp.KeyEvent(kb.Tab),
		chromedp.Evaluate(`(() => { const el = document.activeElement; const s = getComputedStyle(el); return el === document.body ? 'body' : s.outlineStyle + ' ' + s.outlineWidth; })()`, &outline),
	)
	if len(unlabelled) > 0 {
		t.Errorf("%s: controls without a label: %v", page, unlabelled)
	}
	if outline == "body" || strings.HasPrefix(outline, "none") || strings.HasSuffix(outline, " 0px") {
		t.Errorf("%s: focus not visible after Tab (outline %q)", page, outline)
	}
}

// TestConsoleInvestigation drives the console in Chromium through an
// investigation on a real stack: a latency rise on "store" opens an
// anomaly incident; the user signs in, opens the incident, sees store
// ranked first with its evidence, opens a trace's waterfall and a span,
// opens the page of a container whose pod is gone (OOMKilled), places a
// hold on it, builds an evidence bundle and downloads it, and the file
// verifies. No console error on any page; controls labelled; focus shown.
func TestConsoleInvestigation(t *testing.T) {
	env := testenv.Get(t)
	app, incidentID := anomalyApp(t, env)
	gone := podGen{uid: "uid-web-0-console", cid: strings.Repeat("e7", 32), at: time.Now().Add(-45 * time.Minute).Truncate(time.Second), traceID: pcommon.TraceID{0xc0, 1}} // outside the incident's window
	app.sendTelemetry(t, gone)
	app.mustPost(t, "/v1/logs", "application/json", k8sLogs(gone))
	waitFor(t, 30*time.Second, "terminated container", func() bool {
		var c struct {
			Termination *struct{ Reason string } `json:"termination"`
		}
		return app.getJSON(t, "/api/v1/containers/"+gone.cid, &c) == http.StatusOK && c.Termination != nil
	})

	b := newBrowser(t)
	ui := "http://" + app.API.Addr() + "/ui/"
	var text string

	// Sign in: any console path without a key leads to the form.
	b.run(t, "sign in",
		chromedp.Navigate(ui),
		chromedp.WaitVisible(`#key`, chromedp.ByQuery),
	)
	b.accessibility(t, "sign in")
	b.run(t, "sign in submit",
		chromedp.SendKeys(`#key`, testKey, chromedp.ByQuery),
		chromedp.Click(`//button[text()="Sign in"]`, chromedp.BySearch), // a click, as a user does (form.submit() skips the handlers)
		chromedp.WaitVisible(`a[href$="/ui/incidents/`+incidentID+`"]`, chromedp.ByQuery),
	)
	b.accessibility(t, "incidents")

	// The incident: store first, with evidence.
	var first string
	var evidence int
	b.run(t, "open incident",
		chromedp.Click(`a[href$="/ui/incidents/`+incidentID+`"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`ol.causes > li .cause-service`, chromedp.ByQuery),
		chromedp.Text(`ol.causes > li .cause-service`, &first, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('ol.causes > li:first-child ul.evidence li').length`, &evidence),
	)
	if first != "store" || evidence == 0 {
		var causes string
		_ = chromedp.Run(b.ctx, chromedp.Text(`main`, &causes, chromedp.ByQuery))
		t.Log(causes)
		t.Fatalf("first root cause %q with %d pieces of evidence, want store with evidence", first, evidence)
	}
	b.accessibility(t, "incident")
	b.screenshot(t, "console-incident.png")

	// Readable on a phone: nothing wider than the screen.
	var width int
	b.run(t, "phone width",
		chromedp.EmulateViewport(390, 844),
		chromedp.Evaluate(`document.documentElement.scrollWidth`, &width),
		chromedp.EmulateViewport(1280, 900),
	)
	if width > 390 {
		t.Errorf("incident page is %d px wide on a 390 px screen", width)
	}

	// Acknowledge with a note: the status and the history say so.
	b.run(t, "acknowledge",
		chromedp.SendKeys(`#note`, "looking at store", chromedp.ByQuery),
		chromedp.Click(`//button[text()="Acknowledge"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//span[contains(@class,"pill") and text()="acknowledged"]`, chromedp.BySearch),
		chromedp.WaitVisible(`//section[@aria-labelledby="h-history"]//li[contains(., "looking at store")]`, chromedp.BySearch),
	)

	// A trace the root cause cites: its waterfall, then a span's details.
	b.run(t, "go back to the incident", chromedp.Navigate(ui+"incidents/"+incidentID), chromedp.WaitVisible(`ol.causes`, chromedp.ByQuery))
	var rows int
	b.run(t, "trace waterfall",
		chromedp.Click(`ol.causes > li:first-child ul.evidence a[href*="/ui/traces/"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`.waterfall .span-row`, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelectorAll('.waterfall .span-row').length`, &rows),
		chromedp.Click(`.span-row[data-i="1"]`, chromedp.ByQuery),
		chromedp.WaitVisible(`.span-details h2`, chromedp.ByQuery),
		chromedp.Text(`.span-details h2`, &text, chromedp.ByQuery),
	)
	if rows != 2 || text != "store · query" {
		t.Fatalf("waterfall rows %d, selected span %q; want 2 rows and store · query", rows, text)
	}
	b.accessibility(t, "trace")
	b.screenshot(t, "console-trace.png")

	// The container whose pod is gone, a hold and a bundle.
	b.run(t, "container page",
		chromedp.Navigate(ui+"containers/"+gone.cid),
		chromedp.WaitVisible(`#hold-reason`, chromedp.ByQuery),
		chromedp.WaitVisible(`section[aria-labelledby="h-cmetrics"] table`, chromedp.ByQuery), // its metric points
		chromedp.WaitVisible(`section[aria-labelledby="h-clogs"] table`, chromedp.ByQuery),
		chromedp.Text(`main`, &text, chromedp.ByQuery),
	)
	if !strings.Contains(text, "Terminated: OOMKilled (exit 137)") || !strings.Contains(text, "web-0") || !strings.Contains(text, "cart of uid-web-0-console") {
		t.Fatalf("container page lacks the termination or the pod:\n%s", text)
	}
	b.accessibility(t, "container")
	b.run(t, "place hold",
		chromedp.SendKeys(`#hold-reason`, "console investigation", chromedp.ByQuery),
		chromedp.Click(`//button[text()="Place hold"]`, chromedp.BySearch),
		chromedp.WaitVisible(`ul.holds li`, chromedp.ByQuery),
		chromedp.Text(`ul.holds`, &text, chromedp.ByQuery),
	)
	if !strings.Contains(text, "console investigation") {
		t.Fatalf("holds: %q", text)
	}
	b.run(t, "build bundle",
		chromedp.Click(`//button[text()="Build evidence bundle"]`, chromedp.BySearch),
		chromedp.WaitVisible(`#download-bundle`, chromedp.ByQuery),
		chromedp.Click(`#download-bundle`, chromedp.ByQuery),
	)
	var guid string
	select {
	case guid = <-b.done:
	case <-time.After(30 * time.Second):
		t.Fatal("the bundle download did not complete within 30 s")
	}
	f, err := os.Open(filepath.Join(b.downDir, guid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := retention.Verify(f)
	if err != nil {
		t.Fatalf("the downloaded bundle does not verify: %v", err)
	}
	t.Logf("bundle verified: %d files", len(m.Files))
	b.run(t, "custody",
		chromedp.WaitVisible(`//ol[@aria-label="Chain of custody"]/li[contains(., "bundle_downloaded")]`, chromedp.BySearch),
	)

	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.errs) > 0 {
		t.Errorf("browser console errors: %q", b.errs)
	}
}

// anomalyApp starts an app whose anomaly pass opens an incident for the
// latency rise of recentLatencyTraces (written to ClickHouse with extra),
// and returns it with that incident's id.
func anomalyApp(t testing.TB, env *testenv.Env, extra ...ptrace.Traces) (*testApp, string) {
	t.Helper()
	app := startApp(t, env, env.ClickHouseAddr, appOptions{cfg: func(c *Config) {
		c.Correlator.OpsAddr = ""
		c.Correlator.Settle = 0
		c.Correlator.Anomalies.Interval = 300 * time.Millisecond
		c.Correlator.Incidents.AnomalyMinScore = 2.5
	}})
	store, err := openStore(env)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := time.Now()
	for _, td := range append([]ptrace.Traces{recentLatencyTraces(now)}, extra...) {
		var batch otlpconv.SpanBatch
		batch.AppendTraces(app.Config().DevTenantID, td)
		if err := store.InsertSpans(context.Background(), &batch); err != nil {
			t.Fatal(err)
		}
	}
	var incidentID string
	path := fmt.Sprintf("/api/v1/incidents?start=%d&end=%d", now.Add(-time.Hour).UnixNano(), now.Add(time.Hour).UnixNano())
	waitFor(t, time.Minute, "anomaly incident on store", func() bool {
		var list struct {
			Items []struct{ ID, Kind, Workload string } `json:"items"`
		}
		if app.getJSON(t, path, &list) != http.StatusOK {
			return false
		}
		for _, in := range list.Items { // other incidents (an OOMKilled pod) may be newer
			if in.Kind == "anomaly" && in.Workload == "store" {
				incidentID = in.ID
				return true
			}
		}
		return false
	})
	return app, incidentID
}
