package bus

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/events"
)

// PublishEvents stores normalized container events (JSON arrays of
// events.Event, split to fit the message limit) for tenantID on the ingest
// subject of SignalEvents. Like PublishTraces it returns nil only after
// JetStream acknowledged every part.
func (p *Publisher) PublishEvents(ctx context.Context, tenantID string, evs []events.Event) error {
	if len(evs) == 0 {
		return nil
	}
	payloads, counts, err := ChunkEvents(evs, p.maxPayload())
	if err != nil {
		return err
	}
	return p.publish(ctx, SignalEvents, tenantID, payloads, counts)
}

// ChunkEvents encodes evs as JSON arrays of at most maxBytes each, in
// order; counts are the events per array. An event that alone exceeds
// maxBytes is an apperr KindTooLarge.
func ChunkEvents(evs []events.Event, maxBytes int) ([][]byte, []int, error) {
	var payloads [][]byte
	var counts []int
	var cur bytes.Buffer
	n := 0
	flush := func() {
		if n > 0 {
			cur.WriteByte(']')
			payloads = append(payloads, bytes.Clone(cur.Bytes()))
			counts = append(counts, n)
		}
		cur.Reset()
		n = 0
	}
	for i := range evs {
		b, err := json.Marshal(&evs[i])
		if err != nil {
			return nil, nil, fmt.Errorf("encode event %s: %w", evs[i].ID, err)
		}
		if len(b)+2 > maxBytes {
			return nil, nil, apperr.New(apperr.KindTooLarge,
				"a single event is larger than the queue's message limit of %d bytes", maxBytes)
		}
		if n > 0 && cur.Len()+1+len(b)+1 > maxBytes {
			flush()
		}
		if n == 0 {
			cur.WriteByte('[')
		} else {
			cur.WriteByte(',')
		}
		cur.Write(b)
		n++
	}
	flush()
	return payloads, counts, nil
}

// DecodeEvents decodes a JSON array of events (a SignalEvents or
// CorrelateSubject payload).
func DecodeEvents(data []byte) ([]events.Event, error) {
	var evs []events.Event
	if err := json.Unmarshal(data, &evs); err != nil {
		return nil, fmt.Errorf("decode events: %w", err)
	}
	return evs, nil
}

// CorrelateMessageID is the Nats-Msg-Id of a correlate batch: a hash of the
// tenant and the batch's event ids in sorted order, so a batch published
// again (a writer retrying after a failed ack) is stored once.
func CorrelateMessageID(tenantID string, evs []events.Event) string {
	ids := make([]events.ID, len(evs))
	for i := range evs {
		ids[i] = evs[i].ID
	}
	slices.SortFunc(ids, func(a, b events.ID) int { return bytes.Compare(a[:], b[:]) })
	h := sha256.New()
	h.Write([]byte(tenantID))
	h.Write([]byte{0})
	for _, id := range ids {
		h.Write(id[:])
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// PublishCorrelate publishes stored events of one tenant to
// CorrelateSubject for the correlator: sorted by id, as JSON arrays of at
// most maxBytes, each with the tenant header and a Nats-Msg-Id from its
// sorted event ids. It returns nil only after JetStream acknowledged every
// part; failures are apperr KindUnavailable (retryable).
func PublishCorrelate(ctx context.Context, js jetstream.JetStream, tenantID string, evs []events.Event, maxBytes int) error {
	if len(evs) == 0 {
		return nil
	}
	sorted := slices.Clone(evs)
	slices.SortFunc(sorted, func(a, b events.Event) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	payloads, counts, err := ChunkEvents(sorted, maxBytes)
	if err != nil {
		return err
	}
	futures := make([]jetstream.PubAckFuture, 0, len(payloads))
	off := 0
	for i, payload := range payloads {
		part := sorted[off : off+counts[i]]
		off += counts[i]
		msg := nats.NewMsg(CorrelateSubject)
		msg.Data = payload
		msg.Header.Set(HeaderTenant, tenantID)
		msg.Header.Set(HeaderRecords, strconv.Itoa(counts[i]))
		f, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(CorrelateMessageID(tenantID, part)))
		if err != nil {
			return unavailable(err)
		}
		futures = append(futures, f)
	}
	return awaitAcks(ctx, futures)
}
