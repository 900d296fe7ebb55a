package bench

import (
	"github.com/aftertrace/aftertrace/internal/localstack"

	"bufio"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// clockTicks is USER_HZ, 100 on every Linux we run on.
const clockTicks = 100

// procCPU returns the user+system CPU seconds pid consumed so far, or 0.
// On a shared machine CPU seconds per span are a steadier measure than
// wall-clock rates.
func procCPU(pid int) float64 {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	// Fields after the command (which may hold spaces) start after ')'.
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / clockTicks
}

// clickHouseCPU returns a reader of the CPU seconds every ClickHouse node
// of the stack consumed so far (their pids looked up now).
func (st *Stack) clickHouseCPU() func() float64 {
	nodes := []*localstack.ClickHouse{st.CH}
	if st.Cluster != nil {
		nodes = st.Cluster.Nodes
	}
	pids := make([]int, len(nodes))
	for i, n := range nodes {
		pids[i] = clickHousePID(n)
	}
	return func() float64 {
		var t float64
		for _, p := range pids {
			t += procCPU(p)
		}
		return t
	}
}

// clickHousePID reads the pid ClickHouse records in its data/status file.
func clickHousePID(ch *localstack.ClickHouse) int {
	f, err := os.Open(filepath.Join(ch.Dir(), "data", "status"))
	if err != nil {
		return pidByArg("--config-file=" + filepath.Join(ch.Dir(), "config.xml"))
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "PID:"); ok {
			pid, _ := strconv.Atoi(strings.TrimSpace(v))
			return pid
		}
	}
	return 0
}

// appPID is the aftertrace process, or 0.
func (st *Stack) appPID() int {
	if st.app == nil || st.app.Process == nil {
		return 0
	}
	return st.app.Process.Pid
}

// pidByArg finds a process one of whose arguments is arg.
func pidByArg(arg string) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(b), "\x00") {
			if a == arg {
				return pid
			}
		}
	}
	return 0
}

// selfCPU is this process's user+system CPU seconds so far.
func selfCPU() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}
