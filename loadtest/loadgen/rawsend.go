package loadgen

import (
	"context"
	"fmt"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
)

// RawTraceSender exports an already encoded ExportTraceServiceRequest
// (protobuf), e.g. a rendered Template. The senders of NewGRPCSender and
// NewHTTPSender implement it; Run's replay needs it.
type RawTraceSender interface {
	SendTracesRaw(ctx context.Context, body []byte) (rejected int64, err error)
}

// RawLogSender exports an already encoded ExportLogsServiceRequest.
type RawLogSender interface {
	SendLogsRaw(ctx context.Context, body []byte) (rejected int64, err error)
}

const (
	traceExportMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
	logsExportMethod  = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
)

// rawMsg carries protobuf bytes through gRPC untouched.
type rawMsg struct{ b []byte }

// rawCodec sends and receives rawMsg as is. Its name is "proto", so the
// server sees an ordinary application/grpc request.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(*rawMsg)
	if !ok {
		return nil, fmt.Errorf("raw codec: cannot marshal %T", v)
	}
	return mem.BufferSlice{mem.SliceBuffer(m.b)}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(*rawMsg)
	if !ok {
		return fmt.Errorf("raw codec: cannot unmarshal into %T", v)
	}
	m.b = data.Materialize()
	return nil
}

// invokeRaw sends body to method and returns the response's bytes. gRPC
// may still read body after an error return, so body is never reused.
func (s *grpcSender) invokeRaw(ctx context.Context, method string, body []byte) ([]byte, error) {
	var out rawMsg
	if err := s.cc.Invoke(s.auth(ctx), method, &rawMsg{b: body}, &out, grpc.ForceCodecV2(rawCodec{})); err != nil {
		return nil, err
	}
	return out.b, nil
}

func (s *grpcSender) SendTracesRaw(ctx context.Context, body []byte) (int64, error) {
	out, err := s.invokeRaw(ctx, traceExportMethod, body)
	if err != nil {
		return 0, err
	}
	resp := ptraceotlp.NewExportResponse()
	if err := resp.UnmarshalProto(out); err != nil {
		return 0, fmt.Errorf("decode trace export response: %w", err)
	}
	return resp.PartialSuccess().RejectedSpans(), nil
}

func (s *grpcSender) SendLogsRaw(ctx context.Context, body []byte) (int64, error) {
	out, err := s.invokeRaw(ctx, logsExportMethod, body)
	if err != nil {
		return 0, err
	}
	resp := plogotlp.NewExportResponse()
	if err := resp.UnmarshalProto(out); err != nil {
		return 0, fmt.Errorf("decode logs export response: %w", err)
	}
	return resp.PartialSuccess().RejectedLogRecords(), nil
}

func (s *httpSender) SendTracesRaw(ctx context.Context, body []byte) (int64, error) {
	out, err := s.post(ctx, "/v1/traces", body)
	if err != nil {
		return 0, err
	}
	resp := ptraceotlp.NewExportResponse()
	if err := resp.UnmarshalProto(out); err != nil {
		return 0, nil // an unparsable success body still means success
	}
	return resp.PartialSuccess().RejectedSpans(), nil
}

func (s *httpSender) SendLogsRaw(ctx context.Context, body []byte) (int64, error) {
	out, err := s.post(ctx, "/v1/logs", body)
	if err != nil {
		return 0, err
	}
	resp := plogotlp.NewExportResponse()
	if err := resp.UnmarshalProto(out); err != nil {
		return 0, nil
	}
	return resp.PartialSuccess().RejectedLogRecords(), nil
}
