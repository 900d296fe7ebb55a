package gateway

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc/codes"
)

// grpcGzipBomb is a gRPC length-prefixed message: size zero bytes,
// gzip-compressed (a few KiB on the wire).
func grpcGzipBomb(t testing.TB, size int) []byte {
	t.Helper()
	var z bytes.Buffer
	zw := gzip.NewWriter(&z)
	if _, err := zw.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 5, 5+z.Len())
	frame[0] = 1 // compressed
	binary.BigEndian.PutUint32(frame[1:], uint32(z.Len()))
	return append(frame, z.Bytes()...)
}

// recentTraces is sampleTraces(n) timed now.
func recentTraces(n int) ptrace.Traces {
	td := sampleTraces(n)
	spans := td.ResourceSpans().At(0).ScopeSpans().At(0).Spans()
	now := time.Now()
	for i := range spans.Len() {
		spans.At(i).SetStartTimestamp(pcommon.NewTimestampFromTime(now.Add(-time.Second)))
		spans.At(i).SetEndTimestamp(pcommon.NewTimestampFromTime(now))
	}
	return td
}

// h2cClient is a plain-text HTTP/2 client with its own connection pool,
// for sending raw gRPC frames the grpc client would have to compress
// itself (and so allocate in this process).
func h2cClient() *http.Client {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: &http.Transport{Protocols: &p}, Timeout: 20 * time.Second}
}

// rawExport posts one gRPC message to the traces Export method and returns
// the gRPC status code of the answer.
func rawExport(ctx context.Context, c *http.Client, addr, key string, frame []byte) (codes.Code, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		"http://"+addr+tracesSignal.grpcMethod, bytes.NewReader(frame))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/grpc")
	req.Header.Set("Grpc-Encoding", "gzip")
	req.Header.Set("Te", "trailers")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, resp.Body)
	v := resp.Header.Get("Grpc-Status") // a trailers-only answer
	if v == "" {
		v = resp.Trailer.Get("Grpc-Status")
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("answer without grpc-status (HTTP %d)", resp.StatusCode)
	}
	return codes.Code(n), nil
}

// TestGRPCUnauthenticatedBombIsNotRead is the reproduction of the issue:
// many unauthenticated Export calls, each a 16 MiB gzip bomb, on a few
// connections. Every one is answered Unauthenticated, and the gateway
// allocates far less than one inflated message for all of them together:
// the key is checked before the message is read.
func TestGRPCUnauthenticatedBombIsNotRead(t *testing.T) {
	const (
		conns    = 4
		streams  = 16 // concurrent calls per connection
		bombSize = 16<<20 - 64
		budget   = 8 << 20 // bytes the whole flood may allocate
	)
	g := startGateway(t, func(c *Config) { c.MaxRequestBytes = 16 << 20 })
	frame := grpcGzipBomb(t, bombSize)
	clients := make([]*http.Client, conns)
	for i := range clients {
		clients[i] = h2cClient()
		defer clients[i].CloseIdleConnections()
	}
	before := g.rejected(transportGRPC, reasonUnauthenticated)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var start, end runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&start)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		codes = map[codes.Code]int{}
		errs  []error
	)
	for _, c := range clients {
		for range streams {
			wg.Go(func() {
				code, err := rawExport(ctx, c, g.svc.GRPCAddr(), "", frame)
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					errs = append(errs, err)
					return
				}
				codes[code]++
			})
		}
	}
	wg.Wait()
	runtime.ReadMemStats(&end)

	if len(errs) > 0 {
		t.Fatalf("%d calls failed, first: %v", len(errs), errs[0])
	}
	if n := codes[16]; n != conns*streams || len(codes) != 1 {
		t.Errorf("answers by code %v, want %d × Unauthenticated", codes, conns*streams)
	}
	alloc := end.TotalAlloc - start.TotalAlloc
	t.Logf("%d unauthenticated bombs of %.0f MiB (%d bytes on the wire each): %.1f MiB allocated",
		conns*streams, float64(bombSize)/(1<<20), len(frame), float64(alloc)/(1<<20))
	if alloc > budget {
		t.Errorf("the flood allocated %.1f MiB, want < %d MiB: unauthenticated messages were read",
			float64(alloc)/(1<<20), budget>>20)
	}
	waitFor(t, func() bool { return g.rejected(transportGRPC, reasonUnauthenticated)-before == conns*streams },
		"rejected_total{reason=unauthenticated} += %d", conns*streams)

	// The valid tenant is served on the same gateway afterwards.
	if _, err := exportGRPC(dialGRPC(t, g), testKey, recentTraces(1)); err != nil {
		t.Fatalf("authenticated export after the flood: %v", err)
	}
}
