package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/testenv"
)

// lockedBuffer is a bytes.Buffer written by the command and read by the
// test at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// eventually polls cond every 20 ms until it holds or within passes.
func eventually(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestRunKeepsOpsOffPublicPorts is case 4 of issue #15 end to end:
// `aftertrace run` with secrets on its command line serves /metrics and
// /debug/pprof/ only on its ops listener, never on the public OTLP/HTTP
// and API ports; there the command line is redacted and profile durations
// are bounded.
func TestRunKeepsOpsOffPublicPorts(t *testing.T) {
	env := testenv.Get(t)
	const (
		adminKey = "admin-secret-5f3c9a1e7b2d4c60"
		devKey   = "dev-secret-91ab27cd"
		pgSecret = "pg-secret-77e1"
	)
	dsn, err := url.Parse(env.PostgresDSN)
	if err != nil {
		t.Fatal(err)
	}
	dsn.User = url.UserPassword(dsn.User.Username(), pgSecret) // trust auth ignores it
	args := []string{"run", "--log-level", "warn", "--migrate=false",
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--api-addr", "127.0.0.1:0", "--ops-addr", "127.0.0.1:0",
		"--nats-url", env.NATSURL, "--clickhouse-addr", env.ClickHouseAddr, "--clickhouse-database", env.ClickHouseDB,
		"--postgres-dsn", dsn.String(), "--dev-api-key", devKey, "--admin-api-key=" + adminKey,
		"--anomaly-interval", "0",
	}
	saved := os.Args
	os.Args = append([]string{"aftertrace"}, args...) // what /debug/pprof/cmdline shows
	t.Cleanup(func() { os.Args = saved })

	ctx, cancel := context.WithCancel(context.Background())
	var stdout, stderr lockedBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, args, &stdout, &stderr) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("aftertrace run: %v\n%s", err, stderr.String())
			}
		case <-time.After(time.Minute):
			t.Error("aftertrace run did not stop within a minute")
		}
	})

	banner := regexp.MustCompile(`OTLP HTTP\s+http://(\S+)\n[\s\S]*Query API\s+http://(\S+)\n[\s\S]*Ops\s+http://([^/\s]+)/metrics`)
	var m []string
	eventually(t, 2*time.Minute, "the banner", func() bool {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("aftertrace run stopped: %v\n%s", err, stderr.String())
		default:
		}
		m = banner.FindStringSubmatch(stdout.String())
		return m != nil
	})
	otlpHTTP, apiAddr, opsAddr := m[1], m[2], m[3]

	client := &http.Client{Timeout: 30 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	get := func(addr, path string) (int, string) {
		t.Helper()
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			t.Fatalf("GET %s%s: %v", addr, path, err)
		}
		defer func() { _ = resp.Body.Close() }()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	eventually(t, 30*time.Second, "the ops listener to report ready", func() bool {
		code, _ := get(opsAddr, "/readyz")
		return code == http.StatusOK
	})

	for _, tc := range []struct {
		name, addr, path string
		want             int
		contains         []string // in the body
		absent           []string // not in the body
	}{
		{name: "otlp health", addr: otlpHTTP, path: "/healthz", want: 200},
		{name: "api health", addr: apiAddr, path: "/readyz", want: 200},
		{name: "otlp metrics", addr: otlpHTTP, path: "/metrics", want: 404},
		{name: "otlp pprof", addr: otlpHTTP, path: "/debug/pprof/", want: 404},
		{name: "otlp cmdline", addr: otlpHTTP, path: "/debug/pprof/cmdline", want: 404, absent: []string{adminKey}},
		{name: "otlp profile", addr: otlpHTTP, path: "/debug/pprof/profile?seconds=1", want: 404},
		{name: "otlp goroutines", addr: otlpHTTP, path: "/debug/pprof/goroutine?debug=2", want: 404},
		{name: "api metrics", addr: apiAddr, path: "/metrics", want: 404},
		{name: "api pprof", addr: apiAddr, path: "/debug/pprof/", want: 404},
		{name: "api cmdline", addr: apiAddr, path: "/debug/pprof/cmdline", want: 404, absent: []string{adminKey}},
		{name: "api trace", addr: apiAddr, path: "/debug/pprof/trace?seconds=1", want: 404},
		{name: "ops metrics", addr: opsAddr, path: "/metrics", want: 200,
			contains: []string{"aftertrace_gateway_inflight_bytes", "aftertrace_api_request_duration_seconds", "aftertrace_auth_cached_keys", "go_goroutines"}},
		{name: "ops pprof", addr: opsAddr, path: "/debug/pprof/", want: 200, contains: []string{"goroutine"}},
		{name: "ops cmdline", addr: opsAddr, path: "/debug/pprof/cmdline", want: 200,
			contains: []string{"--admin-api-key", "--postgres-dsn", "--dev-api-key"},
			absent:   []string{adminKey, devKey, pgSecret}},
		{name: "ops profile too long", addr: opsAddr, path: "/debug/pprof/profile?seconds=3600", want: 400, contains: []string{"seconds"}},
		{name: "ops trace too long", addr: opsAddr, path: "/debug/pprof/trace?seconds=3600", want: 400, contains: []string{"seconds"}},
		{name: "ops delta profile too long", addr: opsAddr, path: "/debug/pprof/heap?seconds=3600", want: 400, contains: []string{"seconds"}},
		{name: "ops short trace", addr: opsAddr, path: "/debug/pprof/trace?seconds=0.1", want: 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := get(tc.addr, tc.path)
			if code != tc.want {
				t.Errorf("GET %s%s = %d, want %d: %.300q", tc.addr, tc.path, code, tc.want, body)
			}
			for _, s := range tc.contains {
				if !strings.Contains(body, s) {
					t.Errorf("GET %s: body lacks %q: %.300q", tc.path, s, body)
				}
			}
			for _, s := range tc.absent {
				if strings.Contains(body, s) {
					t.Errorf("GET %s: body reveals %q", tc.path, s)
				}
			}
		})
	}
}
