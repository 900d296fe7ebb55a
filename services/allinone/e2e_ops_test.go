package allinone

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/testenv"
)

// httpGet returns the status and body of GET url.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestOpsListener is case 4 of the tenant-isolation issue end to end: the
// public OTLP/HTTP and API ports answer the load balancers' probes and
// nothing else of the ops routes; one ops listener serves /metrics of
// every service of the process and the profiles, with the command line
// redacted and profile durations bounded.
func TestOpsListener(t *testing.T) {
	env := testenv.Get(t)
	app := startApp(t, env, env.ClickHouseAddr, appOptions{cfg: func(c *Config) { c.AdminAPIKey = testAdminKey }})

	public := map[string]string{"OTLP/HTTP": app.Gateway.HTTPAddr(), "API": app.API.Addr()}
	for name, addr := range public {
		for _, tc := range []struct {
			path   string
			status int
		}{
			{"/healthz", 200},
			{"/readyz", 200},
			{"/metrics", 404},
			{"/debug/pprof/", 404},
			{"/debug/pprof/cmdline", 404},
			{"/debug/pprof/goroutine?debug=2", 404},
			{"/debug/pprof/profile?seconds=1", 404},
		} {
			if code, body := httpGet(t, "http://"+addr+tc.path); code != tc.status {
				t.Errorf("%s port: GET %s = %d %.100q, want %d", name, tc.path, code, body, tc.status)
			}
		}
	}

	opsAddr := app.OpsAddr()
	if opsAddr == "" {
		t.Fatal("no ops listener")
	}
	for addr := range strings.SplitSeq(app.Gateway.HTTPAddr()+" "+app.API.Addr()+" "+app.Gateway.GRPCAddr(), " ") {
		if addr == opsAddr {
			t.Fatalf("the ops listener shares the public address %s", addr)
		}
	}
	base := "http://" + opsAddr
	if code, _ := httpGet(t, base+"/healthz"); code != 200 {
		t.Errorf("ops: GET /healthz = %d, want 200", code)
	}
	// Ready once every service of the process is (the correlator's
	// consumer comes a moment after start).
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		code, _ := httpGet(t, base+"/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ops: GET /readyz = %d after 30 s, want 200", code)
		}
	}
	// A trace through gateway, writer and API, so each has samples.
	id := newTraceID()
	if code := app.exportHTTP(t, testKey, makeTrace(id, 2, "ops")); code != 200 {
		t.Fatalf("export: %d", code)
	}
	app.waitTrace(t, hexID(id), 2, 30*time.Second)
	code, metrics := httpGet(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("ops: GET /metrics = %d", code)
	}
	for _, family := range []string{"aftertrace_gateway_", "aftertrace_api_", "aftertrace_writer_", "go_goroutines"} {
		if !strings.Contains(metrics, family) {
			t.Errorf("ops /metrics lacks %s*: one listener serves every service of the process", family)
		}
	}
	if code, body := httpGet(t, base+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("ops: GET /debug/pprof/ = %d", code)
	}

	// The command line, as an operator would have started the process.
	saved := os.Args
	os.Args = []string{"aftertrace", "run", "--admin-api-key", testAdminKey, "--dev-api-key=" + testKey, "--postgres-dsn", env.PostgresDSN}
	code, cmdline := httpGet(t, base+"/debug/pprof/cmdline")
	os.Args = saved
	if code != 200 || !strings.Contains(cmdline, "--admin-api-key") {
		t.Errorf("ops: GET /debug/pprof/cmdline = %d %q", code, cmdline)
	}
	for _, secret := range []string{testAdminKey, testKey, env.PostgresDSN} {
		if strings.Contains(cmdline, secret) {
			t.Errorf("/debug/pprof/cmdline shows a secret: %q", cmdline)
		}
	}

	for _, path := range []string{"/debug/pprof/profile?seconds=600", "/debug/pprof/trace?seconds=61", "/debug/pprof/heap?seconds=3600"} {
		code, body := httpGet(t, base+path)
		var e struct {
			Error struct{ Code, Message string } `json:"error"`
		}
		_ = json.Unmarshal([]byte(body), &e)
		if code != 400 || e.Error.Code != "invalid_argument" || !strings.Contains(e.Error.Message, "seconds") {
			t.Errorf("ops: GET %s = %d %q, want 400 invalid_argument naming seconds", path, code, body)
		}
	}
	start := time.Now()
	if code, _ := httpGet(t, base+"/debug/pprof/profile?seconds=1"); code != 200 {
		t.Errorf("a 1 s CPU profile = %d", code)
	}
	t.Logf("1 s CPU profile took %v", time.Since(start).Round(time.Millisecond))
}
