package bus

import (
	"fmt"

	"github.com/klauspost/compress/s2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// HeaderEncoding names how a message's payload is compressed; without it
// the payload is as published.
const HeaderEncoding = "Aftertrace-Encoding"

// encodingS2 is S2 block compression: OTLP protobuf shrinks about 7× at
// about 2.5 GB/s, so JetStream copies, stores and delivers a seventh of
// the bytes for a fraction of what that saves it.
const encodingS2 = "s2"

// maxDecodedPayload bounds what a message may decompress to (a message is
// at most a few MiB before compression).
const maxDecodedPayload = 64 << 20

// encodePayload compresses payload for the bus; it returns payload itself
// and "" when compression does not make it smaller.
func encodePayload(payload []byte) ([]byte, string) {
	enc := s2.Encode(nil, payload)
	if len(enc) >= len(payload) {
		return payload, ""
	}
	return enc, encodingS2
}

// Payload returns a consumed message's payload as it was published,
// decompressed. The result is a buffer of its own whenever the message
// was compressed, and msg.Data() otherwise. An error means a corrupt
// message: permanent.
func Payload(msg jetstream.Msg) ([]byte, error) {
	return DecodePayload(msg.Headers(), msg.Data())
}

// DecodePayload is Payload for a message's headers and data.
func DecodePayload(h nats.Header, data []byte) ([]byte, error) {
	switch enc := h.Get(HeaderEncoding); enc {
	case "":
		return data, nil
	case encodingS2:
		n, err := s2.DecodedLen(data)
		if err != nil {
			return nil, fmt.Errorf("payload: %w", err)
		}
		if n > maxDecodedPayload {
			return nil, fmt.Errorf("payload: decompresses to %d bytes, over %d", n, maxDecodedPayload)
		}
		out, err := s2.Decode(nil, data)
		if err != nil {
			return nil, fmt.Errorf("payload: %w", err)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("payload: unknown %s %q", HeaderEncoding, enc)
	}
}
