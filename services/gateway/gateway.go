// Package gateway is the OTLP receiver: it accepts OTLP exports over gRPC
// and HTTP (protobuf or JSON, optionally gzip), authenticates them by API
// key, validates them, and answers success only after the Publisher (the
// NATS JetStream bus) acknowledged the data.
//
// Signals (traces today; logs and metrics later) are described by a signal
// value in signal.go; the transports in http.go and grpc.go are shared.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	_ "google.golang.org/grpc/encoding/gzip" // accept gzip-compressed OTLP/gRPC
	"google.golang.org/grpc/keepalive"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/limits"
	"github.com/aftertrace/aftertrace/internal/ops"
)

// Publisher hands received telemetry to the bus. It is implemented by the
// NATS JetStream publisher.
type Publisher interface {
	// PublishTraces publishes td for tenantID. It returns nil only after
	// JetStream acknowledged everything, and an apperr of KindUnavailable
	// when the bus is down. It must return promptly once ctx is done.
	PublishTraces(ctx context.Context, tenantID string, td ptrace.Traces) error
	// PublishLogs and PublishMetrics do the same for the other signals.
	PublishLogs(ctx context.Context, tenantID string, ld plog.Logs) error
	PublishMetrics(ctx context.Context, tenantID string, md pmetric.Metrics) error
}

// Deps are the collaborators of the gateway.
type Deps struct {
	Logger    *slog.Logger         // nil: discard
	Publisher Publisher            // required
	Auth      authn.Authenticator  // required
	Registry  *prometheus.Registry // metrics are registered here; nil: a private registry
	// LimitOverrides supplies per-tenant rate limits over Config.TenantLimit
	// (the Postgres tenant_limits table); nil: the defaults apply to all.
	LimitOverrides limits.Source
}

// Service is a running OTLP gateway. Create it with New, then call Run.
type Service struct {
	cfg     Config
	log     *slog.Logger
	pub     Publisher
	auth    authn.Authenticator
	reg     *prometheus.Registry
	metrics *metrics
	ready   ops.Readiness
	gate    *gate
	bytes   *inflight       // MaxInflightBytes
	limits  *limits.Tenants // per-tenant rate limits

	// grpcSignals maps a full gRPC method name to its signal name; written
	// by New only.
	grpcSignals map[string]string

	grpcSrv *grpc.Server
	grpcLn  net.Listener
	httpSrv *http.Server
	httpLn  net.Listener

	// baseCtx is the parent of every HTTP request context; cancelled when
	// shutdown gives up on draining.
	baseCtx    context.Context
	baseCancel context.CancelFunc

	state atomic.Int32 // stateNew → stateRunning | stateClosed
}

const (
	stateNew int32 = iota
	stateRunning
	stateClosed
)

// HTTP server timeouts: enough for a 16 MiB body on a slow link, short
// enough that idle or stalled clients don't hold connections forever.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 2 * time.Minute
	idleTimeout       = 2 * time.Minute
)

