package retention

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/retention"
	"github.com/aftertrace/aftertrace/internal/retention/retentiontest"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// stack is a retention worker on a real ClickHouse and Postgres (fresh
// databases), with a fixed clock.
type stack struct {
	t   *testing.T
	env *testenv.Env
	ch  *chstore.Store
	pg  *pgstore.Store
	reg *prometheus.Registry
	svc *Service
	now time.Time
}

// newStack opens the stores and a worker: 30 default days for every
// signal, no settle delay; edit may change the config and deps.
func newStack(t *testing.T, now time.Time, edit func(*Config, *Deps)) *stack {
	t.Helper()
	env := testenv.Get(t)
	ctx := context.Background()
	chCfg := chstore.DefaultConfig()
	chCfg.Addr, chCfg.Database = env.ClickHouseAddr, env.ClickHouseDB
	ch, err := chstore.Open(chCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ch.Close() })
	pg, err := pgstore.Open(ctx, env.PostgresDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pg.Close)
	st := &stack{t: t, env: env, ch: ch, pg: pg, reg: prometheus.NewRegistry(), now: now}
	st.svc = st.worker(edit)
	return st
}

// worker builds another worker on the stack's stores (its own registry
// when edit sets none).
func (st *stack) worker(edit func(*Config, *Deps)) *Service {
	st.t.Helper()
	cfg := DefaultConfig()
	cfg.SettleDelay = 0
	for _, sig := range retention.Signals {
		cfg.DefaultDays[sig] = 30
	}
	deps := Deps{Data: st.ch, State: st.pg, Incidents: st.pg, Registry: st.reg, Now: func() time.Time { return st.now },
		Logger: slog.New(slog.NewTextHandler(testLog{st.t}, nil))}
	if edit != nil {
		edit(&cfg, &deps)
	}
	svc, err := New(cfg, deps)
	if err != nil {
		st.t.Fatal(err)
	}
	return svc
}

// testLog writes the worker's log to the test's (shown on failure or -v).
type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// seed writes days of past-dated telemetry of cs for tenant, classified
// under the tenant's policies as they are now (as the writer would).
func (st *stack) seed(tenant string, asOf time.Time, days int, cs ...retentiontest.Container) {
	st.t.Helper()
	ctx := context.Background()
	cls := retention.NewClassifier(st.pg, nil)
	if err := cls.Refresh(ctx); err != nil {
		st.t.Fatal(err)
	}
	if err := retentiontest.Seed(ctx, st.ch, cls, tenant, asOf, days, cs); err != nil {
		st.t.Fatal(err)
	}
}

// rows counts the rows of table matching where.
func (st *stack) rows(table, where string, args ...any) uint64 {
	st.t.Helper()
	var n uint64
	if err := st.ch.Conn().QueryRow(context.Background(), "SELECT count() FROM "+table+" WHERE "+where, args...).Scan(&n); err != nil {
		st.t.Fatalf("count %s: %v", table, err)
	}
	return n
}

// traceSpans is how many spans of the tenant's trace read back (0 when
// the trace is gone).
func (st *stack) traceSpans(tenant string, id [16]byte) int {
	st.t.Helper()
	spans, err := st.ch.GetTrace(context.Background(), tenant, id)
	if err != nil {
		if apperr.KindOf(err) == apperr.KindNotFound {
			return 0
		}
		st.t.Fatalf("get trace: %v", err)
	}
	return len(spans)
}

// sql runs a statement on the stack's Postgres database directly (what a
// store would refuse: rows from before validation existed, a build that
// died).
func (st *stack) sql(query string, args ...any) {
	st.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, st.env.PostgresDSN)
	if err != nil {
		st.t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, query, args...); err != nil {
		st.t.Fatalf("%s: %v", query, err)
	}
}

// counter sums the samples of a counter whose labels include want.
func (st *stack) counter(name string, want map[string]string) float64 {
	st.t.Helper()
	mfs, err := st.reg.Gather()
	if err != nil {
		st.t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsInclude(m, want) {
				total += m.GetCounter().GetValue()
			}
		}
	}
	return total
}

func labelsInclude(m *dto.Metric, want map[string]string) bool {
	have := map[string]string{}
	for _, l := range m.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}

// eventually polls cond until it holds or within passes; it returns the
// last answer's description on failure.
func eventually(t *testing.T, within time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, desc := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, within, desc)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// day is the date string of day d before asOf (retentiontest.At's day).
func day(asOf time.Time, d int) string { return retentiontest.At(asOf, d).Format(time.DateOnly) }

func describe(v any) string { return fmt.Sprintf("%+v", v) }
