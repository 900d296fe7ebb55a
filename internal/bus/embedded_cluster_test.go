package bus

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Three embedded servers form one JetStream cluster: an R3 stream is
// created through one server and keeps taking messages after another
// server stops.
func TestEmbeddedCluster(t *testing.T) {
	cfg := DefaultEmbeddedConfig()
	cfg.Port, cfg.StoreDir = -1, t.TempDir()
	c, err := StartEmbeddedCluster(cfg, 3)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Shutdown()
	nc, err := nats.Connect(c.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3}); err != nil {
		t.Fatalf("create R3 stream: %v", err)
	}
	c.Servers[2].Shutdown()
	c.Servers[2].WaitForShutdown()
	for i := range 10 {
		// Each attempt has its own short deadline: a publish routed to the
		// stopped leader gets no answer, and waiting on the test's context
		// would spend the whole minute on one attempt.
		var err error
		for ctx.Err() == nil {
			actx, acancel := context.WithTimeout(ctx, 2*time.Second)
			_, err = js.Publish(actx, "r3.x", []byte{byte(i)})
			acancel()
			if err == nil {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if err != nil {
			t.Fatalf("publish %d with a server down: %v", i, err)
		}
	}
}
