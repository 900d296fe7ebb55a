// Package lease elects one process of a deployment to run a background
// loop (retention, capture, evidence bundles, anomaly detection): whoever
// holds a Postgres session-level advisory lock named after the loop runs
// it; the others wait and take over when the holder's session ends (the
// process died, stopped, or lost its connection).
//
// Postgres is already shared by every process of a deployment, and it
// releases a dead session's locks itself, so no clock or TTL is involved.
// A leader whose session ends without the process dying (its connection
// broke, its backend was terminated) notices within 2 × CheckEvery (a
// ping every CheckEvery, each bounded by CheckEvery) and stops its loop; a
// new leader waits those 2 × CheckEvery after taking the lock before it
// starts, so the two do not overlap as long as a loop stops promptly when
// its context ends. The loops are idempotent all the same.
package lease

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
)

// Config says how leases are taken.
type Config struct {
	// DSN is the Postgres every process of the deployment shares.
	DSN string
	// RetryEvery is how often a follower tries to take a lease.
	RetryEvery time.Duration
	// CheckEvery is how often a leader checks that its session lives.
	CheckEvery time.Duration
}

// DefaultConfig takes over within about 5 s of a leader's death.
func DefaultConfig(dsn string) Config {
	return Config{DSN: dsn, RetryEvery: 5 * time.Second, CheckEvery: 5 * time.Second}
}

// Validate reports every problem at once.
func (c Config) Validate() error {
	var errs []error
	if c.DSN == "" {
		errs = append(errs, errors.New("lease: a Postgres DSN is required"))
	}
	if c.RetryEvery <= 0 {
		errs = append(errs, fmt.Errorf("lease: RetryEvery must be positive, got %v", c.RetryEvery))
	}
	if c.CheckEvery <= 0 {
		errs = append(errs, fmt.Errorf("lease: CheckEvery must be positive, got %v", c.CheckEvery))
	}
	return errors.Join(errs...)
}

// Elector runs loops under leases.
type Elector struct {
	cfg     Config
	log     *slog.Logger
	leading *prometheus.GaugeVec
}

// New returns an elector; reg (optional) gets aftertrace_lease_leading{name}.
func New(cfg Config, log *slog.Logger, reg prometheus.Registerer) (*Elector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &Elector{cfg: cfg, log: log, leading: prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "aftertrace_lease_leading",
		Help: "1 while this process holds the lease of a background loop (it runs the loop), else 0.",
	}, []string{"name"})}
	if reg != nil {
		if err := reg.Register(e.leading); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return nil, fmt.Errorf("lease metrics: %w", err)
			}
			e.leading = are.ExistingCollector.(*prometheus.GaugeVec)
		}
	}
	return e, nil
}

// Key is the Postgres advisory lock key of lease name (also the
// migration lock's, internal/schema).
func Key(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("aftertrace-lease/" + name))
	return int64(h.Sum64())
}

// Lead runs fn whenever this process holds lease name, until ctx ends: fn
// gets a context that ends when ctx does or when the lease is lost, and is
// started again after the lease is taken again. An error of fn ends Lead
// with it; fn returning nil before its context ends gives the lease up and
// ends Lead.
func (e *Elector) Lead(ctx context.Context, name string, fn func(ctx context.Context) error) error {
	key := Key(name)
	gauge := e.leading.WithLabelValues(name)
	defer gauge.Set(0)
	for {
		conn, err := e.take(ctx, key)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			e.log.Debug("lease not taken", "name", name, "err", err)
			if !sleep(ctx, e.cfg.RetryEvery) {
				return nil
			}
			continue
		}
		if conn == nil { // another process leads
			if !sleep(ctx, e.cfg.RetryEvery) {
				return nil
			}
			continue
		}
		// The previous holder may not know yet that its session ended.
		if !sleep(ctx, 2*e.cfg.CheckEvery) {
			_ = conn.Close(context.WithoutCancel(ctx))
			return nil
		}
		e.log.Info("lease taken: running", "name", name)
		gauge.Set(1)
		lost, err := e.hold(ctx, conn, key, fn)
		gauge.Set(0)
		if !lost {
			return err
		}
		e.log.Warn("lease lost: stopped; another process takes over", "name", name)
	}
}

// take connects and tries the lock once: the connection holding it, nil if
// another session holds it.
func (e *Elector) take(ctx context.Context, key int64) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(cctx, e.cfg.DSN)
	if err != nil {
		return nil, err
	}
	var ok bool
	if err := conn.QueryRow(cctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil || !ok {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	return conn, nil
}

// hold runs fn while conn's session lives. lost: the session died (fn was
// stopped); otherwise fn ended or ctx did, and the lock is released.
func (e *Elector) hold(ctx context.Context, conn *pgx.Conn, key int64, fn func(context.Context) error) (lost bool, err error) {
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- fn(fctx) }()
	t := time.NewTicker(e.cfg.CheckEvery)
	defer t.Stop()
	release := func() {
		rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer rcancel()
		_, _ = conn.Exec(rctx, "SELECT pg_advisory_unlock($1)", key)
		_ = conn.Close(rctx)
	}
	for {
		select {
		case err := <-done:
			release()
			return false, err
		case <-ctx.Done():
			cancel()
			err := <-done
			release()
			return false, err
		case <-t.C:
			pctx, pcancel := context.WithTimeout(ctx, e.cfg.CheckEvery)
			perr := conn.Ping(pctx)
			pcancel()
			if perr != nil && ctx.Err() == nil {
				cancel()
				<-done
				_ = conn.Close(context.WithoutCancel(ctx))
				return true, nil
			}
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
