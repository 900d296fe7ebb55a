package gateway

import (
	"context"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// The fake publisher's logs and metrics calls honour the configured error
// and keep a copy of what they were given.
func (p *fakePublisher) PublishLogs(ctx context.Context, tenantID string, ld plog.Logs) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	cp := plog.NewLogs()
	ld.CopyTo(cp)
	p.logs = append(p.logs, cp)
	return nil
}

func (p *fakePublisher) PublishMetrics(ctx context.Context, tenantID string, md pmetric.Metrics) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return p.err
	}
	cp := pmetric.NewMetrics()
	md.CopyTo(cp)
	p.metrics = append(p.metrics, cp)
	return nil
}
