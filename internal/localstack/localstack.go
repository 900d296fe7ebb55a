// Package localstack runs ClickHouse and Postgres as child processes of the
// current process, each with a private data directory and loopback ports.
// It backs `aftertrace run --stack-dir` (data kept across restarts) and the
// integration-test harness in internal/testenv (temp dirs, free ports).
//
// The servers are children started with exec.Cmd: their output goes to log
// files in their directory, and they get a parent-death signal so they do
// not outlive a killed parent. Linux only.
package localstack

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"syscall"
	"time"
)

// ErrAddrInUse is wrapped by start errors caused by a port already taken, so
// callers that picked free ports can retry with new ones.
var ErrAddrInUse = errors.New("address already in use")

const (
	defaultHost         = "127.0.0.1"
	defaultStartTimeout = 60 * time.Second
	// stopGrace bounds a Stop whose ctx has no deadline.
	stopGrace    = 30 * time.Second
	pollInterval = 50 * time.Millisecond
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", defaultHost+":0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// checkPortFree fails early, with a clear message, when host:port is taken;
// otherwise the server would only say so in its log.
func checkPortFree(host string, port int) error {
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	l, err := net.Listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("port %s: %w", addr, ErrAddrInUse)
	}
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	return l.Close()
}

func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return l
}
