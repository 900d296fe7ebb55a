package apperr

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"

	"github.com/ClickHouse/clickhouse-go/v2"
)

// Permanent marks err as one that retrying cannot fix (bad data, schema
// mismatch). Workers dead-letter such messages instead of retrying forever.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err}
}

type permanentError struct{ err error }

func (p *permanentError) Error() string { return p.err.Error() }
func (p *permanentError) Unwrap() error { return p.err }

// clickhouse exception codes that a retry cannot fix: bad data or schema.
var permanentCHCodes = map[int32]bool{
	6: true, 16: true, 26: true, 27: true, 32: true, 33: true, 38: true, 41: true, 43: true, 44: true,
	47: true, 53: true, 60: true, 62: true, 69: true, 70: true, 72: true, 81: true, 117: true,
}

// Retryable reports whether an operation that failed with err may succeed
// when tried again later: network trouble, timeouts and server overload are
// retryable; invalid data and marked permanent errors are not.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	var p *permanentError
	if errors.As(err, &p) {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		switch e.Kind {
		case KindUnavailable, KindTimeout, KindRateLimited, KindInternal:
			return true
		default:
			return false
		}
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		return !permanentCHCodes[ex.Code]
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	// Unknown failures are retried: losing data is worse than waiting.
	return true
}
