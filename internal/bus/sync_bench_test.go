package bus

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// BenchmarkPublishSync is the cost of --nats-sync: one request of 500
// spans (~110 KiB) published and acknowledged, with JetStream fsyncing
// every write before its ack (always) or every 2 minutes (interval, the
// default), by 1 and by 16 concurrent publishers (a gateway under load).
//
//	go test ./internal/bus -run '^$' -bench PublishSync -benchtime 2000x
func BenchmarkPublishSync(b *testing.B) {
	for _, mode := range []struct {
		name string
		sync bool
	}{{"interval", false}, {"always", true}} {
		for _, par := range []int{1, 16} {
			b.Run(fmt.Sprintf("%s/publishers=%d", mode.name, par), func(b *testing.B) {
				pub, _, _ := startBusWith(b, EmbeddedConfig{MaxPayload: 1 << 20, SyncAlways: mode.sync})
				// Distinct requests: the same one again would be deduplicated.
				reqs := make([]ptrace.Traces, 64)
				for i := range reqs {
					reqs[i] = bigTraces(1, 1, 500, 100)
					reqs[i].ResourceSpans().At(0).Resource().Attributes().PutInt("req", int64(i))
				}
				var n atomic.Int64
				var wg sync.WaitGroup
				b.ResetTimer()
				for range par {
					wg.Go(func() {
						for i := n.Add(1); i <= int64(b.N); i = n.Add(1) {
							// A distinct tenant per call keeps every message id new.
							if err := pub.PublishTraces(context.Background(), fmt.Sprint("t", i), reqs[i%int64(len(reqs))]); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N*reqs[0].SpanCount())/b.Elapsed().Seconds(), "spans/s")
			})
		}
	}
}
