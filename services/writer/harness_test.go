package writer

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/aftertrace/aftertrace/internal/bus"
)

// startJetStream runs an embedded JetStream server for one test and
// returns a client on it; both stop at cleanup.
func startJetStream(t *testing.T) jetstream.JetStream {
	t.Helper()
	srv, err := bus.StartEmbedded(bus.EmbeddedConfig{StoreDir: t.TempDir(), Host: "127.0.0.1", Port: -1, MaxPayload: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := bus.Connect(srv.ClientURL(), "test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close) // registered last, so it closes before the server stops
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// testConfig is the writer config of these tests: no ops listener, short
// flushes and retries, maxDeliver deliveries before dead-lettering.
func testConfig(maxDeliver int) Config {
	cfg := DefaultConfig()
	cfg.OpsAddr = ""
	cfg.FlushInterval = 50 * time.Millisecond
	cfg.RetryMin = 10 * time.Millisecond
	cfg.MaxDeliver = maxDeliver
	return cfg
}

// runWriter runs w until the test ends and waits until it consumes.
func runWriter(t *testing.T, w *Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	waitFor(t, "writer ready", w.ready.Ready)
}
