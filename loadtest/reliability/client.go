package reliability

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
)

// httpClient is shared by every sender and reader of the suite.
var httpClient = &http.Client{
	Timeout:   30 * time.Second,
	Transport: &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 512},
}

// trace is one OTLP request of spans spans of one new trace of service,
// starting at start, and its id in hex.
func trace(service string, spans int, start time.Time) (ptrace.Traces, string) {
	var id pcommon.TraceID
	_, _ = rand.Read(id[:])
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	rs.Resource().Attributes().PutStr("k8s.namespace.name", "reliability")
	rs.Resource().Attributes().PutStr("k8s.pod.name", service+"-7d9f8b-x2x9q")
	ss := rs.ScopeSpans().AppendEmpty().Spans()
	var root pcommon.SpanID
	for i := range spans {
		sp := ss.AppendEmpty()
		sp.SetTraceID(id)
		var sid pcommon.SpanID
		_, _ = rand.Read(sid[:])
		sp.SetSpanID(sid)
		if i == 0 {
			root = sid
			sp.SetName("GET /checkout")
			sp.SetKind(ptrace.SpanKindServer)
		} else {
			sp.SetParentSpanID(root)
			sp.SetName("db.query")
		}
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(i) * time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(start.Add(time.Duration(i+3) * time.Millisecond)))
	}
	return td, hex.EncodeToString(id[:])
}

func protoBody(td ptrace.Traces) []byte {
	b, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	return b
}

// answer is a gateway or API answer.
type answer struct {
	status int
	header http.Header
	body   []byte
	err    error
}

func post(ctx context.Context, url, key, contentType, encoding string, body []byte) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return answer{err: err}
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	req.Header.Set("Content-Type", contentType)
	if encoding != "" {
		req.Header.Set("Content-Encoding", encoding)
	}
	return do(req)
}

func get(ctx context.Context, url, key string) answer {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return answer{err: err}
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return do(req)
}

func do(req *http.Request) answer {
	resp, err := httpClient.Do(req)
	if err != nil {
		return answer{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	return answer{status: resp.StatusCode, header: resp.Header, body: b, err: err}
}

// export sends td to the gateway's OTLP/HTTP traces endpoint.
func (st *Stack) export(ctx context.Context, key string, td ptrace.Traces) answer {
	return post(ctx, "http://"+st.GatewayHTTP+"/v1/traces", key, "application/x-protobuf", "", protoBody(td))
}

// traceSpans reads a trace through the API: its span count, 0 if not
// found.
func (st *Stack) traceSpans(ctx context.Context, key, id string) (int, answer) {
	a := get(ctx, "http://"+st.APIAddr+"/api/v1/traces/"+id, key)
	if a.err != nil || a.status != http.StatusOK {
		return 0, a
	}
	var tr struct {
		Spans []json.RawMessage `json:"spans"`
	}
	if err := json.Unmarshal(a.body, &tr); err != nil {
		a.err = err
		return 0, a
	}
	return len(tr.Spans), a
}

// load sends traces of spans spans for key at rate traces per second until
// ctx ends or for d, keeping the ids the gateway acknowledged and counting
// every status.
type load struct {
	mu       sync.Mutex
	acked    []string
	statuses map[int]int
	errors   int
	noRetry  int // 429/503 answers without Retry-After
}

func (st *Stack) runLoad(ctx context.Context, key, service string, spans int, rate float64, d time.Duration) *load {
	l := &load{statuses: map[int]int{}}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64) // bounded in-flight requests
	for {
		select {
		case <-ctx.Done():
			wg.Wait()
			return l
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			continue // the stack is slower than the rate: skip a tick rather than queue without bound
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			td, id := trace(service, spans, time.Now())
			a := st.export(context.WithoutCancel(ctx), key, td)
			l.record(a, id)
		}()
	}
}

func (l *load) record(a answer, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if a.err != nil {
		l.errors++
		return
	}
	l.statuses[a.status]++
	if a.status == http.StatusOK && id != "" {
		l.acked = append(l.acked, id)
	}
	if (a.status == http.StatusTooManyRequests || a.status == http.StatusServiceUnavailable) && a.header.Get("Retry-After") == "" {
		l.noRetry++
	}
}

// verify reads every acknowledged trace through the API until it has its
// spans spans or within is over: lost are traces short of spans, dup
// traces with more.
func (st *Stack) verify(ctx context.Context, key string, ids []string, spans int, within time.Duration) (lost, dup int) {
	deadline := time.Now().Add(within)
	pending := ids
	for len(pending) > 0 {
		var next []string
		var mu sync.Mutex
		var wg sync.WaitGroup
		work := make(chan string)
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for id := range work {
					n, _ := st.traceSpans(ctx, key, id)
					mu.Lock()
					switch {
					case n > spans:
						dup++
					case n < spans:
						next = append(next, id)
					}
					mu.Unlock()
				}
			}()
		}
		for _, id := range pending {
			work <- id
		}
		close(work)
		wg.Wait()
		pending = next
		if len(pending) == 0 || time.Now().After(deadline) || ctx.Err() != nil {
			break
		}
		time.Sleep(time.Second)
	}
	return len(pending), dup
}
