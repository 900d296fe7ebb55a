package ops

import (
	"math"
	"net/http"
	"net/http/pprof"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// MaxProfileSeconds bounds the seconds parameter of /debug/pprof/profile,
// /debug/pprof/trace and the delta profiles (/debug/pprof/heap?seconds=):
// a request holds a connection and, for CPU profiles, the process-wide
// profiler for that long.
const MaxProfileSeconds = 60

// registerPprof adds net/http/pprof's handlers, with the seconds parameter
// bounded, one profile over time at once, and the command line redacted.
// Refusals are counted in reg's aftertrace_ops_pprof_rejected_total when
// reg is a Registerer.
func registerPprof(mux Mux, reg prometheus.Gatherer) {
	if r, ok := reg.(prometheus.Registerer); ok {
		_ = r.Register(pprofRejected) // AlreadyRegistered: another ops route set of this process
	}
	mux.Handle("/debug/pprof/", boundedSeconds(http.HandlerFunc(pprof.Index), false))
	mux.Handle("/debug/pprof/cmdline", http.HandlerFunc(redactedCmdline))
	mux.Handle("/debug/pprof/profile", boundedSeconds(http.HandlerFunc(pprof.Profile), true))
	mux.Handle("/debug/pprof/symbol", http.HandlerFunc(pprof.Symbol))
	mux.Handle("/debug/pprof/trace", boundedSeconds(http.HandlerFunc(pprof.Trace), true))
}

// pprofRejected counts the profiling requests refused, by reason.
var pprofRejected = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "aftertrace_ops_pprof_rejected_total",
	Help: "Profiling requests refused, by reason: bad_seconds (400: seconds not in (0, MaxProfileSeconds]), busy (429: another profile over time is running).",
}, []string{"reason"})

// profiling holds the one profile over time (CPU profile, execution trace
// or delta profile) the process takes at once.
var profiling = make(chan struct{}, 1)

// boundedSeconds answers 400 to a seconds parameter that is not a number
// in (0, MaxProfileSeconds]. pprof reads it with FormValue, so a POST body
// counts too. A request that profiles over time (timed: always; else with
// a seconds parameter) answers 429 while another one runs.
func boundedSeconds(next http.Handler, timed bool) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v := r.FormValue("seconds")
		if v != "" {
			sec, err := strconv.ParseFloat(v, 64)
			if err != nil || math.IsNaN(sec) || sec <= 0 || sec > MaxProfileSeconds {
				pprofRejected.WithLabelValues("bad_seconds").Inc()
				apperr.WriteHTTP(w, apperr.Invalid("seconds", "must be a positive number of seconds up to %d, got %.20q", MaxProfileSeconds, v))
				return
			}
		}
		if timed || v != "" {
			select {
			case profiling <- struct{}{}:
				defer func() { <-profiling }()
			default:
				pprofRejected.WithLabelValues("busy").Inc()
				apperr.WriteHTTP(w, &apperr.Error{Kind: apperr.KindRateLimited, RetryAfter: time.Second,
					Message: "another profile is being taken, retry when it is done"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// redactedCmdline is pprof.Cmdline without values: flags may carry keys,
// DSNs and passwords (--admin-api-key, --postgres-dsn, ...).
func redactedCmdline(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte(strings.Join(redactArgs(os.Args), "\x00")))
}

const redacted = "<redacted>"

// redactArgs keeps the program, the commands before the first flag and
// the flag names; every value ("--k=v", "--k v", positional) is replaced.
func redactArgs(args []string) []string {
	out := make([]string, 0, len(args))
	flags := false
	for i, a := range args {
		switch {
		case i == 0:
			out = append(out, a)
		case strings.HasPrefix(a, "-"):
			flags = true
			if name, _, hasValue := strings.Cut(a, "="); hasValue {
				a = name + "=" + redacted
			}
			out = append(out, a)
		case flags:
			out = append(out, redacted)
		default:
			out = append(out, a) // a command: run, gateway, ...
		}
	}
	return out
}
