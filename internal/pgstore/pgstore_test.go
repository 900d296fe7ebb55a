package pgstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

var hexID = regexp.MustCompile(`^[0-9a-f]{16}$`)

func openStore(t *testing.T) *pgstore.Store {
	t.Helper()
	env := testenv.Get(t)
	s, err := pgstore.Open(context.Background(), env.PostgresDSN)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func wantKind(t *testing.T, what string, err error, k apperr.Kind) {
	t.Helper()
	if err == nil || apperr.KindOf(err) != k {
		t.Fatalf("%s: err = %v, want kind %s", what, err, k)
	}
}

func TestTenants(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)

	a, err := s.CreateTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if !hexID.MatchString(a.ID) || a.Name != "acme" || a.CreatedAt.IsZero() {
		t.Fatalf("created %+v", a)
	}
	_, err = s.CreateTenant(ctx, "acme")
	wantKind(t, "duplicate name", err, apperr.KindConflict)
	for _, bad := range []string{"", "-x", "a b", strings.Repeat("a", 64), "é", "a/b"} {
		_, err := s.CreateTenant(ctx, bad)
		wantKind(t, "name "+bad, err, apperr.KindInvalid)
	}

	got, err := s.GetTenant(ctx, a.ID)
	if err != nil || got.Name != "acme" || !got.CreatedAt.Equal(a.CreatedAt) {
		t.Fatalf("GetTenant = %+v, %v", got, err)
	}
	if got, err := s.GetTenantByName(ctx, "acme"); err != nil || got.ID != a.ID {
		t.Fatalf("GetTenantByName = %+v, %v", got, err)
	}
	for _, q := range []string{"acme", a.ID} {
		if got, err := s.ResolveTenant(ctx, q); err != nil || got.ID != a.ID {
			t.Fatalf("ResolveTenant(%q) = %+v, %v", q, got, err)
		}
	}
	_, err = s.GetTenant(ctx, "nope")
	wantKind(t, "unknown id", err, apperr.KindNotFound)
	_, err = s.ResolveTenant(ctx, "nope")
	wantKind(t, "unknown name", err, apperr.KindNotFound)

	dev, err := s.EnsureTenant(ctx, "dev", "dev")
	if err != nil || dev.ID != "dev" {
		t.Fatalf("EnsureTenant = %+v, %v", dev, err)
	}
	if again, err := s.EnsureTenant(ctx, "dev", "dev"); err != nil || !again.CreatedAt.Equal(dev.CreatedAt) {
		t.Fatalf("EnsureTenant again = %+v, %v", again, err)
	}

	var all []string
	for i := range 5 {
		tn, err := s.CreateTenant(ctx, "t"+string(rune('a'+i)))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, tn.ID)
	}
	all = append(all, a.ID, "dev")
	slices.Sort(all)
	var paged []string
	for p := (pgstore.Page{Limit: 3}); ; {
		page, err := s.ListTenants(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range page {
			paged = append(paged, tn.ID)
		}
		if len(page) < p.Limit {
			break
		}
		p.After = page[len(page)-1].ID
	}
	if !slices.Equal(paged, all) {
		t.Errorf("paged tenants %v, want %v", paged, all)
	}
}

