package allinone

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/testenv"
)

// Under `aftertrace run` the API reads ClickHouse through a pool of its
// own (issue #15 case 7): with every connection of the writer's pool held
// by a long read, the API still answers.
func TestAPIHasItsOwnClickHousePool(t *testing.T) {
	env := testenv.Get(t)
	app := startApp(t, env, env.ClickHouseAddr, appOptions{cfg: func(c *Config) {
		c.ClickHouse.MaxOpenConns = 1
		c.ClickHouse.DialTimeout = 2 * time.Second // also how long a read waits for a pooled connection
		c.APIClickHouseMaxConns = 2
	}})
	writerCH, apiCH := app.ClickHouse(), app.APIClickHouse()
	if writerCH == nil || apiCH == nil || writerCH == apiCH {
		t.Fatalf("writer store %p, API store %p: want two stores", writerCH, apiCH)
	}

	// Hold the writer's only connection: a read that streams for as long
	// as its rows stay open.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	rows, err := writerCH.Conn().Query(ctx, "SELECT number FROM system.numbers LIMIT 100000000000")
	if err != nil {
		t.Fatalf("hold the writer's connection: %v", err)
	}
	defer func() {
		cancel()
		_ = rows.Close()
	}()
	pingCtx, pingCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer pingCancel()
	if err := writerCH.Ping(pingCtx); err == nil {
		t.Fatal("the writer's pool still had a connection; the test would prove nothing")
	}

	// The API answers meanwhile, from its own pool.
	start := time.Now()
	if code := app.getJSON(t, "/api/v1/services", nil); code != http.StatusOK {
		t.Fatalf("GET /api/v1/services with the writer's pool exhausted: %d, want 200", code)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the API answered after %v: it waited for a connection", took)
	}
}
