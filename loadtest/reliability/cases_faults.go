package reliability

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/aftertrace/aftertrace/internal/bus"
)

// spansPerTrace of the fault loads.
const spansPerTrace = 10

// faultLoad runs a load for d in the background while fault happens,
// then checks that every acknowledged trace reads back once.
func (e *env) faultLoad(ctx context.Context, d time.Duration, fault func() error) (l *load, lost, dup int, err error) {
	done := make(chan *load, 1)
	go func() { done <- e.st.runLoad(ctx, e.load.Key, "fault-load", spansPerTrace, 20, d) }()
	err = fault()
	l = <-done
	if werr := e.st.WaitDrained(ctx, 3*time.Minute); werr != nil && err == nil {
		err = werr
	}
	lost, dup = e.st.verify(ctx, e.load.Key, l.acked, spansPerTrace, 2*time.Minute)
	return l, lost, dup, err
}

func clickHouseDown(ctx context.Context, e *env) Result {
	l, lost, dup, err := e.faultLoad(ctx, e.d.chOutage+10*time.Second, func() error {
		time.Sleep(3 * time.Second)
		if err := e.st.CH.Stop(ctx); err != nil {
			return fmt.Errorf("stop clickhouse: %w", err)
		}
		time.Sleep(e.d.chOutage)
		return e.st.CH.Start(ctx)
	})
	fig := fmt.Sprintf("ClickHouse down %s under load: acknowledged %d traces, lost %d, duplicates visible %d, non-200 %d",
		e.d.chOutage, len(l.acked), lost, dup, len(l.acked)-l.statuses[http.StatusOK]+nonOK(l))
	return Result{Figure: withErr(fig, err), Pass: err == nil && len(l.acked) > 0 && lost == 0 && dup == 0}
}

func nonOK(l *load) int {
	n := l.errors
	for code, c := range l.statuses {
		if code != http.StatusOK {
			n += c
		}
	}
	return n
}

func withErr(fig string, err error) string {
	if err != nil {
		return fig + " (" + err.Error() + ")"
	}
	return fig
}

func writerSigkill(ctx context.Context, e *env) Result {
	kills := 0
	l, lost, dup, err := e.faultLoad(ctx, time.Duration(e.d.kills)*4*time.Second+3*time.Second, func() error {
		for range e.d.kills {
			time.Sleep(time.Duration(1500+rand.IntN(2000)) * time.Millisecond)
			e.st.Writer.Kill()
			kills++
			if err := e.st.Restart(ctx, e.st.Writer); err != nil {
				return err
			}
		}
		return nil
	})
	fig := fmt.Sprintf("writer SIGKILLed %d times under load: acknowledged %d traces, lost %d, duplicates visible %d",
		kills, len(l.acked), lost, dup)
	return Result{Figure: withErr(fig, err), Pass: err == nil && kills == e.d.kills && len(l.acked) > 0 && lost == 0 && dup == 0}
}

func natsDown(ctx context.Context, e *env) Result {
	var during *load
	l, lost, dup, err := e.faultLoad(ctx, e.d.natsOutage+10*time.Second, func() error {
		time.Sleep(3 * time.Second)
		e.st.StopNATS()
		// What the gateway answered while the bus was down.
		during = e.st.runLoad(ctx, e.quiet.Key, "during-outage", 3, 10, e.d.natsOutage)
		return e.st.StartNATS()
	})
	// Anything acknowledged while the bus was down must be readable too.
	lostDuring, _ := e.st.verify(ctx, e.quiet.Key, during.acked, 3, time.Minute)
	fig := fmt.Sprintf("NATS down %s: during it %d answered 2xx (lost %d), %d 503, %d without Retry-After; overall acknowledged %d, lost %d, duplicates %d",
		e.d.natsOutage, len(during.acked), lostDuring, during.statuses[http.StatusServiceUnavailable], during.noRetry, len(l.acked), lost, dup)
	return Result{Figure: withErr(fig, err), Pass: err == nil && lost == 0 && dup == 0 && lostDuring == 0 &&
		during.statuses[http.StatusServiceUnavailable] > 0 && during.noRetry == 0}
}

