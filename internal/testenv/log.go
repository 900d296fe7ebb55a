package testenv

import (
	"io"
	"log/slog"
	"os"
)

// verboseEnv, when set to anything, logs server starts and stops to stderr,
// with timings; useful when a CI run is slow or a server will not start.
const verboseEnv = "TESTENV_VERBOSE"

func logger() *slog.Logger {
	if os.Getenv(verboseEnv) == "" {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, nil)).With("pkg", "testenv")
}
