package correlator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/biztx"
	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/ops"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/rca"
	"github.com/aftertrace/aftertrace/internal/retention"
)

// TraceStore finds and stores links (implemented by *chstore.Store).
type TraceStore interface {
	FindLinkCandidates(ctx context.Context, tenantID string, target chstore.LinkTarget, fromNs, toNs uint64, limit int) ([]chstore.LinkCandidate, error)
	PodSightings(ctx context.Context, tenantID, namespace, podName string, fromNs, toNs uint64) ([]chstore.PodSighting, error)
	SpansOfTraces(ctx context.Context, tenantID string, ids [][16]byte, fromNs, toNs uint64) ([]chstore.LinkSpan, error)
	InsertEventLinks(ctx context.Context, links []chstore.EventLink) error
}

// Definitions reads a tenant's business transactions (implemented by
// *pgstore.Store).
type Definitions interface {
	BusinessTransactions(ctx context.Context, tenantID string) ([]biztx.Definition, error)
}

// Incidents groups events into incidents (implemented by *pgstore.Store).
type Incidents interface {
	RecordIncidentEvent(ctx context.Context, in pgstore.IncidentInput) (incidentID, outcome string, err error)
}

// Rules reads a tenant's incident rules, which replace the configured
// IncidentRule's MinSeverity, Types and AnomalyMinScore for it
// (implemented by *pgstore.Store; ok false: the tenant has none).
type Rules interface {
	IncidentRules(ctx context.Context, tenantID string) (r pgstore.IncidentRules, ok bool, err error)
}

// Classifier picks the retention class of a row (implemented by
// *retention.Classifier); links use signal "links" with the event's
// namespace and workload.
type Classifier interface {
	Class(tenantID string, signal retention.Signal, namespace, service string) string
}

var (
	_ TraceStore  = (*chstore.Store)(nil)
	_ Definitions = (*pgstore.Store)(nil)
	_ Incidents   = (*pgstore.Store)(nil)
	_ Rules       = (*pgstore.Store)(nil)
	_ Classifier  = (*retention.Classifier)(nil)
	_ RootCauses  = (*rca.Engine)(nil)
	_ SpanTenants = (*chstore.Store)(nil)
)

// Deps are the correlator's collaborators.
type Deps struct {
	Logger      *slog.Logger
	JS          jetstream.JetStream // required
	Traces      TraceStore          // required
	Definitions Definitions         // nil: only business.transaction attributes classify traces
	Incidents   Incidents           // nil: no incidents
	Rules       Rules               // nil: the configured IncidentRule for every tenant
	Classifier  Classifier          // nil: links get the default retention class
	RCA         RootCauses          // nil (or Tenants nil, or Incidents nil): no anomaly pass
	Tenants     SpanTenants
	Registry    *prometheus.Registry
	Streams     bus.StreamConfig
	Now         func() time.Time // nil: time.Now
	// Lead runs the anomaly pass in one correlator of the deployment at a
	// time (lease.Elector.Lead); nil: in this one.
	Lead func(ctx context.Context, name string, fn func(context.Context) error) error
}

// Service is the correlator.
type Service struct {
	cfg   Config
	deps  Deps
	log   *slog.Logger
	m     *metrics
	ready ops.Readiness
	opsLn net.Listener
	now   func() time.Time

	defsMu sync.Mutex
	defs   map[string]cachedDefs

	rulesMu sync.Mutex
	rules   map[string]cachedRule
}

type cachedDefs struct {
	c  *biztx.Classifier
	at time.Time
}

// New validates cfg and binds the ops listener.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.JS == nil || deps.Traces == nil {
		return nil, errors.New("correlator: JetStream and trace store are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, deps: deps, log: deps.Logger, m: newMetrics(deps.Registry), now: deps.Now, defs: map[string]cachedDefs{}, rules: map[string]cachedRule{}}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.OpsAddr != "" {
		ln, err := net.Listen("tcp", cfg.OpsAddr)
		if err != nil {
			return nil, fmt.Errorf("correlator ops listen %s: %w", cfg.OpsAddr, err)
		}
		s.opsLn = ln
	}
	return s, nil
}

// OpsAddr is the bound ops address, or "".
func (s *Service) OpsAddr() string {
	if s.opsLn == nil {
		return ""
	}
	return s.opsLn.Addr().String()
}

// Ready reports whether the consumer is running.
func (s *Service) Ready() bool { return s.ready.Ready() }

// Run consumes until ctx ends. A message in progress when ctx ends is
// handed back for redelivery.
func (s *Service) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	srv := ops.NewServer(s.opsLn, s.deps.Registry, &s.ready)
	g.Go(func() error {
		if err := srv.Serve(); err != nil {
			return fmt.Errorf("correlator: %w", err)
		}
		return nil
	})
	g.Go(func() error {
		defer func() {
			s.ready.Set(false)
			srv.Shutdown(ctx)
		}()
		return s.consume(gctx)
	})
	g.Go(func() error {
		if s.deps.Lead == nil || !s.anomaliesOn() {
			return s.anomalyLoop(gctx)
		}
		return s.deps.Lead(gctx, "correlator/anomalies", s.anomalyLoop)
	})
	return g.Wait()
}