func TestKeys(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	tn, err := s.CreateTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}

	k, err := s.CreateKey(ctx, tn.ID, "ci pipeline")
	if err != nil {
		t.Fatal(err)
	}
	secret, ok := strings.CutPrefix(k.Key, pgstore.KeyPrefix)
	if raw, err := base64.RawURLEncoding.Strict().DecodeString(secret); !ok || err != nil || len(raw) != 32 {
		t.Fatalf("key %q: want atk_ + base64url of 32 bytes (%v)", k.Key, err)
	}
	if !hexID.MatchString(k.ID) || k.TenantID != tn.ID || k.Description != "ci pipeline" ||
		k.RevokedAt != nil || k.Prefix != k.Key[:12] {
		t.Fatalf("created %+v", k.APIKey)
	}

	// Only the hash is stored.
	var stored []byte
	if err := s.Pool().QueryRow(ctx, `SELECT key_hash FROM api_keys WHERE id = $1`, k.ID).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if h := sha256.Sum256([]byte(k.Key)); !slices.Equal(stored, h[:]) {
		t.Errorf("stored hash %x, want sha256 of the key", stored)
	}
	var hits int
	if err := s.Pool().QueryRow(ctx,
		`SELECT count(*) FROM api_keys WHERE position($1 in prefix || description || id) > 0`, secret[8:],
	).Scan(&hits); err != nil || hits != 0 {
		t.Errorf("the secret is stored in clear (%d rows, %v)", hits, err)
	}

	owner, err := s.LookupKey(ctx, pgstore.HashKey(k.Key))
	if err != nil || owner != (pgstore.KeyOwner{KeyID: k.ID, TenantID: tn.ID}) {
		t.Fatalf("LookupKey = %+v, %v", owner, err)
	}
	_, err = s.LookupKey(ctx, pgstore.HashKey(k.Key+"x"))
	wantKind(t, "lookup unknown", err, apperr.KindNotFound)

	k2, err := s.CreateKey(ctx, tn.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := s.ListKeys(ctx, tn.ID, pgstore.Page{})
	if err != nil || len(keys) != 2 {
		t.Fatalf("ListKeys = %+v, %v", keys, err)
	}
	ids := []string{keys[0].ID, keys[1].ID}
	if want := []string{k.ID, k2.ID}; !slices.Equal(ids, slices.Sorted(slices.Values(want))) {
		t.Errorf("listed %v, want %v", ids, want)
	}

	r1, err := s.RevokeKey(ctx, k.ID)
	if err != nil || r1.RevokedAt == nil {
		t.Fatalf("RevokeKey = %+v, %v", r1, err)
	}
	r2, err := s.RevokeKey(ctx, k.ID)
	if err != nil || r2.RevokedAt == nil || !r2.RevokedAt.Equal(*r1.RevokedAt) {
		t.Fatalf("RevokeKey again = %+v, %v; want the first revocation time kept", r2, err)
	}
	_, err = s.LookupKey(ctx, pgstore.HashKey(k.Key))
	wantKind(t, "lookup revoked", err, apperr.KindNotFound)
	if _, err := s.LookupKey(ctx, pgstore.HashKey(k2.Key)); err != nil {
		t.Errorf("the other key stopped working: %v", err)
	}

	_, err = s.RevokeKey(ctx, "0000000000000000")
	wantKind(t, "revoke unknown", err, apperr.KindNotFound)
	_, err = s.CreateKey(ctx, "nope", "")
	wantKind(t, "key for unknown tenant", err, apperr.KindNotFound)
	_, err = s.ListKeys(ctx, "nope", pgstore.Page{})
	wantKind(t, "keys of unknown tenant", err, apperr.KindNotFound)
	_, err = s.CreateKey(ctx, tn.ID, strings.Repeat("x", 300))
	wantKind(t, "long description", err, apperr.KindInvalid)
}

func TestEnsureKey(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if _, err := s.EnsureTenant(ctx, "dev", "dev"); err != nil {
		t.Fatal(err)
	}
	const devKey = "atk_dev_0123456789abcdef"
	k, err := s.EnsureKey(ctx, "dev", devKey, "dev key")
	if err != nil || k.TenantID != "dev" || k.RevokedAt != nil || !hexID.MatchString(k.ID) {
		t.Fatalf("EnsureKey = %+v, %v", k, err)
	}
	again, err := s.EnsureKey(ctx, "dev", devKey, "dev key")
	if err != nil || again.ID != k.ID {
		t.Fatalf("EnsureKey again = %+v, %v; want the same key", again, err)
	}
	if _, err := s.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	revoked, err := s.EnsureKey(ctx, "dev", devKey, "dev key")
	if err != nil || revoked.RevokedAt == nil {
		t.Fatalf("EnsureKey of a revoked key = %+v, %v; want it to stay revoked", revoked, err)
	}
}

// TestRevocationListener: revocations by any connection reach the
// listener; a broken listener connection evicts everything, reconnects and
// keeps delivering.
func TestRevocationListener(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	tn, err := s.CreateTenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	l, err := s.ListenRevocations(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan string, 16)
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Run(rctx, func(id string) { got <- id }) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	expect := func(want string) {
		t.Helper()
		select {
		case id := <-got:
			if id != want {
				t.Fatalf("evicted %q, want %q", id, want)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("no eviction of %q within 10s", want)
		}
	}

	k, err := s.CreateKey(ctx, tn.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeKey(ctx, k.ID); err != nil {
		t.Fatal(err)
	}
	expect(k.ID)

	// Deleting a key by hand notifies too.
	k2, err := s.CreateKey(ctx, tn.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Pool().Exec(ctx, `DELETE FROM api_keys WHERE id = $1`, k2.ID); err != nil {
		t.Fatal(err)
	}
	expect(k2.ID)

	// Kill the listener's session: evict all, reconnect, evict all again.
	var n int
	if err := s.Pool().QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN%' AND pid <> pg_backend_pid()`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminated %d listener sessions: %v", n, err)
	}
	expect("")
	expect("")
	k3, err := s.CreateKey(ctx, tn.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.RevokeKey(ctx, k3.ID); err != nil {
		t.Fatal(err)
	}
	expect(k3.ID)
}
