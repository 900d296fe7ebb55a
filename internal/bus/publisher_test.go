package bus

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/goleak"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startBus runs an embedded JetStream server with the streams created.
func startBus(t testing.TB, maxPayload int32) (*Publisher, jetstream.JetStream, func()) {
	return startBusWith(t, EmbeddedConfig{MaxPayload: maxPayload})
}

// startBusWith is startBus with more of the server's settings.
func startBusWith(t testing.TB, cfg EmbeddedConfig) (*Publisher, jetstream.JetStream, func()) {
	t.Helper()
	cfg.StoreDir, cfg.Host, cfg.Port = t.TempDir(), "127.0.0.1", -1
	srv, err := StartEmbedded(cfg)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := Connect(srv.ClientURL(), "test")
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := EnsureStreams(ctx, js, DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	stopServer := func() { srv.Shutdown(); srv.WaitForShutdown() }
	t.Cleanup(func() { nc.Close(); stopServer() })
	return NewPublisher(nc, js, PublisherConfig{MaxMessageBytes: 1 << 20, AckTimeout: 5 * time.Second}), js, stopServer
}

func streamMsgs(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	s, err := js.Stream(context.Background(), IngestStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

func TestPublishSplitsAndDedups(t *testing.T) {
	// A 64 KiB server payload forces a 1 MiB request into many messages.
	pub, js, _ := startBus(t, 64<<10)
	td := bigTraces(2, 2, 50, 2000)
	ctx := context.Background()
	if err := pub.PublishTraces(ctx, "t1", td); err != nil {
		t.Fatal(err)
	}
	first := streamMsgs(t, js)
	if first < 6 { // ~400 KiB of spans in 60 KiB messages
		t.Fatalf("%d messages, want the request split into many", first)
	}
	// A client retry of the same request is deduplicated by Nats-Msg-Id.
	if err := pub.PublishTraces(ctx, "t1", td); err != nil {
		t.Fatal(err)
	}
	if again := streamMsgs(t, js); again != first {
		t.Errorf("retry stored %d more messages", again-first)
	}
	// The same data of another tenant is not a duplicate.
	if err := pub.PublishTraces(ctx, "t2", td); err != nil {
		t.Fatal(err)
	}
	if other := streamMsgs(t, js); other != 2*first {
		t.Errorf("other tenant: %d messages, want %d", other, 2*first)
	}
}

func TestPublishEmptyIsNoop(t *testing.T) {
	pub, js, _ := startBus(t, 1<<20)
	if err := pub.PublishTraces(context.Background(), "t1", bigTraces(0, 0, 0, 0)); err != nil {
		t.Fatal(err)
	}
	if n := streamMsgs(t, js); n != 0 {
		t.Errorf("%d messages for an empty request", n)
	}
}

func TestPublishWithServerDownIsUnavailable(t *testing.T) {
	pub, _, stop := startBus(t, 1<<20)
	stop()
	start := time.Now()
	err := pub.PublishTraces(context.Background(), "t1", bigTraces(1, 1, 1, 10))
	if apperr.KindOf(err) != apperr.KindUnavailable {
		t.Fatalf("err = %v, want KindUnavailable", err)
	}
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("took %v to fail", d)
	}
}

// TestEmbeddedSyncAlways: --nats-sync starts a server that fsyncs every
// write; publishing works the same.
func TestEmbeddedSyncAlways(t *testing.T) {
	srv, err := StartEmbedded(EmbeddedConfig{StoreDir: t.TempDir(), Host: "127.0.0.1", Port: -1, MaxPayload: 1 << 20, SyncAlways: true})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Shutdown(); srv.WaitForShutdown() }()
	if !srv.JetStreamConfig().SyncAlways {
		t.Fatal("JetStream does not sync always")
	}
	if err := (EmbeddedConfig{StoreDir: "x", MaxPayload: 1, SyncInterval: -1}).Validate(); err == nil {
		t.Fatal("negative sync interval accepted")
	}
}
