package allinone

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

const testKey = "test-key-0123456789"

// testApp is an App running for one test.
type testApp struct {
	*App
	cancel   context.CancelFunc
	done     chan error
	stopOnce sync.Once
}

// appOptions tweak the config or deps of a test app.
type appOptions struct {
	cfg  func(*Config)
	deps func(*Deps)
}

// startApp runs an App on free loopback ports against env's servers and
// stops it at cleanup.
func startApp(t testing.TB, env *testenv.Env, chAddr string, opt appOptions) *testApp {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Gateway.GRPCAddr = "127.0.0.1:0"
	cfg.Gateway.HTTPAddr = "127.0.0.1:0"
	cfg.API.Addr = "127.0.0.1:0"
	cfg.Writer.OpsAddr = ""
	cfg.OpsAddr = "127.0.0.1:0"
	cfg.Writer.FlushInterval = 100 * time.Millisecond
	cfg.Writer.BulkFlushInterval = 200 * time.Millisecond // late and beyond-share records too
	cfg.LeaseInterval = 100 * time.Millisecond            // background loops start (and fail over) fast
	cfg.Writer.RetryMax = time.Second
	cfg.ClickHouse.Addr = chAddr
	cfg.ClickHouse.Database = env.ClickHouseDB
	cfg.NATSURL = env.NATSURL
	cfg.PostgresDSN = env.PostgresDSN
	cfg.DevAPIKey = testKey
	cfg.Correlator.Anomalies.Interval = 0 // no periodic anomaly incidents unless a test asks for them
	// The shared fixtures date from 2018; e2e_timebounds_test.go tests the
	// default window.
	cfg.Gateway.TenantLimit.MaxAge = 20 * 365 * 24 * time.Hour
	if opt.cfg != nil {
		opt.cfg(&cfg)
	}
	started := make(chan *App, 1)
	deps := Deps{Started: func(a *App) { started <- a }}
	if opt.deps != nil {
		opt.deps(&deps)
	}
	app, err := New(cfg, deps)
	if err != nil {
		t.Fatalf("new app: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ta := &testApp{App: app, cancel: cancel, done: make(chan error, 1)}
	go func() { ta.done <- app.Run(ctx) }()
	select {
	case <-started:
	case err := <-ta.done:
		cancel()
		t.Fatalf("app stopped before it started: %v", err)
	case <-time.After(2 * time.Minute):
		cancel()
		t.Fatal("app did not start within 2 minutes")
	}
	t.Cleanup(ta.stop(t))
	return ta
}

// stop returns a cleanup that stops the app and waits for it (once: a
// test may stop an app before its cleanup does).
func (a *testApp) stop(t testing.TB) func() {
	return func() {
		a.stopOnce.Do(func() {
			a.cancel()
			select {
			case err := <-a.done:
				if err != nil {
					t.Errorf("app run: %v", err)
				}
			case <-time.After(time.Minute):
				t.Error("app did not stop within a minute")
			}
		})
	}
}

func (a *testApp) apiURL(path string) string { return "http://" + a.API.Addr() + path }

// getJSON GETs an API path with the test key and decodes the answer.
func (a *testApp) getJSON(t testing.TB, path string, out any) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.apiURL(path), nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode == http.StatusOK && out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			t.Fatalf("GET %s: decode %s: %v", path, body, err)
		}
	}
	return resp.StatusCode
}

// apiSpan is the API's span, as the tests read it.
type apiSpan struct {
	TraceID      string         `json:"traceId"`
	SpanID       string         `json:"spanId"`
	ParentSpanID string         `json:"parentSpanId"`
	Name         string         `json:"name"`
	Service      string         `json:"service"`
	Kind         string         `json:"kind"`
	Start        string         `json:"startTimeUnixNano"`
	End          string         `json:"endTimeUnixNano"`
	Status       apiStatus      `json:"status"`
	Attributes   map[string]any `json:"attributes"`
	Resource     map[string]any `json:"resource"`
	Events       []struct {
		Name string `json:"name"`
	} `json:"events"`
}

type apiStatus struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

type apiTrace struct {
	TraceID string    `json:"traceId"`
	Spans   []apiSpan `json:"spans"`
}

// waitTrace polls GET /api/v1/traces/{id} until it holds want spans.
func (a *testApp) waitTrace(t *testing.T, traceID string, want int, within time.Duration) apiTrace {
	t.Helper()
	deadline := time.Now().Add(within)
	var tr apiTrace
	for {
		tr = apiTrace{}
		code := a.getJSON(t, "/api/v1/traces/"+traceID, &tr)
		if code == http.StatusOK && len(tr.Spans) >= want {
			if len(tr.Spans) > want {
				t.Fatalf("trace %s: %d spans, want %d (duplicates visible?)", traceID, len(tr.Spans), want)
			}
			return tr
		}
		if code != http.StatusOK && code != http.StatusNotFound {
			t.Fatalf("trace %s: status %d", traceID, code)
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s: %d spans after %v, want %d", traceID, len(tr.Spans), within, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// spanByName indexes a trace's spans by name.
func spanByName(t *testing.T, tr apiTrace) map[string]apiSpan {
	t.Helper()
	out := map[string]apiSpan{}
	for _, s := range tr.Spans {
		if _, dup := out[s.Name]; dup {
			t.Fatalf("span name %q twice in trace %s", s.Name, tr.TraceID)
		}
		out[s.Name] = s
	}
	return out
}

func mustEqual[T comparable](t *testing.T, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Errorf("%s = %v, want %v", what, got, want)
	}
}

func lowerHex(s string) bool { return s == strings.ToLower(s) && len(s)%2 == 0 }

var _ = fmt.Sprintf

// openStore opens env's ClickHouse database for direct checks.
func openStore(env *testenv.Env) (*chstore.Store, error) {
	cfg := chstore.DefaultConfig()
	cfg.Addr, cfg.Database = env.ClickHouseAddr, env.ClickHouseDB
	return chstore.Open(cfg)
}

// counterValue sums every series of a counter in reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() == name {
			for _, m := range mf.GetMetric() {
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

// waitFor polls cond every 50 ms until it holds, failing the test when
// within passes first: the tests' one way to wait.
func waitFor(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
