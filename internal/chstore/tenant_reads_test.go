package chstore_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// A tenant's reads take its slots: with one slot, a second query waits
// until the first one's rows are closed, and the priority and max_threads
// settings they carry are accepted by the oldest supported server.
func TestTenantReads(t *testing.T) {
	env := testenv.Get(t)
	cfg := chstore.DefaultConfig()
	cfg.Addr, cfg.Database, cfg.MaxOpenConns = env.ClickHouseAddr, env.ClickHouseDB, 4
	s, err := chstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	threads, err := s.ServerThreads(ctx)
	if err != nil || threads < 1 {
		t.Fatalf("ServerThreads = %d, %v", threads, err)
	}

	reads := chstore.NewTenantReads(1)
	tctx := chstore.WithReadThreads(chstore.WithTenantReads(ctx, reads), 1)
	rows, err := s.Conn().Query(tctx, "SELECT number FROM system.numbers LIMIT 3")
	if err != nil {
		t.Fatal(err)
	}
	// The slot is held while rows are open: a second read of the tenant
	// waits (here until its short deadline).
	short, cancelShort := context.WithTimeout(tctx, 300*time.Millisecond)
	var n uint64
	err = s.Conn().QueryRow(short, "SELECT toUInt64(1)").Scan(&n)
	cancelShort()
	if err == nil || !strings.Contains(err.Error(), "read slot") {
		t.Fatalf("second read while the slot is taken: %v, want a wait for the slot", err)
	}
	// Another tenant (or none) is not held up.
	if err := s.Conn().QueryRow(chstore.WithTenantReads(ctx, chstore.NewTenantReads(1)), "SELECT toUInt64(1)").Scan(&n); err != nil {
		t.Fatalf("other tenant's read: %v", err)
	}
	for rows.Next() {
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	// Released: the tenant reads again, and Select releases on its own.
	if err := s.Conn().QueryRow(tctx, "SELECT toUInt64(1)").Scan(&n); err != nil || n != 1 {
		t.Fatalf("read after release: %d, %v", n, err)
	}
	var out []struct {
		N uint64 `ch:"number"`
	}
	if err := s.Conn().Select(tctx, &out, "SELECT number FROM system.numbers LIMIT 2"); err != nil || len(out) != 2 {
		t.Fatalf("select: %v, %v", out, err)
	}
	if err := s.Conn().QueryRow(tctx, "SELECT toUInt64(2)").Scan(&n); err != nil || n != 2 {
		t.Fatalf("read after select: %d, %v", n, err)
	}
}
