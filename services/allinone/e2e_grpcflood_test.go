package allinone

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/aftertrace/aftertrace/internal/testenv"
)

const exportTracesMethod = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"

// gzipBombFrame is one gRPC length-prefixed message: size zero bytes,
// gzip-compressed (some 16 KiB on the wire for 16 MiB).
func gzipBombFrame(t *testing.T, size int) []byte {
	t.Helper()
	var z bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&z, gzip.BestCompression)
	if _, err := zw.Write(make([]byte, size)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	frame := make([]byte, 5, 5+z.Len())
	frame[0] = 1 // compressed with grpc-encoding
	binary.BigEndian.PutUint32(frame[1:], uint32(z.Len()))
	return append(frame, z.Bytes()...)
}

// rawGRPCConn is one plain-text HTTP/2 connection sending pre-encoded gRPC
// frames: the grpc client would compress every message itself and so
// allocate the inflated size in this (the measured) process. closeConns
// closes what it dialled, busy or not.
func rawGRPCConn() (c *http.Client, closeConns func()) {
	var (
		mu    sync.Mutex
		conns []net.Conn
	)
	d := &net.Dialer{Timeout: 5 * time.Second}
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p, MaxConnsPerHost: 1,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := d.DialContext(ctx, network, addr)
			if err == nil {
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
			return c, err
		}}
	return &http.Client{Transport: tr, Timeout: time.Minute}, func() {
		tr.CloseIdleConnections()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	}
}

// rawExport sends frame to the traces Export method and returns the gRPC
// status of the answer.
func rawExport(ctx context.Context, c *http.Client, addr, key string, frame []byte) (codes.Code, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+exportTracesMethod, bytes.NewReader(frame))
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
	v := resp.Header.Get("Grpc-Status") // trailers-only answer
	if v == "" {
		v = resp.Trailer.Get("Grpc-Status")
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("answer without grpc-status (HTTP %d)", resp.StatusCode)
	}
	return codes.Code(n), nil
}

// heapWatch samples the heap in use every few milliseconds until stopped.
type heapWatch struct {
	base, peak uint64
	alloc0     uint64
	stop, done chan struct{}
}

func watchHeap() *heapWatch {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w := &heapWatch{base: ms.HeapInuse, peak: ms.HeapInuse, alloc0: ms.TotalAlloc, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
				runtime.ReadMemStats(&ms)
				w.peak = max(w.peak, ms.HeapInuse)
			}
		}
	}()
	return w
}

// end stops sampling and returns the peak growth of the heap in use and
// the bytes allocated meanwhile.
func (w *heapWatch) end() (growth, allocated uint64) {
	close(w.stop)
	<-w.done
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return w.peak - w.base, ms.TotalAlloc - w.alloc0
}

