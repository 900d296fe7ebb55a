package replay

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// SenderConfig says where and how requests go.
type SenderConfig struct {
	GRPCEndpoint string // host:port; used when HTTPURL is empty
	HTTPURL      string // base URL (http://host:4318); /v1/traces etc. are appended
	TLS          bool   // gRPC over TLS (system roots); HTTP follows the URL scheme
	Key          string // sent as "Authorization: Bearer <key>"; never logged
	MaxRetries   int    // retries of a throttled or unavailable request
	Timeout      time.Duration
	MaxBackoff   time.Duration
	Log          *slog.Logger
}

// Sender exports OTLP requests, retrying on throttling (gRPC
// RESOURCE_EXHAUSTED/UNAVAILABLE/ABORTED/DEADLINE_EXCEEDED, HTTP
// 429/502/503/504 and connection errors), honouring the server's RetryInfo or
// Retry-After, else with exponential backoff.
type Sender struct {
	cfg     SenderConfig
	cc      *grpc.ClientConn
	traces  ptraceotlp.GRPCClient
	logs    plogotlp.GRPCClient
	metrics pmetricotlp.GRPCClient
	hc      *http.Client
	// Requests and Retries count export calls.
	Requests, Retries int64
}

// NewSender connects (lazily) to the configured endpoint.
func NewSender(cfg SenderConfig) (*Sender, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	s := &Sender{cfg: cfg}
	if cfg.HTTPURL != "" {
		s.cfg.HTTPURL = strings.TrimRight(cfg.HTTPURL, "/")
		s.hc = &http.Client{Timeout: cfg.Timeout}
		return s, nil
	}
	creds := insecure.NewCredentials()
	if cfg.TLS {
		creds = credentials.NewTLS(&tls.Config{MinVersion: tls.VersionTLS12})
	}
	cc, err := grpc.NewClient(cfg.GRPCEndpoint, grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", cfg.GRPCEndpoint, err)
	}
	s.cc = cc
	s.traces, s.logs, s.metrics = ptraceotlp.NewGRPCClient(cc), plogotlp.NewGRPCClient(cc), pmetricotlp.NewGRPCClient(cc)
	return s, nil
}

// Close releases the connection.
func (s *Sender) Close() error {
	if s.cc != nil {
		return s.cc.Close()
	}
	s.hc.CloseIdleConnections()
	return nil
}

// Traces exports td; it returns the spans rejected through partial success.
func (s *Sender) Traces(ctx context.Context, td ptrace.Traces) (int64, error) {
	req := ptraceotlp.NewExportRequestFromTraces(td)
	return s.retry(ctx, "traces", func(ctx context.Context) (int64, error) {
		if s.hc != nil {
			resp := ptraceotlp.NewExportResponse()
			body, err := req.MarshalProto()
			if err == nil {
				err = s.post(ctx, "/v1/traces", body, resp.UnmarshalProto)
			}
			return resp.PartialSuccess().RejectedSpans(), err
		}
		resp, err := s.traces.Export(s.auth(ctx), req)
		if err != nil {
			return 0, err
		}
		return resp.PartialSuccess().RejectedSpans(), nil
	})
}

// Logs exports ld; it returns the log records rejected through partial success.
func (s *Sender) Logs(ctx context.Context, ld plog.Logs) (int64, error) {
	req := plogotlp.NewExportRequestFromLogs(ld)
	return s.retry(ctx, "logs", func(ctx context.Context) (int64, error) {
		if s.hc != nil {
			resp := plogotlp.NewExportResponse()
			body, err := req.MarshalProto()
			if err == nil {
				err = s.post(ctx, "/v1/logs", body, resp.UnmarshalProto)
			}
			return resp.PartialSuccess().RejectedLogRecords(), err
		}
		resp, err := s.logs.Export(s.auth(ctx), req)
		if err != nil {
			return 0, err
		}
		return resp.PartialSuccess().RejectedLogRecords(), nil
	})
}

// Metrics exports md; it returns the data points rejected through partial success.
func (s *Sender) Metrics(ctx context.Context, md pmetric.Metrics) (int64, error) {
	req := pmetricotlp.NewExportRequestFromMetrics(md)
	return s.retry(ctx, "metrics", func(ctx context.Context) (int64, error) {
		if s.hc != nil {
			resp := pmetricotlp.NewExportResponse()
			body, err := req.MarshalProto()
			if err == nil {
				err = s.post(ctx, "/v1/metrics", body, resp.UnmarshalProto)
			}
			return resp.PartialSuccess().RejectedDataPoints(), err
		}
		resp, err := s.metrics.Export(s.auth(ctx), req)
		if err != nil {
			return 0, err
		}
		return resp.PartialSuccess().RejectedDataPoints(), nil
	})
}

func (s *Sender) auth(ctx context.Context) context.Context {
	if s.cfg.Key == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+s.cfg.Key)
}

// retryable is a failure worth retrying, after the server's hint if any.
type retryable struct {
	err   error
	after time.Duration
}

func (r *retryable) Error() string { return r.err.Error() }
func (r *retryable) Unwrap() error { return r.err }

func (s *Sender) retry(ctx context.Context, signal string, call func(context.Context) (int64, error)) (int64, error) {
	backoff := 250 * time.Millisecond
	for attempt := 0; ; attempt++ {
		s.Requests++
		actx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
		rejected, err := call(actx)
		cancel()
		if err == nil {
			return rejected, nil
		}
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		wait, ok := s.classify(err)
		if !ok || attempt >= s.cfg.MaxRetries {
			return 0, fmt.Errorf("export %s (attempt %d): %w", signal, attempt+1, err)
		}
		if wait <= 0 {
			wait = backoff/2 + rand.N(backoff/2+1)
			backoff = min(2*backoff, s.cfg.MaxBackoff)
		}
		wait = min(wait, s.cfg.MaxBackoff)
		s.Retries++
		s.cfg.Log.Warn("export failed, retrying", "signal", signal, "attempt", attempt+1, "wait", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, ctx.Err()
		case <-t.C:
		}
	}
}

// classify says whether err is retryable and how long the server asked to wait.
func (s *Sender) classify(err error) (time.Duration, bool) {
	var r *retryable
	if errors.As(err, &r) {
		return r.after, true
	}
	if s.hc != nil {
		return 0, false
	}
	st, ok := status.FromError(err)
	if !ok {
		return 0, false
	}
	switch st.Code() {
	case codes.ResourceExhausted, codes.Unavailable, codes.Aborted, codes.DeadlineExceeded:
		for _, d := range st.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay() != nil {
				return ri.GetRetryDelay().AsDuration(), true
			}
		}
		return 0, true
	}
	return 0, false
}

func (s *Sender) post(ctx context.Context, path string, body []byte, decode func([]byte) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.cfg.HTTPURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	if s.cfg.Key != "" {
		req.Header.Set("Authorization", "Bearer "+s.cfg.Key)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		if ctx.Err() == nil { // connection refused/reset: the server may be restarting
			return &retryable{err: err}
		}
		return err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return &retryable{err: err}
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		if len(out) > 0 && strings.Contains(resp.Header.Get("Content-Type"), "protobuf") {
			_ = decode(out) // an unparsable success body still means success
		}
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusBadGateway ||
		resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusGatewayTimeout:
		return &retryable{err: fmt.Errorf("POST %s: %s", path, resp.Status), after: retryAfter(resp.Header.Get("Retry-After"))}
	}
	return fmt.Errorf("POST %s: %s: %.300s", path, resp.Status, out)
}

// retryAfter parses a Retry-After header (seconds or HTTP date).
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}
