package bus

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// Delivery settles the messages of one consumer, with one policy for every
// consumer of the bus (writer, correlator):
//   - handled: acknowledged;
//   - failed for a transient reason (apperr.Transient: a store or the
//     network is away): redelivered with backoff, for as long as it takes;
//   - failed in a way that may come from the message (apperr.DataDependent):
//     redelivered with backoff up to MaxDeliver deliveries, then copied to
//     the dead-letter stream (with its headers and the error) and
//     terminated, counted by reason. `aftertrace dlq` lists, shows,
//     replays and purges dead letters.
type Delivery struct {
	JS jetstream.JetStream
	// Queue names the dead-letter subject: DeadLetterSubject(Queue).
	Queue      Signal
	MaxDeliver int
	RetryMin   time.Duration
	RetryMax   time.Duration
	Log        *slog.Logger
	// DeadLettered, if set, counts a message moved to the dead letters.
	DeadLettered func(reason string)
}

// Backoff is the redelivery delay of a message delivered n times.
func (d Delivery) Backoff(n uint64) time.Duration {
	if n < 1 {
		n = 1
	}
	return min(d.RetryMin<<min(n-1, 20), d.RetryMax)
}

func delivered(msg jetstream.Msg) uint64 {
	if md, err := msg.Metadata(); err == nil {
		return md.NumDelivered
	}
	return 1
}

// Retry hands msg back for redelivery after the backoff of a transient
// failure.
func (d Delivery) Retry(msg jetstream.Msg) {
	_ = msg.NakWithDelay(d.Backoff(delivered(msg)))
}

// Fail settles msg after a failure: transient → Retry; data-dependent →
// redelivered until MaxDeliver, then dead-lettered.
func (d Delivery) Fail(ctx context.Context, msg jetstream.Msg, reason string, cause error) {
	if apperr.Classify(cause) == apperr.Transient {
		d.Retry(msg)
		return
	}
	if n := delivered(msg); int(n) < d.MaxDeliver {
		_ = msg.NakWithDelay(d.Backoff(n))
		return
	}
	d.DeadLetter(ctx, msg, reason, cause)
}

// DeadLetter copies msg to the dead-letter stream and terminates it; if
// the copy cannot be stored, msg is kept for redelivery instead.
func (d Delivery) DeadLetter(ctx context.Context, msg jetstream.Msg, reason string, cause error) {
	dl := nats.NewMsg(DeadLetterSubject(d.Queue))
	dl.Data = msg.Data()
	for k, v := range msg.Headers() {
		dl.Header[k] = v
	}
	dl.Header.Set(HeaderError, truncateUTF8(cause.Error(), 1024))
	dl.Header.Set(HeaderReason, reason)
	dl.Header.Set(HeaderOrigin, msg.Subject())
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := d.JS.PublishMsg(pctx, dl); err != nil {
		d.log().Error("dead-letter publish failed; message kept for redelivery", "queue", d.Queue, "err", err)
		_ = msg.NakWithDelay(d.RetryMax)
		return
	}
	_ = msg.Term()
	if d.DeadLettered != nil {
		d.DeadLettered(reason)
	}
	d.log().Warn("message dead-lettered", "queue", d.Queue, "reason", reason, "tenant", msg.Headers().Get(HeaderTenant), "err", cause)
}

func (d Delivery) log() *slog.Logger {
	if d.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Log
}

// Isolate runs try on msgs; when it fails for a data-dependent reason the
// messages are split in halves and each half tried again, until the
// messages that fail are alone: ok receives every group that succeeded,
// bad every single message that failed (with its error). A transient
// failure of a group is returned at once (the caller retries it as it
// is), so a store that is away never causes a split.
func Isolate(ctx context.Context, msgs []jetstream.Msg, try func(context.Context, []jetstream.Msg) error,
	ok func([]jetstream.Msg), bad func(jetstream.Msg, error)) error {
	if len(msgs) == 0 {
		return nil
	}
	err := try(ctx, msgs)
	switch {
	case err == nil:
		ok(msgs)
		return nil
	case apperr.Classify(err) == apperr.Transient:
		return err
	case len(msgs) == 1:
		bad(msgs[0], err)
		return nil
	}
	half := len(msgs) / 2
	if err := Isolate(ctx, msgs[:half], try, ok, bad); err != nil {
		return fmt.Errorf("first half: %w", err)
	}
	return Isolate(ctx, msgs[half:], try, ok, bad)
}

func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}
