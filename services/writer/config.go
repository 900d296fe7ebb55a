// Package writer consumes OTLP requests from JetStream and batch-inserts
// them into ClickHouse. Messages are acknowledged only after ClickHouse
// accepted the insert that holds them.
package writer

import (
	"errors"
	"time"
)

// Config tunes batching, retries and dead-lettering.
type Config struct {
	OpsAddr       string        // /healthz /readyz /metrics; "" disables the listener
	Durable       string        // durable consumer name prefix
	Workers       int           // concurrent inserts per signal (one puller fills the next batch meanwhile)
	BatchRows     int           // flush when a batch holds this many rows
	FlushInterval time.Duration // ... or when its oldest message is this old
	// BulkFlushInterval is FlushInterval of the bulk lane (floods beyond a
	// tenant's share, late records): larger inserts, fewer parts, less
	// merging, at some latency of that lane only. Never below FlushInterval.
	BulkFlushInterval time.Duration
	PrefetchBytes     int           // bytes a signal's puller pulls ahead of processing
	AckWait           time.Duration // redelivery after this long without ack
	MaxAckPending     int           // unacknowledged messages in flight
	MaxDeliver        int           // deliveries of a permanently failing message before dead-lettering
	RetryMin          time.Duration // first insert retry delay
	RetryMax          time.Duration // longest insert retry delay
	ShutdownTimeout   time.Duration // final flush deadline
}

// DefaultConfig returns production defaults.
func DefaultConfig() Config {
	return Config{
		OpsAddr:           "127.0.0.1:8081",
		Durable:           "aftertrace-writer",
		Workers:           2,
		BatchRows:         50_000,
		FlushInterval:     500 * time.Millisecond,
		BulkFlushInterval: 10 * time.Second,
		PrefetchBytes:     32 << 20,
		AckWait:           60 * time.Second,
		MaxAckPending:     4096,
		MaxDeliver:        5,
		RetryMin:          200 * time.Millisecond,
		RetryMax:          10 * time.Second,
		ShutdownTimeout:   10 * time.Second,
	}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.Durable == "" {
		errs = append(errs, errors.New("writer durable: must not be empty"))
	}
	if c.Workers < 1 {
		errs = append(errs, errors.New("writer workers: must be at least 1"))
	}
	if c.BatchRows < 1 {
		errs = append(errs, errors.New("writer batch rows: must be at least 1"))
	}
	if c.BulkFlushInterval < 0 {
		errs = append(errs, errors.New("writer bulk flush interval: must not be negative"))
	}
	if c.FlushInterval <= 0 {
		errs = append(errs, errors.New("writer flush interval: must be positive"))
	}
	if c.PrefetchBytes < 1<<20 {
		errs = append(errs, errors.New("writer prefetch bytes: must be at least 1 MiB (one message must fit)"))
	}
	if c.AckWait < time.Second {
		errs = append(errs, errors.New("writer ack wait: must be at least 1s"))
	}
	if c.MaxAckPending < 1 {
		errs = append(errs, errors.New("writer max ack pending: must be at least 1"))
	}
	if c.MaxDeliver < 1 {
		errs = append(errs, errors.New("writer max deliver: must be at least 1"))
	}
	if c.RetryMin <= 0 || c.RetryMax < c.RetryMin {
		errs = append(errs, errors.New("writer retry: need 0 < retry-min <= retry-max"))
	}
	if c.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("writer shutdown timeout: must be positive"))
	}
	return errors.Join(errs...)
}
