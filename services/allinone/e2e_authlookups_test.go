package allinone

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/aftertrace/aftertrace/internal/testenv"
)

// TestUnknownKeyFloodCostsBoundedLookups is case 6 of issue #15 end to
// end, worst case: 2,000 OTLP/HTTP exports from one address, each with a
// different unknown key (nothing to coalesce or remember), 100 at a time.
// Postgres sees at most the address's failure budget of lookups (a burst
// of 20, then 10/s), the flood is answered 401 then 429, and a valid
// tenant exporting from the same address meanwhile is always served from
// the key cache: no lookup, no queueing behind the flood's.
func TestUnknownKeyFloodCostsBoundedLookups(t *testing.T) {
	const (
		requests = 2000
		parallel = 100
	)
	env := testenv.Get(t)
	reg := prometheus.NewRegistry()
	app := startApp(t, env, env.ClickHouseAddr, appOptions{
		cfg:  func(c *Config) { c.AuthCache.TTL = time.Hour }, // the valid key stays cached throughout
		deps: func(d *Deps) { d.Registry = reg },
	})
	body, err := ptraceotlp.NewExportRequestFromTraces(makeTrace(newTraceID(), 1, "flood")).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: parallel}, Timeout: 30 * time.Second}
	defer client.CloseIdleConnections()
	export := func(key string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+app.Gateway.HTTPAddr()+"/v1/traces", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := client.Do(req)
		if err != nil {
			t.Errorf("export: %v", err)
			return 0
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	if code := export(testKey); code != http.StatusOK { // cached from now on
		t.Fatalf("valid export before the flood: %d", code)
	}
	counter := func(name string, labels map[string]string) float64 { return counterWith(t, reg, name, labels) }
	lookups0 := counter("aftertrace_auth_key_lookups_total", nil)
	fromCache0 := counter("aftertrace_auth_accepted_total", map[string]string{"from": "cache"})
	fromLookup0 := counter("aftertrace_auth_accepted_total", map[string]string{"from": "lookup"})

	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		byStatus = map[int]int{}
		valid    = map[int]int{}
		jobs     = make(chan int)
		stop     = make(chan struct{})
	)
	start := time.Now()
	for range parallel {
		wg.Go(func() {
			for n := range jobs {
				code := export(fmt.Sprintf("atk_unknown-%d-%d", start.UnixNano(), n))
				mu.Lock()
				byStatus[code]++
				mu.Unlock()
			}
		})
	}
	var validWG sync.WaitGroup
	validWG.Go(func() { // the valid tenant, same address, meanwhile
		for {
			select {
			case <-stop:
				return
			default:
			}
			code := export(testKey)
			mu.Lock()
			valid[code]++
			mu.Unlock()
		}
	})
	for n := range requests {
		jobs <- n
	}
	close(jobs)
	wg.Wait()
	close(stop)
	validWG.Wait()
	elapsed := time.Since(start)

	lookups := counter("aftertrace_auth_key_lookups_total", nil) - lookups0
	t.Logf("%d exports with unknown keys in %v: %v; %v Postgres lookups; valid tenant meanwhile: %v",
		requests, elapsed.Round(time.Millisecond), byStatus, lookups, valid)
	if byStatus[http.StatusUnauthorized]+byStatus[http.StatusTooManyRequests] != requests || byStatus[http.StatusTooManyRequests] == 0 {
		t.Errorf("flood answers %v, want only 401 and 429, some 429", byStatus)
	}
	if limit := 20 + 10*elapsed.Seconds() + 1; lookups > limit || lookups == 0 {
		t.Errorf("%v Postgres lookups for %d unknown keys, want 1..%.0f (the failure budget)", lookups, requests, limit)
	}
	if n := counter("aftertrace_gateway_rejected_total", map[string]string{"transport": "http", "reason": "auth_rate_limited"}); n != float64(byStatus[http.StatusTooManyRequests]) {
		t.Errorf("rejected_total{http,auth_rate_limited} = %v, want %d", n, byStatus[http.StatusTooManyRequests])
	}
	served := valid[http.StatusOK]
	if served == 0 || len(valid) != 1 {
		t.Errorf("valid tenant during the flood: %v, want only 200", valid)
	}
	if got := counter("aftertrace_auth_accepted_total", map[string]string{"from": "cache"}) - fromCache0; got != float64(served) {
		t.Errorf("valid requests served from the key cache = %v, want all %d", got, served)
	}
	if got := counter("aftertrace_auth_accepted_total", map[string]string{"from": "lookup"}) - fromLookup0; got != 0 {
		t.Errorf("%v valid requests waited for a lookup", got)
	}
}
