package retention

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// PolicySource loads every tenant's policies (implemented by
// *pgstore.Store).
type PolicySource interface {
	AllPolicies(ctx context.Context) (map[string][]Policy, error)
}

// Classifier picks the retention class of rows being written, from a
// cached copy of every tenant's policies. Refresh reloads it; Run does so
// periodically. It is safe for concurrent use. Before the first
// successful load every row is ClassDefault.
type Classifier struct {
	src PolicySource
	log *slog.Logger

	mu       sync.RWMutex
	byTenant map[string][]Policy
}

// NewClassifier returns a Classifier over src (nothing loaded yet).
func NewClassifier(src PolicySource, log *slog.Logger) *Classifier {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Classifier{src: src, log: log}
}

// Refresh reloads every tenant's policies.
func (c *Classifier) Refresh(ctx context.Context) error {
	m, err := c.src.AllPolicies(ctx)
	if err != nil {
		return fmt.Errorf("retention classifier: %w", err)
	}
	c.mu.Lock()
	c.byTenant = m
	c.mu.Unlock()
	return nil
}

// Run refreshes every interval until ctx ends. A failed refresh keeps the
// previous policies and is logged.
func (c *Classifier) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := c.Refresh(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("retention policies refresh failed; keeping the previous ones", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// policies returns the tenant's policies (nil when none).
func (c *Classifier) policies(tenantID string) []Policy {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.byTenant[tenantID]
}

// Class is the class of one row.
func (c *Classifier) Class(tenantID string, signal Signal, namespace, service string) string {
	return Match(c.policies(tenantID), signal, namespace, service)
}

// classify sets classes[i] for every row; tenants without policies keep
// ClassDefault without a lookup per row.
func (c *Classifier) classify(signal Signal, classes, tenants, namespaces, services []string) {
	c.mu.RLock()
	m := c.byTenant
	c.mu.RUnlock()
	if len(m) == 0 {
		for i := range classes {
			classes[i] = ClassDefault
		}
		return
	}
	var lastTenant string
	var ps []Policy
	for i := range classes {
		if i == 0 || tenants[i] != lastTenant {
			lastTenant, ps = tenants[i], m[tenants[i]]
		}
		classes[i] = Match(ps, signal, namespaces[i], services[i])
	}
}

// ClassifySpans sets the retention class of every row of b.
func (c *Classifier) ClassifySpans(b *otlpconv.SpanBatch) {
	c.classify(SignalSpans, b.RetentionClass, b.TenantID, b.Namespace, b.ServiceName)
}

// ClassifyLogs sets the retention class of every row of b.
func (c *Classifier) ClassifyLogs(b *otlpconv.LogBatch) {
	c.classify(SignalLogs, b.RetentionClass, b.TenantID, b.Namespace, b.ServiceName)
}

// ClassifyMetrics sets the retention class of every row of b.
func (c *Classifier) ClassifyMetrics(b *otlpconv.MetricBatch) {
	c.classify(SignalMetrics, b.RetentionClass, b.TenantID, b.Namespace, b.ServiceName)
}

// ClassifyRows sets classes[i] for rows given column by column (for
// batches of other signals, e.g. events: services are the workloads).
func (c *Classifier) ClassifyRows(signal Signal, classes, tenants, namespaces, services []string) {
	c.classify(signal, classes, tenants, namespaces, services)
}
