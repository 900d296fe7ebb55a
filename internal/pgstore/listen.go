package pgstore

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// RevocationChannel is the Postgres NOTIFY channel on which every update or
// delete that stops a key from authenticating as before is announced, with
// the key id as payload (a trigger, so manual SQL counts too).
const RevocationChannel = "aftertrace_api_keys"

// Reconnect delays of a RevocationListener whose connection broke.
const (
	listenRetryMin = 100 * time.Millisecond
	listenRetryMax = 5 * time.Second
)

// RevocationListener holds a dedicated connection LISTENing on
// RevocationChannel. Make it with ListenRevocations, then call Run once.
type RevocationListener struct {
	cfg  *pgx.ConnConfig
	log  *slog.Logger
	conn *pgx.Conn
}

// ListenRevocations opens a connection and LISTENs before returning, so a
// key revoked after it returns is announced to Run.
func (s *Store) ListenRevocations(ctx context.Context, log *slog.Logger) (*RevocationListener, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l := &RevocationListener{cfg: s.pool.Config().ConnConfig.Copy(), log: log}
	conn, err := l.listen(ctx)
	if err != nil {
		return nil, err
	}
	l.conn = conn
	return l, nil
}

func (l *RevocationListener) listen(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return nil, dbErr(err, "listen for key revocations")
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{RevocationChannel}.Sanitize()); err != nil {
		_ = conn.Close(context.WithoutCancel(ctx))
		return nil, dbErr(err, "listen for key revocations")
	}
	return conn, nil
}

// Run calls evict with the id of every revoked or changed key until ctx
// ends, then closes the connection and returns nil. When the connection
// breaks, notifications may be lost: Run calls evict("") ("anything may
// have changed"), reconnects with backoff, and calls evict("") again once
// listening, for what was cached in between.
func (l *RevocationListener) Run(ctx context.Context, evict func(keyID string)) error {
	defer func() {
		if l.conn != nil {
			_ = l.conn.Close(context.WithoutCancel(ctx))
			l.conn = nil
		}
	}()
	delay := listenRetryMin
	for {
		if l.conn == nil {
			conn, err := l.listen(ctx)
			if err != nil {
				if ctx.Err() != nil {
					return nil
				}
				l.log.Warn("key revocation listener: reconnect failed", "err", err, "retry_in", delay)
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(delay):
				}
				delay = min(2*delay, listenRetryMax)
				continue
			}
			l.conn, delay = conn, listenRetryMin
			l.log.Info("key revocation listener: listening again")
			evict("")
		}
		n, err := l.conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			l.log.Warn("key revocation listener: connection lost", "err", err)
			_ = l.conn.Close(context.WithoutCancel(ctx))
			l.conn = nil
			evict("")
			continue
		}
		evict(n.Payload)
	}
}

// Close releases the connection of a listener whose Run was never called
// (after Run returned it does nothing).
func (l *RevocationListener) Close(ctx context.Context) error {
	if l.conn == nil {
		return nil
	}
	err := l.conn.Close(ctx)
	l.conn = nil
	if err != nil {
		return fmt.Errorf("close revocation listener: %w", err)
	}
	return nil
}
