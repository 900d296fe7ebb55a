package gateway

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/authn"
)

// tracesGRPC adapts the OTLP TraceService to the shared grpcExport. Every
// signal needs such an adapter because pdata has one server interface per
// signal.
type tracesGRPC struct {
	ptraceotlp.UnimplementedGRPCServer
	s *Service
}

func (g *tracesGRPC) Export(ctx context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	if err := grpcExport(ctx, g.s, &tracesSignal, req); err != nil {
		return ptraceotlp.ExportResponse{}, err
	}
	return ptraceotlp.NewExportResponse(), nil
}

// grpcExport handles one OTLP/gRPC export that gRPC already decoded (within
// MaxRecvMsgSize) and returns a status error or nil.
func grpcExport[R any](ctx context.Context, s *Service, sig *signal[R], req R) error {
	start := time.Now()
	if tag, ok := ctx.Value(rpcTagKey{}).(*rpcTag); ok {
		tag.handled.Store(true) // counted here, not by grpcStats
	}
	var tenantID string
	reject := func(reason string, err error) error {
		st := apperr.GRPCStatus(err)
		s.metrics.rejected.WithLabelValues(sig.name, transportGRPC, reason).Inc()
		s.metrics.requests.WithLabelValues(sig.name, transportGRPC, st.Code().String()).Inc()
		s.logReject(ctx, sig.name, transportGRPC, reason, tenantID, err)
		return st.Err()
	}

	tenant, reason, err := s.authenticate(ctx, bearerFromMetadata(ctx))
	if err != nil {
		return reject(reason, err)
	}
	tenantID = tenant.ID
	size := sig.protoSize(req)
	s.metrics.bytes.WithLabelValues(sig.name, transportGRPC).Observe(float64(size))

	release, err := s.gate.enter()
	if err != nil {
		return reject(reasonOverloaded, err)
	}
	defer release()

	n, reason, err := export(ctx, s, sig, tenantID, req)
	if err != nil {
		return reject(reason, err)
	}
	s.metrics.requests.WithLabelValues(sig.name, transportGRPC, codes.OK.String()).Inc()
	s.logAccepted(ctx, sig.name, transportGRPC, tenantID, n, size, start)
	return nil
}

// bearerFromMetadata returns the key of "authorization: Bearer <key>".
func bearerFromMetadata(ctx context.Context) string {
	md, _ := metadata.FromIncomingContext(ctx)
	if v := md.Get("authorization"); len(v) > 0 {
		return authn.BearerToken(v[0])
	}
	return ""
}

// grpcStats counts the OTLP/gRPC requests that gRPC itself rejects before
// the handler runs: over MaxRecvMsgSize, undecodable, unknown compression.
// Requests that reach the handler are counted there.
type grpcStats struct{ s *Service }

type rpcTagKey struct{}

type rpcTag struct {
	method  string
	handled atomic.Bool
}

func (h *grpcStats) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	return context.WithValue(ctx, rpcTagKey{}, &rpcTag{method: info.FullMethodName})
}

func (h *grpcStats) HandleRPC(ctx context.Context, rs stats.RPCStats) {
	end, ok := rs.(*stats.End)
	if !ok || end.IsClient() || end.Error == nil {
		return
	}
	tag, ok := ctx.Value(rpcTagKey{}).(*rpcTag)
	if !ok || tag.handled.Load() {
		return
	}
	signal, ok := h.s.grpcSignals[tag.method]
	if !ok {
		return
	}
	st := status.Convert(end.Error)
	var reason string
	switch st.Code() {
	case codes.ResourceExhausted:
		reason = reasonTooLarge
	case codes.Unimplemented: // grpc-encoding without a registered decompressor
		reason = reasonBadEncoding
	case codes.Canceled, codes.DeadlineExceeded, codes.Unavailable:
		reason = reasonReadError
	default: // codes.Internal: the message did not decode
		reason = reasonMalformed
	}
	h.s.metrics.rejected.WithLabelValues(signal, transportGRPC, reason).Inc()
	h.s.metrics.requests.WithLabelValues(signal, transportGRPC, st.Code().String()).Inc()
	h.s.log.LogAttrs(ctx, slog.LevelDebug, "export rejected",
		slog.String("signal", signal), slog.String("transport", transportGRPC),
		slog.String("reason", reason), slog.String("err", st.Message()))
}

func (h *grpcStats) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (h *grpcStats) HandleConn(context.Context, stats.ConnStats)                       {}
