package chstore

import (
	"context"
	"fmt"

	"github.com/aftertrace/aftertrace/internal/retention"
)

// triggerFilters are the container events each capture trigger fires on
// (closed: only these conditions reach the SQL).
var triggerFilters = map[string]string{
	retention.TriggerFalco: "source = 'falco'",
	retention.TriggerOOM:   "type = 'oom_killed'",
}

// tenantTriggerSQL reads one tenant's events of one trigger seen in
// (after, upto], in the order they were seen (observed time, else event
// time).
const tenantTriggerSQL = `SELECT lower(hex(event_id)), time_unix_nano,
    if(observed_time_unix_nano != 0, observed_time_unix_nano, time_unix_nano) AS seen,
    source, type, severity, reason, container_id_short, k8s_pod_uid, k8s_namespace_name
FROM container_events
WHERE tenant_id = ? AND retention_class != 'hold' AND %s
  AND if(observed_time_unix_nano != 0, observed_time_unix_nano, time_unix_nano) > ?
  AND if(observed_time_unix_nano != 0, observed_time_unix_nano, time_unix_nano) <= ?
ORDER BY seen, event_id
LIMIT 1 BY event_id
LIMIT ?`

// TenantTriggerEvents returns up to limit of the tenant's events of
// trigger (falco or oom_killed) seen in (afterNs, uptoNs], oldest first,
// each with its seen time: capture watermarks are per tenant and trigger,
// so one tenant's burst or failing trigger never hides another's.
func (s *Store) TenantTriggerEvents(ctx context.Context, tenantID, trigger string, afterNs, uptoNs uint64, limit int) ([]retention.TriggerEvent, error) {
	filter, ok := triggerFilters[trigger]
	if !ok {
		return nil, fmt.Errorf("capture rule events: unknown trigger %q", trigger)
	}
	rows, err := s.conn.Query(ctx, fmt.Sprintf(tenantTriggerSQL, filter), tenantID, afterNs, uptoNs, limit)
	if err != nil {
		return nil, fmt.Errorf("capture rule events: %w", err)
	}
	defer rows.Close()
	var out []retention.TriggerEvent
	for rows.Next() {
		e := retention.TriggerEvent{TenantID: tenantID}
		if err := rows.Scan(&e.EventID, &e.TimeNs, &e.SeenNs, &e.Source, &e.Type, &e.Severity, &e.Reason,
			&e.ContainerID, &e.PodUID, &e.Namespace); err != nil {
			return nil, fmt.Errorf("capture rule events: scan: %w", err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("capture rule events: %w", err)
	}
	return out, nil
}
