package bench

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/loadtest/loadgen"
)

// StepConfig is one constant-rate step of the end-to-end search.
type StepConfig struct {
	Rate        float64
	Duration    time.Duration
	Connections int
	BatchSpans  int
	Transport   string
	Seed        uint64
	ProbeEvery  time.Duration // one ingest → queryable probe per interval
	ProfileDir  string        // if set, a CPU profile of the server is saved here
	ProfileFor  time.Duration
	DrainWithin time.Duration // how long to wait for the writer to catch up afterwards
	Replay      bool          // send pre-encoded requests (loadgen RunConfig.Replay)
}

// StepResult is what one step measured.
type StepResult struct {
	Rate          float64
	Client        loadgen.Stats
	Stored        int64   // spans of the step counted in ClickHouse
	SpansPerSec   float64 // Stored / Duration
	LagMid        int64   // consumer backlog (messages) half-way
	LagEnd        int64   // ... when sending ended
	BacklogEndSec float64 // LagEnd in seconds of traffic
	DrainSec      float64 // time to empty the backlog afterwards
	Probes        []float64
	ProbeTimeouts int
	Sustained     bool
	Reason        string
	Profile       string
	AppCPU        float64 // CPU seconds of the aftertrace process during the step and drain
	CHCPU         float64 // ... of ClickHouse
	LoadCPU       float64 // ... of this process (load generator, probes)
}

// idSample keeps a uniform sample of acknowledged trace ids.
type idSample struct {
	mu   sync.Mutex
	rng  *rand.Rand
	seen int
	ids  []string
	max  int
}

func newIDSample(n int, seed uint64) *idSample {
	return &idSample{rng: rand.New(rand.NewPCG(seed, 99)), max: n}
}

func (s *idSample) add(refs []loadgen.TraceRef, _ time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range refs {
		s.seen++
		id := r.TraceID.String()
		if len(s.ids) < s.max {
			s.ids = append(s.ids, id)
		} else if j := s.rng.IntN(s.seen); j < s.max {
			s.ids[j] = id
		}
	}
}

