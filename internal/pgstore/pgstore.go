// Package pgstore is Aftertrace's relational state in Postgres: tenants and
// their API keys.
//
// API keys are random 32-byte secrets shown once, at creation, as
// "atk_" + base64url; only their SHA-256 hash is stored. Every change that
// revokes or removes a key notifies channel RevocationChannel (a trigger,
// migration 000002), so every process can evict it from its
// authentication cache at once (see ListenRevocations).
//
// Errors carry apperr kinds: an unknown tenant or key is KindNotFound, a
// taken tenant name KindConflict, a bad name KindInvalid, and an
// unreachable database KindUnavailable.
package pgstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// Store reads and writes tenants and API keys. It is safe for concurrent use.
type Store struct {
	pool *pgxpool.Pool
}

// Open connects to the Postgres at dsn (lazily: an unreachable server fails
// the first query, not Open). Close releases the pool.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres dsn: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres pool: %w", err)
	}
	return &Store{pool: pool}, nil
}

// New returns a Store on an existing pool, which the caller keeps owning.
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

// Pool is the connection pool, for other Postgres-backed state of the same
// database.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Close releases the pool of a Store made by Open.
func (s *Store) Close() { s.pool.Close() }

// Page bounds a list: items with an id greater than After, at most Limit
// (0 or more than MaxPageSize: MaxPageSize).
type Page struct {
	After string
	Limit int
}

// MaxPageSize is the largest page of the list methods.
const MaxPageSize = 10_000

func (p Page) limit() int {
	if p.Limit <= 0 || p.Limit > MaxPageSize {
		return MaxPageSize
	}
	return p.Limit
}

// newID returns n random bytes as lower-case hex.
func newID(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("random id: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// Postgres error codes this package reacts to.
const (
	pgUniqueViolation     = "23505"
	pgForeignKeyViolation = "23503"
)

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// dbErr classifies a failed query: an error the server answered is
// internal (a bug or schema mismatch); no answer at all (connection refused,
// reset, timed out) is unavailable, worth retrying; context errors are kept.
func dbErr(err error, what string) error {
	err = fmt.Errorf("%s: %w", what, err)
	switch {
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	case pgCode(err) != "":
		return apperr.Wrap(apperr.KindInternal, err, "internal error")
	}
	return apperr.Unavailable(err, "tenant database unavailable, retry later", time.Second)
}
