package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/events"
)

func (p *fakePublisher) PublishEvents(ctx context.Context, tenantID string, evs []events.Event) error {
	p.mu.Lock()
	err := p.err
	p.mu.Unlock()
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, evs)
	return nil
}

func (p *fakePublisher) takeEvents() [][]events.Event {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.events
	p.events = nil
	return e
}

const falcoAlert = `{"hostname":"node-a","output":"10:01:02.123456789: Notice A shell was spawned (user=root container=3f2a9c1b7e4d)","priority":"Notice","rule":"Terminal shell in container","source":"syscall","tags":["container","shell"],"time":"2024-05-06T10:01:02.123456789Z","output_fields":{"container.id":"3f2a9c1b7e4d","k8s.ns.name":"shop","k8s.pod.name":"checkout-7d9f8b6c5d-x2k4p","proc.name":"bash","user.name":"root"}}`

func (g *testGateway) postFalco(t *testing.T, body []byte, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	return g.postIngest(t, FalcoPath, body, map[string]string{"Content-Type": "application/json"}, hdr)
}

// postIngest posts body to path with the test key and the headers of
// defaults, overridden by hdr ("" removes a header).
func (g *testGateway) postIngest(t *testing.T, path string, body []byte, defaults, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, g.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testKey)
	for _, h := range []map[string]string{defaults, hdr} {
		for k, v := range h {
			if v == "" {
				req.Header.Del(k)
			} else {
				req.Header.Set(k, v)
			}
		}
	}
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestFalcoIngest(t *testing.T) {
	g := startGateway(t, nil)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write([]byte(falcoAlert + "\n" + falcoAlert))
	_ = zw.Close()
	for _, tc := range []struct {
		name string
		body []byte
		hdr  map[string]string
		n    int
	}{
		{"single", []byte(falcoAlert), nil, 1},
		{"array", []byte("[" + falcoAlert + "," + falcoAlert + "]"), nil, 2},
		{"ndjson", []byte(falcoAlert + "\n" + falcoAlert + "\n" + falcoAlert + "\n"), map[string]string{"Content-Type": "application/x-ndjson"}, 3},
		{"gzip, no content type", gz.Bytes(), map[string]string{"Content-Encoding": "gzip", "Content-Type": ""}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _, body := g.postFalco(t, tc.body, tc.hdr)
			if code != http.StatusOK {
				t.Fatalf("status %d: %s", code, body)
			}
			var resp map[string]int
			if err := json.Unmarshal([]byte(body), &resp); err != nil || resp["accepted"] != tc.n {
				t.Fatalf("answer %s", body)
			}
			calls := g.pub.takeEvents()
			if len(calls) != 1 || len(calls[0]) != tc.n {
				t.Fatalf("published %v", calls)
			}
			if e := calls[0][0]; e.TenantID != "t1" || e.ContainerID != "3f2a9c1b7e4d" || e.Type != events.TypeSecurityAlert {
				t.Fatalf("event %+v", e)
			}
		})
	}
	if got := counterValue(g.svc.metrics.records.WithLabelValues(falcoSignal)); got != 8 {
		t.Errorf("records counter %v, want 8", got)
	}
}

func TestFalcoRejects(t *testing.T) {
	g := startGateway(t, func(c *Config) { c.MaxRequestBytes = 4096 })
	for _, tc := range []struct {
		name   string
		body   string
		hdr    map[string]string
		code   int
		reason string
		msg    string
	}{
		{"malformed", "{not json", nil, 400, reasonMalformed, "record 1: malformed JSON"},
		{"missing rule", `{"time":"2024-05-06T10:01:02Z","priority":"Warning"}`, nil, 400, reasonFalcoMissingField, "record 1: field rule: missing"},
		{"bad third record", falcoAlert + "\n" + falcoAlert + "\n" + `{"time":"x","rule":"r","priority":"Warning"}`, nil, 400, reasonFalcoBadField, "record 3: field time"},
		{"no key", falcoAlert, map[string]string{"Authorization": ""}, 401, reasonUnauthenticated, ""},
		{"content type", falcoAlert, map[string]string{"Content-Type": "application/x-protobuf"}, 415, reasonBadContentType, "Content-Type"},
		{"too large", "[" + strings.Repeat(falcoAlert+",", 20) + falcoAlert + "]", nil, 413, reasonTooLarge, "exceeds the limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := counterValue(g.svc.metrics.rejected.WithLabelValues(falcoSignal, transportHTTP, tc.reason))
			code, _, body := g.postFalco(t, []byte(tc.body), tc.hdr)
			if code != tc.code {
				t.Fatalf("status %d, want %d: %s", code, tc.code, body)
			}
			var env struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal([]byte(body), &env); err != nil || env.Error.Code == "" || !strings.Contains(env.Error.Message, tc.msg) {
				t.Fatalf("error body %s, want message containing %q", body, tc.msg)
			}
			if after := counterValue(g.svc.metrics.rejected.WithLabelValues(falcoSignal, transportHTTP, tc.reason)); after != before+1 {
				t.Errorf("reason %s counted %v→%v", tc.reason, before, after)
			}
		})
	}
	if calls := g.pub.takeEvents(); len(calls) != 0 {
		t.Errorf("rejected bodies were published: %v", calls)
	}

	// The bus down: 503 with Retry-After, nothing acknowledged.
	g.pub.setErr(apperr.Unavailable(nil, "telemetry queue unavailable, retry later", 2*time.Second))
	code, hdr, body := g.postFalco(t, []byte(falcoAlert), nil)
	if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" {
		t.Errorf("bus down: %d %v %s", code, hdr, body)
	}
	g.pub.setErr(nil)

	// GET is not allowed.
	req, _ := http.NewRequest(http.MethodGet, g.base+FalcoPath, nil)
	resp, err := g.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", resp.StatusCode)
	}
}
