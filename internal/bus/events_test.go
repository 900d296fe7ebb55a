package bus

import (
	"errors"
	"testing"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/events"
)

func TestChunkEvents(t *testing.T) {
	evs := make([]events.Event, 50)
	for i := range evs {
		evs[i] = events.Event{ID: events.NewID("t", "falco", []byte{byte(i)}), Reason: "rule", Message: string(make([]byte, 100))}
	}
	payloads, counts, err := ChunkEvents(evs, 2000)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	var back []events.Event
	for i, p := range payloads {
		if len(p) > 2000 {
			t.Errorf("payload %d: %d bytes", i, len(p))
		}
		got, err := DecodeEvents(p)
		if err != nil || len(got) != counts[i] {
			t.Fatalf("payload %d: %d events, count %d, %v", i, len(got), counts[i], err)
		}
		total += counts[i]
		back = append(back, got...)
	}
	if total != 50 || len(payloads) < 2 {
		t.Fatalf("%d events in %d payloads", total, len(payloads))
	}
	for i := range evs {
		if back[i].ID != evs[i].ID {
			t.Fatalf("order changed at %d", i)
		}
	}
	if _, _, err := ChunkEvents(evs[:1], 100); apperr.KindOf(err) != apperr.KindTooLarge {
		t.Errorf("oversized event: %v", err)
	}
	// The correlate message id ignores order and depends on the tenant.
	a := CorrelateMessageID("t", evs[:3])
	if b := CorrelateMessageID("t", []events.Event{evs[2], evs[0], evs[1]}); a != b {
		t.Error("message id depends on order")
	}
	if CorrelateMessageID("u", evs[:3]) == a || CorrelateMessageID("t", evs[:2]) == a {
		t.Error("message id collides")
	}
	if _, err := DecodeEvents([]byte("{")); err == nil || errors.Is(err, nil) {
		t.Error("bad payload decoded")
	}
}
