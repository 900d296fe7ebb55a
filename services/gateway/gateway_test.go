package gateway

import (
	"context"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.uber.org/goleak"

	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/events"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// ---- fake publisher ----

type publishCall struct {
	tenant string
	td     ptrace.Traces
	lane   bus.Lane
}

type fakePublisher struct {
	mu      sync.Mutex
	calls   []publishCall
	err     error
	block   chan struct{} // when set, PublishTraces waits for it (or ctx)
	entered chan struct{} // when set, signalled as PublishTraces starts
	logs    []plog.Logs
	metrics []pmetric.Metrics
	events  [][]events.Event // PublishEvents calls (fakepub_events_test.go)
}

func (p *fakePublisher) PublishTraces(ctx context.Context, tenantID string, td ptrace.Traces) error {
	p.mu.Lock()
	block, entered, err := p.block, p.entered, p.err
	p.mu.Unlock()
	if entered != nil {
		entered <- struct{}{}
	}
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return ctx.Err() // the gateway must classify raw context errors
		}
	}
	if err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	cp := ptrace.NewTraces()
	td.CopyTo(cp)
	p.calls = append(p.calls, publishCall{tenant: tenantID, td: cp, lane: bus.LaneOf(ctx)})
	return nil
}

func (p *fakePublisher) setErr(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
}

func (p *fakePublisher) setBlock(block, entered chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.block, p.entered = block, entered
}

// take returns and forgets the calls so far.
func (p *fakePublisher) take() []publishCall {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.calls
	p.calls = nil
	return c
}

// ---- test gateway ----

const testKey = "k"

type testGateway struct {
	svc    *Service
	pub    *fakePublisher
	reg    *prometheus.Registry
	base   string // http://host:port
	client *http.Client
	cancel context.CancelFunc
	done   chan error
}

func testConfig() Config {
	cfg := DefaultConfig()
	cfg.GRPCAddr = "127.0.0.1:0"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.MaxRequestBytes = 4 << 20
	cfg.PublishTimeout = 2 * time.Second
	cfg.ShutdownTimeout = 5 * time.Second
	// The samples carry fixed 2023 times; window_test.go tests the bounds.
	cfg.TenantLimit.Retention, cfg.TenantLimit.MaxFuture = 0, 0
	return cfg
}

func startGateway(t *testing.T, mutate func(*Config)) *testGateway {
	t.Helper()
	return startGatewayWith(t, mutate, nil)
}

// startGatewayWith is startGateway whose Deps may be changed by deps.
func startGatewayWith(t *testing.T, mutate func(*Config), deps func(*Deps)) *testGateway {
	t.Helper()
	cfg := testConfig()
	if mutate != nil {
		mutate(&cfg)
	}
	g := &testGateway{pub: &fakePublisher{}, reg: prometheus.NewRegistry()}
	d := Deps{
		Publisher: g.pub,
		Auth:      authn.NewStatic(map[string]authn.Tenant{testKey: {ID: "t1"}}),
		Registry:  g.reg,
	}
	if deps != nil {
		deps(&d)
	}
	svc, err := New(cfg, d)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	g.svc = svc
	g.base = "http://" + svc.HTTPAddr()
	g.client = &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	g.cancel = cancel
	g.done = make(chan error, 1)
	go func() { g.done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		g.client.CloseIdleConnections()
		g.stop(t)
	})
	waitReady(t, g)
	return g
}

func (g *testGateway) stop(t *testing.T) {
	t.Helper()
	g.cancel()
	select {
	case err, ok := <-g.done:
		if ok && err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return")
	}
}

func waitReady(t *testing.T, g *testGateway) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := g.client.Get(g.base + "/readyz")
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("gateway never became ready")
}

// counterValue reads a counter, like prometheus/testutil.ToFloat64 (which
// is not used because it needs a module go.mod does not list).
func counterValue(c prometheus.Counter) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue()
}

func (g *testGateway) rejected(transport, reason string) float64 {
	return counterValue(g.svc.metrics.rejected.WithLabelValues("traces", transport, reason))
}

