package bench

import (
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/chstore"
	"github.com/aftertrace/aftertrace/loadtest/loadgen"
)

// LogsStepConfig is one constant-rate logs step.
type LogsStepConfig struct {
	Rate        float64 // log records per second
	Duration    time.Duration
	Connections int
	PerRequest  int // records per OTLP request
	Seed        uint64
	DrainWithin time.Duration
	Replay      bool // send a pre-encoded pool of requests (logPool)
}

// LogsStepResult is what a logs step measured.
type LogsStepResult struct {
	Rate                   float64
	Requests, Failed, Late int64
	Acked                  int64
	Stored                 int64 // counted in ClickHouse
	LogsPerSec             float64
	LagEnd                 int64
	DrainSec               float64
	AppCPU, CHCPU          float64
	Sustained              bool
	Reason, LastError      string
	scheduled              int64
}

// logTemplates are bodies of the shape real services log (~100 bytes).
var logTemplates = []string{
	"GET /api/products/%d 200 in %dms user=%d",
	"cart updated: user=%d items=%d total_cents=%d",
	"payment authorized order=%d amount_cents=%d latency_ms=%d",
	"cache miss for key product:%d, loading from database (attempt %d, shard %d)",
	"slow query detected: SELECT * FROM orders WHERE user_id=%d took %dms rows=%d",
}

// logRequest builds one OTLP logs request of n records spread over the
// model's pods, with fresh ids and timestamps at at.
func logRequest(rng *rand.Rand, pods []*loadgen.Pod, n int, at time.Time) plog.Logs {
	ld := plog.NewLogs()
	per := max(1, n/len(pods))
	left := n
	for i := 0; left > 0; i++ {
		p := pods[(i+rng.IntN(len(pods)))%len(pods)]
		rl := ld.ResourceLogs().AppendEmpty()
		p.Resource.CopyTo(rl.Resource().Attributes())
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName("shop/logger")
		k := min(per, left)
		left -= k
		recs := sl.LogRecords()
		recs.EnsureCapacity(k)
		for j := range k {
			r := recs.AppendEmpty()
			ts := pcommon.NewTimestampFromTime(at.Add(time.Duration(j) * time.Microsecond))
			r.SetTimestamp(ts)
			r.SetObservedTimestamp(ts)
			sev := plog.SeverityNumberInfo
			if rng.IntN(20) == 0 {
				sev = plog.SeverityNumberError
			}
			r.SetSeverityNumber(sev)
			r.SetSeverityText(sev.String())
			r.Body().SetStr(fmt.Sprintf(logTemplates[rng.IntN(len(logTemplates))], rng.IntN(100000), rng.IntN(500), rng.IntN(10000)))
			var tid [16]byte
			var sid [8]byte
			binary.LittleEndian.PutUint64(tid[:8], rng.Uint64())
			binary.LittleEndian.PutUint64(tid[8:], rng.Uint64())
			binary.LittleEndian.PutUint64(sid[:], rng.Uint64()|1)
			r.SetTraceID(tid)
			r.SetSpanID(sid)
			a := r.Attributes()
			a.PutStr("code.function", "handle")
			a.PutInt("thread.id", int64(rng.IntN(64)))
			a.PutStr("user.id", fmt.Sprintf("u-%d", rng.IntN(5000)))
		}
	}
	return ld
}

