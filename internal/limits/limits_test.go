package limits

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aftertrace/aftertrace/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var t0 = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func TestAllow(t *testing.T) {
	tests := []struct {
		name  string
		limit Limit
		steps []step
	}{
		{
			name:  "unlimited",
			limit: Limit{},
			steps: []step{{records: 1e9, bytes: 1e9, ok: true}},
		},
		{
			name:  "records burst then refill",
			limit: Limit{RecordsPerSecond: 10, RecordsBurst: 20},
			steps: []step{
				{records: 15, ok: true},
				{records: 10, reason: ReasonRecords, retry: 500 * time.Millisecond},
				{at: time.Second, records: 10, ok: true}, // 5 + 10 refilled
				{at: time.Second, records: 6, reason: ReasonRecords},
			},
		},
		{
			name:  "larger than the burst takes the whole burst",
			limit: Limit{RecordsPerSecond: 10, RecordsBurst: 20},
			steps: []step{
				{records: 1000, ok: true},
				{records: 1, reason: ReasonRecords},
				{at: 2 * time.Second, records: 1000, ok: true},
			},
		},
		{
			name:  "bytes refuse without taking records",
			limit: Limit{RecordsPerSecond: 10, RecordsBurst: 10, BytesPerSecond: 100, BytesBurst: 100},
			steps: []step{
				{records: 1, bytes: 100, ok: true},
				{records: 1, bytes: 50, reason: ReasonBytes},
				{records: 9, ok: true}, // the refused request took no records
			},
		},
		{
			name:  "burst defaults to one second of rate",
			limit: Limit{RecordsPerSecond: 5},
			steps: []step{{records: 5, ok: true}, {records: 1, reason: ReasonRecords}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lt := New(tc.limit, nil, 0, nil)
			for i, s := range tc.steps {
				d := lt.Allow("t", s.records, s.bytes, t0.Add(s.at))
				if d.OK != s.ok || (!s.ok && d.Reason != s.reason) {
					t.Fatalf("step %d: %+v, want ok=%v reason=%q", i, d, s.ok, s.reason)
				}
				if s.retry > 0 && d.RetryAfter != s.retry {
					t.Errorf("step %d: RetryAfter = %v, want %v", i, d.RetryAfter, s.retry)
				}
				if !d.OK && d.RetryAfter <= 0 {
					t.Errorf("step %d: refused without a retry hint", i)
				}
			}
		})
	}
}

type step struct {
	at             time.Duration
	records, bytes int
	ok             bool
	reason         string
	retry          time.Duration
}

// Tenants have separate buckets.
func TestTenantsIsolated(t *testing.T) {
	lt := New(Limit{RecordsPerSecond: 1, RecordsBurst: 1}, nil, 0, nil)
	if !lt.Allow("a", 1, 0, t0).OK || lt.Allow("a", 1, 0, t0).OK {
		t.Fatal("tenant a: want one admitted then refused")
	}
	if !lt.Allow("b", 1, 0, t0).OK {
		t.Error("tenant b refused because of a")
	}
}

type fakeSource struct {
	o   map[string]Override
	err error
}

func (f *fakeSource) Overrides(context.Context) (map[string]Override, error) { return f.o, f.err }

func ptr[T any](v T) *T { return &v }

func TestOverridesAndRefresh(t *testing.T) {
	src := &fakeSource{o: map[string]Override{"big": {RecordsPerSecond: ptr(1000.0), RecordsBurst: ptr(int64(1000))}}}
	lt := New(Limit{RecordsPerSecond: 1, RecordsBurst: 1, BytesPerSecond: 7}, src, time.Hour, nil)
	if err := lt.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := lt.Limit("big"); got != (Limit{RecordsPerSecond: 1000, RecordsBurst: 1000, BytesPerSecond: 7}) {
		t.Errorf("big = %+v (unset fields keep the default)", got)
	}
	if !lt.Allow("big", 500, 0, t0).OK {
		t.Error("override not applied")
	}
	// A failed refresh keeps the limits in force.
	src.err = errors.New("down")
	if err := lt.Refresh(context.Background()); err == nil {
		t.Error("Refresh hid the source error")
	}
	if lt.Limit("big").RecordsPerSecond != 1000 {
		t.Error("failed refresh dropped the overrides")
	}
	// Removing the override brings the default back, also for a tenant
	// whose bucket exists.
	src.o, src.err = map[string]Override{}, nil
	if err := lt.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if now := t0.Add(time.Second); !lt.Allow("big", 1, 0, now).OK || lt.Allow("big", 1, 0, now).OK {
		t.Error("default not restored after the override was removed")
	}
}

