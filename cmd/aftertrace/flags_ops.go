package main

import (
	"github.com/spf13/pflag"

	"github.com/aftertrace/aftertrace/services/allinone"
)

// apiOnlyOpsAddr is the ops listener of `aftertrace api`, next to the
// gateway's default so both run on one host unconfigured.
const apiOnlyOpsAddr = "127.0.0.1:9465"

// bindOps registers the flags of the process's ops listener, of the
// OTLP/gRPC connection cap and of API key authentication (cache, lookups,
// failed attempts per address): what keeps one client from hurting the
// others. Only the roles with public listeners (gateway, api) have them.
func bindOps(fs *pflag.FlagSet, c *allinone.Config) {
	gw, api := c.Runs(allinone.TargetGateway), c.Runs(allinone.TargetAPI)
	if !gw && !api {
		return
	}
	if api && !gw {
		c.OpsAddr = apiOnlyOpsAddr
	}
	fs.StringVar(&c.OpsAddr, "ops-addr", c.OpsAddr, "listen address of /metrics, /debug/pprof/ (and /healthz, /readyz), which the OTLP and API ports do not serve; unauthenticated: keep it on loopback or a private network (empty: off)")
	if gw {
		fs.IntVar(&c.Gateway.GRPCMaxConnections, "grpc-max-connections", c.Gateway.GRPCMaxConnections, "open OTLP/gRPC connections at most; more are closed at once")
	}
	a := &c.AuthCache
	fs.DurationVar(&a.TTL, "auth-cache-ttl", a.TTL, "how long a working API key is trusted without a Postgres lookup (revocations evict it at once)")
	fs.DurationVar(&a.NegativeTTL, "auth-negative-ttl", a.NegativeTTL, "how long an unknown API key is refused without a Postgres lookup; a key created by another process works at the latest this long after a failed attempt with it")
	fs.DurationVar(&a.LookupTimeout, "auth-lookup-timeout", a.LookupTimeout, "upper bound of one API key lookup in Postgres, waiting for a slot included (then 503)")
	fs.IntVar(&a.MaxConcurrentLookups, "auth-max-lookups", a.MaxConcurrentLookups, "API key lookups in Postgres at once (cached keys never wait for them)")
	fs.Float64Var(&a.FailuresPerSecond, "auth-failures-per-second", a.FailuresPerSecond, "failed authentications per second allowed per client address (IP, IPv6 /64); over it keys that are not cached are answered 429 / RESOURCE_EXHAUSTED unchecked")
	fs.IntVar(&a.FailureBurst, "auth-failure-burst", a.FailureBurst, "burst of failed authentications per client address")
}
