package pgstore

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/biztx"
)

// Business transaction definitions (migration 000004). Names are unique
// per tenant (a taken name is apperr.KindConflict); definitions of another
// tenant are not found.

const bizTxIDBytes = 8

const bizTxColumns = `id, tenant_id, name, rules, keys, created_at, updated_at`

func scanBizTx(row pgx.Row) (biztx.Definition, error) {
	var (
		d          biztx.Definition
		rules, key []byte
	)
	if err := row.Scan(&d.ID, &d.TenantID, &d.Name, &rules, &key, &d.CreatedAt, &d.UpdatedAt); err != nil {
		return d, err
	}
	if err := json.Unmarshal(rules, &d.Rules); err != nil {
		return d, fmt.Errorf("business transaction %s: rules: %w", d.ID, err)
	}
	if err := json.Unmarshal(key, &d.Keys); err != nil {
		return d, fmt.Errorf("business transaction %s: keys: %w", d.ID, err)
	}
	return d, nil
}

func bizTxJSON(d *biztx.Definition) (rules, keys []byte, err error) {
	if rules, err = json.Marshal(d.Rules); err != nil {
		return nil, nil, err
	}
	if keys, err = json.Marshal(d.Keys); err != nil {
		return nil, nil, err
	}
	return rules, keys, nil
}

// CreateBusinessTransaction validates and stores d for tenantID under a
// new id.
func (s *Store) CreateBusinessTransaction(ctx context.Context, tenantID string, d biztx.Definition) (biztx.Definition, error) {
	if err := d.Validate(); err != nil {
		return d, err
	}
	id, err := newID(bizTxIDBytes)
	if err != nil {
		return d, err
	}
	rules, keys, err := bizTxJSON(&d)
	if err != nil {
		return d, err
	}
	out, err := scanBizTx(s.pool.QueryRow(ctx,
		`INSERT INTO business_transactions (id, tenant_id, name, rules, keys) VALUES ($1, $2, $3, $4, $5)
		 RETURNING `+bizTxColumns, id, tenantID, d.Name, rules, keys))
	switch {
	case pgCode(err) == pgUniqueViolation:
		return d, apperr.New(apperr.KindConflict, "a business transaction named %q already exists", d.Name)
	case pgCode(err) == pgForeignKeyViolation:
		return d, apperr.New(apperr.KindNotFound, "tenant %q not found", tenantID)
	case err != nil:
		return d, dbErr(err, "create business transaction")
	}
	return out, nil
}

// GetBusinessTransaction returns one definition of the tenant.
func (s *Store) GetBusinessTransaction(ctx context.Context, tenantID, id string) (biztx.Definition, error) {
	d, err := scanBizTx(s.pool.QueryRow(ctx,
		`SELECT `+bizTxColumns+` FROM business_transactions WHERE tenant_id = $1 AND id = $2`, tenantID, id))
	return d, oneRow(err, "get business transaction", "business transaction %q not found", id)
}

// ListBusinessTransactions returns the tenant's definitions ordered by id,
// a page at a time.
func (s *Store) ListBusinessTransactions(ctx context.Context, tenantID string, p Page) ([]biztx.Definition, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+bizTxColumns+` FROM business_transactions WHERE tenant_id = $1 AND id > $2 ORDER BY id LIMIT $3`,
		tenantID, p.After, p.limit())
	if err != nil {
		return nil, dbErr(err, "list business transactions")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (biztx.Definition, error) { return scanBizTx(r) })
	if err != nil {
		return nil, dbErr(err, "list business transactions")
	}
	return out, nil
}

// BusinessTransactions returns every definition of the tenant, oldest
// first (the classification order: the first match wins).
func (s *Store) BusinessTransactions(ctx context.Context, tenantID string) ([]biztx.Definition, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT `+bizTxColumns+` FROM business_transactions WHERE tenant_id = $1 ORDER BY created_at, id LIMIT $2`,
		tenantID, MaxPageSize)
	if err != nil {
		return nil, dbErr(err, "business transactions")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (biztx.Definition, error) { return scanBizTx(r) })
	if err != nil {
		return nil, dbErr(err, "business transactions")
	}
	return out, nil
}

// UpdateBusinessTransaction replaces the name, rules and keys of one
// definition.
func (s *Store) UpdateBusinessTransaction(ctx context.Context, tenantID string, d biztx.Definition) (biztx.Definition, error) {
	if err := d.Validate(); err != nil {
		return d, err
	}
	rules, keys, err := bizTxJSON(&d)
	if err != nil {
		return d, err
	}
	out, err := scanBizTx(s.pool.QueryRow(ctx,
		`UPDATE business_transactions SET name = $3, rules = $4, keys = $5, updated_at = now()
		 WHERE tenant_id = $1 AND id = $2 RETURNING `+bizTxColumns, tenantID, d.ID, d.Name, rules, keys))
	if pgCode(err) == pgUniqueViolation {
		return d, apperr.New(apperr.KindConflict, "a business transaction named %q already exists", d.Name)
	}
	return out, oneRow(err, "update business transaction", "business transaction %q not found", d.ID)
}

// DeleteBusinessTransaction removes one definition.
func (s *Store) DeleteBusinessTransaction(ctx context.Context, tenantID, id string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM business_transactions WHERE tenant_id = $1 AND id = $2`, tenantID, id)
	if err != nil {
		return dbErr(err, "delete business transaction")
	}
	if tag.RowsAffected() == 0 {
		return apperr.New(apperr.KindNotFound, "business transaction %q not found", id)
	}
	return nil
}
