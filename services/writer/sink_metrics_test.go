package writer

import (
	"context"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// memMetricStore keeps the series ids and times it was given, per tenant.
type memMetricStore struct {
	mu     sync.Mutex
	points map[string][][2]uint64
}

func (s *memMetricStore) InsertMetrics(_ context.Context, b *otlpconv.MetricBatch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, t := range b.TenantID {
		s.points[t] = append(s.points[t], [2]uint64{b.SeriesID[i], b.TimeNs[i]})
	}
	return nil
}

func (s *memMetricStore) get(tenant string) [][2]uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([][2]uint64(nil), s.points[tenant]...)
}

func metricsPayload(t *testing.T, points int) []byte {
	md := pmetric.NewMetrics()
	dps := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints()
	for i := range points {
		p := dps.AppendEmpty()
		p.SetTimestamp(1_700_000_000_000_000_000)
		p.SetDoubleValue(float64(i))
		p.Attributes().PutInt("i", int64(i))
	}
	b, err := (&pmetric.ProtoMarshaler{}).MarshalMetrics(md)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMetricsConsumed: with Deps.Metrics set, metrics messages are stored
// (the same message twice yields the same series ids and times, which the
// table's sort key collapses) and a bad one is dead-lettered under the
// metrics signal.
func TestMetricsConsumed(t *testing.T) {
	js := startJetStream(t)
	store := &memMetricStore{points: map[string][][2]uint64{}}
	cfg := testConfig(2)
	w, err := New(cfg, Deps{JS: js, Spans: &memStore{rows: map[string]int{}}, Metrics: store,
		Registry: prometheus.NewRegistry(), Streams: bus.DefaultStreamConfig()})
	if err != nil {
		t.Fatal(err)
	}
	runWriter(t, w)

	send := func(data []byte, tenant string) {
		msg := nats.NewMsg(bus.IngestSubject(bus.SignalMetrics))
		msg.Data = data
		if tenant != "" {
			msg.Header.Set(bus.HeaderTenant, tenant)
		}
		if _, err := js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	payload := metricsPayload(t, 3)
	send(payload, "t1")
	send([]byte("\xff\xff not protobuf"), "t1")
	send(payload, "t1") // a second delivery of the same data
	send(payload, "")   // no tenant: dead-lettered

	waitFor(t, "six rows", func() bool { return len(store.get("t1")) == 6 })
	pts := store.get("t1")
	for i := range 3 {
		if pts[i] != pts[i+3] {
			t.Errorf("point %d: identity differs between deliveries", i)
		}
	}
	if pts[0][0] == pts[1][0] {
		t.Error("points with different attributes share a series id")
	}
	waitFor(t, "dead letters", func() bool {
		return testutil.ToFloat64(w.m.dropped.WithLabelValues("metrics", "decode")) == 2
	})
}

// Without Deps.Metrics the writer does not consume metrics.
func TestMetricsOptional(t *testing.T) {
	cfg := DefaultConfig()
	cfg.OpsAddr = ""
	js := struct{ jetstream.JetStream }{} // never called by New
	w, err := New(cfg, Deps{JS: js, Spans: &memStore{rows: map[string]int{}}, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range w.signals {
		if s.signal == bus.SignalMetrics {
			t.Fatal("metrics consumed without a metric store")
		}
	}
}
