package allinone

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aftertrace/aftertrace/internal/otlpconv"
	"github.com/aftertrace/aftertrace/internal/testenv"
	"github.com/aftertrace/aftertrace/services/writer"
)

const spansPerTrace = 10

// TestClickHouseOutage: with ClickHouse stopped for 20 s, requests still
// succeed (JetStream holds them); after restart every acknowledged span is
// readable, none twice.
func TestClickHouseOutage(t *testing.T) {
	env := testenv.Get(t)
	ch := testenv.NewClickHouse(t)
	app := startApp(t, env, ch.Addr(), appOptions{})

	var acked []string
	send := func() {
		id := newTraceID()
		code, _, body := app.sendTrace(t, makeTrace(id, spansPerTrace, "outage"))
		if code != http.StatusOK {
			t.Fatalf("send during outage: %d %s", code, body)
		}
		acked = append(acked, hexID(id))
	}
	send()

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := ch.Stop(ctx); err != nil {
		t.Fatalf("stop clickhouse: %v", err)
	}
	outageEnd := time.Now().Add(20 * time.Second)
	for time.Now().Before(outageEnd) {
		send()
		time.Sleep(250 * time.Millisecond)
	}
	if err := ch.Start(ctx); err != nil {
		t.Fatalf("restart clickhouse: %v", err)
	}
	for _, id := range acked {
		app.waitTrace(t, id, spansPerTrace, time.Minute)
	}
	t.Logf("%d traces (%d spans) acknowledged during a 20 s ClickHouse outage, all readable once", len(acked), len(acked)*spansPerTrace)
}

// killedStore inserts its first batch, then hangs like a process killed
// after the insert and before the ack.
type killedStore struct {
	inner   writer.SpanStore
	once    sync.Once
	killed  chan struct{}
	release chan struct{}
	rows    int // rows of the batch that was stored but never acknowledged
}

func (k *killedStore) InsertSpans(ctx context.Context, b *otlpconv.SpanBatch) error {
	first := false
	k.once.Do(func() { first = true })
	if !first {
		return k.inner.InsertSpans(ctx, b)
	}
	if err := k.inner.InsertSpans(ctx, b); err != nil {
		return err
	}
	k.rows = b.Len()
	close(k.killed)
	<-k.release
	return errors.New("writer was killed")
}

// TestWriterKilledMidBatch: the writer dies after inserting a batch but
// before acknowledging it; a restarted writer gets the messages again and
// nothing is lost nor visible twice.
func TestWriterKilledMidBatch(t *testing.T) {
	env := testenv.Get(t)
	ks := &killedStore{killed: make(chan struct{}), release: make(chan struct{})}
	first := startApp(t, env, env.ClickHouseAddr, appOptions{
		cfg: func(c *Config) {
			c.Writer.Workers = 1
			c.Writer.AckWait = 2 * time.Second
		},
		deps: func(d *Deps) {
			d.WrapSpanStore = func(s writer.SpanStore) writer.SpanStore { ks.inner = s; return ks }
		},
	})
	t.Cleanup(func() { close(ks.release) }) // runs before first is stopped

	var ids []string
	for i := 0; i < 5; i++ {
		id := newTraceID()
		if code, _, body := first.sendTrace(t, makeTrace(id, spansPerTrace, "killed")); code != http.StatusOK {
			t.Fatalf("send: %d %s", code, body)
		}
		ids = append(ids, hexID(id))
	}
	select {
	case <-ks.killed:
	case <-time.After(30 * time.Second):
		t.Fatal("first writer never inserted")
	}
	// More data arrives while the writer is dead.
	for i := 0; i < 5; i++ {
		id := newTraceID()
		if code, _, body := first.sendTrace(t, makeTrace(id, spansPerTrace, "killed")); code != http.StatusOK {
			t.Fatalf("send: %d %s", code, body)
		}
		ids = append(ids, hexID(id))
	}

	reg := prometheus.NewRegistry()
	second := startApp(t, env, env.ClickHouseAddr, appOptions{
		cfg: func(c *Config) {
			c.Targets = []string{TargetWriter, TargetAPI}
			c.Writer.AckWait = 2 * time.Second
		},
		deps: func(d *Deps) { d.Registry = reg },
	})
	// The killed writer's messages come back after AckWait; wait until the
	// new writer has stored them again so duplicates really exist.
	deadline := time.Now().Add(30 * time.Second)
	for counterValue(t, reg, "aftertrace_writer_redelivered_total") < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the killed writer's messages were never redelivered")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for counterValue(t, reg, "aftertrace_writer_messages_acked_total") < float64(len(ids)) {
		if time.Now().After(deadline) {
			t.Fatal("the new writer did not store every message")
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, id := range ids {
		second.waitTrace(t, id, spansPerTrace, time.Minute)
	}
	var rows uint64
	store, err := openStore(env)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	if err := store.Conn().QueryRow(context.Background(),
		"SELECT count() FROM spans WHERE service_name = 'killed'").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d spans sent, %d rows stored (re-delivered copies are hidden by read-time dedup)", len(ids)*spansPerTrace, rows)
	if rows < uint64(len(ids)*spansPerTrace+ks.rows) {
		t.Logf("a merge already collapsed some re-delivered copies")
	}
	if rows < uint64(len(ids)*spansPerTrace) {
		t.Errorf("stored %d rows, want at least %d", rows, len(ids)*spansPerTrace)
	}
}

// TestNATSDown: with NATS stopped the gateway answers 503 / UNAVAILABLE,
// never success; it recovers when NATS is back.
func TestNATSDown(t *testing.T) {
	env := testenv.Get(t)
	n := testenv.NewNATS(t)
	app := startApp(t, env, env.ClickHouseAddr, appOptions{cfg: func(c *Config) { c.NATSURL = n.URL() }})
	if code, _, body := app.sendTrace(t, makeTrace(newTraceID(), 3, "nats")); code != http.StatusOK {
		t.Fatalf("send before outage: %d %s", code, body)
	}
	n.Shutdown()

	conn, err := grpc.NewClient(app.Gateway.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := ptraceotlp.NewGRPCClient(conn)
	for i := 0; i < 5; i++ {
		code, hdr, body := app.sendTrace(t, makeTrace(newTraceID(), 3, "nats"))
		if code != http.StatusServiceUnavailable {
			t.Fatalf("HTTP with NATS down: %d %s, want 503", code, body)
		}
		if hdr.Get("Retry-After") == "" {
			t.Error("503 without Retry-After")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		ctx = metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+testKey)
		_, err := client.Export(ctx, ptraceotlp.NewExportRequestFromTraces(makeTrace(newTraceID(), 3, "nats")))
		cancel()
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("gRPC with NATS down: %v, want Unavailable", err)
		}
	}

	n.Restart(t)
	id := newTraceID()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _, _ := app.sendTrace(t, makeTrace(id, 3, "nats"))
		if code == http.StatusOK {
			break
		}
		if code != http.StatusServiceUnavailable || time.Now().After(deadline) {
			t.Fatalf("after NATS restart: %d", code)
		}
		time.Sleep(100 * time.Millisecond)
	}
	app.waitTrace(t, hexID(id), 3, 30*time.Second)
}
