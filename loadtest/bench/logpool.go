package bench

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/aftertrace/aftertrace/loadtest/loadgen"
)

// logPoolSize is how many distinct requests a replayed logs step cycles
// through (~25 MB encoded at 1000 records each).
const logPoolSize = 64

// logPoolStream is the random stream of the pool's requests (the live
// senders use streams 0..connections-1).
const logPoolStream = 1 << 32

// logPool is a logs step's requests built and encoded once before the
// step: building a 1000-record plog per request would cost the load
// generator, which shares the machine with the server, more CPU than the
// copy and patch of a replayed one.
type logPool struct {
	seed uint64
	base time.Time // the time the requests were built at
	reqs []*loadgen.Template
}

// newLogPool builds n requests of perReq records over pods, at base.
func newLogPool(seed uint64, pods []*loadgen.Pod, perReq, n int, base time.Time) (*logPool, error) {
	rng := rand.New(rand.NewPCG(seed, logPoolStream))
	p := &logPool{seed: seed, base: base}
	for range n {
		t, err := loadgen.EncodeLogs(logRequest(rng, pods, perReq, base))
		if err != nil {
			return nil, fmt.Errorf("logs pool: %w", err)
		}
		p.reqs = append(p.reqs, t)
	}
	return p, nil
}

// request is the body of the step's request number n, due at at: pool
// entry n mod size with its times moved from base to at and, from the
// second round on, its trace ids salted by the round.
func (p *logPool) request(n int64, at time.Time) []byte {
	k := int64(len(p.reqs))
	return p.reqs[n%k].Render(at.Sub(p.base), loadgen.RoundSalt(p.seed, uint64(n/k)))
}
