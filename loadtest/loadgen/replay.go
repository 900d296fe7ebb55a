package loadgen

import (
	"context"
	"fmt"
	"time"
)

// DefaultReplaySpans is the replay pool size when RunConfig.ReplaySpans is
// 0: about 60 MB of encoded requests.
const DefaultReplaySpans = 200_000

// replayPool is the requests of a run generated and encoded once, before
// sending; request n replays pool entry n mod len (round n / len) with
// its times moved to its due time and its trace ids salted by the round.
// Generating and marshalling pdata per request costs the load generator
// several CPU ms per 1000 spans, which it takes from the server under test
// when both share a machine; a replayed request is a copy and a patch.
type replayPool struct {
	seed  uint64
	base  time.Time // when entry 0 was generated
	reqs  []replayReq
	spans int64 // spans of one round
	bytes int64
}

type replayReq struct {
	tmpl  *Template
	at    time.Duration // when it was generated, from base
	spans int
	refs  []TraceRef
}

// buildReplayPool generates at least spans spans with g in requests of
// perReq on Run's schedule (request at base + spans so far / rate).
func buildReplayPool(ctx context.Context, g *Generator, seed uint64, perReq int, rate float64, spans int64, base time.Time) (*replayPool, error) {
	p := &replayPool{seed: seed, base: base}
	for p.spans < spans {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("replay: prepare: %w", err)
		}
		at := time.Duration(float64(p.spans) / rate * float64(time.Second))
		b := g.NextBatch(base.Add(at), perReq)
		t, err := EncodeTraces(b.Traces)
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		p.reqs = append(p.reqs, replayReq{tmpl: t, at: at, spans: b.Spans, refs: b.Refs})
		p.spans += int64(b.Spans)
		p.bytes += int64(t.Size())
	}
	return p, nil
}

// job is request n of the run, due at due.
func (p *replayPool) job(n int64, due time.Time) job {
	k, round := n%int64(len(p.reqs)), n/int64(len(p.reqs))
	r := &p.reqs[k]
	return job{due: due, spans: r.spans, replay: r,
		delta: due.Sub(p.base.Add(r.at)), salt: RoundSalt(p.seed, uint64(round))}
}

// render is the request's body as sent.
func (r *replayReq) render(delta time.Duration, salt uint64) []byte {
	return r.tmpl.Render(delta, salt)
}

// sendReplayed sends the replayed request j through s (Run checked that
// s is a RawTraceSender) in a buffer of its own: a request in flight
// must not share one.
func sendReplayed(ctx context.Context, s Sender, j job) (int64, error) {
	return s.(RawTraceSender).SendTracesRaw(ctx, j.replay.render(j.delta, j.salt))
}

// refsAt are the request's traces as render sends them.
func (r *replayReq) refsAt(delta time.Duration, salt uint64) []TraceRef {
	out := make([]TraceRef, len(r.refs))
	for i, ref := range r.refs {
		out[i] = TraceRef{TraceID: SaltTraceID(ref.TraceID, salt), Spans: ref.Spans, Start: ref.Start.Add(delta)}
	}
	return out
}
