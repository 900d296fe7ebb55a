package rca

import (
	"fmt"
)

// eventFindings turns the container events of the window into evidence on
// their service: a Kubernetes or runtime-security event on a container is
// direct evidence, as surprising as its severity says.
func eventFindings(evs []Event, fr frame) ([]finding, map[string]int) {
	var out []finding
	for _, e := range evs {
		s := 1.0
		switch {
		case e.Severity >= 18:
			s = 4
		case e.Severity >= 17:
			s = 3
		case e.Severity >= 13:
			s = 2
		}
		svc := serviceOf(e.Service, e.Pod, e.Container)
		if svc == "" {
			continue
		}
		what := e.Type
		if e.Reason != "" {
			what += " (" + e.Reason + ")"
		}
		if e.Message != "" {
			what += ": " + truncate(e.Message, 160)
		}
		out = append(out, finding{family: famEvents, svc: svc, pod: e.Pod, ctr: e.Container, z: s, s: s, onset: e.T,
			key: "event|" + e.Type, what: fmt.Sprintf("event %s", what), ref: "/api/v1/events/" + e.ID})
	}
	return out, map[string]int{famEvents: len(evs)}
}