// New validates cfg and binds both listeners, so GRPCAddr and HTTPAddr are
// known (also for port 0) before Run. Call Run to serve, or Close to release
// the listeners without serving.
func New(cfg Config, deps Deps) (*Service, error) {
	var errs []error
	if err := cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	if deps.Publisher == nil {
		errs = append(errs, errors.New("gateway: Deps.Publisher is required"))
	}
	if deps.Auth == nil {
		errs = append(errs, errors.New("gateway: Deps.Auth is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	s := &Service{
		cfg:         cfg,
		log:         deps.Logger,
		pub:         deps.Publisher,
		auth:        deps.Auth,
		reg:         deps.Registry,
		metrics:     newMetrics(),
		gate:        newGate(cfg.MaxConcurrentRequests),
		grpcSignals: make(map[string]string),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.bytes = &inflight{max: cfg.MaxInflightBytes, gauge: s.metrics.inflightBytes.Set}
	s.limits = limits.New(cfg.TenantLimit, deps.LimitOverrides, cfg.TenantLimitsRefresh, s.log)
	tlsCfg, err := cfg.TLS.Server()
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	if s.reg == nil {
		s.reg = prometheus.NewRegistry()
	}
	if err := s.metrics.register(s.reg); err != nil {
		return nil, err
	}
	s.baseCtx, s.baseCancel = context.WithCancel(context.Background())

	grpcOpts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(cfg.MaxRequestBytes)),
		grpc.MaxConcurrentStreams(uint32(cfg.MaxConcurrentRequests)),
		grpc.InTapHandle(s.grpcTap), // the key is checked before a stream exists: see grpcTap
		grpc.MaxHeaderListSize(grpcMaxHeaderBytes),
		grpc.ConnectionTimeout(readHeaderTimeout),
		grpc.KeepaliveParams(keepalive.ServerParameters{MaxConnectionIdle: idleTimeout}),
		grpc.StatsHandler(&grpcStats{s: s}),
		grpc.ForceServerCodecV2(newRawCodec()), // the gateway decodes OTLP itself: see rawMessage
		grpc.WaitForHandlers(true),             // Stop waits for handlers too: no export outlives Run
	}
	grpcOpts = append(grpcOpts, grpcFlowControl()...) // fixed windows
	if tlsCfg != nil {
		grpcOpts = append(grpcOpts, grpc.Creds(credentials.NewTLS(tlsCfg)))
	}
	s.grpcSrv = grpc.NewServer(grpcOpts...)

	mux := http.NewServeMux()
	ops.RegisterHealth(mux, &s.ready) // /metrics and /debug/pprof/ are on the process's ops listener
	s.registerSignals(mux)

	s.httpSrv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		IdleTimeout:       idleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return s.baseCtx },
		// Every request knows its client's address, for authenticate.
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return authn.WithSource(ctx, c.RemoteAddr().String())
		},
		TLSConfig: tlsCfg,
	}

	if s.grpcLn, err = net.Listen("tcp", cfg.GRPCAddr); err != nil {
		s.abortNew()
		return nil, fmt.Errorf("gateway: listening for OTLP/gRPC on %s: %w", cfg.GRPCAddr, err)
	}
	s.grpcLn = limitConnections(s.grpcLn, cfg.GRPCMaxConnections, func() {
		s.metrics.connRejected.WithLabelValues(transportGRPC, reasonTooManyConnections).Inc()
	})
	if s.httpLn, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
		_ = s.grpcLn.Close()
		s.abortNew()
		return nil, fmt.Errorf("gateway: listening for OTLP/HTTP on %s: %w", cfg.HTTPAddr, err)
	}
	return s, nil
}

// registerSignals wires every signal into both transports. Adding a signal
// is one line here plus its signal value and gRPC adapter.
func (s *Service) registerSignals(mux *http.ServeMux) {
	addSignal(s, mux, &tracesSignal)
	addSignal(s, mux, &logsSignal)
	addSignal(s, mux, &metricsSignal)
	mux.Handle(FalcoPath, falcoHandler(s))             // Falco alerts: HTTP only, see falco.go
	mux.Handle(RemoteWritePath, remoteWriteHandler(s)) // Prometheus remote-write: remote_write.go
}

func addSignal[R any](s *Service, mux *http.ServeMux, sig *signal[R]) {
	mux.Handle(sig.httpPath, httpHandler(s, sig))
	s.grpcSrv.RegisterService(grpcServiceDesc(s, sig), struct{}{})
	s.grpcSignals[sig.grpcMethod] = sig.name
}

func (s *Service) abortNew() {
	s.baseCancel()
	s.metrics.unregister(s.reg)
	s.grpcSrv.Stop()
}

// GRPCAddr is the bound OTLP/gRPC address.
func (s *Service) GRPCAddr() string { return s.grpcLn.Addr().String() }

// HTTPAddr is the bound OTLP/HTTP address (it also answers /healthz and
// /readyz).
func (s *Service) HTTPAddr() string { return s.httpLn.Addr().String() }