func TestRunStopsWithContext(t *testing.T) {
	for _, src := range []Source{nil, &fakeSource{}} {
		lt := New(Limit{}, src, time.Millisecond, nil)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { lt.Run(ctx); close(done) }()
		time.Sleep(5 * time.Millisecond)
		cancel()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("Run did not return")
		}
	}
}

func TestLimitValidate(t *testing.T) {
	if err := (Limit{RecordsPerSecond: -1, BytesBurst: -1}).Validate(); err == nil {
		t.Error("negative limits accepted")
	}
	if err := (Limit{RecordsPerSecond: 5}).Validate(); err != nil {
		t.Error(err)
	}
}

// The Postgres source reads the tenant_limits table of the migrations.
func TestPostgresSource(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pool, err := pgxpool.New(ctx, env.PostgresDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for _, q := range []string{
		`INSERT INTO tenants (id, name) VALUES ('a', 'a'), ('b', 'b')`,
		`INSERT INTO tenant_limits (tenant_id, records_per_second, bytes_burst) VALUES ('a', 50, 4096)`,
		`INSERT INTO tenant_limits (tenant_id) VALUES ('b')`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if _, err := pool.Exec(ctx, `INSERT INTO tenant_limits (tenant_id, records_per_second) VALUES ('a', -1)`); err == nil {
		t.Error("negative rate accepted by the table")
	}
	lt := New(Limit{RecordsPerSecond: 10, BytesPerSecond: 100}, Postgres{Pool: pool}, time.Hour, nil)
	if err := lt.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if got := lt.Limit("a"); got != (Limit{RecordsPerSecond: 50, BytesPerSecond: 100, BytesBurst: 4096}) {
		t.Errorf("a = %+v", got)
	}
	if got := lt.Limit("b"); got != (Limit{RecordsPerSecond: 10, BytesPerSecond: 100}) {
		t.Errorf("b (all NULL) = %+v", got)
	}

	// Time bounds: an explicit age, and a tenant whose longest retention
	// policy (90 days) is beyond the default retention.
	for _, q := range []string{
		`INSERT INTO tenants (id, name) VALUES ('c', 'c')`,
		`UPDATE tenant_limits SET max_record_age_seconds = 3600, max_future_seconds = 60 WHERE tenant_id = 'a'`,
		`INSERT INTO retention_policies (tenant_id, position, signal, days) VALUES ('c', 0, 'spans', 7), ('c', 1, 'logs', 90), ('a', 0, 'spans', 1)`,
	} {
		if _, err := pool.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	lt = New(Limit{MaxFuture: time.Hour, Retention: 30 * 24 * time.Hour}, Postgres{Pool: pool}, time.Hour, nil)
	if err := lt.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		tenant         string
		age, maxFuture time.Duration
	}{
		{"a", time.Hour, time.Minute},          // tenant_limits wins; its 1-day policy does not lower the retention
		{"b", 30 * 24 * time.Hour, time.Hour},  // defaults
		{"c", 90 * 24 * time.Hour, time.Hour},  // the longest policy
		{"zz", 30 * 24 * time.Hour, time.Hour}, // unknown tenant: defaults
	} {
		if l := lt.Limit(tc.tenant); l.OldestAge() != tc.age || l.MaxFuture != tc.maxFuture {
			t.Errorf("%s: age %v future %v, want %v %v", tc.tenant, l.OldestAge(), l.MaxFuture, tc.age, tc.maxFuture)
		}
	}
}
