package writer

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/events"
)

// memEventStore keeps the events it was given; the first failN inserts fail.
type memEventStore struct {
	mu    sync.Mutex
	evs   []events.Event
	failN int
	calls int
}

func (s *memEventStore) InsertEvents(_ context.Context, evs []events.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.calls <= s.failN {
		return errors.New("clickhouse down")
	}
	s.evs = append(s.evs, evs...)
	return nil
}

func (s *memEventStore) get() []events.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]events.Event(nil), s.evs...)
}

// correlateMsgs reads every message of the correlate stream so far.
func correlateMsgs(t *testing.T, js jetstream.JetStream, want int) []jetstream.Msg {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cons, err := js.CreateOrUpdateConsumer(ctx, bus.CorrelateStream, jetstream.ConsumerConfig{
		Durable: "test", AckPolicy: jetstream.AckExplicitPolicy,
	})
	if err != nil {
		t.Fatal(err)
	}
	var out []jetstream.Msg
	for len(out) < want {
		msg, err := cons.Next(jetstream.FetchMaxWait(5 * time.Second))
		if err != nil {
			t.Fatalf("after %d correlate messages: %v", len(out), err)
		}
		_ = msg.Ack()
		out = append(out, msg)
	}
	if extra, err := cons.Next(jetstream.FetchMaxWait(300 * time.Millisecond)); err == nil {
		t.Fatalf("unexpected extra correlate message %q", extra.Data())
	}
	return out
}

func testEvents(n int) []events.Event {
	out := make([]events.Event, n)
	for i := range out {
		out[i] = events.Event{
			TenantID: "forged", TimeUnixNano: uint64(1_700_000_000_000_000_000 + i), Source: events.SourceFalco,
			Type: events.TypeSecurityAlert, Reason: "rule", ContainerID: "abcdefabcdef", ExitCode: events.ExitCodeUnknown,
		}
		out[i].ID = events.NewID("t1", events.SourceFalco, []byte{byte(i)})
	}
	return out
}

// TestEventsStoredThenCorrelated: a SignalEvents message is inserted (its
// tenant from the header), retried while the store fails, then published
// once to the correlate stream with the tenant header and the Msg-Id of
// its sorted ids, and only then acknowledged.
func TestEventsStoredThenCorrelated(t *testing.T) {
	js := startJetStream(t)
	store := &memEventStore{failN: 2}
	w, err := New(testConfig(3), Deps{JS: js, Spans: &memStore{rows: map[string]int{}}, Events: store,
		Registry: prometheus.NewRegistry(), Streams: bus.DefaultStreamConfig()})
	if err != nil {
		t.Fatal(err)
	}
	runWriter(t, w)

	evs := testEvents(3)
	pub := bus.NewPublisher(js.Conn(), js, bus.DefaultPublisherConfig())
	if err := pub.PublishEvents(context.Background(), "t1", evs); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "events stored", func() bool { return len(store.get()) == 3 })
	for _, e := range store.get() {
		if e.TenantID != "t1" {
			t.Errorf("tenant %q, want the header's t1", e.TenantID)
		}
	}
	msgs := correlateMsgs(t, js, 1)
	got, err := bus.DecodeEvents(msgs[0].Data())
	if err != nil || len(got) != 3 {
		t.Fatalf("correlate payload: %d events, %v", len(got), err)
	}
	if h := msgs[0].Headers(); h.Get(bus.HeaderTenant) != "t1" || h.Get(nats.MsgIdHdr) != bus.CorrelateMessageID("t1", evs) {
		t.Errorf("correlate headers %v", h)
	}
	waitFor(t, "ingest message acknowledged", func() bool {
		info, err := js.Stream(context.Background(), bus.IngestStream)
		if err != nil {
			return false
		}
		st, err := info.Info(context.Background())
		return err == nil && st.State.Msgs == 0
	})
}

// TestLogsYieldEvents: Kubernetes receiver records in a logs message are
// stored as logs and as container events, and the events are published for
// correlation; ordinary logs yield none.
func TestLogsYieldEvents(t *testing.T) {
	js := startJetStream(t)
	logs := &memLogStore{ids: map[string][]string{}}
	store := &memEventStore{}
	w, err := New(testConfig(3), Deps{JS: js, Spans: &memStore{rows: map[string]int{}}, Logs: logs, Events: store,
		Registry: prometheus.NewRegistry(), Streams: bus.DefaultStreamConfig()})
	if err != nil {
		t.Fatal(err)
	}
	runWriter(t, w)

	pub := bus.NewPublisher(js.Conn(), js, bus.DefaultPublisherConfig())
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("k8s.object.kind", "Pod")
	rl.Resource().Attributes().PutStr("k8s.object.uid", "pod-uid-1")
	rl.Resource().Attributes().PutStr("k8s.object.name", "web-0")
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	ev := recs.AppendEmpty()
	ev.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_000))
	ev.SetSeverityText("Warning")
	ev.Body().SetStr("Back-off restarting failed container web in pod web-0")
	ev.Attributes().PutStr("k8s.event.reason", "BackOff")
	ev.Attributes().PutStr("k8s.event.uid", "ev-uid-1")
	plain := recs.AppendEmpty()
	plain.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_001))
	plain.Body().SetStr("ordinary line")
	if err := pub.PublishLogs(context.Background(), "t1", ld); err != nil {
		t.Fatal(err)
	}
	if err := pub.PublishLogs(context.Background(), "t1", plogOrdinary()); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "logs stored", func() bool { return len(logs.get("t1")) == 3 })
	waitFor(t, "event stored", func() bool { return len(store.get()) == 1 })
	if e := store.get()[0]; e.Type != events.TypeCrashLoop || e.PodUID != "pod-uid-1" || e.TenantID != "t1" {
		t.Errorf("event %+v", e)
	}
	correlateMsgs(t, js, 1)
}

func plogOrdinary() plog.Logs {
	ld := plog.NewLogs()
	r := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	r.SetTimestamp(pcommon.Timestamp(1_700_000_000_000_000_002))
	r.Body().SetStr("another ordinary line")
	return ld
}
