package writer

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/goleak"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// memStore is a span store in memory; tenants in poison fail permanently.
type memStore struct {
	mu     sync.Mutex
	rows   map[string]int // tenant -> rows
	poison string
}

func (s *memStore) InsertSpans(_ context.Context, b *otlpconv.SpanBatch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, t := range b.TenantID {
		if t == s.poison {
			return apperr.Permanent(errors.New("type mismatch"))
		}
	}
	for _, t := range b.TenantID {
		s.rows[t]++
	}
	return nil
}

func (s *memStore) count(tenant string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rows[tenant]
}

func tracesPayload(t *testing.T, spans int) []byte {
	td := ptrace.NewTraces()
	ss := td.ResourceSpans().AppendEmpty().ScopeSpans().AppendEmpty()
	for i := 0; i < spans; i++ {
		sp := ss.Spans().AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{1})
		sp.SetSpanID(pcommon.SpanID{byte(i + 1)})
	}
	var m ptrace.ProtoMarshaler
	b, err := m.MarshalTraces(td)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func publish(t *testing.T, js jetstream.JetStream, tenant string, data []byte) {
	t.Helper()
	msg := nats.NewMsg(bus.IngestSubject(bus.SignalTraces))
	msg.Data = data
	if tenant != "" {
		msg.Header.Set(bus.HeaderTenant, tenant)
	}
	if _, err := js.PublishMsg(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestPermanentFailuresAreDeadLettered: an undecodable message and a
// message whose insert fails permanently reach the dead-letter stream after
// MaxDeliver deliveries, each counted by reason, while good messages in the
// same batches are stored and acknowledged.
func TestPermanentFailuresAreDeadLettered(t *testing.T) {
	js := startJetStream(t)
	store := &memStore{rows: map[string]int{}, poison: "poison"}
	reg := prometheus.NewRegistry()
	cfg := testConfig(3)
	w, err := New(cfg, Deps{JS: js, Spans: store, Registry: reg, Streams: bus.DefaultStreamConfig()})
	if err != nil {
		t.Fatal(err)
	}
	runWriter(t, w)

	publish(t, js, "good", tracesPayload(t, 3))
	publish(t, js, "good", []byte("\xff\xff not protobuf"))
	publish(t, js, "", tracesPayload(t, 1)) // no tenant header
	publish(t, js, "poison", tracesPayload(t, 2))
	publish(t, js, "good", tracesPayload(t, 4))

	waitFor(t, "good rows stored", func() bool { return store.count("good") == 7 })
	waitFor(t, "three dead letters", func() bool {
		return testutil.ToFloat64(w.m.dropped.WithLabelValues("traces", "decode")) == 2 &&
			testutil.ToFloat64(w.m.dropped.WithLabelValues("traces", "insert")) == 1
	})
	dlq, err := js.Stream(context.Background(), bus.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := dlq.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 3 {
		t.Fatalf("dead-letter stream holds %d messages, want 3", info.State.Msgs)
	}
	m, err := dlq.GetMsg(context.Background(), info.State.FirstSeq)
	if err != nil {
		t.Fatal(err)
	}
	if reason := m.Header.Get(bus.HeaderError); !strings.Contains(reason, "decode") && !strings.Contains(reason, "header") {
		t.Errorf("dead letter carries reason %q", reason)
	}
	ingest, _ := js.Stream(context.Background(), bus.IngestStream)
	waitFor(t, "ingest stream drained", func() bool {
		info, err := ingest.Info(context.Background())
		return err == nil && info.State.Msgs == 0
	})
}

func TestConfigValidateReportsAll(t *testing.T) {
	cfg := Config{}
	err := cfg.Validate()
	if err == nil {
		t.Fatal("zero config accepted")
	}
	for _, want := range []string{"durable", "workers", "batch rows", "flush interval", "prefetch bytes", "ack wait", "max deliver", "retry", "shutdown"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in %v", want, err)
		}
	}
	if err := DefaultConfig().Validate(); err != nil {
		t.Errorf("defaults invalid: %v", err)
	}
}
