package gateway

import (
	"compress/gzip"
	"errors"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/authn"
)

// httpHandler serves POST <sig.httpPath> for one signal.
func httpHandler[R any](s *Service, sig *signal[R]) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		x := &httpExchange{s: s, w: w, r: r, signal: sig.name, enc: encJSON}

		if r.Method != http.MethodPost {
			x.rejectMethod()
			return
		}
		enc, err := parseContentType(r.Header.Get("Content-Type"))
		if err != nil {
			x.reject(reasonBadContentType, err)
			return
		}
		x.enc = enc // from here on, errors are answered in the request's encoding
		gz, err := parseContentEncoding(r.Header.Get("Content-Encoding"))
		if err != nil {
			x.reject(reasonBadEncoding, err)
			return
		}
		tenant, body, done, ok := x.admit(gz)
		if !ok {
			return
		}
		defer done()
		size := len(body)
		res, reason, err := receive(r.Context(), s, sig, tenant.ID, body, enc, size)
		if err != nil {
			x.reject(reason, err)
			return
		}
		resp, err := sig.response(enc, res.rejected, res.msg)
		if err != nil {
			x.reject(reasonPublishFailed, apperr.Wrap(apperr.KindInternal, err, "encoding the export response"))
			return
		}
		w.Header().Set("Content-Type", enc.contentType())
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(resp)
		s.metrics.requests.WithLabelValues(sig.name, transportHTTP, "200").Inc()
		s.logAccepted(r.Context(), sig.name, transportHTTP, tenant.ID, res, size, start)
	})
}

// httpExchange is one OTLP/HTTP request being answered.
type httpExchange struct {
	s      *Service
	w      http.ResponseWriter
	r      *http.Request
	signal string
	enc    encoding // of error answers: JSON until the Content-Type is known
	tenant string
}

// reject answers err, counts the request and the reason, and logs it.
func (x *httpExchange) reject(reason string, err error) {
	code := writeHTTPError(x.w, err, x.enc)
	x.count(code, reason)
	x.s.logReject(x.r.Context(), x.signal, transportHTTP, reason, x.tenant, err)
}

// admit does what every ingest request goes through before its body is
// decoded: the tenant's key, a slot of the gateway's gate, the body (as
// sent and, with gz, after gzip within MaxRequestBytes) and its bytes in
// flight. On failure it has answered the request and ok is false;
// otherwise done releases the slot and the bytes.
func (x *httpExchange) admit(gz bool) (tenant authn.Tenant, body []byte, done func(), ok bool) {
	s, r := x.s, x.r
	tenant, reason, err := s.authenticate(r.Context(), authn.BearerToken(r.Header.Get("Authorization")))
	if err != nil {
		x.reject(reason, err)
		return tenant, nil, nil, false
	}
	x.tenant = tenant.ID
	release, err := s.gate.enter()
	if err != nil {
		x.reject(reasonOverloaded, err)
		return tenant, nil, nil, false
	}
	body, reason, err = s.readBody(x.w, r, gz)
	if err != nil {
		x.reject(reason, err)
		release()
		return tenant, nil, nil, false
	}
	s.metrics.bytes.WithLabelValues(x.signal, transportHTTP).Observe(float64(len(body)))
	releaseBytes, err := s.bytes.reserve(int64(len(body)))
	if err != nil {
		x.reject(reasonInflightBytes, err)
		release()
		return tenant, nil, nil, false
	}
	return tenant, body, func() { releaseBytes(); release() }, true
}

// rejectMethod answers 405.
func (x *httpExchange) rejectMethod() {
	x.w.Header().Set("Allow", http.MethodPost)
	apperr.WriteHTTP(x.w, apperr.New(apperr.KindMethodNotAllowed,
		"method %s not allowed: OTLP/HTTP exports use POST", x.r.Method))
	x.count(http.StatusMethodNotAllowed, reasonMethodNotAllowed)
	x.s.log.Debug("export rejected", "signal", x.signal, "transport", transportHTTP,
		"reason", reasonMethodNotAllowed, "method", x.r.Method)
}

func (x *httpExchange) count(code int, reason string) {
	x.s.metrics.rejected.WithLabelValues(x.signal, transportHTTP, reason).Inc()
	x.s.metrics.requests.WithLabelValues(x.signal, transportHTTP, strconv.Itoa(code)).Inc()
}

// writeHTTPError answers err and returns the status code. JSON requests get
// apperr's JSON envelope; protobuf requests get the google.rpc.Status body
// the OTLP/HTTP spec asks for. Status and Retry-After come from
// apperr.WriteHTTP either way.
func writeHTTPError(w http.ResponseWriter, err error, enc encoding) int {
	if enc == encJSON {
		apperr.WriteHTTP(w, err)
		return apperr.HTTPStatus(err)
	}
	hc := &headerCapture{header: make(http.Header)}
	apperr.WriteHTTP(hc, err)
	body, merr := proto.Marshal(apperr.GRPCStatus(err).Proto())
	if merr != nil { // cannot happen for a Status; fall back to JSON
		apperr.WriteHTTP(w, err)
		return hc.code
	}
	if ra := hc.header.Get("Retry-After"); ra != "" {
		w.Header().Set("Retry-After", ra)
	}
	w.Header().Set("Content-Type", encProto.contentType())
	w.WriteHeader(hc.code)
	_, _ = w.Write(body)
	return hc.code
}

