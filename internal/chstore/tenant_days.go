package chstore

import (
	"context"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
)

// A trace-by-id lookup has no time to prune with, and ClickHouse 18.16
// reads at least one granule of every part of every partition it cannot
// exclude by date (a part's last granule has no upper key bound, so the
// tenant in the primary key does not exclude other tenants' parts). Old
// data sent late by one tenant therefore made every other tenant's
// lookups open tens of extra parts. The lookup reads only the days its
// tenant has spans on: those service_index knows (cached per tenant for
// tenantDaysTTL) and, always, the days around now, where new traces land.
// A lookup that finds nothing refreshes the days (at most once a
// second per tenant) and tries again, so a trace sent late onto a day the
// tenant had no span on is found at once; only such a trace's part on a
// new day can be missed, until the cache refreshes.
const (
	tenantDaysTTL = 30 * time.Second
	// tenantDaysRetry is how old the days must be for a miss to refresh
	// them.
	tenantDaysRetry = time.Second
	// tenantDaysMax bounds the cache; past it, it starts over.
	tenantDaysMax = 10000
)

const tenantDaysSQL = `SELECT DISTINCT toString(date) FROM service_index WHERE tenant_id = ?`

type tenantDaysEntry struct {
	days []string
	at   time.Time
}

// tenantDays caches the days each tenant has spans on.
type tenantDays struct {
	mu     sync.Mutex
	byTen  map[string]tenantDaysEntry
	flight singleflight.Group
	now    func() time.Time
}

func newTenantDays() *tenantDays {
	return &tenantDays{byTen: map[string]tenantDaysEntry{}, now: time.Now}
}

// spanDays returns the dates (YYYY-MM-DD) a trace of tenantID may have
// rows on: the tenant's known days plus yesterday, today and tomorrow
// (UTC), read afresh when what is cached is older than maxAge.
// It also says when those days were read.
func (s *Store) spanDays(ctx context.Context, tenantID string, maxAge time.Duration) ([]string, time.Time, error) {
	td := s.days
	now := td.now().UTC()
	td.mu.Lock()
	e, ok := td.byTen[tenantID]
	td.mu.Unlock()
	if !ok || now.Sub(e.at) > maxAge {
		v, err, _ := td.flight.Do(tenantID, func() (any, error) {
			rows, err := s.conn.Query(ctx, tenantDaysSQL, tenantID)
			if err != nil {
				return nil, err
			}
			defer rows.Close()
			var days []string
			for rows.Next() {
				var d string
				if err := rows.Scan(&d); err != nil {
					return nil, err
				}
				days = append(days, d)
			}
			if err := rows.Err(); err != nil {
				return nil, err
			}
			td.mu.Lock()
			if len(td.byTen) >= tenantDaysMax {
				td.byTen = map[string]tenantDaysEntry{}
			}
			e := tenantDaysEntry{days: days, at: now}
			td.byTen[tenantID] = e
			td.mu.Unlock()
			return e, nil
		})
		if err != nil {
			return nil, time.Time{}, err
		}
		e = v.(tenantDaysEntry)
	}
	out := make([]string, 0, len(e.days)+3)
	out = append(out, e.days...)
	for d := -1; d <= 1; d++ {
		out = append(out, now.AddDate(0, 0, d).Format(time.DateOnly))
	}
	return out, e.at, nil
}
