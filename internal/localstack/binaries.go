package localstack

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// findClickHouse resolves the server command: the classic clickhouse-server
// binary (Debian's package puts it in /usr/sbin, often not on a user's PATH),
// else the single "clickhouse" binary run as "clickhouse server".
func findClickHouse(bin string) (path string, args []string, err error) {
	candidates := []string{"clickhouse-server", "/usr/sbin/clickhouse-server", "/usr/bin/clickhouse-server", "clickhouse", "/usr/bin/clickhouse"}
	if bin != "" {
		candidates = []string{bin}
	}
	for _, c := range candidates {
		p, err := exec.LookPath(c)
		if err != nil {
			continue
		}
		if filepath.Base(p) == "clickhouse" {
			return p, []string{"server"}, nil
		}
		return p, nil, nil
	}
	return "", nil, fmt.Errorf("clickhouse server binary not found (tried %s): apt-get install clickhouse-server", strings.Join(candidates, ", "))
}

// postgresRoot is where Debian's postgresql packages install, one dir per major.
const postgresRoot = "/usr/lib/postgresql"

// findPostgresBin returns a dir holding postgres and initdb: binDir if set,
// else the Debian install matching the data dir's major version, else the
// newest Debian install, else the one on PATH.
func findPostgresBin(binDir, wantMajor string) (string, error) {
	var candidates []string
	if binDir != "" {
		candidates = []string{binDir}
	} else {
		if wantMajor != "" {
			candidates = append(candidates, filepath.Join(postgresRoot, wantMajor, "bin"))
		}
		candidates = append(candidates, debianPostgresBins()...)
		if p, err := exec.LookPath("postgres"); err == nil {
			candidates = append(candidates, filepath.Dir(p))
		}
	}
	for _, dir := range candidates {
		if isExecutable(filepath.Join(dir, "postgres")) && isExecutable(filepath.Join(dir, "initdb")) {
			return dir, nil
		}
	}
	where := postgresRoot + "/<version>/bin or PATH"
	if binDir != "" {
		where = binDir
	}
	return "", fmt.Errorf("postgres server binaries (postgres, initdb) not found in %s: apt-get install postgresql", where)
}

// debianPostgresBins lists /usr/lib/postgresql/<major>/bin, newest first.
func debianPostgresBins() []string {
	ents, err := os.ReadDir(postgresRoot)
	if err != nil {
		return nil
	}
	var majors []float64
	for _, e := range ents {
		if v, err := strconv.ParseFloat(e.Name(), 64); err == nil {
			majors = append(majors, v)
		}
	}
	sort.Sort(sort.Reverse(sort.Float64Slice(majors)))
	dirs := make([]string, 0, len(majors))
	for _, v := range majors {
		dirs = append(dirs, filepath.Join(postgresRoot, strconv.FormatFloat(v, 'f', -1, 64), "bin"))
	}
	return dirs
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && !st.IsDir() && st.Mode()&0o111 != 0
}
