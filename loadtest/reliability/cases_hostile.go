package reliability

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// quietBaseline measures the quiet tenant alone, on a store that holds a
// month of another tenant's data (seedMonth): the reference of every
// hostile case.
func quietBaseline(ctx context.Context, e *env) Result {
	if err := seedMonth(ctx, e); err != nil {
		return Result{Figure: "seeding a month of data: " + err.Error()}
	}
	_ = e.st.WaitIdle(ctx, time.Minute)
	e.base = e.st.quietProbe(ctx, e.quiet, e.d.window)
	fig := fmt.Sprintf("quiet tenant alone for %s: ingest→query p99 %s, read p99 %s (%s; %d traces, %d reads), failures %d",
		e.d.window, ms(e.base.ingestP99()), ms(e.base.readP99()), e.base.kinds(), len(e.base.ingest), len(e.base.read), e.base.failures)
	return Result{Figure: fig, Pass: e.base.failures == 0 && len(e.base.ingest) > 0}
}

// hostileRun runs hostile for the window (in goroutines it starts; they
// must stop when ctx ends) while the quiet tenant probes, and judges the
// quiet tenant's p99s against its quiet run: within 2×.
func (e *env) hostileRun(ctx context.Context, what string, hostile func(ctx context.Context) (string, bool)) Result {
	// Each case starts from an idle stack: no backlog of the case before.
	if err := e.st.WaitIdle(ctx, 3*time.Minute); err != nil {
		return Result{Figure: "stack not idle before the case: " + err.Error()}
	}
	hctx, cancel := context.WithCancel(ctx)
	type out struct {
		fig string
		ok  bool
	}
	done := make(chan out, 1)
	go func() {
		f, ok := hostile(hctx)
		done <- out{f, ok}
	}()
	time.Sleep(500 * time.Millisecond) // let the hostile load build up
	p := e.st.quietProbe(ctx, e.quiet, e.d.window)
	cancel()
	h := <-done
	ri, rr := ratio(p.ingestP99(), e.base.ingestP99()), ratio(p.readP99(), e.base.readP99())
	fig := fmt.Sprintf("%s; quiet tenant: ingest→query p99 %s (×%.2f), read p99 %s (×%.2f; %s), failures %d",
		h.fig, ms(p.ingestP99()), ri, ms(p.readP99()), rr, p.kinds(), p.failures)
	_ = what
	within := ri <= 2 && rr <= 2
	if e.short {
		within = true // short windows: figures only (see TestReliabilityShort)
	}
	return Result{Figure: fig, Pass: h.ok && p.failures == 0 && len(p.ingest) > 0 && within}
}

func ratio(a, b time.Duration) float64 {
	if b <= 0 {
		return 0
	}
	return float64(a) / float64(b)
}

// paced calls f rate times a second until ctx ends, at most inFlight at
// once (a call due while all are busy is skipped). Hostile loads are paced
// rather than as fast as this process can send: the suite shares the
// machine with the stack, and a generator that takes all the CPU measures
// the machine, not the isolation. Each rate is a multiple of what the
// hostile tenant is allowed.
func paced(ctx context.Context, rate float64, inFlight int, f func(ctx context.Context)) {
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	sem := make(chan struct{}, inFlight)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			f(ctx)
		}()
	}
}

// codes counts answers by status.
type codes struct {
	mu sync.Mutex
	n  map[int]int
}

func (c *codes) add(status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n == nil {
		c.n = map[int]int{}
	}
	c.n[status]++
}

func (c *codes) get(status int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[status]
}

func (c *codes) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprint(c.n)
}

// hostileFlood: a tenant limited to 2000 spans/s offers 20 times that;
// it gets 429s.
func hostileFlood(ctx context.Context, e *env) Result {
	if err := e.st.SetRateLimit(ctx, e.hostile.ID, 2000); err != nil {
		return Result{Figure: err.Error()}
	}
	time.Sleep(2 * time.Second) // the gateway re-reads limits every second
	td, _ := trace("flood", 200, time.Now())
	body := protoBody(td)
	return e.hostileRun(ctx, "flood", func(ctx context.Context) (string, bool) {
		var c codes
		paced(ctx, 200, 32, func(ctx context.Context) {
			a := post(ctx, "http://"+e.st.GatewayHTTP+"/v1/traces", e.hostile.Key, "application/x-protobuf", "", body)
			if a.err == nil {
				c.add(a.status)
			}
		})
		return fmt.Sprintf("hostile tenant offers 40000 spans/s (200-span requests) at a 2000 spans/s limit: %s", c.String()),
			c.get(http.StatusTooManyRequests) > 0 && c.get(http.StatusInternalServerError) == 0
	})
}

