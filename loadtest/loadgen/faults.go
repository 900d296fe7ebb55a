package loadgen

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"time"
)

// Fault makes one pod of one service slow and failing during a window.
type Fault struct {
	Service       string    `json:"service"`
	Pod           string    `json:"pod"`
	PodUID        string    `json:"podUid"`
	Node          string    `json:"node"`
	ContainerID   string    `json:"containerId"`
	Start         time.Time `json:"start"`
	End           time.Time `json:"end"`
	StartUnixNano string    `json:"startUnixNano"`
	EndUnixNano   string    `json:"endUnixNano"`
	LatencyFactor float64   `json:"latencyFactor"` // server self time is multiplied by this
	ErrorRate     float64   `json:"errorRate"`     // share of failing server spans on the pod
	pod           *Pod
}

// active reports whether the fault applies to pod at t.
func (f *Fault) active(p *Pod, t time.Time) bool {
	return f.pod == p && !t.Before(f.Start) && t.Before(f.End)
}

// PlanFaults picks n faults for a run [start, start+d): each on a random
// non-frontend service and pod, starting between 10% and 60% of the run and
// lasting a fifth of it (at least 5 s). The plan depends only on the model
// seed, n, start and d.
func (m *Model) PlanFaults(n int, start time.Time, d time.Duration) []Fault {
	rng := rand.New(rand.NewPCG(m.Config.Seed, 0x6661756c74)) // "fault"
	var out []Fault
	cands := m.Services
	if len(cands) > 1 {
		cands = cands[1:]
	}
	for range n {
		s := cands[rng.IntN(len(cands))]
		p := s.Pods[rng.IntN(len(s.Pods))]
		length := max(d/5, 5*time.Second)
		from := start.Add(time.Duration(float64(d) * (0.1 + 0.5*rng.Float64())))
		out = append(out, m.fault(p, from, from.Add(length), 5, 0.5))
	}
	return out
}

func (m *Model) fault(p *Pod, from, to time.Time, latency, errRate float64) Fault {
	return Fault{
		Service: p.Service.Name, Pod: p.Name, PodUID: p.UID, Node: p.Node, ContainerID: p.ContainerID,
		Start: from.UTC(), End: to.UTC(),
		StartUnixNano: strconv.FormatInt(from.UnixNano(), 10), EndUnixNano: strconv.FormatInt(to.UnixNano(), 10),
		LatencyFactor: latency, ErrorRate: errRate, pod: p,
	}
}

// GroundTruth is what a run injected, for checking what an analysis finds.
type GroundTruth struct {
	Seed     uint64    `json:"seed"`
	Start    time.Time `json:"start"`
	End      time.Time `json:"end"`
	Services []string  `json:"services"`
	Faults   []Fault   `json:"faults"`
}

// WriteGroundTruth writes gt as indented JSON to path.
func WriteGroundTruth(path string, gt GroundTruth) error {
	b, err := json.MarshalIndent(gt, "", "  ")
	if err != nil {
		return fmt.Errorf("encode ground truth: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write ground truth: %w", err)
	}
	return nil
}
