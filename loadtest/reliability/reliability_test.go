package reliability

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// aftertraceBin is $AFTERTRACE_BIN (make test builds it) or a fresh build.
func aftertraceBin(t *testing.T) string {
	if b := os.Getenv("AFTERTRACE_BIN"); b != "" {
		return b
	}
	bin := filepath.Join(t.TempDir(), "aftertrace")
	cmd := exec.Command("go", "build", "-o", bin, "../../cmd/aftertrace")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build aftertrace: %v\n%s", err, out)
	}
	return bin
}

// TestReliabilityShort is the subset `make test` runs: every case of `make
// reliability` with short windows (ClickHouse down 8 s, the writer killed
// twice, NATS down 4 s, …). The hostile-tenant cases judge only what the
// hostile tenant got here — the quiet tenant's latencies are the full
// suite's to judge (timing is for load tools, not unit tests).
func TestReliabilityShort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	var out bytes.Buffer
	results, err := Run(ctx, Options{Bin: aftertraceBin(t), Spec: "../../api/openapi.yaml", Short: true}, &out)
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != len(cases()) {
		t.Fatalf("%d results, want %d", len(results), len(cases()))
	}
	for _, r := range results {
		if !r.Pass {
			t.Errorf("%s failed: %s", r.Name, r.Figure)
		}
	}
	if last := strings.TrimSpace(out.String()); !strings.HasSuffix(last, "failed=0") {
		t.Errorf("last line of the table: %q", last[strings.LastIndex(last, "\n")+1:])
	}
}