// hostileTimestamps: requests whose spans spread over 120 past days.
func hostileTimestamps(ctx context.Context, e *env) Result {
	if err := e.st.SetRateLimit(ctx, e.hostile.ID, 0); err != nil {
		return Result{Figure: err.Error()}
	}
	return e.hostileRun(ctx, "timestamps", func(ctx context.Context) (string, bool) {
		var requests, rejected, limited, wrong atomic.Int64
		paced(ctx, 100, 16, func(ctx context.Context) {
			now := time.Now()
			td, _ := trace("spread", 120, now)
			spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
			for i := range spans.Len() {
				t := now.Add(-time.Duration(i)*24*time.Hour - time.Minute)
				spans.At(i).SetStartTimestamp(pcommon.NewTimestampFromTime(t))
				spans.At(i).SetEndTimestamp(pcommon.NewTimestampFromTime(t.Add(time.Millisecond)))
			}
			a := e.st.export(ctx, e.hostile.Key, td)
			if a.err != nil {
				return
			}
			requests.Add(1)
			if a.status == http.StatusTooManyRequests {
				limited.Add(1) // over the tenant's records/s: refused whole
				return
			}
			resp := ptraceotlp.NewExportResponse()
			if a.status != http.StatusOK || resp.UnmarshalProto(a.body) != nil || resp.PartialSuccess().RejectedSpans() != 90 {
				wrong.Add(1)
				return
			}
			rejected.Add(resp.PartialSuccess().RejectedSpans())
		})
		return fmt.Sprintf("%d requests (100/s) of 120 spans over 120 days: %d spans refused as too old, %d requests over the rate limit (429), %d other answers",
			requests.Load(), rejected.Load(), limited.Load(), wrong.Load()), requests.Load() > 0 && wrong.Load() == 0
	})
}

// hostilePoison: a tenant's rows that ClickHouse refuses, all the time.
func hostilePoison(ctx context.Context, e *env) Result {
	if err := e.poisonGuard(ctx, true); err != nil {
		return Result{Figure: err.Error()}
	}
	defer func() { _ = e.poisonGuard(ctx, false) }()
	r := e.hostileRun(ctx, "poison", func(ctx context.Context) (string, bool) {
		n := 0
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return fmt.Sprintf("%d poison requests (5/s) that ClickHouse refuses", n), n > 0
			case <-tick.C:
				td, _ := trace("poison-svc", 5, time.Now())
				if a := e.st.export(ctx, e.hostile.Key, td); a.status == http.StatusOK {
					n++
				}
			}
		}
	})
	return r
}

// hostileAuthFlood: 1000 requests a second with unknown keys.
func hostileAuthFlood(ctx context.Context, e *env) Result {
	td, _ := trace("authflood", 10, time.Now())
	body := protoBody(td)
	return e.hostileRun(ctx, "auth flood", func(ctx context.Context) (string, bool) {
		var c codes
		paced(ctx, 1000, 64, func(ctx context.Context) {
			var k [24]byte
			_, _ = rand.Read(k[:])
			a := post(ctx, "http://"+e.st.GatewayHTTP+"/v1/traces", "atk_"+hex.EncodeToString(k[:]), "application/x-protobuf", "", body)
			if a.err == nil {
				c.add(a.status)
			}
		})
		return fmt.Sprintf("unknown-key flood from one address, 1000/s: %s", c.String()),
			c.get(http.StatusOK) == 0 && c.get(http.StatusTooManyRequests)+c.get(http.StatusUnauthorized) > 0
	})
}