func (g *testGateway) requests(transport, code string) float64 {
	return counterValue(g.svc.metrics.requests.WithLabelValues("traces", transport, code))
}

func (g *testGateway) records() float64 {
	return counterValue(g.svc.metrics.records.WithLabelValues("traces"))
}

// ---- sample data ----

var (
	sampleTraceID = pcommon.TraceID{0x5b, 0x8e, 0xff, 0xf7, 0x98, 0x03, 0x81, 0x03, 0xd2, 0x69, 0xb6, 0x33, 0x81, 0x3f, 0xc6, 0x0c}
	sampleSpanID  = pcommon.SpanID{0xee, 0xe1, 0x9b, 0x7e, 0xc3, 0xc1, 0xb1, 0x74}
)

// sampleTraces returns n spans of one trace.
func sampleTraces(n int) ptrace.Traces {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "checkout")
	ss := rs.ScopeSpans().AppendEmpty()
	ss.Scope().SetName("test")
	for i := range n {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(sampleTraceID)
		id := sampleSpanID
		id[7] += byte(i)
		sp.SetSpanID(id)
		sp.SetName("GET /cart")
		sp.SetKind(ptrace.SpanKindServer)
		sp.SetStartTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000))
		sp.SetEndTimestamp(pcommon.Timestamp(1_700_000_000_500_000_000))
		sp.Attributes().PutInt("http.status_code", 200)
	}
	return td
}

func protoBody(t testing.TB, td ptrace.Traces) []byte {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func jsonBody(t testing.TB, td ptrace.Traces) []byte {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// upperHexJSON is the JSON body of sampleTraces(1) with upper-case hex ids.
func upperHexJSON(t testing.TB) []byte {
	s := string(jsonBody(t, sampleTraces(1)))
	for _, id := range []string{hex.EncodeToString(sampleTraceID[:]), hex.EncodeToString(sampleSpanID[:])} {
		if !strings.Contains(s, id) {
			t.Fatalf("id %s not in %s", id, s)
		}
		s = strings.ReplaceAll(s, id, strings.ToUpper(id))
	}
	return []byte(s)
}

// ---- config, lifecycle ----

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default config invalid: %v", err)
	}
	bad := Config{GRPCAddr: "nope", HTTPAddr: "", MaxRequestBytes: 0, MaxConcurrentRequests: -1,
		PublishTimeout: 0, ShutdownTimeout: -time.Second, DrainDelay: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("want error")
	}
	for _, want := range []string{"GRPCAddr", "HTTPAddr", "GRPCMaxConnections", "MaxRequestBytes", "MaxConcurrentRequests", "PublishTimeout", "ShutdownTimeout", "DrainDelay"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not mention %s: %v", want, err)
		}
	}
	same := DefaultConfig()
	same.HTTPAddr = same.GRPCAddr
	if err := same.Validate(); err == nil {
		t.Error("same address for both listeners accepted")
	}
	zero := DefaultConfig()
	zero.GRPCAddr, zero.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	if err := zero.Validate(); err != nil {
		t.Errorf("port 0 twice rejected: %v", err)
	}
}

func TestNewRequiresDeps(t *testing.T) {
	_, err := New(testConfig(), Deps{})
	if err == nil || !strings.Contains(err.Error(), "Publisher") || !strings.Contains(err.Error(), "Auth") {
		t.Fatalf("want errors naming Publisher and Auth, got %v", err)
	}
}