// Ready reports whether /readyz answers ready.
func (s *Service) Ready() bool { return s.ready.Ready() }

// Run serves both transports until ctx is done, then reports not-ready,
// waits DrainDelay, and drains both servers within ShutdownTimeout (after
// which connections are closed and in-flight exports cancelled). It returns
// once every goroutine it started has ended: nil after a ctx-initiated
// shutdown, or the error that stopped a server early. Run may be called
// once.
func (s *Service) Run(ctx context.Context) error {
	if !s.state.CompareAndSwap(stateNew, stateRunning) {
		return errors.New("gateway: Run called twice or after Close")
	}
	errc := make(chan error, 2)
	var serving sync.WaitGroup
	serving.Go(func() {
		if err := s.grpcSrv.Serve(s.grpcLn); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errc <- fmt.Errorf("gateway: OTLP/gRPC server: %w", err)
		}
	})
	tlsOn := s.httpSrv.TLSConfig != nil // read before Serve, which writes it
	serving.Go(func() {
		serve := s.httpSrv.Serve
		if tlsOn {
			serve = func(ln net.Listener) error { return s.httpSrv.ServeTLS(ln, "", "") }
		}
		if err := serve(s.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- fmt.Errorf("gateway: OTLP/HTTP server: %w", err)
		}
	})
	limitsCtx, stopLimits := context.WithCancel(context.Background())
	serving.Go(func() { s.limits.Run(limitsCtx) }) // refreshes per-tenant overrides
	s.ready.Set(true)
	s.log.Info("gateway serving", "grpc_addr", s.GRPCAddr(), "http_addr", s.HTTPAddr(), "tls", tlsOn)

	var runErr error
	select {
	case <-ctx.Done():
	case runErr = <-errc:
		s.log.Error("gateway server failed, shutting down", "err", runErr)
	}

	// Not ready first, so load balancers stop sending work, then drain.
	s.ready.Set(false)
	if runErr == nil && s.cfg.DrainDelay > 0 {
		s.log.Info("gateway not ready, waiting before draining", "drain_delay", s.cfg.DrainDelay)
		t := time.NewTimer(s.cfg.DrainDelay)
		select {
		case <-t.C:
		case runErr = <-errc:
			t.Stop()
		}
	}
	s.log.Info("gateway draining", "timeout", s.cfg.ShutdownTimeout)
	s.shutdown()
	stopLimits()
	serving.Wait()
	s.log.Info("gateway stopped")
	return runErr
}

// shutdown drains both servers concurrently within ShutdownTimeout, forcing
// them closed after it, then waits for exports still in progress.
func (s *Service) shutdown() {
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		done := make(chan struct{})
		go func() { // ended by Stop below at the latest; waited for via done
			s.grpcSrv.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-sctx.Done():
			s.log.Warn("OTLP/gRPC drain timed out, closing connections")
			s.grpcSrv.Stop()
			<-done
		}
	})
	wg.Go(func() {
		if err := s.httpSrv.Shutdown(sctx); err != nil {
			s.log.Warn("OTLP/HTTP drain timed out, closing connections", "err", err)
			s.baseCancel()
			_ = s.httpSrv.Close()
		}
	})
	wg.Wait()
	s.baseCancel()
	// After a forced close HTTP handlers may still be running (their
	// contexts are cancelled now); wait for them to leave.
	s.gate.close()
}

// Close releases the listeners of a Service whose Run was never called.
// Once Run has started it does nothing: Run owns the listeners then.
func (s *Service) Close() error {
	if !s.state.CompareAndSwap(stateNew, stateClosed) {
		return nil
	}
	s.ready.Set(false)
	s.baseCancel()
	s.grpcSrv.Stop()
	return errors.Join(s.grpcLn.Close(), s.httpLn.Close())
}

// gate bounds the exports in progress and lets shutdown wait for them.
type gate struct {
	slots  chan struct{}
	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup
}

var (
	errOverloaded   = apperr.Unavailable(nil, "gateway overloaded: too many concurrent export requests, retry later", time.Second)
	errShuttingDown = apperr.Unavailable(nil, "gateway shutting down, retry later", time.Second)
)