// TestGRPCFloodWithoutCredentials is case 5 of issue #15 end to end: 8
// connections × 16 concurrent OTLP/gRPC exports, each 16 MiB of zeros
// gzip-compressed, without a key and then with unknown keys, against the
// running app with Postgres-backed keys. Every call is refused
// (Unauthenticated; unknown keys over the address's failure budget
// ResourceExhausted) before its message is read: the process's heap grows
// by far less than one inflated message per call. Connections over
// GRPCMaxConnections are closed unserved, and the valid tenant is served
// throughout.
func TestGRPCFloodWithoutCredentials(t *testing.T) {
	const (
		conns     = 8
		streams   = 16
		inflated  = 16<<20 - 1<<10 // within MaxRequestBytes, so only the key can refuse it
		maxGrowth = 64 << 20
		maxAlloc  = 256 << 20 // the flood inflated unread would allocate 2 GiB
		maxConns  = conns + 4
	)
	env := testenv.Get(t)
	reg := prometheus.NewRegistry()
	app := startApp(t, env, env.ClickHouseAddr, appOptions{
		cfg:  func(c *Config) { c.Gateway.GRPCMaxConnections = maxConns },
		deps: func(d *Deps) { d.Registry = reg },
	})
	addr := app.Gateway.GRPCAddr()
	frame := gzipBombFrame(t, inflated)

	valid, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = valid.Close() }()
	exportValid := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_, err := ptraceotlp.NewGRPCClient(valid).Export(metadataWithKey(ctx, testKey),
			ptraceotlp.NewExportRequestFromTraces(makeTrace(newTraceID(), 1, "valid")))
		return err
	}
	if err := exportValid(); err != nil {
		t.Fatalf("valid export before the flood: %v", err)
	}

	flood := func(t *testing.T, key func(i int) string) map[codes.Code]int {
		t.Helper()
		clients := make([]*http.Client, conns)
		for i := range clients {
			var closeConns func()
			clients[i], closeConns = rawGRPCConn()
			defer closeConns()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var (
			wg     sync.WaitGroup
			mu     sync.Mutex
			byCode = map[codes.Code]int{}
			errs   []error
		)
		heap := watchHeap()
		for c, client := range clients {
			for s := range streams {
				wg.Go(func() {
					code, err := rawExport(ctx, client, addr, key(c*streams+s), frame)
					mu.Lock()
					defer mu.Unlock()
					if err != nil {
						errs = append(errs, err)
						return
					}
					byCode[code]++
				})
			}
		}
		var validErr error
		wg.Go(func() { validErr = exportValid() }) // the valid tenant meanwhile
		wg.Wait()
		growth, allocated := heap.end()
		t.Logf("%d calls of %d MiB inflated (%d bytes sent each): %v; heap in use +%.1f MiB at peak, %.1f MiB allocated",
			conns*streams, inflated>>20, len(frame), byCode, float64(growth)/(1<<20), float64(allocated)/(1<<20))
		if len(errs) > 0 {
			t.Fatalf("%d calls failed, first: %v", len(errs), errs[0])
		}
		if validErr != nil {
			t.Errorf("valid export during the flood: %v", validErr)
		}
		if growth > maxGrowth || allocated > maxAlloc {
			t.Errorf("the flood grew the heap by %.1f MiB and allocated %.1f MiB, want < %d and < %d MiB: messages were read before the key was checked",
				float64(growth)/(1<<20), float64(allocated)/(1<<20), maxGrowth>>20, maxAlloc>>20)
		}
		return byCode
	}

	t.Run("no key", func(t *testing.T) {
		before := counterWith(t, reg, "aftertrace_gateway_rejected_total", map[string]string{"transport": "grpc", "reason": "unauthenticated"})
		byCode := flood(t, func(int) string { return "" })
		if byCode[codes.Unauthenticated] != conns*streams {
			t.Errorf("answers %v, want %d × Unauthenticated", byCode, conns*streams)
		}
		if n := counterWith(t, reg, "aftertrace_gateway_rejected_total", map[string]string{"transport": "grpc", "reason": "unauthenticated"}) - before; n != conns*streams {
			t.Errorf("rejected_total{grpc,unauthenticated} += %v, want %d", n, conns*streams)
		}
	})

	t.Run("unknown keys", func(t *testing.T) {
		lookups := func() float64 { return counterWith(t, reg, "aftertrace_auth_key_lookups_total", nil) }
		before := lookups()
		start := time.Now()
		byCode := flood(t, func(i int) string { return fmt.Sprintf("atk_flood-%d-%d", time.Now().UnixNano(), i) })
		if byCode[codes.Unauthenticated]+byCode[codes.ResourceExhausted] != conns*streams {
			t.Errorf("answers %v, want only Unauthenticated and ResourceExhausted", byCode)
		}
		// Default budget: a burst of 20 failures, then 10/s, from 127.0.0.1.
		if n, limit := lookups()-before, 20+10*time.Since(start).Seconds()+1; n > limit {
			t.Errorf("%v Postgres lookups for the flood, want at most %.0f", n, limit)
		}
	})

	t.Run("connection cap", func(t *testing.T) {
		rejected := func() float64 {
			return counterWith(t, reg, "aftertrace_gateway_connections_rejected_total", map[string]string{"transport": "grpc"})
		}
		// The valid client holds one connection; fill the others (once the
		// flood's connections are gone).
		var held []net.Conn
		defer func() {
			for _, c := range held {
				_ = c.Close()
			}
		}()
		preface := []byte("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00") // an empty SETTINGS frame
		open := func() (net.Conn, bool) {
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = c.Write(preface)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			var hdr [9]byte // the server's SETTINGS frame: served
			_, err = io.ReadFull(c, hdr[:])
			_ = c.SetReadDeadline(time.Time{})
			return c, err == nil && hdr[3] == 0x4
		}
		for len(held) < maxConns-1 {
			waitFor(t, 10*time.Second, fmt.Sprintf("connection %d of %d served", len(held)+2, maxConns), func() bool {
				c, served := open()
				if !served {
					_ = c.Close()
					return false
				}
				held = append(held, c)
				return true
			})
		}
		before := rejected()
		c, served := open()
		held = append(held, c)
		if served {
			t.Fatalf("connection %d over GRPCMaxConnections = %d was served", maxConns+1, maxConns)
		}
		waitFor(t, 10*time.Second, "connections_rejected_total += 1", func() bool { return rejected()-before == 1 })
		if err := exportValid(); err != nil {
			t.Errorf("valid export on its connection at the cap: %v", err)
		}
		// A slot freed is a connection served.
		_ = held[0].Close()
		held = held[1:]
		waitFor(t, 10*time.Second, "a freed slot", func() bool {
			c, served := open()
			held = append(held, c)
			return served
		})
	})
}
