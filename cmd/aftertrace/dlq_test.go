package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/aftertrace/aftertrace/internal/bus"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

func TestDLQCommands(t *testing.T) {
	env := testenv.Get(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nc, err := nats.Connect(env.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.EnsureStreams(ctx, js, bus.DefaultStreamConfig()); err != nil {
		t.Fatal(err)
	}
	for i, q := range []bus.Signal{bus.SignalTraces, bus.SignalLogs, bus.SignalTraces} {
		m := nats.NewMsg(bus.DeadLetterSubject(q))
		m.Data = []byte("payload-" + string(rune('a'+i)))
		m.Header.Set(bus.HeaderTenant, "0123456789abcdef")
		m.Header.Set(bus.HeaderReason, "insert")
		m.Header.Set(bus.HeaderError, "code: 395, message: Value passed to 'throwIf' function is non zero")
		m.Header.Set(bus.HeaderOrigin, bus.IngestSubject(q))
		if _, err := js.PublishMsg(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	url := []string{"--nats-url", env.NATSURL}

	list := mustRun(t, append([]string{"dlq", "list"}, url...)...)
	rows := regexp.MustCompile(`(?m)^(\d+)\s+(traces|logs)\s+0123456789abcdef\s+0\s+insert\s+\d{4}-`).FindAllStringSubmatch(list, -1)
	if len(rows) != 3 || !strings.Contains(list, "throwIf") {
		t.Fatalf("dlq list:\n%s", list)
	}
	if only := mustRun(t, append([]string{"dlq", "list", "--queue", "logs"}, url...)...); strings.Count(only, "\n") != 2 {
		t.Fatalf("dlq list --queue logs:\n%s", only)
	}
	show := mustRun(t, append([]string{"dlq", "show", rows[0][1], "--payload", "-"}, url...)...)
	if !strings.Contains(show, "origin   aftertrace.ingest.traces") || !strings.HasSuffix(show, "payload-a") {
		t.Fatalf("dlq show:\n%s", show)
	}
	if _, _, err := runCLI(t, append([]string{"dlq", "show", "abc"}, url...)...); err == nil || !strings.Contains(err.Error(), "positive integer") {
		t.Fatalf("bad seq: %v", err)
	}

	// Replay the traces: back on the ingest stream, gone from the dead letters.
	out := mustRun(t, append([]string{"dlq", "replay", "--all", "--queue", "traces"}, url...)...)
	if !strings.Contains(out, "replayed 2") {
		t.Fatalf("replay: %s", out)
	}
	ingest, err := js.Stream(ctx, bus.IngestStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := ingest.Info(ctx)
	if err != nil || info.State.Msgs != 2 {
		t.Fatalf("ingest stream after replay: %v, %v", info.State.Msgs, err)
	}
	if out := mustRun(t, append([]string{"dlq", "purge", "--all"}, url...)...); !strings.Contains(out, "purged 1") {
		t.Fatalf("purge: %s", out)
	}
	if list := mustRun(t, append([]string{"dlq", "list"}, url...)...); strings.Count(list, "\n") != 1 {
		t.Fatalf("after purge:\n%s", list)
	}
}
