package allinone

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// sourceClients talk to the app from one loopback source address (every
// 127/8 address reaches the listeners on 127.0.0.1), so a test can be
// two clients the failed-auth limit tells apart.
type sourceClients struct {
	http *http.Client
	grpc *grpc.ClientConn
	otlp ptraceotlp.GRPCClient
}

func newSourceClients(t *testing.T, app *testApp, source string) *sourceClients {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}, Timeout: 5 * time.Second}
	hc := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}, Timeout: 20 * time.Second}
	cc, err := grpc.NewClient(app.Gateway.GRPCAddr(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) { return d.DialContext(ctx, "tcp", addr) }))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		hc.CloseIdleConnections()
		_ = cc.Close()
	})
	return &sourceClients{http: hc, grpc: cc, otlp: ptraceotlp.NewGRPCClient(cc)}
}

// answer is one request's outcome: an HTTP status (gRPC codes are mapped
// to theirs) and whether a retry hint came with it.
type answer struct {
	transport string
	status    int
	retryHint bool
	took      time.Duration
}

// send makes one authenticated request over transport ("otlp-http",
// "otlp-grpc" or "api") with key.
func (c *sourceClients) send(t *testing.T, app *testApp, transport, key string) answer {
	t.Helper()
	start := time.Now()
	a := answer{transport: transport}
	switch transport {
	case "otlp-grpc":
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		ctx = metadataWithKey(ctx, key)
		_, err := c.otlp.Export(ctx, ptraceotlp.NewExportRequestFromTraces(makeTrace(newTraceID(), 1, "flood")))
		a.status = grpcToHTTP(err)
		a.retryHint = hasRetryInfo(err)
	default:
		var req *http.Request
		if transport == "api" {
			req, _ = http.NewRequest(http.MethodGet, app.apiURL("/api/v1/services"), nil)
		} else {
			b, _ := ptraceotlp.NewExportRequestFromTraces(makeTrace(newTraceID(), 1, "flood")).MarshalProto()
			req, _ = http.NewRequest(http.MethodPost, "http://"+app.Gateway.HTTPAddr()+"/v1/traces", bytes.NewReader(b))
			req.Header.Set("Content-Type", "application/x-protobuf")
		}
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := c.http.Do(req)
		if err != nil {
			t.Errorf("%s: %v", transport, err)
			return a
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		a.status, a.retryHint = resp.StatusCode, resp.Header.Get("Retry-After") != ""
	}
	a.took = time.Since(start)
	return a
}

var floodTransports = []string{"otlp-http", "otlp-grpc", "api"}

// TestAuthFlood: a flood of unknown keys from one address, on the
// gateway (HTTP and gRPC) and the API, costs Postgres at most one lookup
// per key, is answered 429 / RESOURCE_EXHAUSTED with a retry hint once
// over the failed-auth limit, and neither slows down a valid tenant on the
// same address nor stops a new tenant on another address.
func TestAuthFlood(t *testing.T) {
	const (
		keys     = 40 // distinct unknown keys
		attempts = 6  // requests per key
		workers  = 8
	)
	env := testenv.Get(t)
	reg := prometheus.NewRegistry()
	app := startApp(t, env, env.ClickHouseAddr, appOptions{deps: func(d *Deps) { d.Registry = reg }})

	flooder := newSourceClients(t, app, "127.0.0.1")
	for _, tr := range floodTransports { // the valid key is cached before the flood
		if a := flooder.send(t, app, tr, testKey); a.status != 200 {
			t.Fatalf("valid %s before the flood: %d", tr, a.status)
		}
	}
	lookupsBefore := counterWith(t, reg, "aftertrace_auth_key_lookups_total", map[string]string{"result": "unknown"})

	// The valid tenant keeps working from the flooding address meanwhile.
	floodDone := make(chan struct{})
	var valid []answer
	var validWG sync.WaitGroup
	validWG.Go(func() {
		for i := 0; i < 500; i++ {
			select {
			case <-floodDone:
				return
			case <-time.After(10 * time.Millisecond):
			}
			valid = append(valid, flooder.send(t, app, floodTransports[i%3], testKey))
		}
	})

	jobs := make(chan int)
	var (
		mu      sync.Mutex
		flood   []answer
		floodWG sync.WaitGroup
	)
	start := time.Now()
	for range workers {
		floodWG.Go(func() {
			for n := range jobs {
				a := flooder.send(t, app, floodTransports[n%3], fmt.Sprintf("atk_unknown-key-%02d", n%keys))
				mu.Lock()
				flood = append(flood, a)
				mu.Unlock()
			}
		})
	}
	for n := range keys * attempts {
		jobs <- n
	}
	close(jobs)
	floodWG.Wait()
	elapsed := time.Since(start)

	// A new tenant on another address is looked up and served meanwhile.
	ctx := context.Background()
	store, err := pgstore.Open(ctx, env.PostgresDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	tenant, err := store.CreateTenant(ctx, "newcomer")
	if err != nil {
		t.Fatal(err)
	}
	key, err := store.CreateKey(ctx, tenant.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	other := newSourceClients(t, app, "127.0.0.2")
	for _, tr := range floodTransports {
		if a := other.send(t, app, tr, key.Key); a.status != 200 {
			t.Errorf("new tenant on another address, %s: %d, want 200", tr, a.status)
		}
	}
	// The flooding address is still refused, with a retry hint.
	for _, tr := range floodTransports {
		if a := flooder.send(t, app, tr, "atk_one-more-unknown-key"); a.status != 429 || !a.retryHint {
			t.Errorf("%s after the flood: %d (retry hint %v), want 429 with a retry hint", tr, a.status, a.retryHint)
		}
	}
	close(floodDone)
	validWG.Wait()

	byStatus := map[string]map[int]int{}
	for _, a := range flood {
		if byStatus[a.transport] == nil {
			byStatus[a.transport] = map[int]int{}
		}
		byStatus[a.transport][a.status]++
		if a.status == 429 && !a.retryHint {
			t.Errorf("%s: 429 without a retry hint", a.transport)
		}
	}
	t.Logf("flood of %d requests in %v: %v", len(flood), elapsed.Round(time.Millisecond), byStatus)
	refused, failed := 0, 0
	for tr, m := range byStatus {
		for status, n := range m {
			switch status {
			case 401:
				failed += n
			case 429:
				refused += n
			default:
				t.Errorf("%s: %d × status %d", tr, n, status)
			}
		}
	}
	if refused == 0 {
		t.Errorf("the flooding address was never refused (429)")
	}
	// The default limit: a burst, then a rate of failures per second.
	lim := app.Config().AuthCache
	if limit := lim.FailureBurst + int(lim.FailuresPerSecond*elapsed.Seconds()) + 1; failed > limit {
		t.Errorf("%d failed attempts answered 401, want at most %d before 429", failed, limit)
	}
	if n := counterWith(t, reg, "aftertrace_auth_key_lookups_total", map[string]string{"result": "unknown"}) - lookupsBefore; n > keys || n == 0 {
		t.Errorf("%v Postgres lookups of unknown keys, want 1..%d (at most one per key)", n, keys)
	}
	for _, c := range []struct {
		name   string
		labels map[string]string
	}{
		{"aftertrace_gateway_rejected_total", map[string]string{"transport": "http", "reason": "auth_rate_limited"}},
		{"aftertrace_gateway_rejected_total", map[string]string{"transport": "grpc", "reason": "auth_rate_limited"}},
		{"aftertrace_api_rejected_total", map[string]string{"reason": "rate_limited"}},
		{"aftertrace_auth_throttled_total", nil},
	} {
		if counterWith(t, reg, c.name, c.labels) == 0 {
			t.Errorf("%s%v not counted", c.name, c.labels)
		}
	}

	// Valid requests during the flood: all served, none queued behind lookups.
	if len(valid) == 0 {
		t.Fatal("no valid requests during the flood")
	}
	var took []time.Duration
	for _, a := range valid {
		if a.status != 200 {
			t.Errorf("valid %s during the flood: %d", a.transport, a.status)
		}
		took = append(took, a.took)
	}
	slices.Sort(took)
	t.Logf("%d valid requests during the flood: median %v, max %v", len(took), took[len(took)/2], took[len(took)-1])
	if took[len(took)-1] > time.Second {
		t.Errorf("a valid request took %v during the flood", took[len(took)-1])
	}
}

// counterWith sums the series of counter name whose labels include labels.
func counterWith(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for k, v := range labels {
				if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == k && l.GetValue() == v }) {
					continue series
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// grpcToHTTP maps the codes the flood expects to HTTP statuses.
func grpcToHTTP(err error) int {
	switch status.Code(err) {
	case codes.OK:
		return 200
	case codes.Unauthenticated:
		return 401
	case codes.ResourceExhausted:
		return 429
	case codes.Unavailable:
		return 503
	default:
		return 500
	}
}

func metadataWithKey(ctx context.Context, key string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
}

// hasRetryInfo reports a gRPC error carrying a google.rpc.RetryInfo.
func hasRetryInfo(err error) bool {
	for _, d := range status.Convert(err).Details() {
		if _, ok := d.(*errdetails.RetryInfo); ok {
			return true
		}
	}
	return false
}
