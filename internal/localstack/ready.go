package localstack

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"
)

var errNotListening = errors.New("not listening yet")

// waitReady polls probe until it succeeds, the process exits, or the start
// timeout / ctx runs out. On failure the process is killed and the error
// carries the tail of the logs written during this start.
func waitReady(ctx context.Context, timeout time.Duration, p *process, logs logMark, probe func(context.Context) error) error {
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	var last error
	for {
		if p.exited() {
			err := fmt.Errorf("%s exited during start (%v)%s", p.name, p.err, logs.tail())
			if logs.mentions("Address already in use") {
				err = fmt.Errorf("%w: %w", ErrAddrInUse, err)
			}
			return err
		}
		probeCtx, probeCancel := context.WithTimeout(ctx, 2*time.Second)
		last = probe(probeCtx)
		probeCancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			killCtx, killCancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = p.stop(killCtx, syscall.SIGKILL)
			killCancel()
			return fmt.Errorf("%s pid %d not ready after %s (%w; last probe: %v)%s",
				p.name, p.pid(), time.Since(began).Round(time.Millisecond), ctx.Err(), last, logs.tail())
		case <-p.done:
		case <-tick.C:
		}
	}
}