// RunLogsStep sends cfg.Rate log records/s for cfg.Duration through the
// gateway (gRPC), waits for the writer to drain and counts what
// ClickHouse stored.
func RunLogsStep(ctx context.Context, st *Stack, store *chstore.Store, m *loadgen.Model, cfg LogsStepConfig) (LogsStepResult, error) {
	res := LogsStepResult{Rate: cfg.Rate}
	var pods []*loadgen.Pod
	for _, s := range m.Services {
		pods = append(pods, s.Pods...)
	}
	var pool *logPool
	if cfg.Replay {
		var err error
		// Wall clock only, so at.Sub(base) moves wall times (see loadgen.Run).
		if pool, err = newLogPool(cfg.Seed, pods, cfg.PerRequest, logPoolSize, time.Now().Round(0)); err != nil {
			return res, err
		}
	}
	senders := make([]loadgen.Sender, cfg.Connections)
	for i := range senders {
		s, err := loadgen.NewGRPCSender(st.GRPCAddr, benchKey)
		if err != nil {
			return res, err
		}
		defer s.Close()
		if _, ok := s.(loadgen.RawLogSender); pool != nil && !ok {
			return res, fmt.Errorf("logs replay: sender %T cannot send encoded requests", s)
		}
		senders[i] = s
	}
	tick := time.Duration(float64(cfg.PerRequest) / cfg.Rate * float64(time.Second))
	lateAfter := max(tick, 50*time.Millisecond)
	var requests, failed, late, acked atomic.Int64
	var lastErr atomic.Value
	type logDue struct {
		n  int64 // request number
		at time.Time
	}
	due := make(chan logDue, cfg.Connections)
	var wg sync.WaitGroup
	sendCtx := context.WithoutCancel(ctx)
	for i, s := range senders {
		rng := rand.New(rand.NewPCG(cfg.Seed, uint64(i)))
		raw, _ := s.(loadgen.RawLogSender) // checked above
		wg.Go(func() {
			for d := range due {
				if time.Since(d.at) > lateAfter {
					late.Add(1)
				}
				rctx, cancel := context.WithTimeout(sendCtx, 30*time.Second)
				var rej int64
				var err error
				if pool != nil {
					rej, err = raw.SendLogsRaw(rctx, pool.request(d.n, d.at))
				} else {
					rej, err = s.SendLogs(rctx, logRequest(rng, pods, cfg.PerRequest, d.at))
				}
				cancel()
				requests.Add(1)
				switch {
				case err != nil:
					failed.Add(1)
					lastErr.Store(err.Error())
				default:
					acked.Add(int64(cfg.PerRequest) - rej)
				}
			}
		})
	}
	appPID, chCPU := st.appPID(), st.clickHouseCPU()
	app0, ch0 := procCPU(appPID), chCPU()
	t0 := time.Now()
	end := t0.Add(cfg.Duration)
	timer := time.NewTimer(0)
	<-timer.C
loop:
	for i := 0; ; i++ {
		at := t0.Add(time.Duration(i) * tick)
		if !at.Before(end) {
			break
		}
		if d := time.Until(at); d > 0 {
			timer.Reset(d)
			select {
			case <-ctx.Done():
				break loop
			case <-timer.C:
			}
		}
		select {
		case <-ctx.Done():
			break loop
		case due <- logDue{n: int64(i), at: at}:
			res.scheduled += int64(cfg.PerRequest)
		}
	}
	close(due)
	wg.Wait()
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	res.Requests, res.Failed, res.Late, res.Acked = requests.Load(), failed.Load(), late.Load(), acked.Load()
	if v, ok := lastErr.Load().(string); ok {
		res.LastError = v
	}
	res.LagEnd, _ = st.LagOf(ctx, bus.SignalLogs)
	drainStart := time.Now()
	for time.Since(drainStart) < cfg.DrainWithin {
		if lag, err := st.LagOf(ctx, bus.SignalLogs); err == nil && lag == 0 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	res.DrainSec = time.Since(drainStart).Seconds()
	time.Sleep(time.Second) // the last flush's insert
	res.AppCPU, res.CHCPU = procCPU(appPID)-app0, chCPU()-ch0
	var n uint64
	err := store.Conn().QueryRow(ctx, `SELECT count() FROM logs
		WHERE tenant_id = ? AND timestamp >= toDateTime(?) AND timestamp <= toDateTime(?)
		  AND time_unix_nano >= ? AND time_unix_nano < ?`,
		benchTenant, uint32(t0.Unix()-1), uint32(end.Unix()+2), uint64(t0.UnixNano()), uint64(end.Add(time.Second).UnixNano())).Scan(&n)
	if err != nil {
		return res, fmt.Errorf("count logs: %w", err)
	}
	res.Stored = int64(n)
	res.LogsPerSec = float64(res.Stored) / cfg.Duration.Seconds()
	backlogSec := float64(res.LagEnd) * float64(cfg.PerRequest) / cfg.Rate
	switch {
	case res.Failed > 0:
		res.Reason = fmt.Sprintf("%d failed requests: %s", res.Failed, res.LastError)
	case float64(res.Acked) < 0.98*cfg.Rate*cfg.Duration.Seconds():
		res.Reason = fmt.Sprintf("acked %d of %.0f scheduled records", res.Acked, cfg.Rate*cfg.Duration.Seconds())
	case res.Requests > 0 && float64(res.Late) > 0.05*float64(res.Requests):
		res.Reason = fmt.Sprintf("%d of %d requests late (client or server too slow)", res.Late, res.Requests)
	case backlogSec > 3:
		res.Reason = fmt.Sprintf("lag %d messages (%.1fs of traffic) when sending ended", res.LagEnd, backlogSec)
	case float64(res.Stored) < 0.99*float64(res.Acked):
		res.Reason = fmt.Sprintf("stored %d of %d acked records", res.Stored, res.Acked)
	default:
		res.Sustained, res.Reason = true, "ok"
	}
	return res, nil
}
