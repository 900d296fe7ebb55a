package gateway

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding/gzip"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

func dialGRPC(t *testing.T, g *testGateway) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(g.svc.GRPCAddr(),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

func exportGRPC(cc *grpc.ClientConn, key string, td ptrace.Traces, opts ...grpc.CallOption) (ptraceotlp.ExportResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if key != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+key)
	}
	return ptraceotlp.NewGRPCClient(cc).Export(ctx, ptraceotlp.NewExportRequestFromTraces(td), opts...)
}

func grpcCode(err error) string { return status.Code(err).String() }

// bigTraces is a request of more than size bytes that compresses well.
func bigTraces(size int) ptrace.Traces {
	td := sampleTraces(1)
	sp := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0)
	sp.Attributes().PutStr("blob", strings.Repeat("a", size))
	return td
}

// bytesCodec sends pre-encoded bytes as a gRPC message, to deliver what
// the pdata client cannot produce.
type bytesCodec struct{}

func (bytesCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (bytesCodec) Unmarshal(b []byte, v any) error {
	*(v.(*[]byte)) = append([]byte(nil), b...)
	return nil
}
func (bytesCodec) Name() string { return "proto" }

func TestGRPCExport(t *testing.T) {
	g := startGateway(t, nil)
	cc := dialGRPC(t, g)
	limit := int(testConfig().MaxRequestBytes)

	tests := []struct {
		name       string
		key        string
		td         ptrace.Traces
		raw        []byte // sent instead of td when set
		opts       []grpc.CallOption
		pubErr     error
		wantCode   codes.Code
		wantReason string
		wantSpans  int
		check      func(t *testing.T, err error)
	}{
		{name: "success", key: testKey, td: sampleTraces(3), wantCode: codes.OK, wantSpans: 3},
		{name: "success gzip", key: testKey, td: sampleTraces(2), opts: []grpc.CallOption{grpc.UseCompressor(gzip.Name)}, wantCode: codes.OK, wantSpans: 2},
		{name: "empty request", key: testKey, td: ptrace.NewTraces(), wantCode: codes.OK},
		{name: "missing key", td: sampleTraces(1), wantCode: codes.Unauthenticated, wantReason: reasonUnauthenticated},
		{name: "invalid key", key: "nope", td: sampleTraces(1), wantCode: codes.Unauthenticated, wantReason: reasonUnauthenticated},
		{
			name: "oversize", key: testKey, td: bigTraces(limit + 1),
			wantCode: codes.ResourceExhausted, wantReason: reasonTooLarge,
		},
		{
			name: "oversize after decompression", key: testKey, td: bigTraces(2 * limit),
			opts:     []grpc.CallOption{grpc.UseCompressor(gzip.Name)},
			wantCode: codes.ResourceExhausted, wantReason: reasonTooLarge,
		},
		{
			name: "trace id of wrong length", key: testKey, raw: protoSpan([]byte{1, 2, 3}, sampleSpanID[:]),
			wantCode: codes.InvalidArgument, wantReason: reasonInvalidID,
			check: func(t *testing.T, err error) {
				if !strings.Contains(status.Convert(err).Message(), "traceId must be 16 bytes") {
					t.Errorf("message %q does not explain the id", status.Convert(err).Message())
				}
			},
		},
		{
			name: "garbage protobuf", key: testKey, raw: []byte("\xff\xfe\xfd not protobuf"),
			wantCode: codes.InvalidArgument, wantReason: reasonMalformed,
			check: func(t *testing.T, err error) {
				if !strings.Contains(status.Convert(err).Message(), "invalid OTLP protobuf body") {
					t.Errorf("message %q", status.Convert(err).Message())
				}
			},
		},
		{
			// One bad span among good ones: partial success (see
			// TestPartialSuccess for the response).
			name: "one all-zero trace id", key: testKey,
			td: func() ptrace.Traces {
				td := sampleTraces(2)
				td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1).SetTraceID([16]byte{})
				return td
			}(),
			wantCode: codes.OK, wantSpans: 1,
		},
		{
			name: "all spans with all-zero ids", key: testKey,
			td: func() ptrace.Traces {
				td := sampleTraces(2)
				td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).SetSpanID([8]byte{})
				td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(1).SetTraceID([16]byte{})
				return td
			}(),
			wantCode: codes.InvalidArgument, wantReason: reasonInvalidID,
			check: func(t *testing.T, err error) {
				msg := status.Convert(err).Message()
				if !strings.Contains(msg, "spans[0].spanId") || !strings.Contains(msg, "rejected 2 span") {
					t.Errorf("message %q does not name the field and count", msg)
				}
			},
		},
		{
			name: "publisher unavailable", key: testKey, td: sampleTraces(1),
			pubErr:   apperr.Unavailable(errors.New("nats: no servers"), "message bus unavailable", 3*time.Second),
			wantCode: codes.Unavailable, wantReason: reasonUnavailable,
			check: func(t *testing.T, err error) {
				var ri *errdetails.RetryInfo
				for _, d := range status.Convert(err).Details() {
					if r, ok := d.(*errdetails.RetryInfo); ok {
						ri = r
					}
				}
				if ri == nil || ri.RetryDelay.AsDuration() != 3*time.Second {
					t.Errorf("RetryInfo = %v, want 3s", ri)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g.pub.setErr(tc.pubErr)
			defer g.pub.setErr(nil)
			g.pub.take()
			before := g.rejected(transportGRPC, tc.wantReason)
			codeBefore := g.requests(transportGRPC, tc.wantCode.String())
			recordsBefore := g.records()

			var err error
			if tc.raw != nil {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+tc.key)
				var out []byte
				err = cc.Invoke(ctx, tracesSignal.grpcMethod, tc.raw, &out, grpc.ForceCodec(bytesCodec{}))
			} else {
				_, err = exportGRPC(cc, tc.key, tc.td, tc.opts...)
			}
			calls := g.pub.take()
			if got := status.Code(err); got != tc.wantCode {
				t.Fatalf("code = %v (%v), want %v", got, err, tc.wantCode)
			}
			// The stats handler runs just after the status is sent; give it
			// a moment for the codes gRPC answers by itself.
			waitFor(t, func() bool { return g.requests(transportGRPC, tc.wantCode.String())-codeBefore == 1 },
				"requests_total{code=%s} += 1", tc.wantCode)
			if tc.wantCode == codes.OK {
				if (len(calls) > 0) != (tc.wantSpans > 0) || (tc.wantSpans > 0 && calls[0].td.SpanCount() != tc.wantSpans) {
					t.Errorf("published %d calls, want %d spans", len(calls), tc.wantSpans)
				}
				if tc.wantSpans > 0 && calls[0].tenant != "t1" {
					t.Errorf("tenant = %q", calls[0].tenant)
				}
				if got := g.records() - recordsBefore; got != float64(tc.wantSpans) {
					t.Errorf("records_total += %v", got)
				}
			} else {
				if len(calls) != 0 {
					t.Errorf("rejected request was published")
				}
				waitFor(t, func() bool { return g.rejected(transportGRPC, tc.wantReason)-before == 1 },
					"rejected_total{reason=%s} += 1", tc.wantReason)
			}
			if tc.check != nil {
				tc.check(t, err)
			}
		})
	}
	// Still serving after the bad requests.
	if _, err := exportGRPC(cc, testKey, sampleTraces(1)); err != nil {
		t.Fatalf("good request after bad ones: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Errorf("timed out waiting for "+format, args...)
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestGRPCPublishTimeoutIsUnavailable(t *testing.T) {
	g := startGateway(t, func(c *Config) { c.PublishTimeout = 100 * time.Millisecond })
	block := make(chan struct{})
	defer close(block)
	g.pub.setBlock(block, nil)
	cc := dialGRPC(t, g)
	_, err := exportGRPC(cc, testKey, sampleTraces(1))
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("code = %v, want Unavailable", err)
	}
}
