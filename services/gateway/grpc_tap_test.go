package gateway

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/authn"
)

// sourceAuth answers a fixed error for every key but testKey and records
// the source address each call carried.
type sourceAuth struct {
	err     error
	mu      sync.Mutex
	sources []string
}

func (a *sourceAuth) Authenticate(ctx context.Context, key string) (authn.Tenant, error) {
	a.mu.Lock()
	a.sources = append(a.sources, authn.SourceFrom(ctx))
	a.mu.Unlock()
	if key == testKey {
		return authn.Tenant{ID: "t1"}, nil
	}
	return authn.Tenant{}, a.err
}

func (a *sourceAuth) take() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	s := a.sources
	a.sources = nil
	return s
}

// Every refusal of the authenticator is answered on both transports with
// its status, counted with its reason, and the authenticator learns the
// client's address from the connection.
func TestAuthRefusals(t *testing.T) {
	auth := &sourceAuth{}
	g := startGatewayWith(t, nil, func(d *Deps) { d.Auth = auth })
	cc := dialGRPC(t, g)
	for _, tc := range []struct {
		name     string
		err      error
		status   int
		code     codes.Code
		reason   string
		retryHit bool
	}{
		{"unknown key", authn.ErrUnauthenticated, http.StatusUnauthorized, codes.Unauthenticated, reasonUnauthenticated, false},
		{"address over its failure limit", &apperr.Error{Kind: apperr.KindRateLimited, Message: "too many failed authentications", RetryAfter: 2 * time.Second},
			http.StatusTooManyRequests, codes.ResourceExhausted, reasonAuthRateLimited, true},
		{"key store down", apperr.Unavailable(nil, "tenant database unavailable, retry later", time.Second),
			http.StatusServiceUnavailable, codes.Unavailable, reasonAuthFailed, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			auth.err = tc.err
			httpBefore, grpcBefore := g.rejected(transportHTTP, tc.reason), g.rejected(transportGRPC, tc.reason)

			resp := postHTTP(t, g, httpRequest{contentType: "application/x-protobuf", key: "wrong", body: protoBody(t, recentTraces(1))})
			if resp.status != tc.status || (resp.header.Get("Retry-After") != "") != tc.retryHit {
				t.Errorf("HTTP: %d (Retry-After %q), want %d", resp.status, resp.header.Get("Retry-After"), tc.status)
			}
			_, err := exportGRPC(cc, "wrong", recentTraces(1))
			if status.Code(err) != tc.code || hasRetryInfo(err) != tc.retryHit {
				t.Errorf("gRPC: %v (retry info %v), want %v", err, hasRetryInfo(err), tc.code)
			}
			if got := g.rejected(transportHTTP, tc.reason) - httpBefore; got != 1 {
				t.Errorf("rejected{http,%s} += %v, want 1", tc.reason, got)
			}
			if got := g.rejected(transportGRPC, tc.reason) - grpcBefore; got != 1 {
				t.Errorf("rejected{grpc,%s} += %v, want 1", tc.reason, got)
			}
			if src := auth.take(); len(src) != 2 || src[0] != "127.0.0.1" || src[1] != "127.0.0.1" {
				t.Errorf("sources seen by the authenticator: %q, want 127.0.0.1 twice", src)
			}
		})
	}
	// The tenant of the tap reaches the handler.
	g.pub.take()
	if _, err := exportGRPC(cc, testKey, recentTraces(2)); err != nil {
		t.Fatal(err)
	}
	if calls := g.pub.take(); len(calls) != 1 || calls[0].tenant != "t1" {
		t.Errorf("published %+v, want one call of tenant t1", calls)
	}
}

func hasRetryInfo(err error) bool {
	for _, d := range status.Convert(err).Details() {
		if _, ok := d.(*errdetails.RetryInfo); ok {
			return true
		}
	}
	return false
}

// exportCtx exports td on cc within ctx (which carries the metadata).
func exportCtx(ctx context.Context, cc *grpc.ClientConn, td ptrace.Traces) error {
	_, err := ptraceotlp.NewGRPCClient(cc).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td))
	return err
}

// Calls to methods the gateway does not serve pass the tap and get
// Unimplemented from gRPC; they are no OTLP export and not counted.
func TestGRPCUnknownMethodIsUnimplemented(t *testing.T) {
	g := startGateway(t, nil)
	cc := dialGRPC(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []byte
	err := cc.Invoke(ctx, "/no.Such/Method", []byte("x"), &out, grpc.ForceCodec(bytesCodec{}))
	if status.Code(err) != codes.Unimplemented {
		t.Errorf("unknown method: %v, want Unimplemented", err)
	}
}

// Oversized metadata is refused before the tap or any handler.
func TestGRPCHeaderListIsBounded(t *testing.T) {
	g := startGateway(t, nil)
	cc := dialGRPC(t, g)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+testKey, "x-padding", strings.Repeat("p", 2*grpcMaxHeaderBytes))
	g.pub.take()
	if err := exportCtx(ctx, cc, recentTraces(1)); err == nil {
		t.Fatal("a call with 32 KiB of metadata was served")
	}
	if calls := g.pub.take(); len(calls) != 0 {
		t.Error("a call with oversized metadata was published")
	}
}

// GRPCMaxConnections: connections over the cap are closed at once and
// counted; a closed connection frees its slot.
func TestGRPCConnectionCap(t *testing.T) {
	g := startGateway(t, func(c *Config) { c.GRPCMaxConnections = 2 })
	dial := func() *grpc.ClientConn {
		cc, err := grpc.NewClient(g.svc.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		return cc
	}
	rejected := func() float64 {
		return counterValue(g.svc.metrics.connRejected.WithLabelValues(transportGRPC, reasonTooManyConnections))
	}
	first, second := dial(), dial()
	defer func() { _ = second.Close() }()
	for _, cc := range []*grpc.ClientConn{first, second} {
		if _, err := exportGRPC(cc, testKey, recentTraces(1)); err != nil {
			t.Fatalf("connection within the cap: %v", err)
		}
	}
	third := dial()
	defer func() { _ = third.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	err := exportCtx(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+testKey), third, recentTraces(1))
	cancel()
	if status.Code(err) != codes.Unavailable {
		t.Errorf("connection over the cap: %v, want Unavailable", err)
	}
	if rejected() == 0 {
		t.Error("connections_rejected_total{grpc,too_many_connections} not counted")
	}

	_ = first.Close()
	waitFor(t, func() bool { // the server notices the close a moment later
		cc := dial()
		defer func() { _ = cc.Close() }()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		return exportCtx(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+testKey), cc, recentTraces(1)) == nil
	}, "a connection once another one closed")
}
