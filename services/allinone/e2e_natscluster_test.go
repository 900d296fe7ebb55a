package allinone

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// A three-node JetStream cluster (nats-server processes) with R3 streams:
// under steady ingest the node leading the ingest stream is SIGKILLed and
// later restarted. Every acknowledged trace is stored (0 lost), and while
// a new leader is elected the gateway answers 503 with Retry-After, never
// anything else.
func TestNATSClusterNodeKilled(t *testing.T) {
	env := testenv.Get(t)
	cluster := testenv.NewNATSCluster(t, 3)
	app := startApp(t, env, env.ClickHouseAddr, appOptions{cfg: func(c *Config) {
		c.NATSURL = cluster.URLs()
		c.Streams.Replicas = 3
	}})

	leaderNode := func() int {
		nc, err := nats.Connect(cluster.URLs())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s, err := js.Stream(ctx, bus.IngestStream)
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil || info.Cluster == nil || info.Config.Replicas != 3 {
			t.Fatalf("ingest stream: %+v %v, want 3 replicas", info, err)
		}
		i, err := strconv.Atoi(strings.TrimPrefix(info.Cluster.Leader, "n"))
		if err != nil {
			t.Fatalf("leader %q", info.Cluster.Leader)
		}
		return i
	}
	killed := leaderNode()

	var acked []string
	statuses := map[int]int{}
	start := time.Now()
	const (
		killAt    = 2 * time.Second
		restartAt = 8 * time.Second
		stopAt    = 14 * time.Second
	)
	phase := 0
	for n := 0; time.Since(start) < stopAt && n < 5000; n++ {
		switch {
		case phase == 0 && time.Since(start) > killAt:
			cluster.Kill(killed)
			phase++
		case phase == 1 && time.Since(start) > restartAt:
			cluster.Restart(t, killed)
			phase++
		}
		id := newTraceID()
		code, hdr, body := app.sendTrace(t, makeTrace(id, 3, "natscluster"))
		statuses[code]++
		switch code {
		case http.StatusOK:
			acked = append(acked, hexID(id))
		case http.StatusServiceUnavailable:
			if hdr.Get("Retry-After") == "" {
				t.Errorf("503 without Retry-After: %s", body)
			}
		default:
			t.Fatalf("answer %d during a node kill: %s", code, body)
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("answers %v; %d acknowledged traces", statuses, len(acked))
	if len(acked) < 100 {
		t.Fatalf("only %d traces acknowledged", len(acked))
	}
	for _, id := range acked {
		app.waitTrace(t, id, 3, time.Minute)
	}
}
