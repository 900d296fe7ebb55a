// Package loadgen generates the OTLP traffic of a realistic microservice
// application (services calling each other, Kubernetes pods, business
// transactions, logs and metrics tied to the traces, injected faults) and
// sends it open-loop at a fixed rate over OTLP gRPC or HTTP.
//
// Everything generated is a function of the seed and the timestamps it is
// asked for, so a run can be replayed and its ground truth checked.
package loadgen

import (
	"errors"
	"fmt"
	"math/rand/v2"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// ModelConfig shapes the simulated application.
type ModelConfig struct {
	Seed           uint64
	Services       int     // number of services; the first 8 have shop names
	PodsPerService int     // replicas of each service
	Nodes          int     // Kubernetes nodes the pods are spread over
	Depth          int     // longest call chain below the root
	FanOut         int     // most downstream calls one span makes
	BusinessRatio  float64 // share of traces that are checkout/payment transactions
	ErrorRate      float64 // baseline share of failing server spans
	Namespace      string
}

// DefaultModelConfig is an 8-service shop with 3 pods per service.
func DefaultModelConfig() ModelConfig {
	return ModelConfig{
		Seed: 1, Services: 8, PodsPerService: 3, Nodes: 4, Depth: 4, FanOut: 3,
		BusinessRatio: 0.3, ErrorRate: 0.01, Namespace: "shop",
	}
}

// Validate reports every problem at once.
func (c ModelConfig) Validate() error {
	var errs []error
	if c.Services < 1 || c.Services > 1000 {
		errs = append(errs, fmt.Errorf("services: must be 1..1000, got %d", c.Services))
	}
	if c.PodsPerService < 1 || c.PodsPerService > 1000 {
		errs = append(errs, fmt.Errorf("pods per service: must be 1..1000, got %d", c.PodsPerService))
	}
	if c.Nodes < 1 {
		errs = append(errs, fmt.Errorf("nodes: must be positive, got %d", c.Nodes))
	}
	if c.Depth < 0 || c.Depth > 16 {
		errs = append(errs, fmt.Errorf("depth: must be 0..16, got %d", c.Depth))
	}
	if c.FanOut < 1 || c.FanOut > 16 {
		errs = append(errs, fmt.Errorf("fan-out: must be 1..16, got %d", c.FanOut))
	}
	if c.BusinessRatio < 0 || c.BusinessRatio > 1 {
		errs = append(errs, fmt.Errorf("business ratio: must be in [0,1], got %v", c.BusinessRatio))
	}
	if c.ErrorRate < 0 || c.ErrorRate > 1 {
		errs = append(errs, fmt.Errorf("error rate: must be in [0,1], got %v", c.ErrorRate))
	}
	if c.Namespace == "" {
		errs = append(errs, errors.New("namespace: must not be empty"))
	}
	return errors.Join(errs...)
}

// Service is one simulated microservice.
type Service struct {
	Name      string
	RPC       bool     // speaks gRPC (else HTTP)
	Routes    []string // HTTP routes or gRPC methods it serves
	DB        string   // db.system of its datastore, "" for none
	BaseMs    float64  // typical self time of one request
	Callees   []*Service
	Pods      []*Pod
	rpcSvc    string // rpc.service name for gRPC services
	isRootSvc bool
}

// Pod is one replica: the Kubernetes and container identity that becomes
// the resource of everything it emits.
type Pod struct {
	Service     *Service
	Name        string
	UID         string
	Node        string
	ContainerID string // 64 lower-case hex
	Resource    pcommon.Map
}

type serviceSpec struct {
	name    string
	rpc     bool
	routes  []string
	db      string
	baseMs  float64
	callees []string
}

// shop is the default application; services past it are generated.
var shop = []serviceSpec{
	{"frontend", false, []string{"/", "/product/{id}", "/cart", "/cart/checkout"}, "", 3, []string{"catalog", "cart", "checkout", "currency", "shipping"}},
	{"checkout", true, []string{"PlaceOrder"}, "postgresql", 6, []string{"cart", "payment", "shipping", "email", "currency", "catalog"}},
	{"payment", true, []string{"Charge", "Refund"}, "postgresql", 15, []string{"currency"}},
	{"cart", true, []string{"GetCart", "AddItem", "EmptyCart"}, "redis", 1.5, nil},
	{"catalog", true, []string{"ListProducts", "GetProduct", "SearchProducts"}, "postgresql", 2.5, nil},
	{"shipping", true, []string{"GetQuote", "ShipOrder"}, "", 4, []string{"currency"}},
	{"email", true, []string{"SendOrderConfirmation"}, "", 8, nil},
	{"currency", true, []string{"Convert", "GetSupportedCurrencies"}, "", 0.8, nil},
}

// Model is the simulated application: services, their call graph and pods.
type Model struct {
	Config   ModelConfig
	Services []*Service
	byName   map[string]*Service
}

// NewModel builds the application for cfg; the same config gives the same
// model (pod names, uids and container ids come from the seed).
func NewModel(cfg ModelConfig) (*Model, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6d6f64656c)) // "model"
	m := &Model{Config: cfg, byName: map[string]*Service{}}
	specs := make([]serviceSpec, 0, cfg.Services)
	for i := range cfg.Services {
		if i < len(shop) {
			specs = append(specs, shop[i])
			continue
		}
		specs = append(specs, serviceSpec{
			name: fmt.Sprintf("svc-%03d", i), rpc: true, routes: []string{"Handle", "Lookup"},
			baseMs: 1 + rng.Float64()*5, callees: []string{"currency"},
		})
	}
	for _, sp := range specs {
		s := &Service{Name: sp.name, RPC: sp.rpc, Routes: sp.routes, DB: sp.db, BaseMs: sp.baseMs}
		if sp.rpc {
			s.rpcSvc = "hipstershop." + titleCase(sp.name) + "Service"
		}
		m.Services = append(m.Services, s)
		m.byName[s.Name] = s
	}
	for i, sp := range specs {
		s := m.Services[i]
		for _, c := range sp.callees {
			if cs, ok := m.byName[c]; ok && cs != s {
				s.Callees = append(s.Callees, cs)
			}
		}
		// Generated services hang below frontend or checkout.
		if i >= len(shop) {
			parent := m.Services[0]
			if p, ok := m.byName["checkout"]; ok && rng.IntN(2) == 0 {
				parent = p
			}
			parent.Callees = append(parent.Callees, s)
		}
	}
	for _, s := range m.Services {
		rs := randHex(rng, 5)
		for range cfg.PodsPerService {
			s.Pods = append(s.Pods, newPod(rng, cfg, s, rs))
		}
	}
	return m, nil
}

