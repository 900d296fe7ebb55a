package writer

import (
	"context"
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// memLogStore keeps the record ids it was given, per tenant.
type memLogStore struct {
	mu  sync.Mutex
	ids map[string][]string
}

func (s *memLogStore) InsertLogs(_ context.Context, b *otlpconv.LogBatch) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, t := range b.TenantID {
		s.ids[t] = append(s.ids[t], b.RecordID[i])
	}
	return nil
}

func (s *memLogStore) get(tenant string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ids[tenant]...)
}

func logsPayload(t *testing.T, records int) []byte {
	ld := plog.NewLogs()
	recs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := range records {
		r := recs.AppendEmpty()
		r.SetTimestamp(1_700_000_000_000_000_000)
		r.Body().SetStr("line")
		r.Attributes().PutInt("i", int64(i))
	}
	b, err := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLogsConsumed: with Deps.Logs set, logs messages are stored (the same
// message twice yields the same record ids) and a bad one is dead-lettered
// under the logs signal.
func TestLogsConsumed(t *testing.T) {
	js := startJetStream(t)
	logs := &memLogStore{ids: map[string][]string{}}
	cfg := testConfig(2)
	w, err := New(cfg, Deps{JS: js, Spans: &memStore{rows: map[string]int{}}, Logs: logs,
		Registry: prometheus.NewRegistry(), Streams: bus.DefaultStreamConfig()})
	if err != nil {
		t.Fatal(err)
	}
	runWriter(t, w)

	send := func(data []byte) {
		msg := nats.NewMsg(bus.IngestSubject(bus.SignalLogs))
		msg.Data = data
		msg.Header.Set(bus.HeaderTenant, "t1")
		if _, err := js.PublishMsg(context.Background(), msg); err != nil {
			t.Fatal(err)
		}
	}
	payload := logsPayload(t, 3)
	send(payload)
	send([]byte("\xff\xff not protobuf"))
	send(payload) // a second delivery of the same data

	waitFor(t, "six rows", func() bool { return len(logs.get("t1")) == 6 })
	ids := logs.get("t1")
	for i := range 3 {
		if ids[i] != ids[i+3] {
			t.Errorf("record %d: ids differ between deliveries", i)
		}
	}
	waitFor(t, "dead letter", func() bool {
		return testutil.ToFloat64(w.m.dropped.WithLabelValues("logs", "decode")) == 1
	})
}
