package lease_test

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aftertrace/aftertrace/internal/lease"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// One of several processes runs a loop at a time; when the leader's
// session dies (its process was killed: here its backend is terminated)
// or the leader stops, another takes over.
func TestOneLeaderAndFailover(t *testing.T) {
	env := testenv.Get(t)
	cfg := lease.Config{DSN: env.PostgresDSN, RetryEvery: 50 * time.Millisecond, CheckEvery: 50 * time.Millisecond}
	var running, maxRunning, starts atomic.Int32
	var who sync.Map // elector index -> running
	loop := func(i int) func(ctx context.Context) error {
		return func(ctx context.Context) error {
			n := running.Add(1)
			starts.Add(1)
			for m := maxRunning.Load(); n > m && !maxRunning.CompareAndSwap(m, n); m = maxRunning.Load() {
			}
			who.Store(i, true)
			<-ctx.Done()
			who.Delete(i)
			running.Add(-1)
			return nil
		}
	}
	ctxs := make([]context.CancelFunc, 3)
	var wg sync.WaitGroup
	for i := range ctxs {
		e, err := lease.New(cfg, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ctxs[i] = cancel
		wg.Go(func() {
			if err := e.Lead(ctx, "anomaly", loop(i)); err != nil {
				t.Error(err)
			}
		})
	}
	defer func() {
		for _, c := range ctxs {
			c()
		}
		wg.Wait()
	}()
	leader := func() int {
		l := -1
		who.Range(func(k, _ any) bool { l = k.(int); return false })
		return l
	}
	eventually(t, "a leader", func() bool { return leader() >= 0 })

	// The leader's session dies: another process takes over.
	admin, err := pgx.Connect(context.Background(), env.PostgresDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(context.Background())
	var killed int
	if err := admin.QueryRow(context.Background(),
		"SELECT count(pg_terminate_backend(pid)) FROM pg_locks WHERE locktype = 'advisory' AND granted AND ((classid::bigint << 32) | objid::bigint) = $1", lease.Key("anomaly")).Scan(&killed); err != nil || killed != 1 {
		t.Fatalf("terminated %d sessions holding the lease (%v), want 1", killed, err)
	}
	// Any of them may lead next (the old leader too: it lost only its
	// session), but the loop must have been stopped and started again.
	eventually(t, "a leader again after the session died", func() bool { return starts.Load() >= 2 && leader() >= 0 })
	second := leader()

	// The leader stops: another takes over.
	ctxs[second]()
	eventually(t, "a leader after the leader stopped", func() bool { l := leader(); return l >= 0 && l != second })

	if m := maxRunning.Load(); m != 1 {
		t.Errorf("%d loops ran at once, want 1", m)
	}
	if s := starts.Load(); s < 3 {
		t.Errorf("%d loop starts, want 3 (a leader, after the session died, after the leader stopped)", s)
	}
}

// An error of the loop ends Lead with it.
func TestLoopErrorEndsLead(t *testing.T) {
	env := testenv.Get(t)
	e, err := lease.New(lease.Config{DSN: env.PostgresDSN, RetryEvery: 50 * time.Millisecond, CheckEvery: time.Second}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := e.Lead(context.Background(), "x", func(context.Context) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Lead = %v, want %v", err, boom)
	}
	if err := (lease.Config{}).Validate(); err == nil {
		t.Fatal("empty config accepted")
	}
}