func newGate(n int) *gate { return &gate{slots: make(chan struct{}, n)} }

// enter takes a slot without waiting: shedding load beats queueing bodies
// of up to MaxRequestBytes each. The returned release must be called.
func (g *gate) enter() (release func(), err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return nil, errShuttingDown
	}
	select {
	case g.slots <- struct{}{}:
	default:
		return nil, errOverloaded
	}
	g.wg.Add(1)
	return func() {
		<-g.slots
		g.wg.Done()
	}, nil
}

// close refuses further exports and waits for those in progress.
func (g *gate) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	g.wg.Wait()
}

// authenticate resolves an API key; the reason is set when err is. ctx
// carries the client's address (authn.WithSource: ConnContext on HTTP,
// grpcTap on gRPC) for the failed-attempt limit.
func (s *Service) authenticate(ctx context.Context, key string) (authn.Tenant, string, error) {
	t, err := s.auth.Authenticate(ctx, key)
	switch {
	case err == nil && t.ID == "":
		return t, reasonAuthFailed, apperr.New(apperr.KindInternal, "authenticator returned a tenant without id")
	case err == nil:
		return t, "", nil
	case apperr.KindOf(err) == apperr.KindUnauthenticated:
		return t, reasonUnauthenticated, err
	case apperr.KindOf(err) == apperr.KindRateLimited: // the source address failed too often
		return t, reasonAuthRateLimited, err
	default:
		return t, reasonAuthFailed, err
	}
}

// exported is what an export accepted: records published, and records
// the signal's filter rejected (OTLP partial success) with its message.
type exported struct {
	accepted int
	rejected int
	msg      string
	oldest   uint64 // oldest record time kept (unix ns; 0 unknown): picks the lane
}

// receive is the transport-independent part of an export: it decodes the
// body, drops invalid records (partial success), applies the tenant's rate
// limits, publishes (unless there is nothing to store) and counts the
// records. size is the request's decompressed size. A protobuf body the
// signal's scanner vouches for is published as received without being
// decoded (the hot path); everything else is decoded with pdata. It returns
// what was accepted, or a reject reason and an error; a request whose
// every record is invalid is rejected as a whole.
func receive[R any](ctx context.Context, s *Service, sig *signal[R], tenantID string, body []byte, enc encoding, size int) (exported, string, error) {
	win := s.recordWindow(tenantID, time.Now())
	if ep, ok := s.pub.(encodedPublisher); ok && enc == encProto && sig.scan != nil {
		if sc, ok := sig.scan(body); ok && win.covers(sc.MinTime, sc.MaxTime) {
			return publishAccepted(ctx, s, sig, tenantID, exported{accepted: sc.Records, oldest: sc.MinTime}, size, func(ctx context.Context) error {
				return publishEncoded(ctx, ep, s.pub, sig, tenantID, body, sc.Records)
			})
		}
	}
	req, reason, err := decode(sig, body, enc)
	if err != nil {
		return exported{}, reason, err
	}
	var rj rejects
	sig.filter(req, win, &rj)
	rj.count(s.metrics.rejectedRecords, sig.name)
	res := exported{accepted: sig.records(req), rejected: rj.n, msg: rj.message(sig.unit), oldest: rj.oldest}
	if res.accepted == 0 && res.rejected > 0 {
		return exported{}, rj.reason(), apperr.New(apperr.KindInvalid, "%s", res.msg)
	}
	return publishAccepted(ctx, s, sig, tenantID, res, size, func(ctx context.Context) error {
		return sig.publish(ctx, s.pub, tenantID, req)
	})
}