// overload3x measures what the stack acknowledges with a few closed-loop
// senders, then offers three times that, open loop, and checks that
// everything refused is a 429 or 503 with Retry-After and the gateway's
// memory stays bounded.
func overload3x(ctx context.Context, e *env) Result {
	td, _ := trace("overload", 500, time.Now())
	body := protoBody(td)
	url := "http://" + e.st.GatewayHTTP + "/v1/traces"
	send := func() answer { return post(ctx, url, e.load.Key, "application/x-protobuf", "", body) }

	// Capacity: 8 closed-loop senders for 5 s.
	var mu sync.Mutex
	acked := 0
	var wg sync.WaitGroup
	end := time.Now().Add(5 * time.Second)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				if a := send(); a.status == http.StatusOK {
					mu.Lock()
					acked++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	capacity := float64(acked) / 5 // requests/s
	_ = e.st.WaitDrained(ctx, 3*time.Minute)

	pid := e.st.Gateway.PID()
	_ = resetPeakRSS(pid)
	rate := 3 * capacity
	l := &load{statuses: map[int]int{}}
	lctx, cancel := context.WithTimeout(ctx, e.d.overload)
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	sem := make(chan struct{}, 512)
	offered := 0
loop:
	for {
		select {
		case <-lctx.Done():
			break loop
		case <-tick.C:
		}
		offered++
		select {
		case sem <- struct{}{}:
		default:
			l.record(answer{status: -1}, "") // the client could not even send: counted apart
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			l.record(send(), "")
		}()
	}
	tick.Stop()
	cancel()
	wg.Wait()
	peak, _ := peakRSS(pid)
	bad := 0
	for code, n := range l.statuses {
		if code != http.StatusOK && code != http.StatusTooManyRequests && code != http.StatusServiceUnavailable && code != -1 {
			bad += n
		}
	}
	const bound = 1 << 30
	fig := fmt.Sprintf("capacity %.0f spans/s, offered %.0f spans/s for %s: 200 %d, 429 %d, 503 %d, other %d, transport errors %d, 429/503 without Retry-After %d; gateway peak RSS %d MiB (bound %d MiB)",
		capacity*500, rate*500, e.d.overload, l.statuses[http.StatusOK], l.statuses[http.StatusTooManyRequests],
		l.statuses[http.StatusServiceUnavailable], bad, l.errors, l.noRetry, peak>>20, bound>>20)
	drainErr := e.st.WaitDrained(ctx, 5*time.Minute)
	return Result{Figure: withErr(fig, drainErr), Pass: bad == 0 && l.noRetry == 0 && l.errors == 0 && peak > 0 && peak < bound &&
		l.statuses[http.StatusTooManyRequests]+l.statuses[http.StatusServiceUnavailable] > 0 && drainErr == nil}
}

// oversizedAndBombs: bodies over the limit, raw and after gzip, are 413
// and the gateway's memory does not follow the inflated sizes.
func oversizedAndBombs(ctx context.Context, e *env) Result {
	pid := e.st.Gateway.PID()
	_ = resetPeakRSS(pid)
	url := "http://" + e.st.GatewayHTTP + "/v1/traces"
	big := bytes.Repeat([]byte{0x0a}, 17<<20)
	var zb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zb, gzip.BestCompression)
	zero := make([]byte, 1<<20)
	for range 256 { // 256 MiB of zeros in ~256 KiB
		_, _ = zw.Write(zero)
	}
	_ = zw.Close()
	bomb := zb.Bytes()
	statuses := map[string]map[int]int{"oversized": {}, "gzip bomb": {}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			kind, body, enc := "gzip bomb", bomb, "gzip"
			if i%4 == 0 {
				kind, body, enc = "oversized", big, ""
			}
			a := post(ctx, url, e.load.Key, "application/x-protobuf", enc, body)
			mu.Lock()
			statuses[kind][a.status]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	peak, _ := peakRSS(pid)
	// 413, or 429 once the burst is over the tenant's bytes/s: refused
	// either way, nothing stored.
	refused := func(m map[int]int) int { return m[http.StatusRequestEntityTooLarge] + m[http.StatusTooManyRequests] }
	ok := refused(statuses["oversized"]) == 8 && refused(statuses["gzip bomb"]) == 24 &&
		statuses["oversized"][http.StatusRequestEntityTooLarge] > 0 && statuses["gzip bomb"][http.StatusRequestEntityTooLarge] > 0
	const bound = 512 << 20
	fig := fmt.Sprintf("8 bodies of 17 MiB: %v; 24 gzip bombs (%d KiB → 256 MiB): %v; gateway peak RSS %d MiB (bound %d MiB)",
		statuses["oversized"], len(bomb)>>10, statuses["gzip bomb"], peak>>20, bound>>20)
	return Result{Figure: fig, Pass: ok && peak > 0 && peak < bound}
}

// poisonGuard makes ClickHouse refuse any block with a span of service
// "poison-svc" (18.16 has no insert limit to trip, like current versions'
// max_partitions_per_insert_block: a MATERIALIZED column that throws
// stands in for a block the table rejects).
func (e *env) poisonGuard(ctx context.Context, on bool) error {
	var n uint64
	if err := e.st.Store.Conn().QueryRow(ctx,
		"SELECT count() FROM system.columns WHERE database = currentDatabase() AND table = 'spans' AND name = 'poison_guard'").Scan(&n); err != nil {
		return err
	}
	switch {
	case on && n == 0:
		return e.st.Store.Conn().Exec(ctx, "ALTER TABLE spans ADD COLUMN poison_guard UInt8 MATERIALIZED throwIf(service_name = 'poison-svc')")
	case !on && n > 0:
		return e.st.Store.Conn().Exec(ctx, "ALTER TABLE spans DROP COLUMN poison_guard")
	}
	return nil
}

// poisonMessages: poison requests among good ones are dead-lettered; the
// good ones are stored.
func poisonMessages(ctx context.Context, e *env) Result {
	dl := bus.DeadLetters{JS: e.st.JS}
	before, _ := dl.Count(ctx, "traces")
	if err := e.poisonGuard(ctx, true); err != nil {
		return Result{Figure: err.Error()}
	}
	defer func() { _ = e.poisonGuard(ctx, false) }()
	var good []string
	for i := range 30 {
		if i%10 == 0 {
			td, _ := trace("poison-svc", 2, time.Now())
			e.st.export(ctx, e.hostile.Key, td)
		}
		td, id := trace("good", spansPerTrace, time.Now())
		if a := e.st.export(ctx, e.load.Key, td); a.status == http.StatusOK {
			good = append(good, id)
		}
	}
	lost, dup := e.st.verify(ctx, e.load.Key, good, spansPerTrace, time.Minute)
	var after uint64
	deadline := time.Now().Add(time.Minute)
	for time.Now().Before(deadline) {
		if after, _ = dl.Count(ctx, "traces"); after-before >= 3 {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	drainErr := e.st.WaitDrained(ctx, time.Minute)
	fig := fmt.Sprintf("3 poison requests among 30 good ones: dead-lettered %d, good stored %d of %d (duplicates %d), backlog drained: %v",
		after-before, len(good)-lost, len(good), dup, drainErr == nil)
	_, _ = dl.Purge(ctx, "traces")
	return Result{Figure: fig, Pass: after-before == 3 && lost == 0 && dup == 0 && len(good) == 30 && drainErr == nil}
}
