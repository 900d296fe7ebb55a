package writer

import (
	"context"
	"fmt"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/events"
)

// EventStore inserts normalized container events (implemented by
// *chstore.Store).
type EventStore interface {
	InsertEvents(ctx context.Context, evs []events.Event) error
}

// correlateFunc hands one tenant's stored events to the correlator (the
// CorrelateSubject); nil only once JetStream acknowledged them.
type correlateFunc func(ctx context.Context, tenantID string, evs []events.Event) error

// eventBatch collects events of several tenants; Insert stores them and
// then publishes them for correlation, so the messages they came from are
// acknowledged only after both.
type eventBatch struct {
	store     EventStore
	correlate correlateFunc
	all       []events.Event
}

func (b *eventBatch) add(tenantID string, evs []events.Event) {
	for i := range evs {
		evs[i].TenantID = tenantID // the bus header is the authority
	}
	b.all = append(b.all, evs...)
}

// Insert stores the events, then publishes each tenant's share to the
// correlate stream. A retry after a failed publish inserts them again: the
// events keep their ids, reads dedup by id, and the publish dedups by the
// Nats-Msg-Id of the sorted ids.
func (b *eventBatch) Insert(ctx context.Context) error {
	if len(b.all) == 0 {
		return nil
	}
	if err := b.store.InsertEvents(ctx, b.all); err != nil {
		return err
	}
	var order []string
	byTenant := map[string][]events.Event{}
	for _, e := range b.all {
		if _, ok := byTenant[e.TenantID]; !ok {
			order = append(order, e.TenantID)
		}
		byTenant[e.TenantID] = append(byTenant[e.TenantID], e)
	}
	for _, t := range order {
		if err := b.correlate(ctx, t, byTenant[t]); err != nil {
			return fmt.Errorf("publish %d events for correlation: %w", len(byTenant[t]), err)
		}
	}
	return nil
}

// eventSink turns SignalEvents messages (JSON arrays of events.Event from
// the gateway's Falco endpoint) into container_events rows.
type eventSink struct {
	batch eventBatch
}

func (s *eventSink) Add(tenantID string, data []byte) (int, error) {
	if tenantID == "" {
		return 0, apperr.Permanent(fmt.Errorf("message has no %s header", bus.HeaderTenant))
	}
	evs, err := bus.DecodeEvents(data)
	if err != nil {
		return 0, apperr.Permanent(err)
	}
	s.batch.add(tenantID, evs)
	return len(evs), nil
}

func (s *eventSink) Rows() int { return len(s.batch.all) }

func (s *eventSink) Insert(ctx context.Context) error { return s.batch.Insert(ctx) }

// newEventBatch is an empty batch that publishes to the correlate stream
// through the writer's JetStream.
func (s *Service) newEventBatch() *eventBatch {
	return &eventBatch{store: s.deps.Events, correlate: s.correlate}
}

// correlate publishes one tenant's stored events to bus.CorrelateSubject.
func (s *Service) correlate(ctx context.Context, tenantID string, evs []events.Event) error {
	maxBytes := 1 << 20
	if nc := s.deps.JS.Conn(); nc != nil && nc.MaxPayload() > 0 {
		maxBytes = int(nc.MaxPayload())
	}
	return bus.PublishCorrelate(ctx, s.deps.JS, tenantID, evs, max(maxBytes-correlateHeaderRoom, 1024))
}

// correlateHeaderRoom is kept free in each correlate message for headers.
const correlateHeaderRoom = 4 << 10
