package apperr

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
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

// Class says what a failure of work on some data means for that work.
type Class int

const (
	// Transient: the store or the network failed, not the data (a server
	// down, a timeout, overload). The same work is retried as it is, for as
	// long as it takes: nothing is dropped while a dependency is away.
	Transient Class = iota
	// DataDependent: the failure may come from the data itself (a value a
	// table rejects, an insert spanning too many partitions, an error
	// nobody classified). Work mixing many messages is split until the
	// message that fails is alone; that one is redelivered a bounded number
	// of times, then dead-lettered — it never holds back the others.
	DataDependent
)

// transientCHCodes are ClickHouse exception codes of a server that cannot
// do the work now, whatever the data: overload, timeouts, read-only or
// quorum trouble, memory, disk space, lost connections.
var transientCHCodes = map[int32]bool{
	159:  true, // TIMEOUT_EXCEEDED
	164:  true, // READONLY
	202:  true, // TOO_MANY_SIMULTANEOUS_QUERIES
	203:  true, // NO_FREE_CONNECTION
	209:  true, // SOCKET_TIMEOUT
	210:  true, // NETWORK_ERROR
	225:  true, // NO_ZOOKEEPER
	236:  true, // ABORTED
	241:  true, // MEMORY_LIMIT_EXCEEDED
	242:  true, // TABLE_IS_READ_ONLY
	243:  true, // NOT_ENOUGH_SPACE
	252:  true, // TOO_MANY_PARTS (merges behind inserts) — but see partitionsPerInsert
	279:  true, // ALL_CONNECTION_TRIES_FAILED
	285:  true, // TOO_FEW_LIVE_REPLICAS
	286:  true, // UNSATISFIED_QUORUM_FOR_PREVIOUS_WRITE
	319:  true, // UNKNOWN_STATUS_OF_INSERT
	394:  true, // QUERY_WAS_CANCELLED
	425:  true, // SYSTEM_ERROR
	999:  true, // KEEPER_EXCEPTION
	1000: true, // POCO_EXCEPTION (network)
}

// partitionsPerInsert is the message ClickHouse gives, under code 252,
// when one insert spans more partitions than max_partitions_per_insert_block:
// that depends on the rows, not on the server's state.
const partitionsPerInsert = "partitions for single insert block"

// Classify decides, in this one place, whether a failure is the store's
// (Transient) or possibly the data's (DataDependent).
func Classify(err error) Class {
	if err == nil {
		return Transient
	}
	var p *permanentError
	if errors.As(err, &p) {
		return DataDependent
	}
	var e *Error
	if errors.As(err, &e) {
		switch e.Kind {
		case KindUnavailable, KindTimeout, KindRateLimited:
			return Transient
		default:
			return DataDependent
		}
	}
	var ex *clickhouse.Exception
	if errors.As(err, &ex) {
		if ex.Code == 252 && strings.Contains(strings.ToLower(ex.Message), partitionsPerInsert) {
			return DataDependent
		}
		if transientCHCodes[ex.Code] {
			return Transient
		}
		return DataDependent
	}
	var ne net.Error
	if errors.As(err, &ne) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, context.DeadlineExceeded) || errors.Is(err, net.ErrClosed) {
		return Transient
	}
	// Unclassified failures are isolated and, if they follow one message,
	// dead-lettered after bounded redelivery: a dead letter can be
	// replayed, a stuck queue blocks every tenant.
	return DataDependent
}

// Retryable reports whether an operation that failed with err may succeed
// when tried again as it is (Classify says Transient).
func Retryable(err error) bool {
	return err != nil && Classify(err) == Transient
}
