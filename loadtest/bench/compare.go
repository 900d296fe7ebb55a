package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/aftertrace/aftertrace/internal/localstack"
)

// CompareOptions configure the gateway comparison: the same telemetrygen
// load (a fixed number of traces at a fixed rate) against the aftertrace
// gateway (gateway role only, embedded JetStream persisting every request)
// and against an OpenTelemetry Collector (OTLP receiver → batch → nop),
// measuring each server's CPU per span.
type CompareOptions struct {
	AftertraceBin   string  // bin/aftertrace
	CollectorBin    string  // bin/otelcol-bench-build/otelcol-bench (make otelcol)
	CollectorConfig string  // loadtest/otelcol/config.yaml
	TelemetrygenBin string  // bin/telemetrygen
	Dir             string  // work dir (NATS store)
	Workers         int     // telemetrygen workers
	RatePerWorker   float64 // spans/s per worker
	TracesPerWorker int
	ChildSpans      int
	// Overload: a gateway whose tenant may send OverloadLimit spans/s is
	// offered OverloadFactor times that over OverloadConns connections for
	// OverloadFor (0 skips).
	OverloadLimit  float64
	OverloadFactor float64
	OverloadConns  int
	OverloadFor    time.Duration
	Out            io.Writer
}

// DefaultCompareOptions send 4 workers × 2000 traces of 10 spans at
// ~10k spans/s (telemetrygen's --rate counts spans per worker), 20 s.
func DefaultCompareOptions() CompareOptions {
	return CompareOptions{
		AftertraceBin: "bin/aftertrace", CollectorBin: "bin/otelcol-bench-build/otelcol-bench",
		CollectorConfig: "loadtest/otelcol/config.yaml", TelemetrygenBin: "bin/telemetrygen",
		Workers: 4, RatePerWorker: 2500, TracesPerWorker: 3000, ChildSpans: 9,
		OverloadLimit: 2000, OverloadFactor: 10, OverloadConns: 8, OverloadFor: 20 * time.Second, Out: os.Stdout,
	}
}

// CompareResult is one server under the comparison load.
type CompareResult struct {
	Name     string
	Spans    int64
	Elapsed  time.Duration
	CPU      float64 // server user+system seconds during the load
	PeakRSS  int64   // bytes, VmHWM
	ClientOK bool
	Note     string
}

// CPUPer1k is server CPU milliseconds per 1000 spans.
func (r CompareResult) CPUPer1k() float64 {
	if r.Spans == 0 {
		return 0
	}
	return r.CPU * 1e3 / float64(r.Spans) * 1e3
}

// Compare runs the load against both servers, one after the other, then
// the overload run if configured.
func Compare(ctx context.Context, o CompareOptions) ([]CompareResult, *OverloadResult, error) {
	rows, err := compareServers(ctx, o)
	if err != nil || o.OverloadFor <= 0 {
		return rows, nil, err
	}
	ov, err := Overload(ctx, o, o.OverloadLimit, o.OverloadFactor, o.OverloadConns, o.OverloadFor)
	if err != nil {
		return rows, nil, err
	}
	fmt.Fprintf(o.Out, "bench: overload: offered %.0f spans/s to a %.0f spans/s tenant limit (%.1f×): %d requests shed, %d accepted, peak RSS %d MiB\n",
		ov.OfferedPerSec, ov.LimitSpansPerSec, ov.Factor(), ov.ShedRequests, ov.OKRequests, ov.PeakRSS>>20)
	return rows, &ov, nil
}

func compareServers(ctx context.Context, o CompareOptions) ([]CompareResult, error) {
	for _, b := range []string{o.AftertraceBin, o.CollectorBin, o.TelemetrygenBin} {
		if _, err := os.Stat(b); err != nil {
			return nil, fmt.Errorf("compare: %w (make build otelcol telemetrygen)", err)
		}
	}
	var out []CompareResult
	for _, target := range []func(context.Context, CompareOptions) (*server, error){startGatewayOnly, startCollector} {
		srv, err := target(ctx, o)
		if err != nil {
			return out, err
		}
		r, err := loadServer(ctx, o, srv)
		srv.stop()
		if err != nil {
			return out, err
		}
		fmt.Fprintf(o.Out, "bench: compare %s: %d spans in %s, %.1f CPU ms/1000 spans, peak RSS %d MiB\n",
			r.Name, r.Spans, r.Elapsed.Round(time.Millisecond), r.CPUPer1k(), r.PeakRSS>>20)
		out = append(out, r)
	}
	return out, nil
}

type server struct {
	name     string
	cmd      *exec.Cmd
	done     chan error
	grpcAddr string
	httpAddr string   // aftertrace: /readyz
	opsAddr  string   // aftertrace: /metrics
	headers  []string // telemetrygen --otlp-header values
	logf     *os.File
}

func (s *server) stop() {
	if s.cmd.Process != nil {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.done:
		case <-time.After(15 * time.Second):
			_ = s.cmd.Process.Kill()
			<-s.done
		}
	}
	s.logf.Close()
}

func freeAddr() (string, error) {
	p, err := localstack.FreePort()
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(p), nil
}

