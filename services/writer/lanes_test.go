package writer

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// blockingStore holds every insert of a batch holding tenant "flood"
// until release is closed, then stores it in memStore.
type blockingStore struct {
	*memStore
	release chan struct{}
}

func (s *blockingStore) InsertSpans(ctx context.Context, b *otlpconv.SpanBatch) error {
	for _, t := range b.TenantID {
		if t == "flood" {
			select {
			case <-s.release:
			case <-ctx.Done():
				return ctx.Err()
			}
			break
		}
	}
	return s.memStore.InsertSpans(ctx, b)
}

// Each lane has its own consumer and inserts: while a flood in the bulk
// lane is stuck in ClickHouse, the share lane's rows are still stored; the
// bulk lane's rows follow once it is released (with the bulk flush).
func TestLanesAreIndependent(t *testing.T) {
	js := startJetStream(t)
	store := &blockingStore{memStore: &memStore{rows: map[string]int{}}, release: make(chan struct{})}
	cfg := testConfig(3)
	cfg.BulkFlushInterval = 100 * time.Millisecond
	w, err := New(cfg, Deps{JS: js, Spans: store, Registry: prometheus.NewRegistry(), Streams: bus.DefaultStreamConfig()})
	if err != nil {
		t.Fatal(err)
	}
	runWriter(t, w)

	publishLane := func(tenant string, lane bus.Lane, spans int) {
		t.Helper()
		msg := nats.NewMsg(bus.LaneSubject(bus.SignalTraces, lane))
		msg.Data = tracesPayload(t, spans)
		msg.Header.Set(bus.HeaderTenant, tenant)
		if _, err := js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		publishLane("flood", bus.LaneBulk, 10)
	}
	publishLane("quiet", bus.LaneShare, 3)
	waitFor(t, "the quiet tenant's rows stored while the bulk lane is stuck", func() bool { return store.count("quiet") == 3 })
	if n := store.count("flood"); n != 0 {
		t.Fatalf("flood rows stored before release: %d", n)
	}
	close(store.release)
	waitFor(t, "the bulk lane's rows stored", func() bool { return store.count("flood") == 50 })

	for _, name := range []string{ConsumerName(cfg.Durable, bus.SignalTraces, bus.LaneShare), ConsumerName(cfg.Durable, bus.SignalTraces, bus.LaneBulk)} {
		if _, err := js.Consumer(context.Background(), bus.IngestStream, name); err != nil {
			t.Errorf("consumer %s: %v", name, err)
		}
	}
}
