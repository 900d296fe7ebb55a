package ops

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func get(h http.Handler, method, path string) (int, string) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec.Code, rec.Body.String()
}

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "aftertrace_test_total", Help: "x"})
	reg.MustRegister(c)
	c.Inc()
	var ready Readiness
	mux := http.NewServeMux()
	Register(mux, reg, &ready)
	if code, _ := get(mux, "GET", "/healthz"); code != 200 {
		t.Errorf("healthz %d", code)
	}
	if code, _ := get(mux, "GET", "/readyz"); code != 503 {
		t.Errorf("readyz before ready: %d", code)
	}
	ready.Set(true)
	if code, _ := get(mux, "GET", "/readyz"); code != 200 {
		t.Errorf("readyz when ready: %d", code)
	}
	ready.Set(false)
	if code, _ := get(mux, "GET", "/readyz"); code != 503 {
		t.Errorf("readyz after shutdown began: %d", code)
	}
	if code, body := get(mux, "GET", "/metrics"); code != 200 || !strings.Contains(body, "aftertrace_test_total 1") {
		t.Errorf("metrics %d %q", code, body)
	}
	if code, _ := get(mux, "GET", "/debug/pprof/"); code != 200 {
		t.Errorf("pprof %d", code)
	}
}

// Public listeners get the health routes only.
func TestRegisterHealthOnly(t *testing.T) {
	mux := http.NewServeMux()
	RegisterHealth(mux, (*Readiness)(nil))
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 503, "/metrics": 404, "/debug/pprof/": 404, "/debug/pprof/cmdline": 404} {
		if code, _ := get(mux, "GET", path); code != want {
			t.Errorf("GET %s = %d, want %d", path, code, want)
		}
	}
}

func TestProfileSecondsAreBounded(t *testing.T) {
	mux := http.NewServeMux()
	Register(mux, nil, nil)
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/debug/pprof/profile?seconds=600", 400},
		{"GET", "/debug/pprof/profile?seconds=61", 400},
		{"GET", "/debug/pprof/profile?seconds=-1", 400},
		{"GET", "/debug/pprof/profile?seconds=NaN", 400},
		{"GET", "/debug/pprof/profile?seconds=1e9", 400},
		{"GET", "/debug/pprof/profile?seconds=abc", 400},
		{"GET", "/debug/pprof/trace?seconds=3600", 400},
		{"GET", "/debug/pprof/heap?seconds=600", 400},
		{"GET", "/debug/pprof/allocs?seconds=100", 400},
		{"POST", "/debug/pprof/profile?x=1&seconds=600", 400},
		{"GET", "/debug/pprof/heap", 200},
		{"GET", "/debug/pprof/goroutine?debug=1", 200},
		{"GET", "/debug/pprof/trace?seconds=0.05", 200},
	} {
		code, body := get(mux, tc.method, tc.path)
		if code != tc.want {
			t.Errorf("%s %s = %d, want %d", tc.method, tc.path, code, tc.want)
		}
		if tc.want == 400 && !strings.Contains(body, `"code":"invalid_argument"`) || tc.want == 400 && !strings.Contains(body, "seconds") {
			t.Errorf("%s %s: body %q is not a JSON error naming seconds", tc.method, tc.path, body)
		}
	}
}

func TestCmdlineIsRedacted(t *testing.T) {
	for _, tc := range []struct {
		args, want []string
	}{
		{[]string{"aftertrace"}, []string{"aftertrace"}},
		{[]string{"aftertrace", "run", "--admin-api-key", "s3cret", "--migrate"}, []string{"aftertrace", "run", "--admin-api-key", redacted, "--migrate"}},
		{[]string{"/bin/aftertrace", "gateway", "--postgres-dsn=postgres://u:pw@h/db", "-v"}, []string{"/bin/aftertrace", "gateway", "--postgres-dsn=" + redacted, "-v"}},
		{[]string{"aftertrace", "--log-level", "debug", "run"}, []string{"aftertrace", "--log-level", redacted, redacted}},
	} {
		if got := redactArgs(tc.args); !slices.Equal(got, tc.want) {
			t.Errorf("redactArgs(%q) = %q, want %q", tc.args, got, tc.want)
		}
	}
	saved := os.Args
	defer func() { os.Args = saved }()
	os.Args = []string{"aftertrace", "run", "--admin-api-key", "s3cret-admin", "--clickhouse-password=pw-xyz"}
	mux := http.NewServeMux()
	Register(mux, nil, nil)
	code, body := get(mux, "GET", "/debug/pprof/cmdline")
	if code != 200 || strings.Contains(body, "s3cret-admin") || strings.Contains(body, "pw-xyz") || !strings.Contains(body, "--admin-api-key") {
		t.Errorf("cmdline = %d %q", code, body)
	}
}

func TestServerShutdownClosesUnservedListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(ln, nil, nil)
	addr := s.Addr()
	s.Shutdown(context.Background())
	s.Shutdown(context.Background()) // idempotent
	if ln2, err := net.Listen("tcp", addr); err != nil {
		t.Errorf("listener not released: %v", err)
	} else {
		_ = ln2.Close()
	}
	if err := s.Serve(); err != nil {
		t.Errorf("Serve after Shutdown: %v", err)
	}
	if (&Server{}).Addr() != "" || NewServer(nil, nil, nil).Serve() != nil {
		t.Error("a Server without listener is not inert")
	}
}

func TestServerServes(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var ready Readiness
	ready.Set(true)
	s := NewServer(ln, prometheus.NewRegistry(), &ready)
	done := make(chan error, 1)
	go func() { done <- s.Serve() }()
	resp, err := http.Get("http://" + s.Addr() + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ready\n" {
		t.Errorf("readyz = %d %q", resp.StatusCode, b)
	}
	http.DefaultClient.CloseIdleConnections()
	s.Shutdown(context.Background())
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
}
