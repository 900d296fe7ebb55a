// Package authn turns a request credential into the tenant it belongs to.
// The tenant always comes from the credential, never from a header the
// client picks.
package authn

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net"
	"net/http"
	"net/netip"
	"strings"

	"github.com/aftertrace/aftertrace/internal/apperr"
)

// Tenant identifies who owns a request's data.
type Tenant struct {
	ID string
	// KeyID identifies the API key that authenticated (never the key
	// itself), for audit records; "" for keys without an id (authn.Static).
	KeyID string
}

// Authenticator resolves an API key to its tenant.
type Authenticator interface {
	Authenticate(ctx context.Context, apiKey string) (Tenant, error)
}

// ErrUnauthenticated is returned for a missing, malformed or unknown key.
var ErrUnauthenticated = apperr.New(apperr.KindUnauthenticated, "missing or invalid API key: send Authorization: Bearer <key>")

// Static is an Authenticator with a fixed set of keys (the dev tenant).
type Static struct {
	keys map[[32]byte]Tenant
}

// NewStatic returns an Authenticator accepting the given key → tenant map.
func NewStatic(keys map[string]Tenant) *Static {
	s := &Static{keys: make(map[[32]byte]Tenant, len(keys))}
	for k, t := range keys {
		s.keys[sha256.Sum256([]byte(k))] = t
	}
	return s
}

// Authenticate implements Authenticator. Keys are compared by hash so the
// lookup time does not depend on how much of a guess matches.
func (s *Static) Authenticate(_ context.Context, apiKey string) (Tenant, error) {
	if apiKey == "" {
		return Tenant{}, ErrUnauthenticated
	}
	h := sha256.Sum256([]byte(apiKey))
	for kh, t := range s.keys {
		if subtle.ConstantTimeCompare(kh[:], h[:]) == 1 {
			return t, nil
		}
	}
	return Tenant{}, ErrUnauthenticated
}

// BearerToken extracts the key from an "Authorization: Bearer <key>" value.
func BearerToken(header string) string {
	const prefix = "bearer "
	if len(header) < len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return ""
	}
	return strings.TrimSpace(header[len(prefix):])
}

type ctxKey struct{}

type sourceKey struct{}

// WithSource returns ctx carrying the network address a request came from
// (host:port or a bare IP), so an Authenticator can limit failed attempts
// per source. Transports set it from the connection's peer address, never
// from a header the client picks.
func WithSource(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, sourceKey{}, addr)
}

// SourceFrom returns the source of ctx, reduced to what one client
// controls: the IP address, or the /64 network of an IPv6 address (one
// host usually owns a whole /64). "" when ctx has none or it does not parse.
func SourceFrom(ctx context.Context) string {
	addr, _ := ctx.Value(sourceKey{}).(string)
	if addr == "" {
		return ""
	}
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// WithTenant returns ctx carrying t.
func WithTenant(ctx context.Context, t Tenant) context.Context {
	return context.WithValue(ctx, ctxKey{}, t)
}

// TenantFrom returns the tenant stored by WithTenant.
func TenantFrom(ctx context.Context) (Tenant, bool) {
	t, ok := ctx.Value(ctxKey{}).(Tenant)
	return t, ok
}

// Middleware authenticates every request and stores its tenant in the
// context; unauthenticated requests get 401 with a JSON error body (429
// when their address failed too often, see Cached).
func Middleware(a Authenticator) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			t, err := a.Authenticate(WithSource(r.Context(), r.RemoteAddr), BearerToken(r.Header.Get("Authorization")))
			if err != nil {
				apperr.WriteHTTP(w, err)
				return
			}
			next.ServeHTTP(w, r.WithContext(WithTenant(r.Context(), t)))
		})
	}
}
