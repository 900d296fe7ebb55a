package reliability

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// probe is what a quiet tenant saw over one window: how long its traces
// took from export to readable, how long its reads took, and failures
// (an export or read that was not answered 200, a trace never readable).
type probe struct {
	ingest, read []time.Duration
	byKind       [3][]time.Duration // reads: trace by id, search, service list
	failures     int
}

// kinds words the p99 of each kind of read.
func (p probe) kinds() string {
	return "by id " + ms(p99(p.byKind[0])) + ", search " + ms(p99(p.byKind[1])) + ", services " + ms(p99(p.byKind[2]))
}

func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[min(len(s)-1, int(float64(len(s))*0.99))]
}

func (p probe) ingestP99() time.Duration { return p99(p.ingest) }
func (p probe) readP99() time.Duration   { return p99(p.read) }

// quietProbe is the quiet tenant's life for d, two loops at once: every
// 100 ms a trace of three spans, polled through the API until readable
// (ingest → query); and every 40 ms a read, in turn a recent trace by id,
// a search of its service, the service list.
func (st *Stack) quietProbe(ctx context.Context, t Tenant, d time.Duration) probe {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		p      probe
		mu     sync.Mutex
		recent atomic.Value // a readable trace id
		wg     sync.WaitGroup
	)
	fail := func() { mu.Lock(); p.failures++; mu.Unlock() }
	wg.Add(2)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			td, id := trace("quiet-checkout", 3, time.Now())
			start := time.Now()
			if a := st.export(ctx, t.Key, td); a.err != nil || a.status != http.StatusOK {
				if ctx.Err() == nil {
					fail()
				}
				continue
			}
			for ctx.Err() == nil {
				if n, _ := st.traceSpans(context.WithoutCancel(ctx), t.Key, id); n == 3 {
					mu.Lock()
					p.ingest = append(p.ingest, time.Since(start))
					mu.Unlock()
					recent.Store(id)
					break
				}
				time.Sleep(10 * time.Millisecond)
			}
			sleepCtx(ctx, 100*time.Millisecond)
		}
	}()
	go func() {
		defer wg.Done()
		api := "http://" + st.APIAddr
		for i := 0; ctx.Err() == nil; i++ {
			id, _ := recent.Load().(string)
			var u string
			kind := i % 3
			switch {
			case kind == 0 && id != "":
				u = api + "/api/v1/traces/" + id
			case kind == 1:
				u = api + "/api/v1/traces?" + url.Values{"service": {"quiet-checkout"}, "limit": {"20"},
					"start": {strconv.FormatInt(time.Now().Add(-10*time.Minute).UnixNano(), 10)}}.Encode()
			default:
				u, kind = api+"/api/v1/services", 2
			}
			rs := time.Now()
			a := get(context.WithoutCancel(ctx), u, t.Key)
			if a.err != nil || a.status != http.StatusOK {
				fail()
			} else {
				mu.Lock()
				p.read = append(p.read, time.Since(rs))
				p.byKind[kind] = append(p.byKind[kind], time.Since(rs))
				mu.Unlock()
			}
			sleepCtx(ctx, 40*time.Millisecond)
		}
	}()
	wg.Wait()
	return p
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