func startProcess(ctx context.Context, name, logPath string, env []string, bin string, args ...string) (*server, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	s := &server{name: name, cmd: cmd, done: make(chan error, 1), logf: logf}
	go func() { s.done <- cmd.Wait() }()
	return s, nil
}

// waitHTTP polls u until it answers 2xx, the process exits or 60 s pass.
func (s *server) waitHTTP(ctx context.Context, u string) error {
	deadline := time.Now().Add(60 * time.Second)
	for !httpOK(ctx, u) {
		select {
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("%s exited before it was ready (%v); see %s", s.name, err, s.logf.Name())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 60s; see %s", s.name, s.logf.Name())
		}
	}
	return nil
}

func startGatewayOnly(ctx context.Context, o CompareOptions) (*server, error) {
	return startGateway(ctx, o, "aftertrace gateway", "compare")
}

// startGateway runs `aftertrace gateway` alone (embedded NATS, dev key)
// on free ports with extra flags, and waits until it is ready.
func startGateway(ctx context.Context, o CompareOptions, name, prefix string, extra ...string) (*server, error) {
	addrs, err := freeAddrs(4)
	if err != nil {
		return nil, err
	}
	natsPort := addrs[2][strings.LastIndexByte(addrs[2], ':')+1:]
	args := append([]string{"gateway", "--log-level", "warn", "--migrate=false",
		"--nats-store-dir", filepath.Join(o.Dir, prefix+"-nats"), "--nats-host", "127.0.0.1", "--nats-port", natsPort,
		"--grpc-addr", addrs[0], "--http-addr", addrs[1], "--ops-addr", addrs[3], "--dev-api-key", benchKey}, extra...)
	s, err := startProcess(ctx, name, filepath.Join(o.Dir, prefix+"-gateway.log"), nil, o.AftertraceBin, args...)
	if err != nil {
		return nil, err
	}
	s.grpcAddr, s.httpAddr, s.opsAddr = addrs[0], addrs[1], addrs[3]
	s.headers = []string{`Authorization="Bearer ` + benchKey + `"`}
	if err := s.waitHTTP(ctx, "http://"+addrs[1]+"/readyz"); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func freeAddrs(n int) ([]string, error) {
	out := make([]string, n)
	for i := range out {
		a, err := freeAddr()
		if err != nil {
			return nil, err
		}
		out[i] = a
	}
	return out, nil
}

func startCollector(ctx context.Context, o CompareOptions) (*server, error) {
	addrs, err := freeAddrs(2)
	if err != nil {
		return nil, err
	}
	s, err := startProcess(ctx, "otelcol v0.161.0 (otlp → batch → nop)", filepath.Join(o.Dir, "compare-otelcol.log"),
		[]string{"OTELCOL_GRPC_ENDPOINT=" + addrs[0], "OTELCOL_HTTP_ENDPOINT=" + addrs[1]},
		o.CollectorBin, "--config", o.CollectorConfig)
	if err != nil {
		return nil, err
	}
	s.grpcAddr = addrs[0]
	// The collector has no readiness endpoint in this pipeline: wait for
	// its gRPC port to accept connections.
	deadline := time.Now().Add(60 * time.Second)
	for !tcpOpen(addrs[0]) {
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("otelcol not listening after 60s; see %s", s.logf.Name())
		}
		select {
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return s, nil
}

func loadServer(ctx context.Context, o CompareOptions, s *server) (CompareResult, error) {
	r := CompareResult{Name: s.name}
	args := []string{"traces", "--otlp-endpoint", s.grpcAddr, "--otlp-insecure",
		"--workers", strconv.Itoa(o.Workers), "--rate", strconv.FormatFloat(o.RatePerWorker, 'f', -1, 64),
		"--traces", strconv.Itoa(o.TracesPerWorker), "--child-spans", strconv.Itoa(o.ChildSpans)}
	for _, h := range s.headers {
		args = append(args, "--otlp-header", h)
	}
	pid := s.cmd.Process.Pid
	cpu0 := procCPU(pid)
	start := time.Now()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, o.TelemetrygenBin, args...)
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	err := cmd.Run()
	r.Elapsed = time.Since(start)
	r.CPU = procCPU(pid) - cpu0
	r.PeakRSS = peakRSS(pid)
	r.Spans = int64(o.Workers) * int64(o.TracesPerWorker) * int64(o.ChildSpans+1)
	// telemetrygen exits 0 even when exports fail; it logs them.
	r.ClientOK = err == nil && !bytes.Contains(stderr.Bytes(), []byte("failed to export")) &&
		!bytes.Contains(stderr.Bytes(), []byte("Exporting failed"))
	if !r.ClientOK {
		tail := stderr.String()
		if len(tail) > 500 {
			tail = tail[len(tail)-500:]
		}
		r.Note = "telemetrygen reported errors: " + strings.TrimSpace(tail)
	}
	if err != nil && ctx.Err() != nil {
		return r, ctx.Err()
	}
	return r, nil
}

func tcpOpen(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// peakRSS is VmHWM of pid in bytes, or 0.
func peakRSS(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}
