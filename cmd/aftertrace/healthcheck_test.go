package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

func TestHealthcheckCommand(t *testing.T) {
	var ready atomic.Bool
	ready.Store(true)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || !ready.Load() {
			http.Error(w, "not ready", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	}))
	defer srv.Close()
	addr := strings.TrimPrefix(srv.URL, "http://")
	if out, _, err := runCLI(t, "healthcheck", "--addr", addr); err != nil || !strings.Contains(out, "ready") {
		t.Fatalf("ready process: %q %v", out, err)
	}
	ready.Store(false)
	if _, _, err := runCLI(t, "healthcheck", "--addr", addr); err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("unready process: %v, want an error with 503", err)
	}
	if _, _, err := runCLI(t, "healthcheck", "--addr", "127.0.0.1:1"); err == nil {
		t.Fatal("nothing listening: no error")
	}
}
