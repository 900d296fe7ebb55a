package pgstore

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// APIKey describes a key without its secret.
type APIKey struct {
	ID          string // lower-case hex
	TenantID    string
	Prefix      string // the first characters of the key, to recognise it
	Description string
	CreatedAt   time.Time
	RevokedAt   *time.Time // nil while the key works
}

// CreatedKey is a new key with its secret, which is shown this once and
// never stored.
type CreatedKey struct {
	APIKey
	Key string // "atk_" + base64url of 32 random bytes; send as "Authorization: Bearer <Key>"
}

// KeyOwner is what a working key authenticates as.
type KeyOwner struct {
	KeyID    string
	TenantID string
}

const (
	// KeyPrefix starts every generated key, so leaked keys are easy to spot.
	KeyPrefix = "atk_"
	// keySecretBytes is the randomness of a key.
	keySecretBytes = 32
	// keyIDBytes is the size of a key's id (hex-encoded).
	keyIDBytes = 8
	// displayPrefixLen is how much of a key APIKey.Prefix keeps.
	displayPrefixLen = 12
	// maxDescription bounds a key's description, in bytes.
	maxDescription = 256
)

// HashKey is how keys are stored and looked up: SHA-256 of the whole key.
func HashKey(key string) [32]byte { return sha256.Sum256([]byte(key)) }

// GenerateKey returns a new random key.
func GenerateKey() (string, error) {
	b := make([]byte, keySecretBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate api key: %w", err)
	}
	return KeyPrefix + base64.RawURLEncoding.EncodeToString(b), nil
}

func displayPrefix(key string) string {
	if len(key) <= displayPrefixLen {
		return ""
	}
	return key[:displayPrefixLen]
}

func validDescription(d string) error {
	if !utf8.ValidString(d) || len(d) > maxDescription {
		return apperr.Invalid("description", "must be valid UTF-8 of at most %d bytes", maxDescription)
	}
	return nil
}

const keyColumns = `id, tenant_id, prefix, description, created_at, revoked_at`

func scanKey(row pgx.Row) (APIKey, error) {
	var k APIKey
	err := row.Scan(&k.ID, &k.TenantID, &k.Prefix, &k.Description, &k.CreatedAt, &k.RevokedAt)
	return k, err
}

// CreateKey creates a key for the tenant and returns it with its secret;
// an unknown tenant is apperr.KindNotFound.
func (s *Store) CreateKey(ctx context.Context, tenantID, description string) (CreatedKey, error) {
	if err := validDescription(description); err != nil {
		return CreatedKey{}, err
	}
	key, err := GenerateKey()
	if err != nil {
		return CreatedKey{}, err
	}
	k, err := s.insertKey(ctx, tenantID, key, description)
	if err != nil {
		return CreatedKey{}, err
	}
	return CreatedKey{APIKey: k, Key: key}, nil
}

func (s *Store) insertKey(ctx context.Context, tenantID, key, description string) (APIKey, error) {
	id, err := newID(keyIDBytes)
	if err != nil {
		return APIKey{}, err
	}
	h := HashKey(key)
	k, err := scanKey(s.pool.QueryRow(ctx,
		`INSERT INTO api_keys (id, tenant_id, key_hash, prefix, description) VALUES ($1, $2, $3, $4, $5)
		 RETURNING `+keyColumns,
		id, tenantID, h[:], displayPrefix(key), description))
	switch pgCode(err) {
	case "":
	case pgForeignKeyViolation:
		return APIKey{}, apperr.New(apperr.KindNotFound, "tenant %q not found", tenantID)
	case pgUniqueViolation:
		return APIKey{}, apperr.New(apperr.KindConflict, "this key already exists")
	}
	if err != nil {
		return APIKey{}, dbErr(err, "create api key")
	}
	return k, nil
}

// EnsureKey stores a key chosen elsewhere (the dev key) for the tenant
// unless it is stored already, and returns the stored key: its TenantID
// and RevokedAt say whether it authenticates as the caller wanted (a
// revoked key stays revoked).
func (s *Store) EnsureKey(ctx context.Context, tenantID, key, description string) (APIKey, error) {
	if err := validDescription(description); err != nil {
		return APIKey{}, err
	}
	k, err := s.keyByHash(ctx, HashKey(key))
	if err == nil || apperr.KindOf(err) != apperr.KindNotFound {
		return k, err
	}
	k, err = s.insertKey(ctx, tenantID, key, description)
	if apperr.KindOf(err) == apperr.KindConflict { // stored concurrently
		return s.keyByHash(ctx, HashKey(key))
	}
	return k, err
}

func (s *Store) keyByHash(ctx context.Context, h [32]byte) (APIKey, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE key_hash = $1`, h[:]))
	return k, oneRow(err, "get api key", "unknown api key")
}

func oneRowKey(row pgx.Row, id string) (APIKey, error) {
	k, err := scanKey(row)
	return k, oneRow(err, "get api key", "api key %q not found", id)
}

// GetKey returns the key with id; unknown is apperr.KindNotFound.
func (s *Store) GetKey(ctx context.Context, id string) (APIKey, error) {
	return oneRowKey(s.pool.QueryRow(ctx, `SELECT `+keyColumns+` FROM api_keys WHERE id = $1`, id), id)
}

// ListKeys returns the tenant's keys, revoked ones included, ordered by id,
// a page at a time; an unknown tenant is apperr.KindNotFound.
func (s *Store) ListKeys(ctx context.Context, tenantID string, p Page) ([]APIKey, error) {
	if _, err := s.GetTenant(ctx, tenantID); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx,
		`SELECT `+keyColumns+` FROM api_keys WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
		tenantID, p.After, p.limit())
	if err != nil {
		return nil, dbErr(err, "list api keys")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (APIKey, error) { return scanKey(r) })
	if err != nil {
		return nil, dbErr(err, "list api keys")
	}
	return out, nil
}

// RevokeKey revokes the key with id and returns it. Revoking is idempotent:
// a revoked key keeps its first RevokedAt. Unknown is apperr.KindNotFound.
// The change notifies RevocationChannel at commit.
func (s *Store) RevokeKey(ctx context.Context, id string) (APIKey, error) {
	return oneRowKey(s.pool.QueryRow(ctx,
		`UPDATE api_keys SET revoked_at = COALESCE(revoked_at, now()) WHERE id = $1 RETURNING `+keyColumns, id), id)
}

// LookupKey returns the owner of the working (not revoked) key whose hash
// is h; an unknown or revoked key is apperr.KindNotFound.
func (s *Store) LookupKey(ctx context.Context, h [32]byte) (KeyOwner, error) {
	var o KeyOwner
	err := s.pool.QueryRow(ctx,
		`SELECT id, tenant_id FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL`, h[:],
	).Scan(&o.KeyID, &o.TenantID)
	return o, oneRow(err, "look up api key", "unknown or revoked api key")
}
