package ops

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// One profile over time at once: a second one is answered 429 (counted)
// while the first runs, and served once it is done.
func TestOneProfileAtATime(t *testing.T) {
	reg := prometheus.NewRegistry()
	mux := http.NewServeMux()
	Register(mux, reg, nil)
	busy := func() float64 {
		var m dto.Metric
		if err := pprofRejected.WithLabelValues("busy").Write(&m); err != nil {
			t.Fatal(err)
		}
		return m.GetCounter().GetValue()
	}
	before := busy()

	first := make(chan int, 1)
	go func() { code, _ := get(mux, "GET", "/debug/pprof/trace?seconds=1"); first <- code }()
	deadline := time.Now().Add(5 * time.Second)
	for len(profiling) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first trace never started")
		}
		time.Sleep(time.Millisecond)
	}
	for _, path := range []string{"/debug/pprof/profile?seconds=1", "/debug/pprof/trace", "/debug/pprof/heap?seconds=1"} {
		code, body := get(mux, "GET", path)
		if code != http.StatusTooManyRequests || !strings.Contains(body, "another profile") {
			t.Errorf("GET %s during a trace = %d %q, want 429", path, code, body)
		}
	}
	if code, _ := get(mux, "GET", "/debug/pprof/goroutine?debug=1"); code != http.StatusOK {
		t.Errorf("an instant profile during a trace = %d, want 200", code)
	}
	if code := <-first; code != http.StatusOK {
		t.Fatalf("first trace = %d", code)
	}
	if got := busy() - before; got != 3 {
		t.Errorf("pprof_rejected{busy} += %v, want 3", got)
	}
	if code, _ := get(mux, "GET", "/debug/pprof/trace?seconds=0.01"); code != http.StatusOK {
		t.Errorf("trace after the first ended = %d", code)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		found = found || mf.GetName() == "aftertrace_ops_pprof_rejected_total"
	}
	if !found {
		t.Error("aftertrace_ops_pprof_rejected_total is not in the registry")
	}
}
