package allinone

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

const testAdminKey = "admin-key-for-the-tests-0123"

// doJSON sends method path to the API with key and an optional JSON body,
// decodes a 2xx answer into out and returns the status and the error code
// of a JSON error answer.
func (a *testApp) doJSON(t *testing.T, key, method, path string, body any, out any) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.apiURL(path), rd)
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode < 300 {
		if out != nil {
			if err := json.Unmarshal(b, out); err != nil {
				t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
			}
		}
		return resp.StatusCode, ""
	}
	var e struct {
		Error struct{ Code string } `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return resp.StatusCode, e.Error.Code
}

// exportHTTP posts td to the gateway's /v1/traces with key.
func (a *testApp) exportHTTP(t *testing.T, key string, td ptrace.Traces) int {
	t.Helper()
	b, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+a.Gateway.HTTPAddr()+"/v1/traces", bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/x-protobuf")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /v1/traces: %v", err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// exportGRPC exports td over OTLP/gRPC with key.
func exportGRPC(t *testing.T, client ptraceotlp.GRPCClient, key string, td ptrace.Traces) codes.Code {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	_, err := client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	return status.Code(err)
}

// namedTrace is makeTrace with every span named name.
func namedTrace(id pcommon.TraceID, n int, service, name string) ptrace.Traces {
	td := makeTrace(id, n, service)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	for i := range spans.Len() {
		spans.At(i).SetName(name)
	}
	return td
}

// waitTraceAs polls the trace as the owner of key until it has want spans.
func (a *testApp) waitTraceAs(t *testing.T, key, traceID string, want int) apiTrace {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var tr apiTrace
		code, _ := a.doJSON(t, key, http.MethodGet, "/api/v1/traces/"+traceID, nil, &tr)
		if code == http.StatusOK && len(tr.Spans) >= want {
			if len(tr.Spans) > want {
				t.Fatalf("trace %s: %d spans, want %d (the other tenant's spans visible?)", traceID, len(tr.Spans), want)
			}
			return tr
		}
		if code != http.StatusOK && code != http.StatusNotFound {
			t.Fatalf("trace %s: status %d", traceID, code)
		}
		if time.Now().After(deadline) {
			t.Fatalf("trace %s: %d spans after 30s, want %d", traceID, len(tr.Spans), want)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type searchPage struct {
	Items []struct {
		TraceID     string `json:"traceId"`
		RootName    string `json:"rootName"`
		RootService string `json:"rootService"`
	} `json:"items"`
}

// TestTenantIsolation: two tenants (one made through the admin API, one
// through pgstore as the CLI does) send the same trace ids; each reads
// only its own spans, the other's traces are 404, and revoked keys get 401
// at once on the gateway (HTTP and gRPC) and the API.
func TestTenantIsolation(t *testing.T) {
	env := testenv.Get(t)
	app := startApp(t, env, env.ClickHouseAddr, appOptions{cfg: func(c *Config) {
		c.AdminAPIKey = testAdminKey
		// Only revocation notices can evict a key within this test.
		c.AuthCache.TTL = time.Hour
	}})
	ctx := context.Background()

	// Tenant alpha through the admin API.
	var alpha struct{ ID, Name string }
	if code, ecode := app.doJSON(t, testAdminKey, "POST", "/admin/v1/tenants", map[string]string{"name": "alpha"}, &alpha); code != 201 {
		t.Fatalf("create tenant alpha: %d %s", code, ecode)
	}
	var alphaKey struct{ ID, Key string }
	if code, ecode := app.doJSON(t, testAdminKey, "POST", "/admin/v1/tenants/"+alpha.ID+"/keys", map[string]string{"description": "e2e"}, &alphaKey); code != 201 || alphaKey.Key == "" {
		t.Fatalf("create alpha key: %d %s %+v", code, ecode, alphaKey)
	}
	// Tenant beta through pgstore, like `aftertrace tenant create` in another process.
	store, err := pgstore.Open(ctx, env.PostgresDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	beta, err := store.CreateTenant(ctx, "beta")
	if err != nil {
		t.Fatal(err)
	}
	betaKey, err := store.CreateKey(ctx, beta.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	var tenants struct {
		Items []struct{ ID, Name string } `json:"items"`
	}
	if code, _ := app.doJSON(t, testAdminKey, "GET", "/admin/v1/tenants", nil, &tenants); code != 200 || len(tenants.Items) != 3 {
		t.Errorf("admin tenant list: %d %+v, want dev, alpha and beta", code, tenants.Items)
	}

	// Credentials stay in their lane.
	if code, _ := app.doJSON(t, testAdminKey, "GET", "/api/v1/traces", nil, nil); code != 401 {
		t.Errorf("admin key on /api/v1: %d, want 401", code)
	}
	if code, _ := app.doJSON(t, alphaKey.Key, "GET", "/admin/v1/tenants", nil, nil); code != 401 {
		t.Errorf("tenant key on /admin/v1: %d, want 401", code)
	}

	conn, err := grpc.NewClient(app.Gateway.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)

	// The same trace id from both tenants, alpha over HTTP, beta over gRPC;
	// plus a trace only alpha sends.
	shared, onlyAlpha := newTraceID(), newTraceID()
	if code := app.exportHTTP(t, alphaKey.Key, namedTrace(shared, 3, "svc-alpha", "alpha-span")); code != 200 {
		t.Fatalf("alpha export: %d", code)
	}
	if code := app.exportHTTP(t, alphaKey.Key, namedTrace(onlyAlpha, 2, "svc-alpha", "alpha-only")); code != 200 {
		t.Fatalf("alpha export: %d", code)
	}
	if code := exportGRPC(t, client, betaKey.Key, namedTrace(shared, 2, "svc-beta", "beta-span")); code != codes.OK {
		t.Fatalf("beta export: %v", code)
	}

	for _, tc := range []struct {
		key, name, service string
		spans              int
	}{
		{alphaKey.Key, "alpha-span", "svc-alpha", 3},
		{betaKey.Key, "beta-span", "svc-beta", 2},
	} {
		tr := app.waitTraceAs(t, tc.key, hexID(shared), tc.spans)
		for _, sp := range tr.Spans {
			if sp.Name != tc.name || sp.Service != tc.service {
				t.Errorf("%s reads span %q of %q in the shared trace", tc.name, sp.Name, sp.Service)
			}
		}
	}
	app.waitTraceAs(t, alphaKey.Key, hexID(onlyAlpha), 2)

	// Cross-tenant reads are 404, never 403.
	for _, key := range []string{betaKey.Key, testKey} {
		if code, ecode := app.doJSON(t, key, "GET", "/api/v1/traces/"+hexID(onlyAlpha), nil, nil); code != 404 || ecode != "not_found" {
			t.Errorf("another tenant reads alpha's trace: %d %s, want 404 not_found", code, ecode)
		}
	}
	if code, _ := app.doJSON(t, testKey, "GET", "/api/v1/traces/"+hexID(shared), nil, nil); code != 404 {
		t.Errorf("the dev tenant reads the shared trace: %d, want 404", code)
	}

	// Search: each tenant finds only its own traces and names.
	search := func(key string, q url.Values) searchPage {
		t.Helper()
		var p searchPage
		if code, ecode := app.doJSON(t, key, "GET", "/api/v1/traces?"+q.Encode(), nil, &p); code != 200 {
			t.Fatalf("search: %d %s", code, ecode)
		}
		return p
	}
	got := map[string]string{}
	for _, it := range search(alphaKey.Key, nil).Items {
		got[it.TraceID] = it.RootName
	}
	if len(got) != 2 || got[hexID(shared)] != "alpha-span" || got[hexID(onlyAlpha)] != "alpha-only" {
		t.Errorf("alpha's search: %v", got)
	}
	bp := search(betaKey.Key, nil)
	if len(bp.Items) != 1 || bp.Items[0].TraceID != hexID(shared) || bp.Items[0].RootName != "beta-span" || bp.Items[0].RootService != "svc-beta" {
		t.Errorf("beta's search: %+v", bp.Items)
	}
	if p := search(betaKey.Key, url.Values{"service": {"svc-alpha"}}); len(p.Items) != 0 {
		t.Errorf("beta finds alpha's service: %+v", p.Items)
	}
	var svcs struct {
		Items []struct{ Name string } `json:"items"`
	}
	if code, _ := app.doJSON(t, betaKey.Key, "GET", "/api/v1/services", nil, &svcs); code != 200 || len(svcs.Items) != 1 || svcs.Items[0].Name != "svc-beta" {
		t.Errorf("beta's services: %d %+v", code, svcs.Items)
	}

	unauthenticatedEverywhere := func(key string) bool {
		t.Helper()
		apiCode, _ := app.doJSON(t, key, "GET", "/api/v1/traces/"+hexID(shared), nil, nil)
		httpCode := app.exportHTTP(t, key, namedTrace(newTraceID(), 1, "svc", "after-revoke"))
		grpcCode := exportGRPC(t, client, key, namedTrace(newTraceID(), 1, "svc", "after-revoke"))
		return apiCode == 401 && httpCode == 401 && grpcCode == codes.Unauthenticated
	}

	// Revoked through this process's admin API: 401 on the very next request.
	if code, _ := app.doJSON(t, testAdminKey, "DELETE", "/admin/v1/keys/"+alphaKey.ID, nil, nil); code != 200 {
		t.Fatalf("revoke alpha's key: %d", code)
	}
	if !unauthenticatedEverywhere(alphaKey.Key) {
		t.Error("alpha's key works right after its revocation through the admin API")
	}

	// Revoked by another process (as `aftertrace key revoke` does): beta's
	// key is cached (TTL one hour), so only the Postgres notice can evict it.
	app.waitTraceAs(t, betaKey.Key, hexID(shared), 2)
	start := time.Now()
	if _, err := store.RevokeKey(ctx, betaKey.ID); err != nil {
		t.Fatal(err)
	}
	for !unauthenticatedEverywhere(betaKey.Key) {
		if time.Since(start) > 2*time.Second {
			t.Fatal("beta's key still works 2s after its revocation by another process")
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("revocation by another process took effect within %v", time.Since(start).Round(time.Millisecond))

	// Other keys are untouched.
	if code, _ := app.doJSON(t, testKey, "GET", "/api/v1/services", nil, nil); code != 200 {
		t.Errorf("dev key after the revocations: %d", code)
	}
}