// headerCapture records the status and headers apperr.WriteHTTP chooses
// and discards its body.
type headerCapture struct {
	header http.Header
	code   int
}

func (h *headerCapture) Header() http.Header         { return h.header }
func (h *headerCapture) Write(b []byte) (int, error) { return len(b), nil }
func (h *headerCapture) WriteHeader(code int)        { h.code = code }

// parseContentType accepts the two OTLP/HTTP encodings; parameters such as
// charset are ignored.
func parseContentType(v string) (encoding, error) {
	if strings.TrimSpace(v) == "" {
		return 0, apperr.New(apperr.KindUnsupportedMedia,
			"missing Content-Type header: use application/x-protobuf or application/json")
	}
	mt, _, err := mime.ParseMediaType(v)
	if err == nil {
		switch mt {
		case "application/x-protobuf":
			return encProto, nil
		case "application/json":
			return encJSON, nil
		}
	}
	return 0, apperr.New(apperr.KindUnsupportedMedia,
		"unsupported Content-Type header %.100q: use application/x-protobuf or application/json", v)
}

// parseContentEncoding reports whether the body is gzip-compressed.
func parseContentEncoding(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "", "identity":
		return false, nil
	case "gzip", "x-gzip":
		return true, nil
	}
	return false, apperr.New(apperr.KindUnsupportedMedia,
		"unsupported Content-Encoding header %.100q: use gzip or identity", v)
}

// errBodyTooLarge is returned by readLimited for a body over its limit.
var errBodyTooLarge = errors.New("body too large")

// readBody reads the request body, enforcing MaxRequestBytes on the bytes
// received and, for gzip, again on the decompressed bytes, so a gzip bomb
// costs at most about MaxRequestBytes of memory.
func (s *Service) readBody(w http.ResponseWriter, r *http.Request, gz bool) ([]byte, string, error) {
	limit := s.cfg.MaxRequestBytes
	tooLarge := func(what string) (string, error) {
		return reasonTooLarge, apperr.New(apperr.KindTooLarge,
			"request body exceeds the limit of %d bytes%s", limit, what)
	}
	if r.ContentLength > limit {
		reason, err := tooLarge("")
		return nil, reason, err
	}
	raw := &errRecorder{r: http.MaxBytesReader(w, r.Body, limit)}
	var src io.Reader = raw
	hint := r.ContentLength
	if gz {
		zr, err := gzip.NewReader(raw)
		if err != nil {
			reason, err := classifyReadError(raw, err, gz, tooLarge)
			return nil, reason, err
		}
		defer func() { _ = zr.Close() }()
		src, hint = zr, -1
	}
	body, err := readLimited(src, limit, hint)
	if err != nil {
		reason, err := classifyReadError(raw, err, gz, tooLarge)
		return nil, reason, err
	}
	return body, "", nil
}

// classifyReadError tells a body over the limit from a broken gzip stream
// from a failed network read.
func classifyReadError(raw *errRecorder, err error, gz bool, tooLarge func(string) (string, error)) (string, error) {
	var mbe *http.MaxBytesError
	switch {
	case errors.As(raw.err, &mbe) || errors.As(err, &mbe):
		return tooLarge(" (as sent)")
	case errors.Is(err, errBodyTooLarge):
		if gz {
			return tooLarge(" after gzip decompression")
		}
		return tooLarge("")
	case raw.err != nil && !errors.Is(raw.err, io.EOF):
		return reasonReadError, apperr.Wrap(apperr.KindInvalid, raw.err, "reading the request body failed")
	case gz:
		return reasonBadEncoding, apperr.New(apperr.KindInvalid, "invalid gzip body (Content-Encoding: gzip): %v", err)
	default:
		return reasonReadError, apperr.Wrap(apperr.KindInvalid, err, "reading the request body failed")
	}
}

// errRecorder remembers the first error of the reader it wraps, so errors
// of the network can be told from errors of a decompressor on top.
type errRecorder struct {
	r   io.Reader
	err error
}

func (e *errRecorder) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && e.err == nil {
		e.err = err
	}
	return n, err
}

// readLimited reads r to EOF, failing with errBodyTooLarge as soon as more
// than limit bytes arrive. It never holds more than limit+1 bytes of
// buffers while reading; sizeHint (the Content-Length, or -1) sizes the
// first buffer so bodies of known length are read without copying.
func readLimited(r io.Reader, limit, sizeHint int64) ([]byte, error) {
	const minChunk, maxChunk = 32 << 10, 4 << 20
	var (
		chunks [][]byte
		cur    []byte
		total  int64
		next   int64 = minChunk
	)
	if sizeHint >= 0 && sizeHint <= limit {
		next = sizeHint + 1 // +1 to see EOF without another buffer
	}
	for {
		if len(cur) == cap(cur) {
			if cur != nil {
				chunks = append(chunks, cur)
			}
			n := min(next, limit+1-total)
			cur = make([]byte, 0, n)
			next = min(max(n*2, minChunk), maxChunk)
		}
		n, err := r.Read(cur[len(cur):cap(cur)])
		cur = cur[:len(cur)+n]
		total += int64(n)
		if total > limit {
			return nil, errBodyTooLarge
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if len(chunks) == 0 {
		return cur, nil
	}
	out := make([]byte, 0, total)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return append(out, cur...), nil
}
