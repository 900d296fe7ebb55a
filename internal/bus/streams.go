package bus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// Signal names a kind of telemetry; each has its own subject and consumer.
type Signal string

const (
	SignalTraces  Signal = "traces"
	SignalLogs    Signal = "logs"
	SignalMetrics Signal = "metrics"
	// SignalEvents carries normalized container events (internal/events,
	// JSON) from the gateway's Falco endpoint to the writer.
	SignalEvents Signal = "events"
)

// Stream and subject names. Ingest is a work queue: a message leaves the
// stream once a writer acknowledged it, so disk use follows writer lag.
const (
	IngestStream     = "AFTERTRACE_INGEST"
	DeadLetterStream = "AFTERTRACE_DEADLETTER"
	ingestPrefix     = "aftertrace.ingest."
	deadLetterPrefix = "aftertrace.dlq."

	// CorrelateStream is a work queue of stored events waiting for the
	// correlator: the writer publishes each batch of events (JSON array of
	// events.Event) to CorrelateSubject after inserting it.
	CorrelateStream  = "AFTERTRACE_CORRELATE"
	CorrelateSubject = "aftertrace.correlate.events"
)

// Message headers.
const (
	HeaderTenant  = "Aftertrace-Tenant"
	HeaderSignal  = "Aftertrace-Signal"
	HeaderRecords = "Aftertrace-Records"
	HeaderError   = "Aftertrace-Error"
	// HeaderReason and HeaderOrigin are set on dead letters: why, and the
	// subject the message came from (where a replay sends it back).
	HeaderReason = "Aftertrace-Reason"
	HeaderOrigin = "Aftertrace-Origin"
)

// SignalCorrelate names the correlator's queue among dead letters.
const SignalCorrelate Signal = "correlate"

// IngestSubject is where the gateway publishes a signal.
func IngestSubject(s Signal) string { return ingestPrefix + string(s) }

// DeadLetterSubject is where a writer parks messages it cannot store.
func DeadLetterSubject(s Signal) string { return deadLetterPrefix + string(s) }

// StreamConfig sizes the streams.
type StreamConfig struct {
	Replicas        int           // 1 for a single server
	MaxBytes        int64         // cap on unacknowledged ingest data; -1 unlimited
	DuplicateWindow time.Duration // Nats-Msg-Id dedup window
	DeadLetterAge   time.Duration // how long dead letters are kept
}

// DefaultStreamConfig suits one server.
func DefaultStreamConfig() StreamConfig {
	return StreamConfig{Replicas: 1, MaxBytes: -1, DuplicateWindow: 2 * time.Minute, DeadLetterAge: 14 * 24 * time.Hour}
}

// EnsureStreams creates or updates the ingest, correlate and dead-letter streams.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) error {
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        IngestStream,
		Description: "OTLP requests waiting to be written to ClickHouse",
		Subjects:    []string{ingestPrefix + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxBytes:    cfg.MaxBytes,
		Discard:     jetstream.DiscardNew, // full: refuse new data (gateway answers 503) rather than drop stored data
		Duplicates:  cfg.DuplicateWindow,
	})
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", IngestStream, err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        CorrelateStream,
		Description: "stored container events waiting to be linked to traces",
		Subjects:    []string{CorrelateSubject},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		Duplicates:  cfg.DuplicateWindow,
	})
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", CorrelateStream, err)
	}
	_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        DeadLetterStream,
		Description: "messages a writer could not store, kept for inspection",
		Subjects:    []string{deadLetterPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    cfg.Replicas,
		MaxAge:      cfg.DeadLetterAge,
	})
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", DeadLetterStream, err)
	}
	return nil
}

// EnsureStreamsRetry retries EnsureStreams until it succeeds or ctx ends, so
// services can start before NATS does.
func EnsureStreamsRetry(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) error {
	delay := 200 * time.Millisecond
	for {
		err := EnsureStreams(ctx, js, cfg)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// Connect opens a NATS connection that keeps reconnecting forever and does
// not buffer publishes while disconnected: a publish then fails at once so
// the gateway can answer 503 instead of acknowledging data it may lose.
func Connect(url, name string) (*nats.Conn, error) {
	nc, err := nats.Connect(url,
		nats.Name(name),
		nats.RetryOnFailedConnect(true),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250*time.Millisecond),
		nats.ReconnectBufSize(-1),
		nats.Timeout(5*time.Second),
	)
	if err != nil {
		return nil, fmt.Errorf("connect nats %s: %w", url, err)
	}
	return nc, nil
}

// unavailable wraps a NATS failure as a retryable client-facing error.
func unavailable(err error) error {
	return apperr.Unavailable(err, "telemetry queue unavailable, retry later", 2*time.Second)
}
