package chstore

import (
	"context"
	"fmt"

	"github.com/aftertrace/aftertrace/internal/retention"
)

// triggerEventsSQL reads the container events capture rules look at, in
// the order they were seen (observed time, else event time).
const triggerEventsSQL = `SELECT tenant_id, lower(hex(event_id)), time_unix_nano,
    if(observed_time_unix_nano != 0, observed_time_unix_nano, time_unix_nano) AS seen,
    source, type, severity, reason, container_id_short, k8s_pod_uid, k8s_namespace_name
FROM container_events
WHERE has(?, tenant_id) AND retention_class != 'hold' AND (source = 'falco' OR type = 'oom_killed')
  AND if(observed_time_unix_nano != 0, observed_time_unix_nano, time_unix_nano) > ?
ORDER BY seen, event_id
LIMIT 1 BY event_id
LIMIT ?`

// TriggerEvents returns up to limit Falco alerts and OOM kills of the
// tenants seen after sinceNs (observed time, else event time), oldest
// first, and the seen time of the last one (sinceNs when none).
func (s *Store) TriggerEvents(ctx context.Context, tenants []string, sinceNs uint64, limit int) ([]retention.TriggerEvent, uint64, error) {
	last := sinceNs
	if len(tenants) == 0 {
		return nil, last, nil
	}
	rows, err := s.conn.Query(ctx, triggerEventsSQL, tenants, sinceNs, limit)
	if err != nil {
		return nil, last, fmt.Errorf("capture rule events: %w", err)
	}
	defer rows.Close()
	var out []retention.TriggerEvent
	for rows.Next() {
		var e retention.TriggerEvent
		var seen uint64
		if err := rows.Scan(&e.TenantID, &e.EventID, &e.TimeNs, &seen, &e.Source, &e.Type, &e.Severity, &e.Reason,
			&e.ContainerID, &e.PodUID, &e.Namespace); err != nil {
			return nil, last, fmt.Errorf("capture rule events: scan: %w", err)
		}
		out = append(out, e)
		last = max(last, seen)
	}
	if err := rows.Err(); err != nil {
		return nil, last, fmt.Errorf("capture rule events: %w", err)
	}
	return out, last, nil
}
