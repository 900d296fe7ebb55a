package chstore_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/internal/events"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// MaxExecutionTime reaches the server with every read, also one whose ctx
// has no deadline (as RCA's reads), and the server stops it.
func TestMaxExecutionTimeOnEveryRead(t *testing.T) {
	env := testenv.Get(t)
	cfg := chstore.DefaultConfig()
	cfg.Addr, cfg.Database, cfg.MaxOpenConns = env.ClickHouseAddr, env.ClickHouseDB, 2
	cfg.QueryTimeout, cfg.MaxExecutionTime = 0, time.Second
	s, err := chstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// No ctx deadline (which would make clickhouse-go send its own
	// max_execution_time); a watchdog cancels if the server never stops.
	c, cancel := context.WithCancel(context.Background())
	defer cancel()
	watchdog := time.AfterFunc(30*time.Second, cancel)
	defer watchdog.Stop()
	start := time.Now()
	var n uint64
	err = s.Conn().QueryRow(c, "SELECT count() FROM system.numbers WHERE cityHash64(number) = 1").Scan(&n)
	var ex *clickhouse.Exception
	if !errors.As(err, &ex) || ex.Code != 159 {
		t.Fatalf("slow read: %v after %v, want ClickHouse exception 159 TIMEOUT_EXCEEDED", err, time.Since(start))
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("the server stopped the read after %v", took)
	}
	if k := apperr.KindOf(chstore.ReadErrForTest(err)); k != apperr.KindTimeout {
		t.Errorf("kind %v, want timeout", k)
	}
}

// LinksOfEvents reads the links of many events in one query per batch of
// ids, each (event, trace) once, within the per-event and total bounds.
func TestLinksOfEvents(t *testing.T) {
	env := testenv.Get(t)
	var (
		mu      sync.Mutex
		queries int
	)
	cfg := chstore.DefaultConfig()
	cfg.Addr, cfg.Database, cfg.MaxOpenConns = env.ClickHouseAddr, env.ClickHouseDB, 2
	cfg.QueryObserver = func(q string, _ []any) {
		if strings.Contains(q, "event_links") {
			mu.Lock()
			queries++
			mu.Unlock()
		}
	}
	s, err := chstore.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	// Events 1..3 of t1 link 1, 2 and 3 traces (each written twice);
	// event 9 belongs to t2.
	at := uint64(time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	var links []chstore.EventLink
	for e := 1; e <= 3; e++ {
		for tr := 1; tr <= e; tr++ {
			l := chstore.EventLink{TenantID: "t1", EventID: events.ID{byte(e)}, EventTimeNs: at, TraceID: [16]byte{byte(e), byte(tr)},
				TraceStartNs: at + uint64(10-tr), MatchKind: chstore.MatchContainer, LinkedAtNs: 1}
			links = append(links, l, l)
		}
	}
	links = append(links, chstore.EventLink{TenantID: "t2", EventID: events.ID{9}, EventTimeNs: at, TraceID: [16]byte{9, 1}, LinkedAtNs: 1})
	if err := s.InsertEventLinks(ctx(t), links); err != nil {
		t.Fatal(err)
	}
	// More ids than one query binds: the known ones and 2,500 unknown.
	many := []events.ID{{1}, {2}, {3}, {9}, {2}}
	for i := range 2500 {
		many = append(many, events.ID{0xff, byte(i), byte(i >> 8)})
	}

	cases := []struct {
		name            string
		tenant          string
		ids             []events.ID
		perEvent, total int
		want            map[byte]int // event → links
		truncated       bool
		queries         int
	}{
		{"all", "t1", many[:3], 10, 100, map[byte]int{1: 1, 2: 2, 3: 3}, false, 1},
		{"per event bound", "t1", many[:3], 2, 100, map[byte]int{1: 1, 2: 2, 3: 2}, false, 1},
		{"total bound", "t1", many[:3], 10, 4, map[byte]int{1: 1, 2: 2, 3: 1}, true, 1},
		{"exactly the total", "t1", many[:3], 10, 6, map[byte]int{1: 1, 2: 2, 3: 3}, false, 1},
		{"other tenant's event", "t1", many[3:4], 10, 100, map[byte]int{}, false, 1},
		{"batches of ids", "t1", many, 10, 100, map[byte]int{1: 1, 2: 2, 3: 3}, false, 2},
		{"no ids", "t1", nil, 10, 100, map[byte]int{}, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			queries = 0
			mu.Unlock()
			got, truncated, err := s.LinksOfEvents(ctx(t), tc.tenant, tc.ids, tc.perEvent, tc.total)
			if err != nil {
				t.Fatal(err)
			}
			counts := map[byte]int{}
			for id, ls := range got {
				for i, l := range ls {
					if l.EventID != id || l.TenantID != tc.tenant || l.TraceID[0] != id[0] {
						t.Errorf("link %+v under event %x", l, id)
					}
					if i > 0 && ls[i-1].TraceStartNs > l.TraceStartNs {
						t.Errorf("event %x: links not by trace start", id)
					}
				}
				if len(ls) > 0 {
					counts[id[0]] = len(ls)
				}
			}
			if len(counts) != len(tc.want) || truncated != tc.truncated {
				t.Errorf("links per event %v truncated %v, want %v %v", counts, truncated, tc.want, tc.truncated)
			}
			for e, n := range tc.want {
				if counts[e] != n {
					t.Errorf("event %d: %d links, want %d", e, counts[e], n)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if queries != tc.queries {
				t.Errorf("%d queries, want %d", queries, tc.queries)
			}
		})
	}
}
