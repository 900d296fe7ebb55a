package bus

import (
	"context"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/minio/highwayhash"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// headerRoom is kept free in every message for headers and framing.
const headerRoom = 4 << 10

// PublisherConfig bounds publishing.
type PublisherConfig struct {
	MaxMessageBytes int           // upper bound per message; the server's max payload wins if lower
	AckTimeout      time.Duration // how long to wait for all PubAcks
}

// DefaultPublisherConfig returns 4 MiB messages and a 10 s ack timeout.
func DefaultPublisherConfig() PublisherConfig {
	return PublisherConfig{MaxMessageBytes: 4 << 20, AckTimeout: 10 * time.Second}
}

// Publisher persists OTLP requests in JetStream.
type Publisher struct {
	nc  *nats.Conn
	js  jetstream.JetStream
	cfg PublisherConfig
}

// NewPublisher returns a Publisher on an open connection.
func NewPublisher(nc *nats.Conn, js jetstream.JetStream, cfg PublisherConfig) *Publisher {
	return &Publisher{nc: nc, js: js, cfg: cfg}
}

// PublishTraces stores td for tenantID. It returns nil only after JetStream
// acknowledged every part; any failure is an apperr of KindUnavailable (or
// KindTooLarge for a span that cannot fit in a message).
func (p *Publisher) PublishTraces(ctx context.Context, tenantID string, td ptrace.Traces) error {
	if td.SpanCount() == 0 {
		return nil
	}
	payloads, counts, err := chunkTraces(td, p.maxPayload())
	if err != nil {
		return err
	}
	return p.publish(ctx, SignalTraces, tenantID, payloads, counts)
}

// PublishLogs stores ld for tenantID, like PublishTraces.
func (p *Publisher) PublishLogs(ctx context.Context, tenantID string, ld plog.Logs) error {
	if ld.LogRecordCount() == 0 {
		return nil
	}
	payloads, counts, err := chunkLogs(ld, p.maxPayload())
	if err != nil {
		return err
	}
	return p.publish(ctx, SignalLogs, tenantID, payloads, counts)
}

// PublishMetrics stores md for tenantID, like PublishTraces.
func (p *Publisher) PublishMetrics(ctx context.Context, tenantID string, md pmetric.Metrics) error {
	if md.DataPointCount() == 0 {
		return nil
	}
	payloads, counts, err := chunkMetrics(md, p.maxPayload())
	if err != nil {
		return err
	}
	return p.publish(ctx, SignalMetrics, tenantID, payloads, counts)
}

// PublishEncoded stores an OTLP export request of signal sig that is
// already protobuf-encoded, as received, holding records records: an
// Export*ServiceRequest has the wire form of the *Data message the writer
// decodes. It publishes the bytes as they are, without decoding and
// re-encoding, when they fit in one message; it returns false without
// publishing when they do not (the caller then publishes the decoded
// request, which is chunked). Errors are as for PublishTraces.
func (p *Publisher) PublishEncoded(ctx context.Context, sig Signal, tenantID string, payload []byte, records int) (bool, error) {
	if len(payload) > p.maxPayload() {
		return false, nil
	}
	if records == 0 {
		return true, nil
	}
	return true, p.publish(ctx, sig, tenantID, [][]byte{payload}, []int{records})
}

func (p *Publisher) maxPayload() int {
	limit := p.cfg.MaxMessageBytes
	if srv := int(p.nc.MaxPayload()); srv > 0 && srv < limit {
		limit = srv
	}
	return max(limit-headerRoom, 1024)
}

func (p *Publisher) publish(ctx context.Context, sig Signal, tenantID string, payloads [][]byte, counts []int) error {
	if !p.nc.IsConnected() {
		return unavailable(nats.ErrConnectionClosed)
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.AckTimeout)
	defer cancel()
	futures := make([]jetstream.PubAckFuture, 0, len(payloads))
	for i, payload := range payloads {
		msg := nats.NewMsg(LaneSubject(sig, LaneOf(ctx)))
		var enc string
		if msg.Data, enc = encodePayload(payload); enc != "" {
			msg.Header.Set(HeaderEncoding, enc)
		}
		msg.Header.Set(HeaderTenant, tenantID)
		msg.Header.Set(HeaderSignal, string(sig))
		msg.Header.Set(HeaderRecords, strconv.Itoa(counts[i]))
		f, err := p.js.PublishMsgAsync(msg, jetstream.WithMsgID(MessageID(tenantID, sig, payload)))
		if err != nil {
			return unavailable(err)
		}
		futures = append(futures, f)
	}
	return awaitAcks(ctx, futures)
}

// MessageID is the deterministic Nats-Msg-Id of a payload: a client that
// retries the same request within the dedup window stores it once. The
// 128-bit HighwayHash (fixed key: the same id from every gateway) reads
// the payload several times faster than SHA-256 did; dedup needs no
// resistance to crafted collisions, only a tenant prefix.
func MessageID(tenantID string, sig Signal, payload []byte) string {
	h, _ := highwayhash.New128(messageIDKey[:]) // only fails for a key that is not 32 bytes
	h.Write([]byte(tenantID))
	h.Write([]byte{0})
	h.Write([]byte(sig))
	h.Write([]byte{0})
	h.Write(payload)
	return hex.EncodeToString(h.Sum(nil))
}

// messageIDKey keys MessageID's hash; changing it re-ids every message.
var messageIDKey = [32]byte([]byte("aftertrace/bus message id v1 ..."))

// awaitAcks waits until JetStream acknowledged every publish (stored it),
// one failed, or ctx ends; failures are retryable for the client.
func awaitAcks(ctx context.Context, futures []jetstream.PubAckFuture) error {
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return unavailable(err)
		case <-ctx.Done():
			return unavailable(errors.Join(errors.New("waiting for JetStream acknowledgement"), ctx.Err()))
		}
	}
	return nil
}
