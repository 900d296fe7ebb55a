// Package apperr is the one place where errors are classified: by kind
// (what went wrong, for the caller), by retryability (for workers), and
// mapped to HTTP and gRPC status.
package apperr

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Kind says what went wrong in terms a client can act on.
type Kind int

const (
	KindInternal         Kind = iota // a bug or an unexpected failure: 500
	KindInvalid                      // malformed input: 400
	KindUnauthenticated              // missing or bad credential: 401
	KindNotFound                     // unknown or not visible to this tenant: 404
	KindTooLarge                     // body or result over a limit: 413
	KindUnsupportedMedia             // wrong content type: 415
	KindRateLimited                  // over a rate limit: 429
	KindUnavailable                  // a dependency is down; retry later: 503
	KindTimeout                      // took too long: 504
	KindMethodNotAllowed             // wrong HTTP method: 405
	KindConflict                     // clashes with existing state (e.g. a taken name): 409
)

var kindCodes = map[Kind]string{
	KindInternal:         "internal",
	KindInvalid:          "invalid_argument",
	KindUnauthenticated:  "unauthenticated",
	KindNotFound:         "not_found",
	KindTooLarge:         "too_large",
	KindUnsupportedMedia: "unsupported_media_type",
	KindRateLimited:      "rate_limited",
	KindUnavailable:      "unavailable",
	KindTimeout:          "timeout",
	KindMethodNotAllowed: "method_not_allowed",
	KindConflict:         "conflict",
}

// String returns the stable, machine-readable code of the kind.
func (k Kind) String() string { return kindCodes[k] }

// Error is an error with a kind and a message that is safe to show clients.
type Error struct {
	Kind       Kind
	Message    string        // shown to the client
	Field      string        // the offending input field, if any
	RetryAfter time.Duration // a hint for KindUnavailable / KindRateLimited
	Err        error         // the cause, logged but not shown
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// New returns an error of kind k with a client-facing message.
func New(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an error of kind k whose client-facing message is msg and
// whose cause is err.
func Wrap(k Kind, err error, msg string) *Error {
	return &Error{Kind: k, Message: msg, Err: err}
}

// Invalid reports a bad value of a named input field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Kind: KindInvalid, Field: field, Message: field + ": " + fmt.Sprintf(format, args...)}
}

// Unavailable reports a dependency that is down, with a retry hint.
func Unavailable(err error, msg string, retryAfter time.Duration) *Error {
	return &Error{Kind: KindUnavailable, Message: msg, Err: err, RetryAfter: retryAfter}
}

// KindOf returns the kind of err; unknown errors are internal, and context
// errors are timeouts/unavailable.
func KindOf(err error) Kind {
	var e *Error
	switch {
	case err == nil:
		return KindInternal
	case errors.As(err, &e):
		return e.Kind
	case errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	case errors.Is(err, context.Canceled):
		return KindUnavailable
	}
	return KindInternal
}

// PublicMessage returns the message a client may see for err: the message
// of an *Error, or a generic text for anything else (which may carry
// internal details).
func PublicMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	switch KindOf(err) {
	case KindTimeout:
		return "the request timed out"
	case KindUnavailable:
		return "service unavailable, retry later"
	}
	return "internal error"
}

// RetryAfter returns the retry hint carried by err, or def.
func RetryAfter(err error, def time.Duration) time.Duration {
	var e *Error
	if errors.As(err, &e) && e.RetryAfter > 0 {
		return e.RetryAfter
	}
	return def
}
