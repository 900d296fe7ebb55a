package rcaeval

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Case is one labelled incident: the window to analyse and the service
// that was the root cause.
type Case struct {
	ID      string    `json:"id,omitempty"`   // free text shown in the table (e.g. a post-mortem id)
	Start   time.Time `json:"start"`          // RFC 3339
	End     time.Time `json:"end"`            // RFC 3339
	Service string    `json:"service"`        // the root-cause service
	Type    string    `json:"type,omitempty"` // fault type, for the per-type table ("" = "unlabelled")
}

// MaxCases bounds a case file.
const MaxCases = 10000

// ReadCases reads a JSON array of cases and checks every field; the error
// names the case and field.
func ReadCases(r io.Reader) ([]Case, error) {
	dec := json.NewDecoder(io.LimitReader(r, 64<<20))
	dec.DisallowUnknownFields()
	var cs []Case
	if err := dec.Decode(&cs); err != nil {
		return nil, fmt.Errorf("cases: want a JSON array of {start, end, service[, type, id]}: %w", err)
	}
	if len(cs) == 0 {
		return nil, errors.New("cases: the list is empty")
	}
	if len(cs) > MaxCases {
		return nil, fmt.Errorf("cases: %d cases, at most %d", len(cs), MaxCases)
	}
	var errs []error
	for i, c := range cs {
		switch {
		case c.Start.IsZero():
			errs = append(errs, fmt.Errorf("cases[%d].start: required (RFC 3339)", i))
		case c.End.IsZero():
			errs = append(errs, fmt.Errorf("cases[%d].end: required (RFC 3339)", i))
		case !c.End.After(c.Start):
			errs = append(errs, fmt.Errorf("cases[%d].end: must be after start", i))
		}
		if strings.TrimSpace(c.Service) == "" {
			errs = append(errs, fmt.Errorf("cases[%d].service: required", i))
		}
	}
	return cs, errors.Join(errs...)
}

// NezhaCases turns labelled faults into cases: the window starts before
// the inject time and ends after it.
func NezhaCases(faults []Fault, before, after time.Duration) []Case {
	out := make([]Case, len(faults))
	for i, f := range faults {
		out[i] = Case{ID: f.Time.UTC().Format(time.DateTime), Start: f.Time.Add(-before), End: f.Time.Add(after), Service: f.Service, Type: f.Type}
	}
	return out
}
