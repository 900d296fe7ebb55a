package apperr

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
)

var httpStatus = map[Kind]int{
	KindInternal:         http.StatusInternalServerError,
	KindInvalid:          http.StatusBadRequest,
	KindUnauthenticated:  http.StatusUnauthorized,
	KindNotFound:         http.StatusNotFound,
	KindTooLarge:         http.StatusRequestEntityTooLarge,
	KindUnsupportedMedia: http.StatusUnsupportedMediaType,
	KindRateLimited:      http.StatusTooManyRequests,
	KindUnavailable:      http.StatusServiceUnavailable,
	KindTimeout:          http.StatusGatewayTimeout,
	KindMethodNotAllowed: http.StatusMethodNotAllowed,
	KindConflict:         http.StatusConflict,
}

var grpcCode = map[Kind]codes.Code{
	KindInternal:         codes.Internal,
	KindInvalid:          codes.InvalidArgument,
	KindUnauthenticated:  codes.Unauthenticated,
	KindNotFound:         codes.NotFound,
	KindTooLarge:         codes.ResourceExhausted,
	KindUnsupportedMedia: codes.InvalidArgument,
	KindRateLimited:      codes.ResourceExhausted,
	KindUnavailable:      codes.Unavailable,
	KindTimeout:          codes.DeadlineExceeded,
	KindMethodNotAllowed: codes.Unimplemented,
	KindConflict:         codes.AlreadyExists,
}

// DefaultRetryAfter is the hint sent with retryable answers that carry none.
const DefaultRetryAfter = time.Second

// HTTPStatus maps err to an HTTP status code.
func HTTPStatus(err error) int { return httpStatus[KindOf(err)] }

// Body is the JSON error envelope of every HTTP error answer.
type Body struct {
	Error BodyError `json:"error"`
}

// BodyError is the inside of Body.
type BodyError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// WriteHTTP writes err as a JSON error answer with the right status and,
// for retryable kinds, a Retry-After header.
func WriteHTTP(w http.ResponseWriter, err error) {
	k := KindOf(err)
	if k == KindUnavailable || k == KindRateLimited {
		secs := int(RetryAfter(err, DefaultRetryAfter).Round(time.Second) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpStatus[k])
	_ = json.NewEncoder(w).Encode(Body{Error: BodyError{Code: k.String(), Message: PublicMessage(err)}})
}

// GRPCStatus maps err to a gRPC status; retryable kinds carry RetryInfo as
// the OTLP specification asks.
func GRPCStatus(err error) *status.Status {
	k := KindOf(err)
	st := status.New(grpcCode[k], PublicMessage(err))
	if k == KindUnavailable || k == KindRateLimited {
		if d, derr := st.WithDetails(&errdetails.RetryInfo{
			RetryDelay: durationpb.New(RetryAfter(err, DefaultRetryAfter)),
		}); derr == nil {
			return d
		}
	}
	return st
}
