package events

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
)

// FuzzParseFalco: any body either parses into events that encode as JSON
// and round-trip, or fails with an error naming a reason; it never panics.
func FuzzParseFalco(f *testing.F) {
	for _, s := range []string{falcoShell, falcoWrite, falcoHost,
		"[" + falcoShell + "," + falcoWrite + "]", falcoShell + "\n" + falcoHost,
		`{"time":"2024-05-06T10:01:02Z","rule":"r","priority":"Warning","output_fields":{"a":{"b":[1,null]}}}`,
		`[]`, `{}`, `null`, `[1]`, `{"time":1}`} {
		f.Add([]byte(s))
	}
	obs := time.Unix(1714990000, 0)
	f.Fuzz(func(t *testing.T, body []byte) {
		evs, err := ParseFalco("t", body, obs)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if len(evs) == 0 {
			t.Fatal("no error and no events")
		}
		for _, ev := range evs {
			if ev.Reason == "" || ev.Type != TypeSecurityAlert || len(ev.FieldKeys) != len(ev.FieldValues) {
				t.Fatalf("bad event %+v", ev)
			}
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			var back Event
			if err := json.Unmarshal(b, &back); err != nil || back.ID != ev.ID {
				t.Fatalf("round trip: %v", err)
			}
		}
	})
}

// FuzzFromLogs feeds OTLP JSON logs (seeded with both receivers' shapes)
// to FromLogs: it never panics and every event has an id and a type.
func FuzzFromLogs(f *testing.F) {
	seed := func(build func(plog.Logs)) {
		ld := plog.NewLogs()
		build(ld)
		b, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(func(ld plog.Logs) {
		k8sEventsRecord(ld, "BackOff", "Warning", "Back-off restarting failed container", 2)
	})
	seed(func(ld plog.Logs) { objectsRecord(ld, "pods", "MODIFIED", podObject()) })
	seed(func(ld plog.Logs) { objectsRecord(ld, "pods", "", podObject()) })
	seed(func(ld plog.Logs) {
		objectsRecord(ld, "events", "ADDED", eventObject("OOMKilling", "Warning", "oom", 1))
	})
	f.Add([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"attributes":[{"key":"k8s.resource.name","value":{"stringValue":"pods"}}],"body":{"kvlistValue":{"values":[{"key":"kind","value":{"stringValue":"Pod"}},{"key":"metadata","value":{"kvlistValue":{"values":[{"key":"uid","value":{"stringValue":"u"}}]}}},{"key":"status","value":{"intValue":"3"}}]}}}]}]}]}`))
	um := &plog.JSONUnmarshaler{}
	f.Fuzz(func(t *testing.T, body []byte) {
		ld, err := um.UnmarshalLogs(body)
		if err != nil {
			return
		}
		for _, ev := range FromLogs("t", ld) {
			if ev.ID == (ID{}) || ev.Type == "" || !strings.HasPrefix(ev.Source, "k8s_") || len(ev.FieldKeys) != len(ev.FieldValues) {
				t.Fatalf("bad event %+v", ev)
			}
		}
	})
}
