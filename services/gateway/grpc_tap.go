package gateway

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/tap"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/authn"
)

// grpcMaxHeaderBytes bounds the metadata of one OTLP/gRPC call (an API
// key and a few headers), read before the tap can refuse it; grpc-go
// would take 16 MiB.
const grpcMaxHeaderBytes = 16 << 10

// OTLP/gRPC flow-control windows. grpc-go sizes them by BDP estimation,
// growing them up to 16 MiB per stream and connection; fixed windows
// (64 KiB at least, or grpc-go keeps estimating) bound what a client can
// make the gateway buffer ahead of a handler. Variables only so that
// BenchmarkGRPCExportWindows can compare them with estimation (0).
var (
	grpcStreamWindow int32 = 1 << 20
	grpcConnWindow   int32 = 4 << 20
)

// grpcFlowControl returns the window options (none: BDP estimation).
func grpcFlowControl() []grpc.ServerOption {
	if grpcStreamWindow == 0 {
		return nil
	}
	return []grpc.ServerOption{grpc.InitialWindowSize(grpcStreamWindow), grpc.InitialConnWindowSize(grpcConnWindow)}
}

// grpcTap authenticates an OTLP/gRPC call from its headers before gRPC
// creates the stream. A refused call is answered at once and the message
// the client sends after its headers is discarded unread: an
// unauthenticated client costs neither the inflation of a compressed
// message nor its buffering. The tenant reaches grpcExport in the context.
//
// The tap runs on the connection's reader goroutine: a cached key is
// answered at once; an unknown one waits for a store lookup (bounded by
// the authenticator's lookup timeout), holding up only the connection
// that sent it.
func (s *Service) grpcTap(ctx context.Context, info *tap.Info) (context.Context, error) {
	sig, ok := s.grpcSignals[info.FullMethodName]
	if !ok {
		return ctx, nil // not an OTLP method: gRPC answers Unimplemented without reading it
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		ctx = authn.WithSource(ctx, p.Addr.String())
	}
	tenant, reason, err := s.authenticate(ctx, bearerFromMetadata(info.Header))
	if err != nil {
		st := apperr.GRPCStatus(err)
		s.metrics.rejected.WithLabelValues(sig, transportGRPC, reason).Inc()
		s.metrics.requests.WithLabelValues(sig, transportGRPC, st.Code().String()).Inc()
		s.logReject(ctx, sig, transportGRPC, reason, "", err)
		return nil, st.Err()
	}
	return authn.WithTenant(ctx, tenant), nil
}
