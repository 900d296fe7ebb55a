package testenv

import (
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// NATS is an embedded NATS server with JetStream on, owned by one test.
// Restart keeps its port and store dir, so clients can reconnect to the same
// URL and file-backed streams survive.
type NATS struct {
	mu   sync.Mutex
	opts server.Options
	srv  *server.Server // nil while shut down
	url  string
}

// NewNATS starts a JetStream server on a free loopback port with its store
// in a temp dir; it is shut down in t.Cleanup.
func NewNATS(t testing.TB) *NATS {
	t.Helper()
	n := &NATS{opts: server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(), // registered first, so removed after Shutdown
		NoLog:     true,
		NoSigs:    true,
	}}
	if err := n.start(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(n.Shutdown)
	return n
}

// URL is the client URL, nats://127.0.0.1:<port>; stable across Restart.
func (n *NATS) URL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.url
}

// Shutdown stops the server and waits until it is down. Idempotent.
func (n *NATS) Shutdown() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.srv == nil {
		return
	}
	n.srv.Shutdown()
	n.srv.WaitForShutdown()
	n.srv = nil
}

// Restart shuts the server down if it runs and starts it again on the same
// port and store dir.
func (n *NATS) Restart(t testing.TB) {
	t.Helper()
	n.Shutdown()
	if err := n.start(); err != nil {
		t.Fatalf("testenv: restart nats: %v", err)
	}
}

func (n *NATS) start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	opts := n.opts // the server keeps and mutates its options
	srv, err := server.NewServer(&opts)
	if err != nil {
		return fmt.Errorf("nats server: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("nats server on %s:%d not ready after 10s", n.opts.Host, n.opts.Port)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return fmt.Errorf("nats server: jetstream did not start (store %s)", n.opts.StoreDir)
	}
	// Pin the port the first start picked, for restarts.
	n.opts.Port = srv.Addr().(*net.TCPAddr).Port
	n.srv = srv
	n.url = srv.ClientURL()
	return nil
}
