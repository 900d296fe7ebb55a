package bus

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/aftertrace/aftertrace/internal/localstack"
)

// EmbeddedCluster is n NATS servers in this process routed into one
// JetStream cluster ("aftertrace"), for a local cluster topology: streams
// at R3 survive one server's loss.
type EmbeddedCluster struct {
	Servers []*server.Server
}

// URLs is the comma-separated client URLs of every server.
func (c *EmbeddedCluster) URLs() string {
	urls := make([]string, len(c.Servers))
	for i, s := range c.Servers {
		urls[i] = s.ClientURL()
	}
	return strings.Join(urls, ",")
}

// Shutdown stops every server and waits.
func (c *EmbeddedCluster) Shutdown() {
	for _, s := range c.Servers {
		s.Shutdown()
	}
	for _, s := range c.Servers {
		s.WaitForShutdown()
	}
}

// StartEmbeddedCluster starts n servers: server i listens on cfg.Port+i
// (clients) and cfg.Port+2000+i (routes; 4222 → 6222, NATS's usual
// ports), or on free loopback ports when cfg.Port is not positive, and keeps its
// store in cfg.StoreDir/n<i+1>. It returns once JetStream has a meta
// leader.
func StartEmbeddedCluster(cfg EmbeddedConfig, n int) (_ *EmbeddedCluster, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if n < 3 {
		return nil, fmt.Errorf("embedded nats cluster: %d servers, want at least 3", n)
	}
	client, route := make([]int, n), make([]int, n)
	for i := range n {
		if cfg.Port > 0 {
			client[i], route[i] = cfg.Port+i, cfg.Port+2000+i
			continue
		}
		if client[i], err = localstack.FreePort(); err != nil {
			return nil, err
		}
		if route[i], err = localstack.FreePort(); err != nil {
			return nil, err
		}
	}
	routes := make([]string, n)
	for i := range n {
		routes[i] = fmt.Sprintf("nats://%s", net.JoinHostPort(cfg.Host, fmt.Sprint(route[i])))
	}
	c := &EmbeddedCluster{}
	defer func() {
		if err != nil {
			c.Shutdown()
		}
	}()
	for i := range n {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       cfg.Host,
			Port:       client[i],
			JetStream:  true,
			StoreDir:   filepath.Join(cfg.StoreDir, fmt.Sprintf("n%d", i+1)),
			MaxPayload: cfg.MaxPayload,
			NoSigs:     true,
			NoLog:      true,
			Cluster:    server.ClusterOpts{Name: "aftertrace", Host: cfg.Host, Port: route[i]},
			Routes:     server.RoutesFromStr(strings.Join(routes, ",")),

			SyncAlways:   cfg.SyncAlways,
			SyncInterval: cfg.SyncInterval,
		}
		srv, err := server.NewServer(opts)
		if err != nil {
			return nil, fmt.Errorf("embedded nats n%d: %w", i+1, err)
		}
		srv.Start()
		c.Servers = append(c.Servers, srv)
	}
	for _, s := range c.Servers {
		if !s.ReadyForConnections(10 * time.Second) {
			return nil, errors.New("embedded nats cluster: a server is not ready after 10s")
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, s := range c.Servers {
			if s.JetStreamIsLeader() && peersCurrent(s, n-1) {
				return c, nil
			}
		}
		if time.Now().After(deadline) {
			return nil, errors.New("embedded nats cluster: no JetStream leader seeing every peer after 30s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// peersCurrent reports whether the meta leader s sees want peers online
// and caught up: before that, an R3 stream is refused with "no suitable
// peers for placement".
func peersCurrent(s *server.Server, want int) bool {
	info, err := s.Jsz(nil)
	if err != nil || info.Meta == nil || len(info.Meta.Replicas) < want {
		return false
	}
	for _, p := range info.Meta.Replicas {
		if !p.Current || p.Offline {
			return false
		}
	}
	return true
}
