package bench

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/aftertrace/aftertrace/loadtest/loadgen"
)

// probeTimeout bounds how long one probe waits to become queryable.
const probeTimeout = 30 * time.Second

// Probes poll the API every probePoll (so latencies are ±probePoll) and at
// most maxProbes wait at once: polling is load on ClickHouse too.
const (
	probePoll = 100 * time.Millisecond
	maxProbes = 4
)

// probe sends one small trace with a known id every cfg.ProbeEvery until
// ctx ends and measures, for each, the time from sending it to reading all
// its spans back through GET /api/v1/traces/{id}, in milliseconds. Probes
// that time out, or are not sent because maxProbes are still waiting,
// count as timeouts.
func probe(ctx context.Context, st *Stack, cfg StepConfig) (lat []float64, timeouts int) {
	mc := loadgen.DefaultModelConfig()
	mc.Seed, mc.Namespace, mc.Depth, mc.FanOut, mc.BusinessRatio = cfg.Seed+1_000_003, "probe", 1, 2, 0
	m, err := loadgen.NewModel(mc)
	if err != nil {
		return nil, 0
	}
	g := loadgen.NewGenerator(m, uint64(time.Now().UnixNano()))
	sender, err := loadgen.NewGRPCSender(st.GRPCAddr, benchKey)
	if err != nil {
		return nil, 0
	}
	defer sender.Close()
	var mu sync.Mutex
	var wg sync.WaitGroup
	waiting, skipped := 0, 0
	t := time.NewTicker(cfg.ProbeEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return lat, timeouts + skipped
		case <-t.C:
		}
		mu.Lock()
		busy := waiting >= maxProbes
		mu.Unlock()
		if busy {
			skipped++
			continue
		}
		b := g.NextBatch(time.Now(), 1)
		ref := b.Refs[0]
		sent := time.Now()
		if _, err := sender.SendTraces(ctx, b.Traces); err != nil {
			continue
		}
		mu.Lock()
		waiting++
		mu.Unlock()
		wg.Go(func() {
			ok := waitQueryable(context.WithoutCancel(ctx), st.APIAddr, ref.TraceID.String(), ref.Spans, sent.Add(probeTimeout))
			mu.Lock()
			defer mu.Unlock()
			waiting--
			if ok {
				lat = append(lat, float64(time.Since(sent))/float64(time.Millisecond))
			} else {
				timeouts++
			}
		})
	}
}

func waitQueryable(ctx context.Context, apiAddr, id string, spans int, deadline time.Time) bool {
	for time.Now().Before(deadline) {
		if n, _, err := getTrace(ctx, apiAddr, id); err == nil && n >= spans {
			return true
		}
		time.Sleep(probePoll)
	}
	return false
}

// getTrace reads a trace through the API and returns its span count and
// HTTP status.
func getTrace(ctx context.Context, apiAddr, id string) (int, int, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+apiAddr+"/api/v1/traces/"+id, nil)
	req.Header.Set("Authorization", "Bearer "+benchKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, resp.StatusCode, nil
	}
	var tr struct {
		Spans []json.RawMessage `json:"spans"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		return 0, resp.StatusCode, err
	}
	return len(tr.Spans), resp.StatusCode, nil
}
