package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// DeadLetter is one message of the dead-letter stream.
type DeadLetter struct {
	Seq     uint64
	Queue   string // the consumer that gave up on it: traces, logs, metrics, events, correlate
	Tenant  string
	Reason  string // e.g. insert, decode
	Error   string
	Origin  string // the subject a replay publishes it to
	Records int
	Time    time.Time
	Data    []byte
	Header  nats.Header
}

// DeadLetters inspects and re-drives the dead-letter stream (the
// `aftertrace dlq` commands).
type DeadLetters struct{ JS jetstream.JetStream }

func (d DeadLetters) stream(ctx context.Context) (jetstream.Stream, error) {
	s, err := d.JS.Stream(ctx, DeadLetterStream)
	if err != nil {
		return nil, fmt.Errorf("dead-letter stream: %w", err)
	}
	return s, nil
}

// filter is the subject filter of queue ("" or "all": every queue).
func filter(queue string) string {
	if queue == "" || queue == "all" {
		return deadLetterPrefix + ">"
	}
	return DeadLetterSubject(Signal(queue))
}

// List returns up to limit dead letters of queue after sequence after,
// oldest first, without their payloads.
func (d DeadLetters) List(ctx context.Context, queue string, after uint64, limit int) ([]DeadLetter, error) {
	s, err := d.stream(ctx)
	if err != nil {
		return nil, err
	}
	var out []DeadLetter
	for seq := after + 1; len(out) < limit; {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter(queue)))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read dead letter at %d: %w", seq, err)
		}
		dl := fromRaw(m)
		dl.Data = nil
		out = append(out, dl)
		seq = m.Sequence + 1
	}
	return out, nil
}

// Get returns the dead letter seq with its payload.
func (d DeadLetters) Get(ctx context.Context, seq uint64) (DeadLetter, error) {
	s, err := d.stream(ctx)
	if err != nil {
		return DeadLetter{}, err
	}
	m, err := s.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return DeadLetter{}, apperr.New(apperr.KindNotFound, "no dead letter %d", seq)
	}
	if err != nil {
		return DeadLetter{}, fmt.Errorf("read dead letter %d: %w", seq, err)
	}
	return fromRaw(m), nil
}

func fromRaw(m *jetstream.RawStreamMsg) DeadLetter {
	dl := DeadLetter{
		Seq: m.Sequence, Queue: strings.TrimPrefix(m.Subject, deadLetterPrefix), Time: m.Time,
		Data: m.Data, Header: m.Header,
	}
	if m.Header != nil {
		dl.Tenant, dl.Reason, dl.Error, dl.Origin = m.Header.Get(HeaderTenant), m.Header.Get(HeaderReason),
			m.Header.Get(HeaderError), m.Header.Get(HeaderOrigin)
		dl.Records, _ = strconv.Atoi(m.Header.Get(HeaderRecords))
	}
	return dl
}

// Replay publishes the dead letter seq back to the subject it came from
// (with its original headers) and, once JetStream stored it there,
// deletes it from the dead letters. A message that fails again comes back
// as a new dead letter.
func (d DeadLetters) Replay(ctx context.Context, seq uint64) error {
	dl, err := d.Get(ctx, seq)
	if err != nil {
		return err
	}
	if dl.Origin == "" {
		return apperr.New(apperr.KindInvalid, "dead letter %d has no %s header: cannot tell where to replay it", seq, HeaderOrigin)
	}
	m := nats.NewMsg(dl.Origin)
	m.Data = dl.Data
	for k, v := range dl.Header {
		switch k {
		case HeaderError, HeaderReason, HeaderOrigin, nats.MsgIdHdr:
		default:
			m.Header[k] = v
		}
	}
	// A replay retried within the duplicate window is stored once.
	m.Header.Set(nats.MsgIdHdr, "dlq-replay-"+strconv.FormatUint(seq, 10))
	if _, err := d.JS.PublishMsg(ctx, m); err != nil {
		return fmt.Errorf("replay dead letter %d to %s: %w", seq, dl.Origin, err)
	}
	return d.Delete(ctx, seq)
}

// Delete removes the dead letter seq.
func (d DeadLetters) Delete(ctx context.Context, seq uint64) error {
	s, err := d.stream(ctx)
	if err != nil {
		return err
	}
	if err := s.DeleteMsg(ctx, seq); err != nil {
		if errors.Is(err, jetstream.ErrMsgNotFound) || strings.Contains(err.Error(), "no message found") {
			return apperr.New(apperr.KindNotFound, "no dead letter %d", seq)
		}
		return fmt.Errorf("delete dead letter %d: %w", seq, err)
	}
	return nil
}

// Purge removes every dead letter of queue ("" or "all": all of them) and
// returns how many there were.
func (d DeadLetters) Purge(ctx context.Context, queue string) (uint64, error) {
	s, err := d.stream(ctx)
	if err != nil {
		return 0, err
	}
	before, err := d.count(ctx, s, queue)
	if err != nil {
		return 0, err
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject(filter(queue))); err != nil {
		return 0, fmt.Errorf("purge dead letters: %w", err)
	}
	return before, nil
}

// Count returns how many dead letters queue holds.
func (d DeadLetters) Count(ctx context.Context, queue string) (uint64, error) {
	s, err := d.stream(ctx)
	if err != nil {
		return 0, err
	}
	return d.count(ctx, s, queue)
}

func (d DeadLetters) count(ctx context.Context, s jetstream.Stream, queue string) (uint64, error) {
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter(queue)))
	if err != nil {
		return 0, fmt.Errorf("dead-letter stream info: %w", err)
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	return n, nil
}
