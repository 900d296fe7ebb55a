package pgstore

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/aftertrace/aftertrace/internal/retention"
)

// Policies returns the tenant's retention policies in the order they were
// set (none: an empty slice).
func (s *Store) Policies(ctx context.Context, tenantID string) ([]retention.Policy, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT signal, days, namespace, service FROM retention_policies WHERE tenant_id = $1 ORDER BY position`, tenantID)
	if err != nil {
		return nil, dbErr(err, "list retention policies")
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (retention.Policy, error) {
		var p retention.Policy
		err := r.Scan(&p.Signal, &p.Days, &p.Namespace, &p.Service)
		return p, err
	})
	if err != nil {
		return nil, dbErr(err, "list retention policies")
	}
	if out == nil {
		out = []retention.Policy{}
	}
	return out, nil
}

// SetPolicies replaces the tenant's retention policies (validated here
// too) and records the tenant, so that enforcement applies the set in
// force to its stored rows, an emptied set too.
func (s *Store) SetPolicies(ctx context.Context, tenantID string, ps []retention.Policy) error {
	if err := retention.ValidatePolicies(ps); err != nil {
		return err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM retention_policies WHERE tenant_id = $1`, tenantID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx,
			`INSERT INTO retention_policy_tenants (tenant_id) VALUES ($1)
			 ON CONFLICT (tenant_id) DO UPDATE SET changed_at = now()`, tenantID); err != nil {
			return err
		}
		for i, p := range ps {
			if _, err := tx.Exec(ctx,
				`INSERT INTO retention_policies (tenant_id, position, signal, days, namespace, service) VALUES ($1, $2, $3, $4, $5, $6)`,
				tenantID, i, string(p.Signal), p.Days, p.Namespace, p.Service); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return dbErr(err, "set retention policies")
	}
	return nil
}

// AllPolicies returns every tenant's policies (for retention.Classifier
// and enforcement); a tenant that emptied its set has an empty entry.
func (s *Store) AllPolicies(ctx context.Context) (map[string][]retention.Policy, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT t.tenant_id, p.signal, p.days, p.namespace, p.service
		 FROM (SELECT tenant_id FROM retention_policy_tenants UNION SELECT tenant_id FROM retention_policies) t
		 LEFT JOIN retention_policies p ON p.tenant_id = t.tenant_id
		 ORDER BY t.tenant_id, p.position`)
	if err != nil {
		return nil, dbErr(err, "load retention policies")
	}
	defer rows.Close()
	out := map[string][]retention.Policy{}
	for rows.Next() {
		var t string
		var sig, ns, svc *string
		var days *int
		if err := rows.Scan(&t, &sig, &days, &ns, &svc); err != nil {
			return nil, dbErr(err, "load retention policies")
		}
		if sig == nil {
			out[t] = []retention.Policy{} // it has none now
			continue
		}
		out[t] = append(out[t], retention.Policy{Signal: retention.Signal(*sig), Days: *days, Namespace: *ns, Service: *svc})
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(err, "load retention policies")
	}
	return out, nil
}

// CaptureRules returns the tenant's capture rules in order.
func (s *Store) CaptureRules(ctx context.Context, tenantID string) ([]retention.CaptureRule, error) {
	m, err := s.captureRules(ctx, `WHERE tenant_id = $1`, tenantID)
	if err != nil {
		return nil, err
	}
	if m[tenantID] == nil {
		return []retention.CaptureRule{}, nil
	}
	return m[tenantID], nil
}

// AllCaptureRules returns every tenant's capture rules.
func (s *Store) AllCaptureRules(ctx context.Context) (map[string][]retention.CaptureRule, error) {
	return s.captureRules(ctx, ``)
}

func (s *Store) captureRules(ctx context.Context, where string, args ...any) (map[string][]retention.CaptureRule, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT tenant_id, id, trigger, min_severity, namespace, before_seconds, after_seconds
		 FROM capture_rules `+where+` ORDER BY tenant_id, position`, args...)
	if err != nil {
		return nil, dbErr(err, "list capture rules")
	}
	defer rows.Close()
	out := map[string][]retention.CaptureRule{}
	for rows.Next() {
		var t string
		var r retention.CaptureRule
		if err := rows.Scan(&t, &r.ID, &r.Trigger, &r.MinSeverity, &r.Namespace, &r.Before, &r.After); err != nil {
			return nil, dbErr(err, "list capture rules")
		}
		out[t] = append(out[t], r)
	}
	if err := rows.Err(); err != nil {
		return nil, dbErr(err, "list capture rules")
	}
	return out, nil
}

// SetCaptureRules replaces the tenant's capture rules (validated here, ids
// filled in) and returns them.
func (s *Store) SetCaptureRules(ctx context.Context, tenantID string, rules []retention.CaptureRule) ([]retention.CaptureRule, error) {
	if err := retention.ValidateCaptureRules(rules); err != nil {
		return nil, err
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM capture_rules WHERE tenant_id = $1`, tenantID); err != nil {
			return err
		}
		for i, r := range rules {
			if _, err := tx.Exec(ctx,
				`INSERT INTO capture_rules (tenant_id, position, id, trigger, min_severity, namespace, before_seconds, after_seconds)
				 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				tenantID, i, r.ID, r.Trigger, r.MinSeverity, r.Namespace, r.Before, r.After); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, dbErr(err, "set capture rules")
	}
	if rules == nil {
		rules = []retention.CaptureRule{}
	}
	return rules, nil
}

// StateNs returns a retention worker watermark (0 when unset).
func (s *Store) StateNs(ctx context.Context, key string) (int64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, `SELECT value_ns FROM retention_state WHERE key = $1`, key).Scan(&v)
	if err == pgx.ErrNoRows {
		return 0, nil
	}
	if err != nil {
		return 0, dbErr(err, "read retention state")
	}
	return v, nil
}

// SetStateNs stores a retention worker watermark.
func (s *Store) SetStateNs(ctx context.Context, key string, v int64) error {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO retention_state (key, value_ns) VALUES ($1, $2)
		 ON CONFLICT (key) DO UPDATE SET value_ns = EXCLUDED.value_ns, updated_at = now()`, key, v)
	if err != nil {
		return dbErr(err, "write retention state")
	}
	return nil
}
