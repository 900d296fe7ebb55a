package writer

import (
	"context"
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
	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/ops"
)

// Deps are the writer's collaborators.
type Deps struct {
	Logger   *slog.Logger
	JS       jetstream.JetStream
	Spans    SpanStore
	Logs     LogStore    // nil: logs are not consumed
	Metrics  MetricStore // nil: metrics are not consumed
	Registry *prometheus.Registry
	Streams  bus.StreamConfig
	// Classify, if set, picks each row's retention class before insert.
	Classify Classifier
	// Events, if set, consumes bus.SignalEvents (Falco alerts) into
	// container_events and makes the logs sink store the Kubernetes events
	// found in logs there too; stored events are then published to
	// bus.CorrelateSubject. nil: neither.
	Events EventStore
}

// Service is the writer.
type Service struct {
	cfg     Config
	deps    Deps
	log     *slog.Logger
	m       *metrics
	ready   ops.Readiness
	opsLn   net.Listener
	signals []signalDef
}

// New validates cfg and binds the ops listener.
func New(cfg Config, deps Deps) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.JS == nil || deps.Spans == nil {
		return nil, errors.New("writer: JetStream and span store are required")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{cfg: cfg, deps: deps, log: deps.Logger, m: newMetrics(deps.Registry)}
	s.signals = []signalDef{{
		signal:  bus.SignalTraces,
		newSink: func() sink { return newTraceSink(deps.Spans, deps.Classify) },
	}}
	if deps.Logs != nil {
		s.signals = append(s.signals, signalDef{
			signal: bus.SignalLogs,
			newSink: func() sink {
				var newEvents func() *eventBatch
				if deps.Events != nil {
					newEvents = s.newEventBatch
				}
				return newLogSink(deps.Logs, deps.Classify, newEvents)
			},
		})
	}
	if deps.Events != nil {
		s.signals = append(s.signals, signalDef{
			signal:  bus.SignalEvents,
			newSink: func() sink { return &eventSink{batch: *s.newEventBatch()} },
		})
	}
	if deps.Metrics != nil {
		s.signals = append(s.signals, signalDef{
			signal:  bus.SignalMetrics,
			newSink: func() sink { return &metricSink{store: deps.Metrics, classify: deps.Classify} },
		})
	}
	if cfg.OpsAddr != "" {
		ln, err := net.Listen("tcp", cfg.OpsAddr)
		if err != nil {
			return nil, fmt.Errorf("writer ops listen %s: %w", cfg.OpsAddr, err)
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

// Run consumes until ctx ends, then flushes what it holds within
// ShutdownTimeout; anything it could not insert is left unacknowledged
// for redelivery.
func (s *Service) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	srv := ops.NewServer(s.opsLn, s.deps.Registry, &s.ready)
	g.Go(func() error {
		if err := srv.Serve(); err != nil {
			return fmt.Errorf("writer: %w", err)
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
	return g.Wait()
}

func (s *Service) consume(ctx context.Context) error {
	if err := bus.EnsureStreamsRetry(ctx, s.deps.JS, s.deps.Streams); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	// A pull whose byte budget is below one message would never deliver it.
	if nc := s.deps.JS.Conn(); nc != nil {
		if minBytes := 2 * int(nc.MaxPayload()); s.cfg.PrefetchBytes < minBytes {
			s.cfg.PrefetchBytes = minBytes
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, sig := range s.signals {
		for _, lane := range bus.Lanes { // each lane its own pipeline: bulk never queues ahead of share
			cons, err := s.consumer(ctx, sig, lane)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			flush := s.cfg.FlushInterval
			if lane == bus.LaneBulk {
				flush = max(s.cfg.BulkFlushInterval, flush)
			}
			g.Go(func() error { return s.consumeSignal(gctx, cons, sig, flush) })
		}
	}
	s.ready.Set(true)
	return g.Wait()
}

// ConsumerName is the durable consumer of signal sig's lane l for the
// name prefix durable (Config.Durable).
func ConsumerName(durable string, sig bus.Signal, l bus.Lane) string {
	if l == bus.LaneBulk {
		return durable + "-" + string(sig) + "-bulk"
	}
	return durable + "-" + string(sig)
}

// consumer creates (or updates) the durable consumer of sig's lane,
// retrying with backoff while NATS is unreachable: the writer waits for
// the queue instead of failing the process.
func (s *Service) consumer(ctx context.Context, sig signalDef, lane bus.Lane) (jetstream.Consumer, error) {
	delay := s.cfg.RetryMin
	for {
		cons, err := s.deps.JS.CreateOrUpdateConsumer(ctx, bus.IngestStream, jetstream.ConsumerConfig{
			Durable:       ConsumerName(s.cfg.Durable, sig.signal, lane),
			FilterSubject: bus.LaneSubject(sig.signal, lane),
			AckPolicy:     jetstream.AckExplicitPolicy,
			AckWait:       s.cfg.AckWait,
			MaxDeliver:    -1, // retryable failures wait for ClickHouse forever; permanent ones are dead-lettered by us
			MaxAckPending: s.cfg.MaxAckPending,
		})
		if err == nil {
			return cons, nil
		}
		s.log.Warn("create consumer failed; retrying", "signal", sig.signal, "lane", lane, "retry_in", delay, "err", err)
		if !sleep(ctx, delay) {
			return nil, fmt.Errorf("create consumer for %s: %w", sig.signal, err)
		}
		delay = min(2*delay, s.cfg.RetryMax)
	}
}

// batch is a filled sink and the messages it holds, on its way from the
// puller to an inserter.
type batch struct {
	ctx     context.Context
	sk      sink
	pending []jetstream.Msg
}

// consumeSignal runs one puller and Workers inserters for sig. The puller
// decodes messages into a sink while up to Workers earlier batches are
// being inserted, so every batch gathers all the signal's traffic of a
// FlushInterval: fewer, larger inserts (ClickHouse's cost per row falls
// with the insert size) at the same latency and insert concurrency.
func (s *Service) consumeSignal(ctx context.Context, cons jetstream.Consumer, sig signalDef, flush time.Duration) error {
	free := make(chan sink, s.cfg.Workers+1) // sinks are reused: they keep their buffers
	for range s.cfg.Workers + 1 {
		free <- sig.newSink()
	}
	full := make(chan batch)
	var wg sync.WaitGroup
	for range s.cfg.Workers {
		wg.Go(func() {
			for b := range full {
				s.flush(b.ctx, sig, b.sk, b.pending)
				next := sig.next(b.sk)
				if next != b.sk {
					closeSink(b.sk)
				}
				free <- next
			}
		})
	}
	// The batch pending at shutdown gets ShutdownTimeout to be inserted.
	fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	s.pull(ctx, fctx, cons, sig, flush, free, full)
	t := time.AfterFunc(s.cfg.ShutdownTimeout, cancel)
	defer t.Stop()
	close(full)
	wg.Wait()
	close(free)
	for sk := range free {
		closeSink(sk)
	}
	return nil
}

// pull is the pull → decode → batch loop. Messages stream in through a
// pull iterator (prefetch bounded by PrefetchBytes); a batch goes to the
// inserters as soon as it is full or its oldest message is FlushInterval
// old, whichever comes first. At shutdown the last batch goes with
// shutdownCtx.
func (s *Service) pull(ctx, shutdownCtx context.Context, cons jetstream.Consumer, sig signalDef, flush time.Duration, free chan sink, full chan<- batch) {
	sk := <-free
	var pending []jetstream.Msg
	var oldest time.Time
	var it jetstream.MessagesContext
	defer func() {
		if it != nil {
			s.release(it)
		}
	}()
	for {
		if ctx.Err() != nil {
			if len(pending) > 0 {
				full <- batch{ctx: shutdownCtx, sk: sk, pending: pending}
			} else {
				free <- sk
			}
			return
		}
		if it == nil {
			var err error
			if it, err = cons.Messages(jetstream.PullMaxBytes(s.cfg.PrefetchBytes)); err != nil {
				it = nil
				s.log.Warn("pull failed", "signal", sig.signal, "err", err)
				sleep(ctx, s.cfg.RetryMin)
				continue
			}
		}
		wait := flush
		if len(pending) > 0 {
			wait = max(time.Until(oldest.Add(flush)), time.Millisecond)
		}
		msg, err := it.Next(jetstream.NextMaxWait(wait))
		switch {
		case err == nil:
			if s.add(ctx, sig, sk, msg) {
				if len(pending) == 0 {
					oldest = time.Now()
				}
				pending = append(pending, msg)
			}
		case errors.Is(err, nats.ErrTimeout) || errors.Is(err, jetstream.ErrNoMessages):
			// nothing arrived in time: fall through to the age check
		default:
			s.log.Warn("pull interrupted; reopening", "signal", sig.signal, "err", err)
			s.release(it)
			it = nil
			sleep(ctx, s.cfg.RetryMin)
		}
		if len(pending) > 0 && (sk.Rows() >= s.cfg.BatchRows || time.Since(oldest) >= flush) {
			full <- batch{ctx: ctx, sk: sk, pending: pending}
			sk, pending = <-free, nil
		}
	}
}

// release stops a pull iterator and hands the messages it had prefetched
// back to the server, so another writer gets them now rather than after
// AckWait.
func (s *Service) release(it jetstream.MessagesContext) {
	it.Drain()
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		msg, err := it.Next(jetstream.NextMaxWait(100 * time.Millisecond))
		if err != nil {
			return
		}
		_ = msg.Nak()
	}
}

// add decodes msg into sk; it reports false when msg was rejected.
func (s *Service) add(ctx context.Context, sig signalDef, sk sink, msg jetstream.Msg) bool {
	if md, err := msg.Metadata(); err == nil && md.NumDelivered > 1 {
		s.m.redelivered.WithLabelValues(string(sig.signal)).Inc()
	}
	if err := addMsg(sk, msg); err != nil {
		s.reject(ctx, sig, msg, "decode", err)
		return false
	}
	return true
}

// addMsg decodes msg's payload (decompressed) into sk; a failure is
// permanent.
func addMsg(sk sink, msg jetstream.Msg) error {
	data, err := bus.Payload(msg)
	if err == nil {
		_, err = sk.Add(msg.Headers().Get(bus.HeaderTenant), data)
	}
	if err != nil {
		return apperr.Permanent(err)
	}
	return nil
}

// flush inserts the batch, retrying transient failures (ClickHouse or the
// network away) with backoff until it succeeds or ctx ends, then
// acknowledges the messages. A failure that may come from the data
// (apperr.DataDependent) splits the batch until the message that fails is
// alone (bus.Isolate): the rest is stored, that one is redelivered a
// bounded number of times and then dead-lettered.
func (s *Service) flush(ctx context.Context, sig signalDef, sk sink, pending []jetstream.Msg) {
	label := string(sig.signal)
	delay := s.cfg.RetryMin
	for {
		err := s.insert(ctx, sig, sk)
		if err == nil {
			s.ack(sig, pending)
			return
		}
		if apperr.Classify(err) == apperr.DataDependent {
			s.log.Warn("insert failed for a reason that may follow the data; isolating the failing messages", "signal", label, "messages", len(pending), "err", err)
			s.m.isolations.WithLabelValues(label).Inc()
			s.isolate(ctx, sig, pending)
			return
		}
		s.m.retries.WithLabelValues(label).Inc()
		s.log.Warn("insert failed; will retry", "signal", label, "rows", sk.Rows(), "retry_in", delay, "err", err)
		for _, m := range pending {
			_ = m.InProgress() // keep the messages ours while we wait
		}
		if !sleep(ctx, delay) {
			for _, m := range pending {
				_ = m.Nak() // shutting down: hand them back for redelivery
			}
			return
		}
		delay = min(2*delay, s.cfg.RetryMax)
	}
}

func (s *Service) ack(sig signalDef, msgs []jetstream.Msg) {
	for _, m := range msgs {
		_ = m.Ack()
	}
	s.m.messages.WithLabelValues(string(sig.signal)).Add(float64(len(msgs)))
}

func (s *Service) insert(ctx context.Context, sig signalDef, sk sink) error {
	// An insert in flight is allowed to finish even when shutdown begins.
	ictx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	start := time.Now()
	err := sk.Insert(ictx)
	if err == nil {
		label := string(sig.signal)
		s.m.insertSecs.WithLabelValues(label).Observe(time.Since(start).Seconds())
		s.m.batchRows.WithLabelValues(label).Observe(float64(sk.Rows()))
		s.m.rows.WithLabelValues(label).Add(float64(sk.Rows()))
	}
	return err
}

// isolate stores pending in halves (bus.Isolate): groups that insert are
// acknowledged, single messages that still fail are settled by the
// delivery policy (bounded redelivery, then the dead letters). If the
// store goes away meanwhile, what is not settled yet is handed back.
func (s *Service) isolate(ctx context.Context, sig signalDef, pending []jetstream.Msg) {
	settled := make(map[jetstream.Msg]bool, len(pending))
	try := func(ctx context.Context, msgs []jetstream.Msg) error {
		sk := sig.newSink()
		defer closeSink(sk)
		for _, m := range msgs {
			if err := addMsg(sk, m); err != nil {
				return err // decoded before, so not expected: treated like any data failure
			}
		}
		return s.insert(ctx, sig, sk)
	}
	err := bus.Isolate(ctx, pending, try,
		func(ok []jetstream.Msg) {
			s.ack(sig, ok)
			for _, m := range ok {
				settled[m] = true
			}
		},
		func(m jetstream.Msg, err error) {
			s.delivery(sig).Fail(ctx, m, "insert", err)
			settled[m] = true
		})
	if err != nil {
		s.log.Warn("store failed while isolating; the rest goes back for redelivery", "signal", sig.signal, "err", err)
		for _, m := range pending {
			if !settled[m] {
				s.delivery(sig).Retry(m)
			}
		}
	}
}

// reject settles a message that failed to decode (a permanent failure):
// bounded redelivery, then the dead letters.
func (s *Service) reject(ctx context.Context, sig signalDef, msg jetstream.Msg, reason string, cause error) {
	s.delivery(sig).Fail(ctx, msg, reason, cause)
}

// delivery is the bus's settle policy for sig's messages.
func (s *Service) delivery(sig signalDef) bus.Delivery {
	return bus.Delivery{JS: s.deps.JS, Queue: sig.signal, MaxDeliver: s.cfg.MaxDeliver, RetryMin: s.cfg.RetryMin, RetryMax: s.cfg.RetryMax,
		Log: s.log, DeadLettered: func(reason string) { s.m.dropped.WithLabelValues(string(sig.signal), reason).Inc() }}
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