// Service returns the named service, or nil.
func (m *Model) Service(name string) *Service { return m.byName[name] }

func newPod(rng *rand.Rand, cfg ModelConfig, s *Service, replicaSet string) *Pod {
	p := &Pod{
		Service:     s,
		Name:        fmt.Sprintf("%s-%s-%s", s.Name, replicaSet, randAlnum(rng, 5)),
		UID:         randUUID(rng),
		Node:        fmt.Sprintf("node-%d", rng.IntN(cfg.Nodes)+1),
		ContainerID: randHex(rng, 64),
		Resource:    pcommon.NewMap(),
	}
	r := p.Resource
	r.PutStr("service.name", s.Name)
	r.PutStr("service.namespace", cfg.Namespace)
	r.PutStr("service.version", fmt.Sprintf("1.%d.%d", rng.IntN(10), rng.IntN(20)))
	r.PutStr("service.instance.id", p.UID)
	r.PutStr("k8s.namespace.name", cfg.Namespace)
	r.PutStr("k8s.pod.name", p.Name)
	r.PutStr("k8s.pod.uid", p.UID)
	r.PutStr("k8s.node.name", p.Node)
	r.PutStr("k8s.deployment.name", s.Name)
	r.PutStr("k8s.container.name", s.Name)
	r.PutStr("container.id", p.ContainerID)
	r.PutStr("container.image.name", "registry.example.com/shop/"+s.Name)
	r.PutStr("telemetry.sdk.language", "go")
	r.PutStr("telemetry.sdk.name", "opentelemetry")
	return p
}

const hexDigits = "0123456789abcdef"

func randHex(rng *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = hexDigits[rng.IntN(16)]
	}
	return string(b)
}

func randAlnum(rng *rand.Rand, n int) string {
	const alnum = "bcdfghjklmnpqrstvwxz2456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = alnum[rng.IntN(len(alnum))]
	}
	return string(b)
}

func randUUID(rng *rand.Rand) string {
	h := randHex(rng, 32)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}

func titleCase(s string) string {
	if s == "" {
		return s
	}
	b := []byte(s)
	if b[0] >= 'a' && b[0] <= 'z' {
		b[0] -= 'a' - 'A'
	}
	return string(b)
}
