package ops

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

func TestEndpoints(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "aftertrace_test_total", Help: "x"})
	reg.MustRegister(c)
	c.Inc()
	var ready Readiness
	mux := http.NewServeMux()
	Register(mux, reg, &ready)
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Errorf("healthz %d", code)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("readyz before ready: %d", code)
	}
	ready.Set(true)
	if code, _ := get("/readyz"); code != 200 {
		t.Errorf("readyz when ready: %d", code)
	}
	ready.Set(false)
	if code, _ := get("/readyz"); code != 503 {
		t.Errorf("readyz after shutdown began: %d", code)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "aftertrace_test_total 1") {
		t.Errorf("metrics %d %q", code, body)
	}
	if code, _ := get("/debug/pprof/"); code != 200 {
		t.Errorf("pprof %d", code)
	}
}
