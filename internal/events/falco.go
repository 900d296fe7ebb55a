package events

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aftertrace/aftertrace/internal/otlpconv"
)

// MaxFalcoRecords bounds the alerts of one Falco body.
const MaxFalcoRecords = 10_000

// falcoNA is what Falco prints for a field without a value.
const falcoNA = "<NA>"

// ParseFalco decodes Falco alerts as Falco's http_output and falcosidekick's
// webhook output send them: one JSON object, a JSON array of objects, or
// newline-delimited objects (NDJSON; blank lines are skipped). Every alert
// needs time (RFC 3339, nanoseconds allowed), rule and priority; output,
// source, tags, hostname, uuid and output_fields are optional.
//
// The whole body is rejected on the first bad alert, with an error naming
// the alert's position ("record 3: field time: ..."; records count from 1).
// observed is the time the gateway received the body.
func ParseFalco(tenantID string, body []byte, observed time.Time) ([]Event, error) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, errors.New("empty body: want a Falco alert (JSON object), an array of alerts, or NDJSON")
	}
	var raws []json.RawMessage
	if body[0] == '[' {
		if err := json.Unmarshal(body, &raws); err != nil {
			return nil, fmt.Errorf("JSON array: %w", jsonErr(err))
		}
		if len(raws) == 0 {
			return nil, errors.New("empty JSON array: want at least one Falco alert")
		}
	} else {
		// One object or several, separated by newlines (or any white
		// space: Falco writes one per line, a client may pretty-print).
		dec := json.NewDecoder(bytes.NewReader(body))
		for {
			var raw json.RawMessage
			err := dec.Decode(&raw)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("record %d: %w", len(raws)+1, jsonErr(err))
			}
			raws = append(raws, raw)
			if len(raws) > MaxFalcoRecords {
				break
			}
		}
	}
	if len(raws) > MaxFalcoRecords {
		return nil, fmt.Errorf("too many alerts in one body: at most %d", MaxFalcoRecords)
	}
	obs := uint64(max(observed.UnixNano(), 0))
	out := make([]Event, 0, len(raws))
	for i, raw := range raws {
		ev, err := parseFalcoRecord(tenantID, raw, obs)
		if err != nil {
			return nil, fmt.Errorf("record %d: %w", i+1, err)
		}
		out = append(out, ev)
	}
	return out, nil
}

// jsonErr shortens encoding/json's errors to what a client can act on.
func jsonErr(err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return fmt.Errorf("malformed JSON at byte %d: %s", se.Offset, se.Error())
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Errorf("malformed JSON: %s value where %s was expected", te.Value, te.Type)
	}
	return fmt.Errorf("malformed JSON: %w", err)
}

// falcoRecord is one alert as Falco and falcosidekick send it.
type falcoRecord struct {
	Time         *string         `json:"time"`
	Rule         *string         `json:"rule"`
	Priority     *string         `json:"priority"`
	Output       string          `json:"output"`
	Source       string          `json:"source"`
	Hostname     string          `json:"hostname"`
	UUID         string          `json:"uuid"`
	Tags         []string        `json:"tags"`
	OutputFields json.RawMessage `json:"output_fields"`
}

