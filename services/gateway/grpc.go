package gateway

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	grpcencoding "google.golang.org/grpc/encoding"
	grpcproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/authn"
)

// rawMessage carries an undecoded OTLP request through gRPC. grpc-go
// answers INTERNAL for a message its codec cannot decode; receiving the
// bytes and decoding them here gives INVALID_ARGUMENT with the same message
// as OTLP/HTTP (e.g. a trace id of the wrong length).
type rawMessage struct{ b []byte }

// rawCodec passes rawMessage through untouched and leaves every other
// message to the standard protobuf codec.
type rawCodec struct{ fallback grpcencoding.CodecV2 }

func newRawCodec() rawCodec { return rawCodec{fallback: grpcencoding.GetCodecV2(grpcproto.Name)} }

func (c rawCodec) Name() string { return grpcproto.Name }

func (c rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	if r, ok := v.(*rawMessage); ok {
		return mem.BufferSlice{mem.SliceBuffer(r.b)}, nil
	}
	return c.fallback.Marshal(v)
}

func (c rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*rawMessage); ok {
		r.b = data.Materialize()
		return nil
	}
	return c.fallback.Unmarshal(data, v)
}

// grpcServiceDesc is the OTLP service of sig (one unary Export method)
// served on raw bytes.
func grpcServiceDesc[R any](s *Service, sig *signal[R]) *grpc.ServiceDesc {
	service, method, _ := strings.Cut(strings.TrimPrefix(sig.grpcMethod, "/"), "/")
	return &grpc.ServiceDesc{
		ServiceName: service,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{
			MethodName: method,
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				var in rawMessage
				if err := dec(&in); err != nil {
					return nil, err
				}
				res, err := grpcExport(ctx, s, sig, in.b)
				if err != nil {
					return nil, err
				}
				b, err := sig.response(encProto, res.rejected, res.msg)
				if err != nil {
					return nil, status.Error(codes.Internal, "encoding the export response failed")
				}
				return &rawMessage{b: b}, nil
			},
		}},
		Metadata: sig.grpcMethod,
	}
}

// grpcExport handles one OTLP/gRPC export (its protobuf body within
// MaxRecvMsgSize) and returns what it accepted, or a status error.
func grpcExport[R any](ctx context.Context, s *Service, sig *signal[R], body []byte) (exported, error) {
	start := time.Now()
	if tag, ok := ctx.Value(rpcTagKey{}).(*rpcTag); ok {
		tag.handled.Store(true) // counted here, not by grpcStats
	}
	var tenantID string
	reject := func(reason string, err error) (exported, error) {
		st := apperr.GRPCStatus(err)
		s.metrics.rejected.WithLabelValues(sig.name, transportGRPC, reason).Inc()
		s.metrics.requests.WithLabelValues(sig.name, transportGRPC, st.Code().String()).Inc()
		s.logReject(ctx, sig.name, transportGRPC, reason, tenantID, err)
		return exported{}, st.Err()
	}

	tenant, ok := authn.TenantFrom(ctx) // put there by grpcTap before the message was read
	if !ok {
		return reject(reasonAuthFailed, apperr.New(apperr.KindInternal, "OTLP/gRPC call without tenant: the tap did not run"))
	}
	tenantID = tenant.ID
	size := len(body)
	s.metrics.bytes.WithLabelValues(sig.name, transportGRPC).Observe(float64(size))

	release, err := s.gate.enter()
	if err != nil {
		return reject(reasonOverloaded, err)
	}
	defer release()
	releaseBytes, err := s.bytes.reserve(int64(size))
	if err != nil {
		return reject(reasonInflightBytes, err)
	}
	defer releaseBytes()

	res, reason, err := receive(ctx, s, sig, tenantID, body, encProto, size)
	if err != nil {
		return reject(reason, err)
	}
	s.metrics.requests.WithLabelValues(sig.name, transportGRPC, codes.OK.String()).Inc()
	s.logAccepted(ctx, sig.name, transportGRPC, tenantID, res, size, start)
	return res, nil
}

// bearerFromMetadata returns the key of "authorization: Bearer <key>".
func bearerFromMetadata(md metadata.MD) string {
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
