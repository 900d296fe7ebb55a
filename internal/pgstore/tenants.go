package pgstore

import (
	"context"
	"errors"
	"regexp"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// Tenant owns data and API keys. ID is what the data is stored under
// (lower-case hex for created tenants); Name is unique and chosen by the
// operator.
type Tenant struct {
	ID        string
	Name      string
	CreatedAt time.Time
}

// tenantName: 1 to 63 characters, letters, digits, '.', '_' and '-',
// starting with a letter or digit.
var tenantName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// ValidTenantName reports a name CreateTenant would refuse as an
// apperr.Invalid of field "name".
func ValidTenantName(name string) error {
	if !tenantName.MatchString(name) {
		return apperr.Invalid("name", "must be 1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	return nil
}

// tenantIDBytes is the size of a created tenant's id (hex-encoded).
const tenantIDBytes = 8

// CreateTenant creates a tenant with a new random id. A taken name is
// apperr.KindConflict.
func (s *Store) CreateTenant(ctx context.Context, name string) (Tenant, error) {
	if err := ValidTenantName(name); err != nil {
		return Tenant{}, err
	}
	id, err := newID(tenantIDBytes)
	if err != nil {
		return Tenant{}, err
	}
	t := Tenant{ID: id, Name: name}
	err = s.pool.QueryRow(ctx,
		`INSERT INTO tenants (id, name) VALUES ($1, $2) RETURNING created_at`, id, name,
	).Scan(&t.CreatedAt)
	if pgCode(err) == pgUniqueViolation {
		return Tenant{}, apperr.New(apperr.KindConflict, "a tenant named %q already exists", name)
	}
	if err != nil {
		return Tenant{}, dbErr(err, "create tenant")
	}
	return t, nil
}

// EnsureTenant creates the tenant with the given id and name unless a
// tenant with that id exists (the dev tenant); it returns the stored row.
func (s *Store) EnsureTenant(ctx context.Context, id, name string) (Tenant, error) {
	if _, err := s.pool.Exec(ctx,
		`INSERT INTO tenants (id, name) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING`, id, name,
	); err != nil {
		if pgCode(err) == pgUniqueViolation {
			return Tenant{}, apperr.New(apperr.KindConflict, "a tenant named %q already exists with another id", name)
		}
		return Tenant{}, dbErr(err, "ensure tenant")
	}
	return s.GetTenant(ctx, id)
}

const tenantColumns = `id, name, created_at`

func scanTenant(row pgx.Row) (Tenant, error) {
	var t Tenant
	err := row.Scan(&t.ID, &t.Name, &t.CreatedAt)
	return t, err
}

// GetTenant returns the tenant with id; unknown is apperr.KindNotFound.
func (s *Store) GetTenant(ctx context.Context, id string) (Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE id = $1`, id))
	return t, oneRow(err, "get tenant", "tenant %q not found", id)
}

// GetTenantByName returns the tenant named name; unknown is
// apperr.KindNotFound.
func (s *Store) GetTenantByName(ctx context.Context, name string) (Tenant, error) {
	t, err := scanTenant(s.pool.QueryRow(ctx, `SELECT `+tenantColumns+` FROM tenants WHERE name = $1`, name))
	return t, oneRow(err, "get tenant", "tenant %q not found", name)
}

// ResolveTenant finds a tenant by name, or else by id (the CLI's --tenant).
func (s *Store) ResolveTenant(ctx context.Context, nameOrID string) (Tenant, error) {
	t, err := s.GetTenantByName(ctx, nameOrID)
	if apperr.KindOf(err) != apperr.KindNotFound {
		return t, err
	}
	return s.GetTenant(ctx, nameOrID)
}

// ListTenants returns tenants ordered by id, a page at a time.
func (s *Store) ListTenants(ctx context.Context, p Page) ([]Tenant, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+tenantColumns+` FROM tenants WHERE id > $1 ORDER BY id LIMIT $2`, p.After, p.limit())
	if err != nil {
		return nil, dbErr(err, "list tenants")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (Tenant, error) { return scanTenant(r) })
	if err != nil {
		return nil, dbErr(err, "list tenants")
	}
	return out, nil
}

// oneRow maps the error of a single-row read: no row is KindNotFound with
// the given message.
func oneRow(err error, what, notFound string, args ...any) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return apperr.New(apperr.KindNotFound, notFound, args...)
	}
	return dbErr(err, what)
}