func TestNewBindFailureReleasesEverything(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	reg := prometheus.NewRegistry()
	deps := Deps{Publisher: &fakePublisher{}, Auth: authn.NewStatic(nil), Registry: reg}
	cfg := testConfig()
	cfg.HTTPAddr = ln.Addr().String() // taken
	if _, err := New(cfg, deps); err == nil || !strings.Contains(err.Error(), "OTLP/HTTP") {
		t.Fatalf("want bind error, got %v", err)
	}
	// Metrics were unregistered and the gRPC port released: a retry works.
	cfg.HTTPAddr = "127.0.0.1:0"
	svc, err := New(cfg, deps)
	if err != nil {
		t.Fatalf("retry New: %v", err)
	}
	if err := svc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func TestCloseWithoutRunAndRunOnce(t *testing.T) {
	svc, err := New(testConfig(), Deps{Publisher: &fakePublisher{}, Auth: authn.NewStatic(nil)})
	if err != nil {
		t.Fatal(err)
	}
	addr := svc.HTTPAddr()
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	if err := svc.Run(context.Background()); err == nil {
		t.Fatal("Run after Close succeeded")
	}
	ln, err := net.Listen("tcp", addr) // released
	if err != nil {
		t.Fatalf("port not released: %v", err)
	}
	_ = ln.Close()

	g := startGateway(t, nil)
	if err := g.svc.Run(context.Background()); err == nil {
		t.Fatal("second Run succeeded")
	}
}

func TestMetricsRegisteredOnce(t *testing.T) {
	reg := prometheus.NewRegistry()
	deps := Deps{Publisher: &fakePublisher{}, Auth: authn.NewStatic(nil), Registry: reg}
	svc, err := New(testConfig(), deps)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = svc.Close() }()
	if _, err := New(testConfig(), deps); err == nil {
		t.Fatal("second gateway on the same registry: want a registration error")
	}
	// Vectors without children are not gathered; touch them.
	svc.metrics.requests.WithLabelValues("traces", "http", "200")
	svc.metrics.rejected.WithLabelValues("traces", "http", "malformed")
	svc.metrics.records.WithLabelValues("traces")
	svc.metrics.bytes.WithLabelValues("traces", "http").Observe(1)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]dto.MetricType{}
	for _, mf := range mfs {
		names[mf.GetName()] = mf.GetType()
	}
	for name, typ := range map[string]dto.MetricType{
		"aftertrace_gateway_requests_total": dto.MetricType_COUNTER,
		"aftertrace_gateway_rejected_total": dto.MetricType_COUNTER,
		"aftertrace_gateway_records_total":  dto.MetricType_COUNTER,
		"aftertrace_gateway_request_bytes":  dto.MetricType_HISTOGRAM,
	} {
		if got, ok := names[name]; !ok || got != typ {
			t.Errorf("metric %s: registered=%v type=%v, want %v", name, ok, got, typ)
		}
	}
}

// The OTLP/HTTP port answers the health probes of load balancers, and
// none of the ops routes: /metrics and /debug/pprof/ are on the process's
// ops listener (services/allinone).
func TestOpsEndpoints(t *testing.T) {
	g := startGateway(t, nil)
	for _, tc := range []struct {
		path   string
		status int
		body   string
	}{
		{"/healthz", 200, "ok"},
		{"/readyz", 200, "ready"},
		{"/metrics", 404, ""},
		{"/debug/pprof/", 404, ""},
		{"/debug/pprof/cmdline", 404, ""},
		{"/debug/pprof/profile?seconds=1", 404, ""},
	} {
		resp, err := g.client.Get(g.base + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.body) {
			t.Errorf("GET %s = %d %.200q, want %d containing %q", tc.path, resp.StatusCode, b, tc.status, tc.body)
		}
	}
}

