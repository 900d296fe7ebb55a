package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
)

// Sender exports OTLP requests. Each method returns how many records the
// server rejected through partial success (0 on full success) or an error
// when the whole request failed.
type Sender interface {
	SendTraces(ctx context.Context, td ptrace.Traces) (rejected int64, err error)
	SendLogs(ctx context.Context, ld plog.Logs) (rejected int64, err error)
	SendMetrics(ctx context.Context, md pmetric.Metrics) (rejected int64, err error)
	Close() error
}

// NewGRPCSender dials endpoint (host:port, plaintext).
func NewGRPCSender(endpoint, key string) (Sender, error) {
	cc, err := grpc.NewClient(endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", endpoint, err)
	}
	return &grpcSender{cc: cc, key: key, traces: ptraceotlp.NewGRPCClient(cc),
		logs: plogotlp.NewGRPCClient(cc), metrics: pmetricotlp.NewGRPCClient(cc)}, nil
}

type grpcSender struct {
	cc      *grpc.ClientConn
	key     string
	traces  ptraceotlp.GRPCClient
	logs    plogotlp.GRPCClient
	metrics pmetricotlp.GRPCClient
}

func (s *grpcSender) auth(ctx context.Context) context.Context {
	if s.key == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.key)
}

func (s *grpcSender) SendTraces(ctx context.Context, td ptrace.Traces) (int64, error) {
	resp, err := s.traces.Export(s.auth(ctx), ptraceotlp.NewExportRequestFromTraces(td))
	if err != nil {
		return 0, err
	}
	return resp.PartialSuccess().RejectedSpans(), nil
}

func (s *grpcSender) SendLogs(ctx context.Context, ld plog.Logs) (int64, error) {
	resp, err := s.logs.Export(s.auth(ctx), plogotlp.NewExportRequestFromLogs(ld))
	if err != nil {
		return 0, err
	}
	return resp.PartialSuccess().RejectedLogRecords(), nil
}

func (s *grpcSender) SendMetrics(ctx context.Context, md pmetric.Metrics) (int64, error) {
	resp, err := s.metrics.Export(s.auth(ctx), pmetricotlp.NewExportRequestFromMetrics(md))
	if err != nil {
		return 0, err
	}
	return resp.PartialSuccess().RejectedDataPoints(), nil
}

func (s *grpcSender) Close() error { return s.cc.Close() }

// NewHTTPSender posts protobuf requests to baseURL (http://host:port)
// /v1/traces, /v1/logs and /v1/metrics.
func NewHTTPSender(baseURL, key string, client *http.Client) Sender {
	if client == nil {
		client = &http.Client{Timeout: time.Minute}
	}
	return &httpSender{base: baseURL, key: key, c: client}
}

type httpSender struct {
	base string
	key  string
	c    *http.Client
}

func (s *httpSender) post(ctx context.Context, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if s.key != "" {
		req.Header.Set("Authorization", "Bearer "+s.key)
	}
	resp, err := s.c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("POST %s: %s: %.200s", path, resp.Status, out)
	}
	return out, nil
}

func (s *httpSender) SendTraces(ctx context.Context, td ptrace.Traces) (int64, error) {
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		return 0, err
	}
	return s.SendTracesRaw(ctx, body)
}

func (s *httpSender) SendLogs(ctx context.Context, ld plog.Logs) (int64, error) {
	body, err := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	if err != nil {
		return 0, err
	}
	return s.SendLogsRaw(ctx, body)
}

func (s *httpSender) SendMetrics(ctx context.Context, md pmetric.Metrics) (int64, error) {
	body, err := pmetricotlp.NewExportRequestFromMetrics(md).MarshalProto()
	if err != nil {
		return 0, err
	}
	out, err := s.post(ctx, "/v1/metrics", body)
	if err != nil {
		return 0, err
	}
	resp := pmetricotlp.NewExportResponse()
	if err := resp.UnmarshalProto(out); err != nil {
		return 0, nil
	}
	return resp.PartialSuccess().RejectedDataPoints(), nil
}

func (s *httpSender) Close() error { s.c.CloseIdleConnections(); return nil }