// RunStep sends cfg.Rate spans/s for cfg.Duration through the gateway,
// probes ingest → queryable latency meanwhile, waits for the writer to
// drain and counts what ClickHouse stored.
func RunStep(ctx context.Context, st *Stack, store *chstore.Store, cfg StepConfig, ids *idSample, progress io.Writer) (StepResult, error) {
	res := StepResult{Rate: cfg.Rate}
	rc := loadgen.DefaultRunConfig()
	rc.Model.Seed = cfg.Seed
	rc.Transport, rc.Key = cfg.Transport, benchKey
	rc.Endpoint = st.GRPCAddr
	if cfg.Transport == "http" {
		rc.Endpoint = "http://" + st.HTTPAddr
	}
	rc.Rate, rc.Duration, rc.Connections, rc.BatchSpans = cfg.Rate, cfg.Duration, cfg.Connections, cfg.BatchSpans
	rc.Faults, rc.Progress, rc.ProgressEvery = 0, progress, 5*time.Second
	rc.OnAck = ids.add
	rc.Replay = cfg.Replay
	perReq := min(float64(cfg.BatchSpans), max(1, cfg.Rate/10))

	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var probeMu sync.Mutex
	appPID, chCPU := st.appPID(), st.clickHouseCPU()
	var app0, ch0, load0 float64
	var began time.Time
	// The step's clocks, CPU counters and watchers start with the schedule,
	// once the load generator has prepared: encoding the replay pool takes
	// a second or two, before the server is loaded.
	rc.OnStart = func(t0 time.Time) {
		began = t0
		app0, ch0, load0 = procCPU(appPID), chCPU(), procCPU(os.Getpid())
		wg.Go(func() {
			if cfg.ProbeEvery <= 0 {
				return
			}
			lat, timeouts := probe(sctx, st, cfg)
			probeMu.Lock()
			res.Probes, res.ProbeTimeouts = lat, timeouts
			probeMu.Unlock()
		})
		wg.Go(func() { // lag half-way and at the end
			select {
			case <-sctx.Done():
				return
			case <-time.After(cfg.Duration / 2):
			}
			res.LagMid, _ = st.Lag(sctx)
		})
		if cfg.ProfileDir != "" {
			res.Profile = filepath.Join(cfg.ProfileDir, fmt.Sprintf("cpu-%.0f.pprof", cfg.Rate))
			wg.Go(func() {
				select {
				case <-sctx.Done():
					return
				case <-time.After(max(cfg.Duration-cfg.ProfileFor, 0) / 2):
				}
				if err := saveProfile(sctx, "http://"+st.OpsAddr, cfg.ProfileFor, res.Profile); err != nil {
					fmt.Fprintln(progress, "profile:", err)
					res.Profile = ""
				}
			})
		}
	}

	stats, err := loadgen.Run(ctx, rc)
	if err != nil {
		cancel()
		wg.Wait()
		return res, err
	}
	ended := began.Add(cfg.Duration)
	res.Client = stats
	res.LagEnd, _ = st.Lag(ctx)
	res.BacklogEndSec = float64(res.LagEnd) * perReq / cfg.Rate
	cancel() // no new probes; those in flight finish while the writer drains

	drainStart := time.Now()
	for {
		lag, err := st.Lag(ctx)
		if err == nil && lag == 0 {
			break
		}
		if time.Since(drainStart) > cfg.DrainWithin {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	res.DrainSec = time.Since(drainStart).Seconds()
	wg.Wait()
	time.Sleep(time.Second) // the last flush's insert
	res.AppCPU, res.CHCPU, res.LoadCPU = procCPU(appPID)-app0, chCPU()-ch0, procCPU(os.Getpid())-load0
	res.Stored, err = countSpans(ctx, store, began, ended)
	if err != nil {
		return res, err
	}
	res.SpansPerSec = float64(res.Stored) / cfg.Duration.Seconds()
	res.Sustained, res.Reason = judge(res, cfg)
	return res, nil
}

// judge decides whether a step was sustained: everything accepted, the
// client kept its schedule, the backlog did not grow and ClickHouse holds
// what was acknowledged.
func judge(r StepResult, cfg StepConfig) (bool, string) {
	c := r.Client
	scheduled := cfg.Rate * cfg.Duration.Seconds()
	growth := float64(r.LagEnd-r.LagMid) * min(float64(cfg.BatchSpans), max(1, cfg.Rate/10)) / cfg.Rate
	switch {
	case c.Failed > 0 || c.RejSpans > 0:
		return false, fmt.Sprintf("rejected %d spans (%d failed requests: %s)", c.RejSpans, c.Failed, c.LastError)
	case float64(c.AckedSpans) < 0.98*scheduled:
		return false, fmt.Sprintf("acked %d of %.0f scheduled spans", c.AckedSpans, scheduled)
	case c.Requests > 0 && float64(c.Late) > 0.05*float64(c.Requests):
		return false, fmt.Sprintf("%d of %d requests late (client or server too slow)", c.Late, c.Requests)
	case r.BacklogEndSec > 3 || growth > 1.5:
		return false, fmt.Sprintf("lag grew: %d → %d messages (%.1fs of traffic queued)", r.LagMid, r.LagEnd, r.BacklogEndSec)
	case float64(r.Stored) < 0.99*float64(c.AckedSpans):
		return false, fmt.Sprintf("stored %d of %d acked spans", r.Stored, c.AckedSpans)
	}
	return true, "ok"
}

// countSpans counts the load's spans (not the probes') started in [from, to].
func countSpans(ctx context.Context, store *chstore.Store, from, to time.Time) (int64, error) {
	var n uint64
	err := store.Conn().QueryRow(ctx, `SELECT count() FROM spans
		WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp <= toDateTime(?)
		  AND start_time_unix_nano >= ? AND start_time_unix_nano < ? AND k8s_namespace_name != 'probe'`,
		benchTenant, uint32(from.Unix()-1), uint32(to.Unix()+2), uint64(from.UnixNano()), uint64(to.Add(time.Second).UnixNano())).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count spans: %w", err)
	}
	return int64(n), nil
}

func saveProfile(ctx context.Context, base string, d time.Duration, path string) error {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", base, int(d.Seconds())), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("pprof: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
