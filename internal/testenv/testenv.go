// Package testenv is the integration-test harness: real ClickHouse, Postgres
// and embedded NATS JetStream servers on loopback, with free ports and temp
// dirs. A test package opts in with
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
// and each test calls Get for fresh, migrated databases. Missing server
// binaries fail the test with an install hint: CI installs them, so a skip
// would only hide lost coverage.
package testenv

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// Env is what a test needs to reach its own slice of the servers.
type Env struct {
	ClickHouseAddr string // host:port, native protocol
	ClickHouseDB   string // fresh database, migrated, dropped at cleanup
	PostgresDSN    string // fresh database, migrated, dropped at cleanup
	NATSURL        string // fresh embedded JetStream server, shut down at cleanup
}

// setupTimeout bounds the work one Get does, server starts included.
const setupTimeout = 2 * time.Minute

// Main runs the package's tests, then stops the shared servers, removes their
// temp dirs and, if the tests passed, fails on goroutines left running
// (goleak; opts can ignore known ones). The servers start on first use, so
// packages whose tests never call Get pay nothing.
func Main(m *testing.M, opts ...goleak.Option) int {
	opts = append(opts, goleak.IgnoreCurrent(),
		// golang-migrate reads up to 10 migrations ahead, each in a goroutine
		// writing into a pipe; when a migration fails, the ones read ahead
		// stay blocked for good. newClickHouseDB retries such a failure, so
		// that library's read-ahead goroutines are not this package's leak.
		goleak.IgnoreAnyFunction("github.com/golang-migrate/migrate/v4.(*Migrate).readUp.func2"))
	if err := shared.open(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		return 1
	}
	code := m.Run()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := shared.close(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		code = 1
	}
	if code == 0 {
		if err := goleak.Find(opts...); err != nil {
			fmt.Fprintf(os.Stderr, "testenv: goroutines left running after the tests: %v\n", err)
			code = 1
		}
	}
	return code
}

// Get returns fresh ClickHouse and Postgres databases with all migrations
// applied, plus a fresh NATS server, all removed in t.Cleanup. The shared
// ClickHouse and Postgres start on the first call.
func Get(t testing.TB) *Env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()
	ch, pg, err := shared.servers(ctx)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	name := uniqueName()
	env := &Env{
		ClickHouseAddr: ch.Addr(),
		ClickHouseDB:   name,
		PostgresDSN:    pg.DSNFor(name),
	}
	if err := newClickHouseDB(ctx, t, env.ClickHouseAddr, name); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	if err := newPostgresDB(ctx, t, pg, name); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	env.NATSURL = NewNATS(t).URL()
	return env
}
