package localstack

import (
	"bufio"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// clearStalePIDFile handles the pid file a killed run leaves behind
// (ClickHouse's "status", Postgres's "postmaster.pid"). If the recorded pid is
// a live server on dir it reports "already running"; otherwise the file is
// stale and removed, because a reused pid would make Postgres refuse to start.
func clearStalePIDFile(log *slog.Logger, name, pidPath, dir string) error {
	pid, err := readPIDFile(pidPath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		log.Warn("unreadable pid file, removing it", "file", pidPath, "err", err)
	} else if pidAlive(pid) && processUsesDir(pid, name, dir) {
		return fmt.Errorf("%s already running on %s, pid %d", name, dir, pid)
	} else {
		log.Info("removing stale pid file", "file", pidPath, "pid", pid)
	}
	if err := os.Remove(pidPath); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove stale %s: %w", pidPath, err)
	}
	return nil
}

// readPIDFile reads the pid from the first line: "N" (postmaster.pid) or
// "PID: N" (ClickHouse status).
func readPIDFile(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, fmt.Errorf("%s: empty", path)
	}
	line := strings.TrimSpace(strings.TrimPrefix(sc.Text(), "PID:"))
	pid, err := strconv.Atoi(line)
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("%s: no pid in %q", path, sc.Text())
	}
	return pid, nil
}

// pidAlive treats zombies as dead: an orphaned server killed with its
// parent may wait a while for a reaper that never comes in a container.
func pidAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	// Fields after the parenthesized command name: "state ppid ...".
	rest := stat[strings.LastIndexByte(string(stat), ')')+1:]
	f := strings.Fields(string(rest))
	return len(f) == 0 || f[0] != "Z"
}

// processUsesDir reports whether pid is a server binary (its executable's
// name contains name) that runs in dir or names it on its command line:
// Postgres chdirs into its data dir, ClickHouse gets our config path.
func processUsesDir(pid int, name, dir string) bool {
	proc := "/proc/" + strconv.Itoa(pid)
	if exe, err := os.Readlink(proc + "/exe"); err == nil && !strings.Contains(filepath.Base(exe), name) {
		return false
	}
	if cwd, err := os.Readlink(proc + "/cwd"); err == nil && (cwd == dir || strings.HasPrefix(cwd, dir+"/")) {
		return true
	}
	cmdline, err := os.ReadFile(proc + "/cmdline")
	return err == nil && strings.Contains(string(cmdline), dir+"/")
}

// listensOn reports whether pid holds a listening TCP socket on port. It
// keeps the readiness probe from talking to some other server on our port.
func listensOn(pid, port int) bool {
	inodes := listeningInodes(port)
	if len(inodes) == 0 {
		return false
	}
	fdDir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, err := os.ReadDir(fdDir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		link, err := os.Readlink(filepath.Join(fdDir, e.Name()))
		if err != nil || !strings.HasPrefix(link, "socket:[") {
			continue
		}
		if inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] {
			return true
		}
	}
	return false
}

// listeningInodes returns the socket inodes listening on port, from the
// /proc/net tables (columns: sl local_address rem_address st ... inode).
func listeningInodes(port int) map[string]bool {
	const stateListen = "0A"
	want := fmt.Sprintf(":%04X", port)
	inodes := map[string]bool{}
	for _, table := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		data, err := os.ReadFile(table)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(data), "\n")[1:] {
			f := strings.Fields(line)
			if len(f) < 10 || f[3] != stateListen || !strings.HasSuffix(f[1], want) {
				continue
			}
			inodes[f[9]] = true
		}
	}
	return inodes
}