// publishAccepted applies the tenant's rate limits to res and publishes it
// within PublishTimeout; a request with nothing to store (an empty export
// is valid OTLP) does not bother the bus.
func publishAccepted[R any](ctx context.Context, s *Service, sig *signal[R], tenantID string, res exported, size int, publish func(context.Context) error) (exported, string, error) {
	if res.accepted == 0 {
		return res, "", nil
	}
	if err := s.allowTenant(tenantID, res.accepted, size); err != nil {
		return exported{}, reasonRateLimited, err
	}
	pctx, cancel := context.WithTimeout(s.lane(ctx, sig.name, tenantID, res.accepted, res.oldest), s.cfg.PublishTimeout)
	defer cancel()
	if err := publish(pctx); err != nil {
		reason, err := publishReason(ctx, pctx, err)
		return exported{}, reason, err
	}
	s.metrics.records.WithLabelValues(sig.name).Add(float64(res.accepted))
	return res, "", nil
}

// encodedPublisher is a Publisher that can also store a protobuf-encoded
// export request as received (bus.Publisher does); it reports false when
// it did not publish because the bytes do not fit one message.
type encodedPublisher interface {
	PublishEncoded(ctx context.Context, sig bus.Signal, tenantID string, payload []byte, records int) (bool, error)
}

// publishEncoded publishes a scanned protobuf body of n records as the
// bytes received (saving a decode and an encode per request). Bodies too
// large for one message are decoded after all and published through
// sig.publish, which chunks them.
func publishEncoded[R any](ctx context.Context, ep encodedPublisher, pub Publisher, sig *signal[R], tenantID string, body []byte, n int) error {
	done, err := ep.PublishEncoded(ctx, sig.encoded, tenantID, body, n)
	if done || err != nil {
		return err
	}
	req := sig.newRequest()
	if err := sig.unmarshalProto(req, body); err != nil {
		return apperr.Wrap(apperr.KindInternal, err, "decoding a scanned request")
	}
	return sig.publish(ctx, pub, tenantID, req)
}

// publishReason classifies a publish failure. Running out of PublishTimeout
// means the bus did not acknowledge in time: retryable, like the bus being
// down.
func publishReason(ctx, pctx context.Context, err error) (string, error) {
	if ctx.Err() == nil && pctx.Err() != nil && apperr.KindOf(err) != apperr.KindUnavailable {
		return reasonUnavailable, apperr.Unavailable(err, "timed out waiting for the message bus to acknowledge, retry later", 0)
	}
	switch apperr.KindOf(err) {
	case apperr.KindUnavailable, apperr.KindTimeout, apperr.KindRateLimited:
		return reasonUnavailable, err
	default:
		return reasonPublishFailed, err
	}
}

// logReject logs a rejected request at a level matching whose fault it is.
// API keys are never logged.
func (s *Service) logReject(ctx context.Context, signal, transport, reason, tenantID string, err error) {
	level := slog.LevelDebug // the client's fault: metrics show the rate
	switch apperr.KindOf(err) {
	case apperr.KindInternal:
		level = slog.LevelError
	case apperr.KindUnavailable, apperr.KindTimeout:
		level = slog.LevelWarn
	}
	if !s.log.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{
		slog.String("signal", signal),
		slog.String("transport", transport),
		slog.String("reason", reason),
		slog.String("err", err.Error()),
	}
	if tenantID != "" {
		attrs = append(attrs, slog.String("tenant", tenantID))
	}
	s.log.LogAttrs(ctx, level, "export rejected", attrs...)
}

func (s *Service) logAccepted(ctx context.Context, signal, transport, tenantID string, res exported, bytes int, start time.Time) {
	if res.rejected > 0 {
		s.log.LogAttrs(ctx, slog.LevelDebug, "export partially accepted",
			slog.String("signal", signal), slog.String("transport", transport), slog.String("tenant", tenantID),
			slog.Int("records", res.accepted), slog.Int("rejected", res.rejected), slog.String("err", res.msg))
		return
	}
	s.log.LogAttrs(ctx, slog.LevelDebug, "export accepted",
		slog.String("signal", signal),
		slog.String("transport", transport),
		slog.String("tenant", tenantID),
		slog.Int("records", res.accepted),
		slog.Int("bytes", bytes),
		slog.Duration("took", time.Since(start)))
}
