package main

import (
	"bytes"
	"context"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/aftertrace/aftertrace/internal/apperr"
	"github.com/aftertrace/aftertrace/internal/pgstore"
	"github.com/aftertrace/aftertrace/internal/testenv"
)

// TestMain runs the tests with the testenv servers (started only by tests
// that call testenv.Get) and checks for leaked goroutines.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// runCLI runs one command line and returns its stdout and stderr.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := run(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, errOut, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("aftertrace %s: %v\n%s", strings.Join(args, " "), err, errOut)
	}
	return out
}

func TestTenantAndKeyCommands(t *testing.T) {
	env := testenv.Get(t)
	dsn := []string{"--postgres-dsn", env.PostgresDSN}

	id := strings.TrimSpace(mustRun(t, append([]string{"tenant", "create", "acme"}, dsn...)...))
	if !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(id) {
		t.Fatalf("tenant create printed %q, want the id", id)
	}
	if _, _, err := runCLI(t, append([]string{"tenant", "create", "acme"}, dsn...)...); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("duplicate tenant: %v", err)
	}

	// The environment variable works like the flag.
	t.Setenv("AFTERTRACE_POSTGRES_DSN", env.PostgresDSN)
	list := mustRun(t, "tenant", "list")
	if !regexp.MustCompile(`(?m)^` + id + `\s+acme\s+\d{4}-`).MatchString(list) {
		t.Errorf("tenant list:\n%s", list)
	}

	out, errOut, err := runCLI(t, "key", "create", "--tenant", "acme", "--description", "ci runner")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^key id\s+([0-9a-f]{16})$[\s\S]*^api key\s+(atk_[A-Za-z0-9_-]{43})$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("key create printed:\n%s", out)
	}
	keyID, key := m[1], m[2]
	if !strings.Contains(errOut, "not shown again") {
		t.Errorf("key create does not warn that the key is shown once: %q", errOut)
	}

	s, err := pgstore.Open(context.Background(), env.PostgresDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if o, err := s.LookupKey(context.Background(), pgstore.HashKey(key)); err != nil || o.TenantID != id || o.KeyID != keyID {
		t.Fatalf("the printed key does not authenticate as acme: %+v, %v", o, err)
	}

	// By id as well as by name.
	for _, tenant := range []string{"acme", id} {
		keys := mustRun(t, "key", "list", "--tenant", tenant)
		if !strings.Contains(keys, keyID) || !strings.Contains(keys, key[:12]) || !strings.Contains(keys, "ci runner") {
			t.Errorf("key list --tenant %s:\n%s", tenant, keys)
		}
		if strings.Contains(keys, key) {
			t.Errorf("key list shows the secret:\n%s", keys)
		}
	}

	for range 2 { // idempotent
		if out := mustRun(t, "key", "revoke", keyID); !strings.HasPrefix(out, "revoked "+keyID) {
			t.Errorf("key revoke printed %q", out)
		}
	}
	if _, err := s.LookupKey(context.Background(), pgstore.HashKey(key)); apperr.KindOf(err) != apperr.KindNotFound {
		t.Errorf("revoked key still authenticates: %v", err)
	}
	keys := mustRun(t, "key", "list", "--tenant", "acme")
	if regexp.MustCompile(keyID + `\s+\S+\s+\S+\s+-`).MatchString(keys) {
		t.Errorf("key list does not show the revocation:\n%s", keys)
	}

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"key", "revoke", "ffffffffffffffff"}, "not found"},
		{[]string{"key", "create", "--tenant", "nope"}, "not found"},
		{[]string{"key", "create"}, `required flag(s) "tenant"`},
		{[]string{"key", "list", "--tenant", "nope"}, "not found"},
		{[]string{"tenant", "create", "bad name"}, "name:"},
		{[]string{"tenant", "create"}, "accepts 1 arg"},
	} {
		if _, _, err := runCLI(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("aftertrace %s: err = %v, want it to contain %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}

func TestTenantCommandsDefaultToDevStack(t *testing.T) {
	for _, cmd := range [][]string{{"tenant", "list"}, {"retention", "enforce"}} {
		var out bytes.Buffer
		if err := run(context.Background(), append(cmd, "--help"), &out, &out); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(out.String(), devPostgresDSN) {
			t.Errorf("%s --help does not show the dev stack DSN:\n%s", strings.Join(cmd, " "), out.String())
		}
	}
	// Nothing listens there in the tests (port 1): the error says what to do.
	_, _, err := runCLI(t, "tenant", "list", "--postgres-dsn", "postgres://aftertrace@127.0.0.1:1/aftertrace?sslmode=disable")
	if err == nil || !strings.Contains(err.Error(), "make run") {
		t.Errorf("unreachable Postgres: %v", err)
	}
}

func TestTenantTimeBoundsCommand(t *testing.T) {
	env := testenv.Get(t)
	dsn := []string{"--postgres-dsn", env.PostgresDSN}
	id := strings.TrimSpace(mustRun(t, append([]string{"tenant", "create", "replayer"}, dsn...)...))
	mustRun(t, append([]string{"tenant", "time-bounds", id, "--max-record-age", "87600h"}, dsn...)...)
	s, err := pgstore.Open(context.Background(), env.PostgresDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var age, future *int64
	if err := s.Pool().QueryRow(context.Background(),
		`SELECT max_record_age_seconds, max_future_seconds FROM tenant_limits WHERE tenant_id = $1`, id).Scan(&age, &future); err != nil {
		t.Fatal(err)
	}
	if age == nil || *age != 87600*3600 || future != nil {
		t.Fatalf("stored age %v future %v", age, future)
	}
	if _, _, err := runCLI(t, append([]string{"tenant", "time-bounds", "0000000000000000", "--max-future", "2h"}, dsn...)...); apperr.KindOf(err) != apperr.KindNotFound {
		t.Fatalf("unknown tenant: %v", err)
	}
}