func parseFalcoRecord(tenantID string, raw json.RawMessage, observed uint64) (Event, error) {
	var ev Event
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return ev, errors.New("not a JSON object")
	}
	var rec falcoRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return ev, fmt.Errorf("field %s: want %s, got JSON %s", te.Field, te.Type, te.Value)
		}
		return ev, jsonErr(err)
	}
	switch {
	case rec.Time == nil || *rec.Time == "":
		return ev, errors.New("field time: missing")
	case rec.Rule == nil || strings.TrimSpace(*rec.Rule) == "":
		return ev, errors.New("field rule: missing")
	case rec.Priority == nil || *rec.Priority == "":
		return ev, errors.New("field priority: missing")
	}
	t, err := time.Parse(time.RFC3339Nano, *rec.Time)
	if err != nil {
		return ev, fmt.Errorf("field time: %q is not an RFC 3339 timestamp", truncateText(*rec.Time, 64))
	}
	if t.Before(time.Unix(0, 0)) || t.After(time.Unix(0, 1<<63-1)) {
		return ev, fmt.Errorf("field time: %s is outside 1970..2262", *rec.Time)
	}
	sev, ok := ParseSeverity(*rec.Priority)
	if !ok {
		return ev, fmt.Errorf("field priority: unknown priority %q (want Emergency, Alert, Critical, Error, Warning, Notice, Informational or Debug)", truncateText(*rec.Priority, 64))
	}
	fields := map[string]string{}
	if len(rec.OutputFields) > 0 && !bytes.Equal(bytes.TrimSpace(rec.OutputFields), []byte("null")) {
		var of map[string]any
		dec := json.NewDecoder(bytes.NewReader(rec.OutputFields))
		dec.UseNumber()
		if err := dec.Decode(&of); err != nil {
			return ev, fmt.Errorf("field output_fields: want a JSON object: %w", jsonErr(err))
		}
		flatten("", of, fields)
	}
	canon, err := canonicalJSON(raw)
	if err != nil {
		return ev, err
	}

	ev = Event{
		TenantID:         tenantID,
		ID:               NewID(tenantID, SourceFalco, canon),
		TimeUnixNano:     uint64(t.UnixNano()),
		ObservedUnixNano: observed,
		Source:           SourceFalco,
		Type:             TypeSecurityAlert,
		Severity:         sev,
		SeverityText:     *rec.Priority,
		Reason:           strings.TrimSpace(*rec.Rule),
		Message:          rec.Output,
		ContainerName:    fields["container.name"],
		PodUID:           firstOf(fields, "k8s.pod.uid", "k8smeta.pod.uid"),
		PodName:          firstOf(fields, "k8s.pod.name", "k8smeta.pod.name"),
		Namespace:        firstOf(fields, "k8s.ns.name", "k8smeta.ns.name"),
		NodeName:         firstOf(fields, "k8s.node.name", "k8smeta.node.name"),
		ProcessName:      fields["proc.name"],
		ProcessCmdline:   fields["proc.cmdline"],
		UserName:         fields["user.name"],
		ExitCode:         ExitCodeUnknown,
		Tags:             rec.Tags,
	}
	if ev.NodeName == "" {
		ev.NodeName = rec.Hostname
	}
	if id := fields["container.id"]; id != "host" { // "host": the event happened outside any container
		ev.ContainerID = otlpconv.NormalizeContainerID(id)
	}
	if img := fields["container.image.repository"]; img != "" {
		ev.Image = img
		if tag := fields["container.image.tag"]; tag != "" {
			ev.Image += ":" + tag
		}
	} else {
		ev.Image = fields["container.image"]
	}
	ev.Workload = WorkloadFromPodName(ev.PodName)
	if ev.Tags == nil {
		ev.Tags = []string{}
	}
	// The envelope fields that have no column of their own are kept with
	// the output fields.
	for k, v := range map[string]string{"falco.source": rec.Source, "falco.hostname": rec.Hostname, "falco.uuid": rec.UUID} {
		if v != "" {
			fields[k] = v
		}
	}
	ev.FieldKeys, ev.FieldValues = sortedFields(fields)
	return ev, nil
}

// canonicalJSON re-encodes one JSON object with sorted keys and no
// insignificant white space, so the same alert gets the same id in any of
// the three body shapes.
func canonicalJSON(raw json.RawMessage) ([]byte, error) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return nil, jsonErr(err)
	}
	return json.Marshal(v)
}

// flatten writes the leaves of v under dotted keys: strings as they are
// (Falco's "<NA>" and JSON null as ""), numbers in their JSON text, booleans
// as true/false, arrays as JSON text; objects are walked.
func flatten(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, sub := range x {
			key := k
			if prefix != "" {
				key = prefix + "." + k
			}
			flatten(key, sub, out)
		}
	case nil:
		out[prefix] = ""
	case string:
		if x == falcoNA {
			x = ""
		}
		out[prefix] = x
	case json.Number:
		out[prefix] = x.String()
	case bool:
		out[prefix] = strconv.FormatBool(x)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			b = []byte(fmt.Sprint(x))
		}
		out[prefix] = string(b)
	}
}

// sortedFields returns the map as parallel key/value slices sorted by key.
func sortedFields(m map[string]string) ([]string, []string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	vals := make([]string, len(keys))
	for i, k := range keys {
		vals[i] = m[k]
	}
	return keys, vals
}

// firstOf is the first non-empty value of the keys.
func firstOf(m map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := m[k]; v != "" {
			return v
		}
	}
	return ""
}

// truncateText cuts s to at most n bytes on a rune boundary.
func truncateText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
