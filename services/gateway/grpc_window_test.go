package gateway

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/aftertrace/aftertrace/internal/authn"
	"github.com/aftertrace/aftertrace/internal/bus"
)

// discardPublisher acknowledges everything at once, so a benchmark
// measures the transport.
type discardPublisher struct{ fakePublisher }

func (*discardPublisher) PublishEncoded(context.Context, bus.Signal, string, []byte, int) (bool, error) {
	return true, nil
}

// BenchmarkGRPCExportWindows compares the fixed flow-control windows with
// grpc-go's BDP estimation, and with the smallest fixed windows, for
// authenticated exports on loopback.
//
//	go test ./services/gateway/ -run '^$' -bench GRPCExportWindows -benchtime 2s
func BenchmarkGRPCExportWindows(b *testing.B) {
	stream, conn := grpcStreamWindow, grpcConnWindow
	defer func() { grpcStreamWindow, grpcConnWindow = stream, conn }()
	for _, w := range []struct {
		name         string
		stream, conn int32
	}{{"bdp", 0, 0}, {"fixed", stream, conn}, {"fixed-64KiB", 64 << 10, 64 << 10}} {
		grpcStreamWindow, grpcConnWindow = w.stream, w.conn
		for _, size := range []int{256 << 10, 4 << 20, 15 << 20} {
			for _, par := range []int{1, 8} {
				b.Run(fmt.Sprintf("%s/%dKiB/x%d", w.name, size>>10, par), func(b *testing.B) {
					benchExport(b, size, par)
				})
			}
		}
	}
}

func benchExport(b *testing.B, size, par int) {
	cfg := testConfig()
	cfg.MaxRequestBytes, cfg.MaxInflightBytes = 16<<20, 256<<20
	cfg.TenantLimit.RecordsPerSecond, cfg.TenantLimit.BytesPerSecond = 0, 0
	svc, err := New(cfg, Deps{Publisher: &discardPublisher{}, Registry: prometheus.NewRegistry(),
		Auth: authn.NewStatic(map[string]authn.Tenant{testKey: {ID: "t1"}})})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	defer func() { cancel(); <-done }()
	cc, err := grpc.NewClient(svc.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(64<<20)))
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = cc.Close() }()
	td := recentTraces(1)
	td.ResourceSpans().At(0).ScopeSpans().At(0).Spans().At(0).Attributes().PutStr("blob", strings.Repeat("x", size))
	req := ptraceotlp.NewExportRequestFromTraces(td)
	client := ptraceotlp.NewGRPCClient(cc)
	call := func() error {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, err := client.Export(metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+testKey), req)
		return err
	}
	if err := call(); err != nil { // connected, windows settled
		b.Fatal(err)
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	var wg sync.WaitGroup
	next := make(chan struct{})
	for range par {
		wg.Go(func() {
			for range next {
				if err := call(); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for range b.N {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
}