// Cancelling Run's context flips readiness before anything stops, keeps
// serving for DrainDelay, lets in-flight exports finish, and returns within
// the deadline.
func TestShutdownReadinessFirstThenDrain(t *testing.T) {
	g := startGateway(t, func(c *Config) {
		c.DrainDelay = 300 * time.Millisecond
		c.ShutdownTimeout = 2 * time.Second
	})
	block, entered := make(chan struct{}), make(chan struct{}, 1)
	g.pub.setBlock(block, entered)

	inflight := make(chan int, 1)
	go func() {
		resp := postHTTP(t, g, httpRequest{contentType: "application/x-protobuf", body: protoBody(t, sampleTraces(2))})
		inflight <- resp.status
	}()
	waitEntered(t, entered) // the export is inside the publisher

	start := time.Now()
	g.cancel()
	// /readyz answers 503 while the gateway still serves.
	sawNotReady := false
	for time.Since(start) < 250*time.Millisecond {
		resp, err := g.client.Get(g.base + "/readyz")
		if err != nil {
			t.Fatalf("readyz during drain delay: %v", err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode == http.StatusServiceUnavailable {
			sawNotReady = true
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if !sawNotReady {
		t.Fatal("/readyz did not go 503 after cancel")
	}
	select {
	case <-g.done:
		t.Fatal("Run returned before draining")
	default:
	}
	close(block) // the in-flight export completes during the drain
	if code := <-inflight; code != http.StatusOK {
		t.Errorf("in-flight export = %d, want 200", code)
	}
	select {
	case err := <-g.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		close(g.done) // for the cleanup's stop
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return within the deadline")
	}
	if el := time.Since(start); el < 300*time.Millisecond {
		t.Errorf("Run returned after %v, before DrainDelay", el)
	}
	g.client.CloseIdleConnections()
	if _, err := g.client.Get(g.base + "/healthz"); err == nil {
		t.Error("HTTP still serving after Run returned")
	}
}

// A publisher stuck past ShutdownTimeout is cancelled; Run still returns.
func TestShutdownForcedAfterTimeout(t *testing.T) {
	g := startGateway(t, func(c *Config) {
		c.ShutdownTimeout = 200 * time.Millisecond
		c.PublishTimeout = time.Minute
	})
	block, entered := make(chan struct{}), make(chan struct{}, 2)
	defer close(block)
	g.pub.setBlock(block, entered)

	var wg sync.WaitGroup
	defer wg.Wait()
	body := protoBody(t, sampleTraces(1))
	wg.Go(func() {
		req, _ := http.NewRequest(http.MethodPost, g.base+"/v1/traces", strings.NewReader(string(body)))
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Authorization", "Bearer "+testKey)
		resp, err := g.client.Do(req)
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				t.Error("export cancelled by shutdown answered 200")
			}
		}
	})
	waitEntered(t, entered)
	cc := dialGRPC(t, g)
	wg.Go(func() {
		_, err := exportGRPC(cc, testKey, sampleTraces(1))
		if err == nil {
			t.Error("gRPC export cancelled by shutdown succeeded")
		}
	})
	waitEntered(t, entered)

	start := time.Now()
	g.cancel()
	select {
	case err := <-g.done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
		close(g.done)
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return after ShutdownTimeout")
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("shutdown took %v", el)
	}
}

func waitEntered(t *testing.T, entered chan struct{}) {
	t.Helper()
	select {
	case <-entered:
	case <-time.After(10 * time.Second):
		t.Fatal("export never reached the publisher")
	}
}

func TestOverloadSheds(t *testing.T) {
	g := startGateway(t, func(c *Config) { c.MaxConcurrentRequests = 1 })
	block, entered := make(chan struct{}), make(chan struct{}, 1)
	g.pub.setBlock(block, entered)
	first := make(chan int, 1)
	go func() {
		first <- postHTTP(t, g, httpRequest{contentType: "application/x-protobuf", body: protoBody(t, sampleTraces(1))}).status
	}()
	waitEntered(t, entered)

	before := g.rejected(transportHTTP, reasonOverloaded)
	resp := postHTTP(t, g, httpRequest{contentType: "application/json", body: jsonBody(t, sampleTraces(1))})
	if resp.status != http.StatusServiceUnavailable || resp.header.Get("Retry-After") == "" {
		t.Errorf("second request = %d (Retry-After %q), want 503 with Retry-After", resp.status, resp.header.Get("Retry-After"))
	}
	if got := g.rejected(transportHTTP, reasonOverloaded) - before; got != 1 {
		t.Errorf("rejected{overloaded} += %v, want 1", got)
	}
	cc := dialGRPC(t, g)
	if _, err := exportGRPC(cc, testKey, sampleTraces(1)); grpcCode(err) != "Unavailable" {
		t.Errorf("gRPC while overloaded: %v, want Unavailable", err)
	}
	g.pub.setBlock(nil, nil)
	close(block)
	if code := <-first; code != http.StatusOK {
		t.Errorf("first request = %d", code)
	}
	if resp := postHTTP(t, g, httpRequest{contentType: "application/json", body: jsonBody(t, sampleTraces(1))}); resp.status != http.StatusOK {
		t.Errorf("after overload = %d", resp.status)
	}
}