// grpcBombFrame is one gRPC message: size zero bytes gzip-compressed.
func grpcBombFrame(size int) []byte {
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	_, _ = zw.Write(make([]byte, size))
	_ = zw.Close()
	frame := make([]byte, 5, 5+z.Len())
	frame[0] = 1
	binary.BigEndian.PutUint32(frame[1:], uint32(z.Len()))
	return append(frame, z.Bytes()...)
}

// hostileGRPCBombs: unauthenticated gRPC exports of 15 MiB of zeros,
// gzip-compressed, 200 a second on 4 HTTP/2 connections × 8 streams.
func hostileGRPCBombs(ctx context.Context, e *env) Result {
	frame := grpcBombFrame(15 << 20)
	pid := e.st.Gateway.PID()
	_ = resetPeakRSS(pid)
	return e.hostileRun(ctx, "grpc bombs", func(ctx context.Context) (string, bool) {
		var c codes
		var wg sync.WaitGroup
		for range 4 {
			var p http.Protocols
			p.SetUnencryptedHTTP2(true)
			tr := &http.Transport{Protocols: &p, MaxConnsPerHost: 1}
			client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer tr.CloseIdleConnections()
				paced(ctx, 50, 8, func(ctx context.Context) { c.add(grpcStatus(ctx, client, e.st.GatewayGRPC, frame)) })
			}()
		}
		wg.Wait()
		peak, _ := peakRSS(pid)
		const bound = 512 << 20
		return fmt.Sprintf("unauthenticated gRPC bombs (%d KiB → 15 MiB), grpc status counts %s, gateway peak RSS %d MiB (bound %d MiB)",
			len(frame)>>10, c.String(), peak>>20, bound>>20), c.get(16) > 0 && c.get(0) == 0 && peak < bound
	})
}

// grpcStatus sends frame to the traces Export method without credentials
// and returns the grpc-status (-1 on a transport error).
func grpcStatus(ctx context.Context, c *http.Client, addr string, frame []byte) int {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost,
		"http://"+addr+"/opentelemetry.proto.collector.trace.v1.TraceService/Export", bytes.NewReader(frame))
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Grpc-Encoding", "gzip")
	req.Header.Set("Te", "trailers")
	resp, err := c.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	v := resp.Header.Get("Grpc-Status")
	if v == "" {
		v = resp.Trailer.Get("Grpc-Status")
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return -1
	}
	return n
}

// hostileHeavyReads: 16 concurrent root-cause analyses and wide searches
// of the hostile tenant (which has data of its own).
func hostileHeavyReads(ctx context.Context, e *env) Result {
	for range 50 {
		td, _ := trace("heavy", 20, time.Now().Add(-time.Minute))
		e.st.export(ctx, e.hostile.Key, td)
	}
	api := "http://" + e.st.APIAddr
	start := strconv.FormatInt(time.Now().Add(-24*time.Hour).UnixNano(), 10)
	return e.hostileRun(ctx, "heavy reads", func(ctx context.Context) (string, bool) {
		var c codes
		var retry atomic.Int64
		var i atomic.Int64
		paced(ctx, 50, 16, func(ctx context.Context) {
			var a answer
			if i.Add(1)%2 == 0 {
				a = post(ctx, api+"/api/v1/rca", e.hostile.Key, "application/json", "",
					[]byte(`{"start":"`+time.Now().Add(-30*time.Minute).UTC().Format(time.RFC3339)+`","end":"`+time.Now().UTC().Format(time.RFC3339)+`"}`))
			} else {
				a = get(ctx, api+"/api/v1/traces?"+url.Values{"start": {start}, "limit": {"1000"}}.Encode(), e.hostile.Key)
			}
			if a.err != nil {
				return
			}
			c.add(a.status)
			if a.status == http.StatusTooManyRequests && a.header.Get("Retry-After") != "" {
				retry.Add(1)
			}
		})
		return fmt.Sprintf("50/s RCA and 24 h searches, up to 16 at once: %s (429 with Retry-After %d)", c.String(), retry.Load()),
			c.get(http.StatusTooManyRequests) > 0 && int64(c.get(http.StatusTooManyRequests)) == retry.Load() &&
				c.get(http.StatusInternalServerError) == 0
	})
}

var _ = strings.Contains