func (s *Service) consume(ctx context.Context) error {
	if err := bus.EnsureStreamsRetry(ctx, s.deps.JS, s.deps.Streams); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	cons, err := s.consumer(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	for range s.cfg.Workers {
		g.Go(func() error { return s.work(gctx, cons) })
	}
	s.ready.Set(true)
	return g.Wait()
}

func (s *Service) consumer(ctx context.Context) (jetstream.Consumer, error) {
	delay := s.cfg.RetryMin
	for {
		cons, err := s.deps.JS.CreateOrUpdateConsumer(ctx, bus.CorrelateStream, jetstream.ConsumerConfig{
			Durable:       s.cfg.Durable,
			FilterSubject: bus.CorrelateSubject,
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       s.cfg.AckWait,
			MaxDeliver:    -1,
			MaxAckPending: s.cfg.MaxAckPending,
		})
		if err == nil {
			return cons, nil
		}
		s.log.Warn("create correlator consumer failed; retrying", "retry_in", delay, "err", err)
		if !sleep(ctx, delay) {
			return nil, fmt.Errorf("create correlator consumer: %w", err)
		}
		delay = min(2*delay, s.cfg.RetryMax)
	}
}

// work pulls one message at a time (bounded prefetch) and handles it.
func (s *Service) work(ctx context.Context, cons jetstream.Consumer) error {
	var it jetstream.MessagesContext
	defer func() {
		if it != nil {
			it.Stop()
		}
	}()
	for ctx.Err() == nil {
		if it == nil {
			var err error
			if it, err = cons.Messages(jetstream.PullMaxMessages(16)); err != nil {
				it = nil
				s.log.Warn("correlator pull failed", "err", err)
				sleep(ctx, s.cfg.RetryMin)
				continue
			}
		}
		msg, err := it.Next(jetstream.NextMaxWait(time.Second))
		switch {
		case err == nil:
			s.handle(ctx, msg)
		case errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages):
		default:
			s.log.Warn("correlator pull interrupted; reopening", "err", err)
			it.Stop()
			it = nil
			sleep(ctx, s.cfg.RetryMin)
		}
	}
	return nil
}

// handle correlates the events of one message, then acks it; a message
// whose window is still open waits (NakWithDelay). Failures follow the
// bus's one delivery policy (bus.Delivery): an undecodable message is
// dead-lettered at once; a storage failure is retried for as long as the
// store is away, and one that may come from the message is redelivered a
// bounded number of times, then dead-lettered.
func (s *Service) handle(ctx context.Context, msg jetstream.Msg) {
	tenant := msg.Headers().Get(bus.HeaderTenant)
	var evs []events.Event
	if err := json.Unmarshal(msg.Data(), &evs); err != nil || tenant == "" {
		if err == nil {
			err = errors.New("no " + bus.HeaderTenant + " header")
		}
		s.m.messages.WithLabelValues("rejected", "decode").Inc()
		s.delivery().DeadLetter(ctx, msg, "decode", err)
		return
	}
	md, _ := msg.Metadata()
	if wait := s.waitFor(evs, md); wait > 0 {
		s.m.messages.WithLabelValues("deferred", "window_open").Inc()
		_ = msg.NakWithDelay(min(wait, s.cfg.MaxDelay))
		return
	}
	for i := range evs {
		evs[i].TenantID = tenant // the header is authoritative
		if err := s.correlate(ctx, tenant, &evs[i]); err != nil {
			if ctx.Err() != nil {
				_ = msg.Nak()
				return
			}
			reason := "storage"
			if !apperr.Retryable(err) {
				reason = "storage_permanent"
			}
			s.m.messages.WithLabelValues("retried", reason).Inc()
			s.log.Warn("correlate failed", "event", evs[i].ID, "reason", reason, "err", err)
			s.delivery().Fail(ctx, msg, reason, err)
			return
		}
	}
	if err := msg.DoubleAck(ctx); err != nil {
		s.log.Warn("correlate ack failed (the message will be redelivered and re-linked idempotently)", "err", err)
		return
	}
	s.m.messages.WithLabelValues("acked", "").Inc()
}

// delivery is the bus's settle policy for the correlate queue.
func (s *Service) delivery() bus.Delivery {
	return bus.Delivery{JS: s.deps.JS, Queue: bus.SignalCorrelate, MaxDeliver: s.cfg.MaxDeliver,
		RetryMin: s.cfg.RetryMin, RetryMax: s.cfg.RetryMax, Log: s.log,
		DeadLettered: func(reason string) { s.m.messages.WithLabelValues("dead_lettered", reason).Inc() }}
}

// waitFor is how long the message must still wait for the windows of its
// events to close (0: ready). An event dated in the future counts from when
// it was queued, so a skewed clock cannot hold it back for long.
func (s *Service) waitFor(evs []events.Event, md *jetstream.MsgMetadata) time.Duration {
	var ready time.Time
	for i := range evs {
		t := time.Unix(0, int64(evs[i].TimeUnixNano))
		if md != nil && md.Timestamp.Before(t) {
			t = md.Timestamp
		}
		if r := t.Add(s.cfg.After + s.cfg.Settle); r.After(ready) {
			ready = r
		}
	}
	return ready.Sub(s.now())
}

// sleep waits d or until ctx ends; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
