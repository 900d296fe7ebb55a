package chstore

import "context"

const tenantsWithSpansSQL = `SELECT tenant_id
FROM spans
WHERE date BETWEEN toDate(?) AND toDate(?)
  AND timestamp BETWEEN toDateTime(?) AND toDateTime(?)
GROUP BY tenant_id
ORDER BY tenant_id
LIMIT ?`

// TenantsWithSpans returns the tenants (sorted, at most limit) with spans
// whose start second falls in [fromNs, toNs] (the correlator's anomaly
// pass analyses only these).
func (s *Store) TenantsWithSpans(ctx context.Context, fromNs, toNs uint64, limit int) ([]string, error) {
	ctx, cancel := s.readCtx(ctx)
	defer cancel()
	rows, err := s.conn.Query(ctx, tenantsWithSpansSQL,
		dateString(linkNsTime(fromNs).Add(-indexDateSlack)), dateString(linkNsTime(toNs).Add(indexDateSlack)),
		nsSeconds(fromNs, 0), nsSeconds(toNs, 0), limit)
	if err != nil {
		return nil, readErr(ctx, "tenants with spans", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return nil, readErr(ctx, "tenants with spans: scan", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, readErr(ctx, "tenants with spans: read", err)
	}
	return out, nil
}
