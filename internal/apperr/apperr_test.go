package apperr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
)

func TestStatusMapping(t *testing.T) {
	cases := []struct {
		err  error
		http int
		grpc codes.Code
		code string
	}{
		{New(KindInvalid, "bad"), 400, codes.InvalidArgument, "invalid_argument"},
		{Invalid("traceId", "must be hex"), 400, codes.InvalidArgument, "invalid_argument"},
		{New(KindUnauthenticated, "who"), 401, codes.Unauthenticated, "unauthenticated"},
		{New(KindNotFound, "gone"), 404, codes.NotFound, "not_found"},
		{New(KindMethodNotAllowed, "no"), 405, codes.Unimplemented, "method_not_allowed"},
		{New(KindTooLarge, "big"), 413, codes.ResourceExhausted, "too_large"},
		{New(KindUnsupportedMedia, "type"), 415, codes.InvalidArgument, "unsupported_media_type"},
		{New(KindRateLimited, "slow down"), 429, codes.ResourceExhausted, "rate_limited"},
		{Unavailable(errors.New("nats down"), "retry", 2*time.Second), 503, codes.Unavailable, "unavailable"},
		{fmt.Errorf("wrapped: %w", context.DeadlineExceeded), 504, codes.DeadlineExceeded, "timeout"},
		{errors.New("secret internal detail"), 500, codes.Internal, "internal"},
	}
	for _, tc := range cases {
		t.Run(tc.code+"/"+tc.err.Error(), func(t *testing.T) {
			if got := HTTPStatus(tc.err); got != tc.http {
				t.Errorf("HTTP %d, want %d", got, tc.http)
			}
			if got := GRPCStatus(tc.err).Code(); got != tc.grpc {
				t.Errorf("gRPC %v, want %v", got, tc.grpc)
			}
			rec := httptest.NewRecorder()
			WriteHTTP(rec, tc.err)
			var body Body
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body.String(), err)
			}
			if body.Error.Code != tc.code {
				t.Errorf("code %q, want %q", body.Error.Code, tc.code)
			}
			if tc.http == 500 && body.Error.Message != "internal error" {
				t.Errorf("internal detail leaked: %q", body.Error.Message)
			}
			retryable := tc.http == 429 || tc.http == 503
			if (rec.Header().Get("Retry-After") != "") != retryable {
				t.Errorf("Retry-After %q for %d", rec.Header().Get("Retry-After"), tc.http)
			}
		})
	}
}

func TestGRPCRetryInfo(t *testing.T) {
	st := GRPCStatus(Unavailable(errors.New("x"), "retry later", 3*time.Second))
	found := false
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			found = true
			if ri.GetRetryDelay().AsDuration() != 3*time.Second {
				t.Errorf("delay %v", ri.GetRetryDelay().AsDuration())
			}
		}
	}
	if !found {
		t.Error("no RetryInfo on UNAVAILABLE")
	}
}

func TestRetryable(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"permanent", Permanent(errors.New("bad data")), false},
		{"wrapped permanent", fmt.Errorf("insert: %w", Permanent(errors.New("bad"))), false},
		{"invalid", Invalid("x", "bad"), false},
		{"unavailable", Unavailable(nil, "down", 0), true},
		{"connection refused", &net.OpError{Op: "dial", Err: errors.New("refused")}, true},
		{"eof", fmt.Errorf("read: %w", io.EOF), true},
		{"clickhouse type mismatch", &clickhouse.Exception{Code: 53}, false},
		{"clickhouse too many parts (merges behind)", &clickhouse.Exception{Code: 252, Message: "Too many parts (300). Merges are processing significantly slower than inserts"}, true},
		{"clickhouse too many partitions in one insert", &clickhouse.Exception{Code: 252, Message: "Too many partitions for single INSERT block (more than 100)."}, false},
		{"clickhouse memory", &clickhouse.Exception{Code: 241}, true},
		{"clickhouse unknown code", &clickhouse.Exception{Code: 9999}, false},
		{"internal error of ours", Wrap(KindInternal, errors.New("bug"), "x"), false},
		{"deadline", fmt.Errorf("insert: %w", context.DeadlineExceeded), true},
		{"unknown", errors.New("something"), false},
	}
	for _, tc := range cases {
		if got := Retryable(tc.err); got != tc.want {
			t.Errorf("%s: Retryable = %v, want %v", tc.name, got, tc.want)
		}
	}
	if Retryable(nil) {
		t.Error("nil is retryable")
	}
}

func TestWriteHTTPIsJSON(t *testing.T) {
	rec := httptest.NewRecorder()
	WriteHTTP(rec, Invalid("limit", "must be between 1 and 1000"))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	if rec.Code != http.StatusBadRequest {
		t.Errorf("status %d", rec.Code)
	}
	var b Body
	_ = json.Unmarshal(rec.Body.Bytes(), &b)
	if b.Error.Message != "limit: must be between 1 and 1000" {
		t.Errorf("message %q does not name the field", b.Error.Message)
	}
}
